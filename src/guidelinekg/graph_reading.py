"""Reading values from an RDF graph as the published pages and the FHIR export show them:
a text in English (or untagged) first, a label, a local name, numbers and flags. Reading
uses rdflib's graph API; no SPARQL text is built.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import TypeVar

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, RDFS, SH, SKOS, XSD
from rdflib.term import Node

from guidelinekg.namespaces import GKG, decimal_text


def text(graph: Graph, subject: Node, *predicates: URIRef) -> str | None:
    """The first value of the first predicate that has one (English or untagged preferred)."""
    for predicate in predicates:
        values = sorted(graph.objects(subject, predicate), key=_language_rank)
        if values:
            return str(values[0])
    return None


def _language_rank(value: Node) -> tuple[int, str]:
    if isinstance(value, Literal):
        rank = 0 if value.language in (None, "en") else 1
        return rank, str(value)
    return 2, str(value)


def local_name(iri: Node) -> str:
    value = str(iri)
    for separator in ("#", "/"):
        if separator in value:
            value = value.rsplit(separator, 1)[1] or value
    return value


def label(graph: Graph, term: Node) -> str:
    """What a reader calls a term: its preferred label, label, title or notation."""
    if isinstance(term, Literal):
        return str(term)
    found = text(graph, term, SKOS.prefLabel, RDFS.label, DCTERMS.title, SH.name,
                 GKG.sourceTitle, SKOS.notation)
    return found if found is not None else local_name(term)


_TermT = TypeVar("_TermT", bound=Node)


def sorted_terms(graph: Graph, terms: Iterable[_TermT]) -> list[_TermT]:
    """Terms in reading order: by label, then by IRI (stable)."""
    return sorted(set(terms), key=lambda term: (label(graph, term).casefold(), str(term)))


def integer(graph: Graph, subject: Node, predicate: URIRef) -> int | None:
    value = graph.value(subject, predicate)
    if isinstance(value, Literal):
        try:
            return int(value)
        except (TypeError, ValueError):
            return None
    return None


def number_text(value: Node) -> str:
    """A number as written for a reader: 120.0 -> 120, 0.47 -> 0.47."""
    if isinstance(value, Literal) and value.datatype in (XSD.decimal, XSD.double, XSD.float,
                                                         XSD.integer):
        number = value.toPython()
        if isinstance(number, Decimal):
            return decimal_text(number)
        if isinstance(number, int):
            return str(number)
        if isinstance(number, float):
            rendered = format(number, "f")
            return rendered.rstrip("0").rstrip(".") if "." in rendered else rendered
    return str(value)


def is_boolean(value: Node | None) -> bool:
    return isinstance(value, Literal) and value.datatype == XSD.boolean


def flag(graph: Graph, subject: Node, predicate: URIRef) -> bool:
    """A yes/no property (an xsd:boolean literal); absent is no."""
    value = graph.value(subject, predicate)
    if value is None:
        return False
    if not isinstance(value, Literal):
        raise ValueError(f"{subject}: {predicate} is {value}, not a literal (true or false)")
    return bool(value.toPython())
