"""pyoxigraph, the project's fast RDF store and parser, imported here only: its names as the
rest of the project uses them (``from guidelinekg import oxigraph as ox``), and the
conversion of terms between pyoxigraph and rdflib, the project's data model."""

from __future__ import annotations

from pyoxigraph import (
    BlankNode,
    DefaultGraph,
    Literal,
    NamedNode,
    Quad,
    QueryBoolean,
    QueryResultsFormat,
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
           "QueryResultsFormat", "QuerySolutions", "QueryTriples", "RdfFormat", "Store",
           "Triple", "Variable", "from_oxigraph", "parse", "serialize", "stored_term",
           "to_oxigraph"]

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
