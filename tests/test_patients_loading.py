"""Loading patient inputs: files and folders, every RDF syntax, FHIR JSON, several patients
in one graph without anything shared between files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import RDF

from guidelinekg.loading import PREFIXES, InputError, parse_rdf_file
from guidelinekg.patients import (
    MAX_BLANK_NODE_DEPTH,
    blank_node_depth,
    input_files,
    load_patient_graph,
    load_patient_input,
)
from guidelinekg.resources import examples_dir
from guidelinekg.validation import validate_patients

EXAMPLES = examples_dir() / "patients"
REFERENCE = EXAMPLES / "hr-positive-her2-negative-bone-only.ttl"
SHARED = Path(__file__).resolve().parents[2] / "shared"
FHIR_BUNDLE = SHARED / "fixtures" / "fhir" / "trial-matching" / "TrialMatching_Patient01.json"
GKG = PREFIXES["gkg"]
PATIENT = URIRef(GKG + "Patient")
HAS_DOSE = URIRef(GKG + "hasDose")

ONE_DOSE = """
@prefix gkg: <https://w3id.org/guidelinekg/ontology#> .
@prefix code: <https://w3id.org/guidelinekg/code/> .
<http://example.org/{name}/patient> a gkg:Patient .
<http://example.org/{name}/denosumab> a gkg:Denosumab ;
    gkg:subject <http://example.org/{name}/patient> ; gkg:status code:ongoing ;
    gkg:hasDose _:dose .
_:dose gkg:doseAmount {amount} ; gkg:doseUnit "mg" .
"""


def test_folders_are_read_recursively_in_order_skipping_hidden_and_other_files(
        tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / ".hidden").mkdir()
    for relative in ("z.ttl", "a.nt", "b/c.jsonld", "b/d.rdf", ".hidden/e.ttl", "notes.md",
                     "b/.f.ttl"):
        (tmp_path / relative).write_text("x")
    assert input_files([tmp_path]) == [tmp_path / "a.nt", tmp_path / "b" / "c.jsonld",
                                       tmp_path / "b" / "d.rdf", tmp_path / "z.ttl"]
    explicit = tmp_path / "notes.md"
    assert input_files([explicit, tmp_path / "z.ttl"]) == [explicit, tmp_path / "z.ttl"]


def test_a_folder_without_rdf_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("nothing here")
    with pytest.raises(InputError, match="the folder holds no RDF or JSON file"):
        input_files([tmp_path])


def test_every_rdf_syntax_gives_the_same_patient_graph(tmp_path: Path) -> None:
    reference = parse_rdf_file(REFERENCE)
    for suffix, rdflib_format in ((".nt", "nt"), (".rdf", "xml"), (".jsonld", "json-ld")):
        path = tmp_path / f"record{suffix}"
        options = {"auto_compact": True} if rdflib_format == "json-ld" else {}
        path.write_text(reference.serialize(format=rdflib_format, **options))
        assert isomorphic(load_patient_graph([path]), reference), suffix


def test_several_files_merge_into_one_cohort_graph() -> None:
    files = sorted((EXAMPLES / "demo-cohort").glob("*.ttl"))
    graph = load_patient_graph(files)
    assert len(set(graph.subjects(RDF.type, PATIENT))) == 3
    assert len(graph) == sum(len(parse_rdf_file(path)) for path in files)


def test_blank_nodes_of_two_files_stay_apart(tmp_path: Path) -> None:
    """Both files call their dose _:dose; merged, each patient keeps its own dose."""
    for name, amount in (("first", "120.0"), ("second", "-5.0")):
        (tmp_path / f"{name}.ttl").write_text(ONE_DOSE.format(name=name, amount=amount))
    graph = load_patient_graph([tmp_path])
    doses = {graph.value(URIRef(f"http://example.org/{name}/denosumab"), HAS_DOSE)
             for name in ("first", "second")}
    assert len(doses) == 2 and all(isinstance(dose, BNode) for dose in doses)
    validation = validate_patients(graph)
    bad = {r.patient for r in validation.results if r.result.severity == "Violation"}
    assert bad == {URIRef("http://example.org/second/patient")}


def test_json_ld_patient_file(tmp_path: Path) -> None:
    document = {
        "@context": {"gkg": GKG, "code": PREFIXES["code"],
                     "xsd": "http://www.w3.org/2001/XMLSchema#"},
        "@graph": [
            {"@id": "http://example.org/j/patient", "@type": "gkg:Patient",
             "gkg:birthDate": {"@value": "1960-01-01", "@type": "xsd:date"}},
            {"@id": "http://example.org/j/her2", "@type": "gkg:HER2Status",
             "gkg:subject": {"@id": "http://example.org/j/patient"},
             "gkg:valueCode": {"@id": "code:positive"}},
        ],
    }
    path = tmp_path / "patient.jsonld"
    path.write_text(json.dumps(document))
    graph = load_patient_graph([path])
    assert (URIRef("http://example.org/j/her2"), URIRef(GKG + "valueCode"),
            URIRef(PREFIXES["code"] + "positive")) in graph
    assert Literal("1960-01-01", datatype=URIRef("http://www.w3.org/2001/XMLSchema#date")) in set(
        graph.objects())


def test_blank_node_depth_is_measured_without_recursion() -> None:
    graph = Graph()
    previous = URIRef("urn:root")
    for _ in range(20_000):
        node = BNode()
        graph.add((previous, URIRef("urn:p"), node))
        previous = node
    assert blank_node_depth(graph) == 20_000
    cycle = Graph()
    a, b = BNode(), BNode()
    cycle.add((a, URIRef("urn:p"), b))
    cycle.add((b, URIRef("urn:p"), a))
    assert blank_node_depth(cycle) == 2
    assert blank_node_depth(parse_rdf_file(REFERENCE)) == 0


def test_nesting_just_within_the_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "nested.ttl"
    depth = MAX_BLANK_NODE_DEPTH
    path.write_text("<urn:s> <urn:p> " + "[ <urn:p> " * depth + '"leaf"' + " ]" * depth + " .\n")
    assert blank_node_depth(load_patient_graph([path])) == depth
    path.write_text("<urn:s> <urn:p> " + "[ <urn:p> " * (depth + 1) + '"leaf"'
                    + " ]" * (depth + 1) + " .\n")
    with pytest.raises(InputError, match=f"nested {depth + 1} levels deep"):
        load_patient_graph([path])


def test_json_that_is_not_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "resourceType": "Bundle",\n  "entry": [\n')
    with pytest.raises(InputError) as error:
        load_patient_graph([path])
    assert (error.value.path, error.value.line) == (str(path), 4)


@pytest.mark.skipif(not FHIR_BUNDLE.exists(),
                    reason=f"shared FHIR fixtures not found at {FHIR_BUNDLE.parent}")
def test_fhir_json_goes_through_the_fhir_importer_and_validates() -> None:
    source = load_patient_input([FHIR_BUNDLE])
    patients = set(source.graph.subjects(RDF.type, PATIENT))
    assert patients == {URIRef("urn:uuid:mCODETrialMatchingPatientExample01")}
    assert source.fhir_summaries[FHIR_BUNDLE].startswith(
        "patient urn:uuid:mCODETrialMatchingPatientExample01: ")
    validation = validate_patients(source.graph)
    assert not validation.has_violations
    assert validation.count("Warning") > 0  # mCODE has no pain, fracture risk, ... elements


@pytest.mark.skipif(not FHIR_BUNDLE.exists(),
                    reason=f"shared FHIR fixtures not found at {FHIR_BUNDLE.parent}")
def test_fhir_and_rdf_inputs_merge(tmp_path: Path) -> None:
    graph = load_patient_graph([FHIR_BUNDLE, REFERENCE])
    assert len(set(graph.subjects(RDF.type, PATIENT))) == 2
