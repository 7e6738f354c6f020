"""pyoxigraph, the project's fast RDF store and parser, imported here only: its names as the
rest of the project uses them (``from guidelinekg import oxigraph as ox``), and the
conversion of terms between pyoxigraph and rdflib, the project's data model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyoxigraph import (
    BlankNode,
    DefaultGraph,
    Literal,
    NamedNode,
    Quad,
    QueryBoolean,
    QueryResultsFormat,
    QuerySolution,
    QuerySolutions,
    QueryTriples,
    RdfFormat,
    Store,
    Triple,
    Variable,
    parse,
    serialize,
)
from rdflib import BNode, URIRef
from rdflib import Literal as RdflibLiteral
from rdflib.namespace import XSD
from rdflib.term import Node

from guidelinekg.memo import BoundedMemo

__all__ = ["BlankNode", "DefaultGraph", "Literal", "NamedNode", "Quad", "QueryBoolean",
           "QueryResultsFormat", "QuerySolution", "QuerySolutions", "QueryTriples",
           "RdfFormat", "Store", "Triple", "Variable", "evaluated", "from_oxigraph", "parse",
           "serialize", "stored_term", "to_oxigraph"]

# A query's whole answer: the variable names and rows of a SELECT, the triples of a
# CONSTRUCT or DESCRIBE, or an ASK's boolean.
Answer = tuple[list[str], list[Any]] | list[Triple] | bool


def evaluated(store: Store, query: str, row: Callable[[list[str], QuerySolution], Any] | None
              = None, **options: Any) -> Answer:
    """``store.query(query, **options)``, read whole; a SELECT's solutions are given as
    ``row(names, solution)`` (the solution itself by default), one by one. The iterator
    pyoxigraph answers with is dropped here, on the thread that made it: pyoxigraph refuses
    to free one on another thread (and leaks it), which the garbage collector would do if
    the iterator stayed in a frame that a kept traceback holds (rdflib's query parser keeps
    some) and another thread collected it. Use this, not Store.query, wherever threads run
    queries."""
    answer = store.query(query, **options)
    try:
        if isinstance(answer, QuerySolutions):
            names = [variable.value for variable in answer.variables]
            rows = []
            for solution in answer:
                rows.append(solution if row is None else row(names, solution))
            return names, rows
        if isinstance(answer, QueryTriples):
            return list(answer)
        return bool(answer)
    finally:
        del answer

_XSD_STRING = str(XSD.string)


def from_oxigraph(term: NamedNode | BlankNode | Literal | Triple) -> Node:
    """An rdflib term for a pyoxigraph term (plain literals stay plain; a quoted triple is
    refused)."""
    if isinstance(term, NamedNode):
        return URIRef(term.value)
    if isinstance(term, BlankNode):
        return BNode(term.value)
    if isinstance(term, Literal):
        if term.language:
            return RdflibLiteral(term.value, lang=term.language)
        if term.datatype.value == _XSD_STRING:
            return RdflibLiteral(term.value)
        return RdflibLiteral(term.value, datatype=URIRef(term.datatype.value))
    raise TypeError(f"unsupported RDF term {term!r}")


def to_oxigraph(term: Node) -> NamedNode | BlankNode | Literal:
    """A pyoxigraph term for an rdflib term."""
    if isinstance(term, URIRef):
        return NamedNode(str(term))
    if isinstance(term, BNode):
        return BlankNode(str(term))
    if isinstance(term, RdflibLiteral):
        if term.language:
            return Literal(str(term), language=term.language)
        if term.datatype is not None:
            return Literal(str(term), datatype=NamedNode(str(term.datatype)))
        return Literal(str(term))
    raise TypeError(f"unsupported RDF term {term!r}")


# pyoxigraph terms made from rdflib terms, kept across calls: a cohort's records and the
# guideline repeat the same terms (classes, codes, units, each patient's IRI) many times,
# and making a pyoxigraph term costs more than finding it again. Emptied when it holds
# 100,000, so memory stays bounded whatever the cohort.
stored_term: BoundedMemo[Node, NamedNode | BlankNode | Literal] = BoundedMemo(to_oxigraph,
                                                                             100_000)
