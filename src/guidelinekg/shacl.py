"""The SHACL engine behind every validation in the project (patient records, the guideline
graph itself). Only this module knows which engine runs: pySHACL today. A faster engine can
take its place by returning the same :class:`ShaclReport`.

pySHACL is given plain rdflib graphs only: with a pyoxigraph-backed store it reads plain
literals as xsd:string and reports false violations (shared/notes/engines.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyshacl
from rdflib import Graph, URIRef
from rdflib.namespace import RDF, SH
from rdflib.term import Node

SEVERITY_ORDER = {"Violation": 0, "Warning": 1, "Info": 2}


@dataclass(frozen=True)
class ShaclResult:
    """One validation result, in the terms a reader needs."""

    focus: Node
    path: Node | None
    value: Node | None
    source_shape: Node
    severity: str  # Violation, Warning or Info
    message: str
    constraint: Node | None


@dataclass
class ShaclReport:
    conforms: bool
    results: list[ShaclResult] = field(default_factory=list)
    graph: Graph = field(default_factory=Graph)

    def by_severity(self, severity: str) -> list[ShaclResult]:
        return [r for r in self.results if r.severity == severity]

    @property
    def has_violations(self) -> bool:
        return any(r.severity == "Violation" for r in self.results)


def _severity_name(term: Node | None) -> str:
    if term is None:
        return "Violation"
    return str(term).rsplit("#", 1)[-1]


def validate_graph(data: Graph, shapes: Graph, ontology: Graph | None = None) -> ShaclReport:
    """Validate ``data`` against ``shapes``; ``ontology`` supplies rdfs:subClassOf for targets.

    No inference is run on the data: the class hierarchy reaches the validator through the
    ontology graph, so a record is judged on what it says.

    The ontology is merged into a copy of the data here rather than passed as pySHACL's
    ``ont_graph``: pySHACL 0.40 "inoculates" it by deep-cloning every owl:NamedIndividual
    recursively, which took 27 s for one patient against the core ontology (2,000 triples);
    a plain union is the same triples in 10 ms. ``inplace`` then spares a second copy.
    """
    target = data
    if ontology is not None:
        target = Graph()
        for triple in data:
            target.add(triple)
        for triple in ontology:
            target.add(triple)
    conforms, report_graph, _ = pyshacl.validate(
        target,
        shacl_graph=shapes,
        ont_graph=None,
        inplace=ontology is not None,
        inference="none",
        advanced=True,
        allow_warnings=True,
        abort_on_first=False,
        meta_shacl=False,
    )
    results = []
    # Only the report's own results: nested sh:detail results (of a failed sh:node) would
    # otherwise be counted twice, once in the inner shape's words.
    top_level = [result for report in report_graph.subjects(RDF.type, SH.ValidationReport)
                 for result in report_graph.objects(report, SH.result)]
    for result in top_level:
        messages = sorted(str(m) for m in report_graph.objects(result, SH.resultMessage))
        results.append(
            ShaclResult(
                focus=report_graph.value(result, SH.focusNode),
                path=report_graph.value(result, SH.resultPath),
                value=report_graph.value(result, SH.value),
                source_shape=report_graph.value(result, SH.sourceShape),
                severity=_severity_name(report_graph.value(result, SH.resultSeverity)),
                message=messages[0] if messages else "",
                constraint=report_graph.value(result, SH.sourceConstraintComponent),
            )
        )
    results.sort(key=lambda r: (SEVERITY_ORDER.get(r.severity, 9), str(r.focus),
                                str(r.path), str(r.source_shape), r.message))
    return ShaclReport(conforms=bool(conforms), results=results, graph=report_graph)


def shape_name(shape: Node, shapes: Graph) -> str:
    """A readable name for a shape: its sh:name, rdfs:label, or local name."""
    for predicate in (SH.name, URIRef("http://www.w3.org/2000/01/rdf-schema#label")):
        value = shapes.value(shape, predicate)
        if value is not None:
            return str(value)
    text = str(shape)
    return text.rsplit("#", 1)[-1].rsplit("/", 1)[-1]
