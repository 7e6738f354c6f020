"""The fast SHACL engine's results and W3C report, as pySHACL makes them
(:mod:`guidelinekg.shacl_fast` runs the validation): each result's messages (a SPARQL
constraint's filled in from its row), and the report graph, built when first read, with the
blank nodes of the data and the shapes cloned into it with their descriptions.
"""

from __future__ import annotations

import gc
import re
from typing import TYPE_CHECKING, Any, NamedTuple

import rdflib
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import RDF, SH
from rdflib.term import Node

from guidelinekg.shacl_core import clone_blank

if TYPE_CHECKING:
    from guidelinekg.shacl_fast import CompiledShape, SparqlQuery, _Run


class FastResult(NamedTuple):
    focus: Node
    path: Node | None
    value: Node | None
    source_shape: Node
    severity: str
    message: str
    constraint: Node | None


class literal_normalisation:
    """pySHACL validates with rdflib's literal normalisation on (it switches it on when it
    has read the shapes); the project keeps it off. SPARQL parsed or evaluated here runs
    with it on, so that literals made by queries are pySHACL's."""

    def __enter__(self) -> None:
        self.before = rdflib.NORMALIZE_LITERALS
        rdflib.NORMALIZE_LITERALS = True

    def __exit__(self, *exc: object) -> None:
        rdflib.NORMALIZE_LITERALS = self.before


def format_message(message: str, bound: Any) -> str:
    """pySHACL's _format_sparql_based_result_message."""
    values: dict[str, Any] = {}
    if isinstance(bound, tuple):
        values.update(bound[3])
        for name, value in zip(("this", "path", "value"), bound[:3], strict=False):
            if value is not None:
                values[name] = value
    else:
        values.update(bound)
    for name, value in values.items():
        message = re.sub(f"{{[?$]{name}}}", str(value), message)
    return message


def fast_result(record: tuple) -> FastResult:
    shape, focus, value, path, component, constraint, bound = record
    texts = sorted(str(m) for m in messages(shape, constraint, bound))
    return FastResult(focus, path if path is not None else shape.path, value, shape.node,
                      str(shape.severity).rsplit("#", 1)[-1], texts[0] if texts else "",
                      component)


def report_graph(run: _Run, conforms: bool) -> Graph:
    """The W3C report graph, as pySHACL's create_validation_report makes it."""
    report = Graph(bind_namespaces="core")
    for prefix, namespace in run.shapes.namespaces:
        report.namespace_manager.bind(prefix, namespace)
    root = BNode()
    report.add((root, RDF.type, SH.ValidationReport))
    report.add((root, SH.conforms, Literal(conforms)))
    cloned: dict[tuple[str, str], Node] = {}
    collecting = gc.isenabled()
    gc.disable()
    try:
        with literal_normalisation():  # pySHACL clones literals with it on
            for record in run.records:
                _add_result(run, report, root, cloned, record)
    finally:
        if collecting:
            gc.enable()
    return report


def _add_result(run: _Run, report: Graph, root: Node, cloned: dict[tuple[str, str], Node],
                record: tuple) -> None:
    shape, focus, value, path, component, constraint, bound = record
    if path is None:
        path = shape.path
    node = BNode()
    report.add((root, SH.result, node))
    triples = [(RDF.type, SH.ValidationResult),
               (SH.sourceConstraintComponent, _clone(run, cloned, "sg", component, report)),
               (SH.sourceShape, _clone(run, cloned, "sg", shape.node, report)),
               (SH.resultSeverity, shape.severity),
               (SH.focusNode, _clone(run, cloned, "data", focus, report))]
    if value is not None:
        triples.append((SH.value, _clone(run, cloned, "data", value, report)))
    if path is not None:
        triples.append((SH.resultPath, _clone(run, cloned, "sg", path, report)))
    if constraint is not None:
        triples.append((SH.sourceConstraint, _clone(run, cloned, "sg", constraint.node, report)))
    triples.extend((SH.resultMessage, m) for m in messages(shape, constraint, bound))
    for pred, obj in triples:
        report.add((node, pred, obj))


def messages(shape: CompiledShape, constraint: SparqlQuery | None, bound: Any) -> list[Node]:
    """pySHACL's make_v_result messages: the shape's, then the SPARQL node's; for SPARQL
    results each is filled in from the row and loses its language tag."""
    messages = list(shape.messages)
    out: list[Node] = []
    extra = constraint.messages if constraint is not None else ()
    for m in extra:
        if m in messages:
            continue
        out.append(Literal(format_message(str(m.value), bound)) if bound is not None else m)
    for message in messages:
        if isinstance(message, Literal) and bound is not None:
            message = Literal(format_message(str(message.value), bound))
        out.append(message)
    return out


def _clone(run: _Run, cloned: dict[tuple[str, str], Node], source: str, node: Node,
           report: Graph) -> Node:
    """pySHACL's create_validation_report cloning: literals as they are, IRIs as IRIs,
    blank nodes with their description (keeping their id), once per report."""
    if isinstance(node, Literal):
        return node
    key = (source, str(node))
    if key not in cloned:
        graph = run.shapes.graph if source == "sg" else run.union
        cloned[key] = (clone_blank(graph, node, report, keep_id=True)
                       if isinstance(node, BNode) else URIRef(str(node)))
    return cloned[key]
