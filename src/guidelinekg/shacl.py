"""The SHACL engine behind every validation in the project (patient records, the guideline
graph itself). Only this module knows which engine runs; every engine returns the same
:class:`ShaclReport`.

Engines (``validate_graph(..., engine=...)``):

- ``"pyshacl"``: pySHACL (``advanced=True``, no inference), the reference.
- ``"fast"``: :mod:`guidelinekg.shacl_fast`, which gives pySHACL's results (the same
  results, messages and W3C report graph) on the constructs the project's shapes use, in
  about a millisecond a patient instead of tens (docs/engines.md). Shapes that use anything
  else (nested shapes, sh:or, string constraints, custom constraint components, SHACL
  rules, ...) are refused by name, and data it cannot judge as pySHACL would is handed to
  pySHACL.

The default is ``"fast"`` where it supports the shapes, else pySHACL; the report says which
engine ran (:attr:`ShaclReport.engine`) and why pySHACL did (:attr:`ShaclReport.fallback`).
Asked for by name, ``engine="fast"`` raises :class:`ShaclEngineError` on shapes it does not
support instead of falling back. The environment variable ``GUIDELINEKG_SHACL_ENGINE``
(``pyshacl`` or ``fast``) overrides the default for every call that names no engine.

pySHACL is given plain rdflib graphs only: with a pyoxigraph-backed store it reads plain
literals as xsd:string and reports false violations (docs/engines.md).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pyshacl
import rdflib
from rdflib import BNode, Graph, Literal
from rdflib.namespace import RDF, RDFS, SH
from rdflib.plugins.sparql.sparql import Query
from rdflib.query import Result
from rdflib.term import Node

from guidelinekg import shacl_fast
from guidelinekg.memo import BoundedMemo
from guidelinekg.query_text import prepared_query
from guidelinekg.resources import SettingError

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


ENGINES = ("fast", "pyshacl")
ENGINE_VARIABLE = "GUIDELINEKG_SHACL_ENGINE"
LOG = logging.getLogger(__name__)


class ShaclEngineError(SettingError):
    """An unknown engine, or shapes the engine asked for by name does not support."""


class ShaclReport:
    """A validation's verdict, its results and its W3C report graph (sh:ValidationReport).

    ``engine`` names the engine that ran; ``fallback`` says why pySHACL ran when the fast
    engine was preferred. The fast engine builds the report graph when it is first read
    (a cohort run reads only the results): ``build_graph`` makes it, and results added
    meanwhile (:func:`add_results`) are added to it then.
    """

    def __init__(self, conforms: bool, results: list[ShaclResult] | None = None,
                 graph: Graph | None = None, engine: str = "pyshacl",
                 fallback: str | None = None,
                 build_graph: Callable[[], Graph] | None = None) -> None:
        self.conforms = conforms
        self.results = results if results is not None else []
        self.engine = engine
        self.fallback = fallback
        self._graph = graph if graph is not None or build_graph is not None else Graph()
        self._build = build_graph
        self._pending: list[ShaclResult] = []

    @property
    def graph(self) -> Graph:
        if self._graph is None:
            assert self._build is not None
            graph = self._build()
            self._build = None
            if self._pending:
                _add_to_graph(graph, self._pending, self.conforms)
                self._pending = []
            self._graph = graph
        return self._graph

    @graph.setter
    def graph(self, graph: Graph) -> None:
        self._graph, self._build, self._pending = graph, None, []

    def __repr__(self) -> str:
        return (f"ShaclReport(conforms={self.conforms}, results={len(self.results)}, "
                f"engine={self.engine!r})")

    def by_severity(self, severity: str) -> list[ShaclResult]:
        return [r for r in self.results if r.severity == severity]

    @property
    def has_violations(self) -> bool:
        return any(r.severity == "Violation" for r in self.results)


class _PreparedQueryGraph(Graph):
    """A graph that parses each SPARQL text once.

    pySHACL hands a SHACL-SPARQL constraint to ``Graph.query`` as text for every focus node,
    and rdflib parses it each time (20-50 ms, far more than evaluating it on one patient);
    here the parsed query is kept and only the ``$this`` binding changes.
    """

    def query(self, query_object: str | Query, *args: Any, **kwargs: Any) -> Result:
        return super().query(_prepared(query_object), *args, **kwargs)


# Parsed SPARQL texts, kept across validations: the shapes' queries are the same every run
# (parsing them took 3 of the 3.5 s of validating one small record).
_prepared_text: BoundedMemo[str, Query] = BoundedMemo(prepared_query, 2048)


def _prepared(query_object: str | Query) -> Query:
    return _prepared_text(query_object) if isinstance(query_object, str) else query_object


def _run_pyshacl(target: Graph, shapes: Graph):
    try:
        return pyshacl.validate(
            target,
            shacl_graph=shapes,
            ont_graph=None,
            inplace=True,
            inference="none",
            advanced=True,
            allow_warnings=True,
            abort_on_first=False,
            meta_shacl=False,
        )
    finally:
        # pySHACL turns rdflib's literal normalisation back on when it returns; the project
        # keeps literals as written (guidelinekg/__init__.py), so it is turned off again.
        rdflib.NORMALIZE_LITERALS = False


def _severity_name(term: Node | None) -> str:
    if term is None:
        return "Violation"
    return str(term).rsplit("#", 1)[-1]


def validate_graph(data: Graph, shapes: Graph, ontology: Graph | None = None, *,
                   inplace: bool = False, engine: str | None = None) -> ShaclReport:
    """Validate ``data`` against ``shapes``; ``ontology`` supplies rdfs:subClassOf for targets.

    No inference is run on the data: the class hierarchy reaches the validator through the
    ontology graph, so a record is judged on what it says. ``engine``: see the module
    docstring (None: ``GUIDELINEKG_SHACL_ENGINE``, else the fast engine where it supports
    the shapes).
    """
    chosen = engine or os.environ.get(ENGINE_VARIABLE, "").strip() or "fast"
    if chosen not in ENGINES:
        raise ShaclEngineError(f"unknown SHACL engine {chosen!r}: one of {', '.join(ENGINES)}")
    fallback = None
    if chosen == "fast":
        try:
            return _validate_fast(data, shapes, ontology)
        except shacl_fast.UnsupportedShapes as error:
            if engine == "fast":
                raise ShaclEngineError(f"the fast SHACL engine does not support these shapes: "
                                       f"{error}") from None
            fallback = f"shapes not supported by the fast engine: {error}"
        except shacl_fast.NeedsReference as error:
            fallback = f"data the fast engine hands to pySHACL: {error}"
        LOG.info("SHACL validation by pySHACL (%s)", fallback)
    report = _validate_pyshacl(data, shapes, ontology, inplace=inplace)
    report.fallback = fallback
    return report


def _validate_fast(data: Graph, shapes: Graph, ontology: Graph | None) -> ShaclReport:
    conforms, found, build_graph = shacl_fast.validate(data, shapes, ontology)
    results = [ShaclResult(*result) for result in found]
    results.sort(key=_result_key)
    return ShaclReport(conforms=conforms, results=results, engine="fast",
                       build_graph=build_graph)


def _validate_pyshacl(data: Graph, shapes: Graph, ontology: Graph | None, *,
                      inplace: bool) -> ShaclReport:
    """pySHACL. ``ontology`` is merged into the data, as described below.

    The ontology is merged into a copy of the data here rather than passed as pySHACL's
    ``ont_graph``: pySHACL 0.40 "inoculates" it by deep-cloning every owl:NamedIndividual
    recursively, which took 27 s for one patient against the core ontology (2,000 triples);
    a plain union is the same triples in 10 ms. ``inplace`` then spares a second copy.

    With ``inplace=True`` the caller gives ``data`` up: the ontology's triples are added to
    it and no copy is made (copying a 1,000-patient cohort costs rdflib seconds).
    """
    if inplace:
        for triple in ontology if ontology is not None else ():
            data.add(triple)
        # The same parse-once cache, on the caller's graph for the time of the run.
        plain_query = data.query
        data.query = lambda query_object, *args, **kwargs: plain_query(  # type: ignore[method-assign]
            _prepared(query_object), *args, **kwargs)
        try:
            conforms, report_graph, _ = _run_pyshacl(data, shapes)
        finally:
            del data.query
    else:
        target = _PreparedQueryGraph()
        for source in (data, ontology if ontology is not None else Graph()):
            for triple in source:
                target.add(triple)
        conforms, report_graph, _ = _run_pyshacl(target, shapes)
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
    results.sort(key=_result_key)
    return ShaclReport(conforms=bool(conforms), results=results, graph=report_graph)


def _result_key(result: ShaclResult) -> tuple[int, str, str, str, str, str, str]:
    # The same order at every run: a blank node's label (a sequence path's) changes from run
    # to run, so such a path is ordered by its shape; and down to the value and the
    # constraint, which otherwise kept the engine's order (Python's per-run string hashing).
    path = "" if isinstance(result.path, BNode) else str(result.path)
    return (SEVERITY_ORDER.get(result.severity, 9), str(result.focus), path,
            str(result.source_shape), result.message, str(result.value),
            str(result.constraint))


def add_results(report: ShaclReport, results: Iterable[ShaclResult]) -> None:
    """Add results found outside the SHACL engine (a check written in Python for speed) to
    a report: to its results, in the engine's order, and to its W3C graph as
    sh:ValidationResult nodes of its sh:ValidationReport (sh:conforms false when one is a
    violation), so that every output shows them as it shows the engine's."""
    results = list(results)
    if not results:
        return
    report.results.extend(results)
    report.results.sort(key=_result_key)
    if any(result.severity == "Violation" for result in results):
        report.conforms = False
    if report._graph is None:  # the graph is not built yet: they are added when it is
        report._pending.extend(results)
    else:
        _add_to_graph(report._graph, results, report.conforms)


def _add_to_graph(graph: Graph, results: list[ShaclResult], conforms: bool) -> None:
    report_node = next(iter(graph.subjects(RDF.type, SH.ValidationReport)), None)
    if report_node is None:
        report_node = BNode()
        graph.add((report_node, RDF.type, SH.ValidationReport))
        graph.add((report_node, SH.conforms, Literal(conforms)))
    for result in results:
        node = BNode()
        graph.add((report_node, SH.result, node))
        graph.add((node, RDF.type, SH.ValidationResult))
        graph.add((node, SH.focusNode, result.focus))
        if result.path is not None:
            graph.add((node, SH.resultPath, result.path))
        if result.value is not None:
            graph.add((node, SH.value, result.value))
        graph.add((node, SH.sourceShape, result.source_shape))
        graph.add((node, SH.resultSeverity, SH[result.severity]))
        graph.add((node, SH.resultMessage, Literal(result.message, lang="en")))
        if result.constraint is not None:
            graph.add((node, SH.sourceConstraintComponent, result.constraint))
    if not conforms:
        graph.set((report_node, SH.conforms, Literal(False)))


def shape_name(shape: Node, shapes: Graph) -> str:
    """A readable name for a shape: its sh:name, rdfs:label, or local name."""
    for predicate in (SH.name, RDFS.label):
        value = shapes.value(shape, predicate)
        if value is not None:
            return str(value)
    text = str(shape)
    return text.rsplit("#", 1)[-1].rsplit("/", 1)[-1]
