"""Ill-typed values in a patient record, found before any engine compares them.

A date written "-0"^^xsd:date, a decimal "NaN"^^xsd:decimal or a blank node where a date
belongs made pySHACL's comparisons (sh:lessThanOrEquals between a start and an end date)
raise inside the validator, and rdflib logs a traceback for every lexical form it cannot
convert. The record is checked here first: every literal whose lexical form is not one of
its datatype's (XML Schema lexical spaces, a real calendar date, and a finite number: INF,
NaN and "1E400"^^xsd:double are lexical forms of a double but no value), and every value of a
datatype property of the ontology that is not a literal at all, is a violation naming the
value and its datatype. Those triples are kept out of the shapes' run, so that no engine
compares them; the record is refused all the same (a violation blocks the derivation).

Literals of a well-formed but unexpected datatype ("5"^^xsd:string as a dose) are the
shapes' to judge (sh:datatype), with their own messages, except on the properties the shapes
compare with each other (sh:lessThanOrEquals: a start date and an end date): there a value
of another datatype (a date typed <xsd:date>, the IRI a JSON-LD file without the xsd prefix
produces) cannot be compared, and pySHACL raised on it, so it is ill-typed too.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterable
from datetime import date
from functools import lru_cache

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import OWL, RDF, RDFS, SH, XSD
from rdflib.term import Node

from guidelinekg.namespaces import PSH, curie
from guidelinekg.shacl import ShaclResult

ILL_TYPED_VALUE = PSH.IllTypedValue
ILL_TYPED_COMPONENT = PSH.IllTypedValueConstraintComponent

_TIMEZONE = r"(Z|[+-]\d{2}:\d{2})?"
_DATE = r"-?\d{4,}-\d{2}-\d{2}"
# The lexical spaces of XML Schema 1.1 (https://www.w3.org/TR/xmlschema11-2/) for the
# datatypes a record uses; NaN and INF are doubles and floats, never decimals.
LEXICAL_FORMS: dict[URIRef, re.Pattern[str]] = {
    XSD.date: re.compile(_DATE + _TIMEZONE),
    XSD.dateTime: re.compile(_DATE + r"T\d{2}:\d{2}:\d{2}(\.\d+)?" + _TIMEZONE),
    XSD.gYear: re.compile(r"-?\d{4,}" + _TIMEZONE),
    XSD.decimal: re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)"),
    XSD.integer: re.compile(r"[+-]?\d+"),
    XSD.nonNegativeInteger: re.compile(r"\+?\d+|-0+"),
    XSD.positiveInteger: re.compile(r"\+?0*[1-9]\d*"),
    XSD.boolean: re.compile(r"true|false|1|0"),
    XSD.double: re.compile(r"[+-]?((\d+(\.\d*)?|\.\d+)([Ee][+-]?\d+)?|INF)|NaN"),
    XSD.float: re.compile(r"[+-]?((\d+(\.\d*)?|\.\d+)([Ee][+-]?\d+)?|INF)|NaN"),
}
_DATE_PART = re.compile(r"(-?\d{4,})-(\d{2})-(\d{2})")
# The largest finite xsd:float (IEEE 754 single precision); a larger one reads as INF.
_FLOAT_MAX = 3.4028234663852886e38
_FLOATING = {XSD.double: sys.float_info.max, XSD.float: _FLOAT_MAX}
# Longer lexical forms of numbers and dates are refused before any conversion is tried.
MAX_LEXICAL_LENGTH = 64


def _is_calendar_date(lexical: str) -> bool:
    match = _DATE_PART.match(lexical)
    if match is None:
        return False
    year, month, day = (int(part) for part in match.groups())
    if not 1 <= year <= 9999:
        # Years outside the proleptic Gregorian range Python knows are not records' years.
        return False
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def datatype_problem(literal: Literal) -> tuple[URIRef, str] | None:
    """The literal's datatype and why its lexical form is not one of the datatype's, or
    None (always None for a literal without a datatype)."""
    datatype = literal.datatype
    if datatype is None:
        return None
    pattern = LEXICAL_FORMS.get(datatype)
    if pattern is None:
        return None
    lexical = str(literal)
    if len(lexical) > MAX_LEXICAL_LENGTH:
        return datatype, f"{len(lexical)} characters, too long for a {curie(datatype)}"
    if pattern.fullmatch(lexical) is None:
        return datatype, f"not a lexical form of {curie(datatype)}"
    if datatype in (XSD.date, XSD.dateTime) and not _is_calendar_date(lexical):
        return datatype, "not a date of the calendar"
    if datatype in _FLOATING and not _is_finite(lexical, _FLOATING[datatype]):
        # INF, NaN and "1E400" (which reads as INF) are lexical forms, but no dose, weight or
        # count: compared, they give "found Infinity mg" or nothing at all.
        return datatype, f"not a finite number (infinite, NaN, or beyond the range of " \
                         f"{curie(datatype)})"
    return None


def _is_finite(lexical: str, largest: float) -> bool:
    """Whether a double's or float's lexical form (already matched) is a finite number
    within the datatype's range."""
    try:
        value = float(lexical)
    except ValueError:  # not reachable after the pattern; refused all the same
        return False
    return math.isfinite(value) and abs(value) <= largest


def datatype_ranges(ontology: Graph, shapes: Graph) -> dict[Node, Node]:
    """The properties whose values the shapes and queries compare (dates, numbers and
    booleans), with their datatype: from the ontology's ranges, and from the shapes'
    sh:datatype (xsd:date is outside OWL 2's datatype map, so dates are typed there only).
    A string property's odd value is the shapes' to judge."""
    found = {prop: rng for prop in ontology.subjects(RDF.type, OWL.DatatypeProperty)
             for rng in ontology.objects(prop, RDFS.range) if rng in LEXICAL_FORMS}
    for shape, datatype in shapes.subject_objects(SH.datatype):
        path = shapes.value(shape, SH.path)
        if datatype in LEXICAL_FORMS and isinstance(path, URIRef):
            found.setdefault(path, datatype)
    return found


def _shown(value: Node) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


_NUMBERS = frozenset({XSD.decimal, XSD.integer, XSD.nonNegativeInteger, XSD.positiveInteger,
                      XSD.double, XSD.float})


def _comparable(datatype: Node | None, expected: Node) -> bool:
    if expected in _NUMBERS:
        return datatype in _NUMBERS
    return datatype == expected


def compared_properties(shapes: Graph) -> set[Node]:
    """The properties whose values the shapes compare with another property's."""
    found: set[Node] = set()
    for comparison in (SH.lessThan, SH.lessThanOrEquals):
        for shape, other in shapes.subject_objects(comparison):
            found.add(other)
            found.update(shapes.objects(shape, SH.path))
    return found


def _comparison_problem(value: Literal, predicate: Node, ranges: dict[Node, Node],
                        compared: set[Node]) -> tuple[URIRef, str] | None:
    """A literal of another datatype on a property the shapes compare, or None."""
    expected = ranges.get(predicate)
    if predicate not in compared or expected is None or _comparable(value.datatype, expected):
        return None
    return (value.datatype or XSD.string,
            f"not comparable with the {curie(expected)} values it is compared with")


@lru_cache(maxsize=8)
def _rules(ontology: Graph, shapes: Graph) -> tuple[dict[Node, Node], set[Node]]:
    """:func:`datatype_ranges` and :func:`compared_properties`, read once per pair of
    graphs: validations are given the shared ontology and shapes, which never change (a
    millisecond a patient)."""
    return datatype_ranges(ontology, shapes), compared_properties(shapes)


def ill_typed_triples(graph: Graph, ontology: Graph, shapes: Graph
                      ) -> list[tuple[tuple[Node, Node, Node], str]]:
    """The triples whose value no engine may compare, each with the reason in words."""
    ranges, compared = _rules(ontology, shapes)
    found: list[tuple[tuple[Node, Node, Node], str]] = []
    for subject, predicate, value in graph:
        if isinstance(value, Literal):
            found_problem = (datatype_problem(value)
                             or _comparison_problem(value, predicate, ranges, compared))
            if found_problem is not None:
                datatype, problem = found_problem
                found.append(((subject, predicate, value),
                              f'"{_shown(value)}"^^{curie(datatype)}: {problem}'))
        elif predicate in ranges:
            kind = "a blank node" if not isinstance(value, URIRef) else f"the IRI <{value}>"
            found.append(((subject, predicate, value),
                          f"{kind} where a value of {curie(ranges[predicate])} belongs"))
    return found


def ill_typed_results(found: Iterable[tuple[tuple[Node, Node, Node], str]]
                      ) -> list[ShaclResult]:
    return [ShaclResult(
        focus=subject, path=predicate, value=value, source_shape=ILL_TYPED_VALUE,
        severity="Violation", constraint=ILL_TYPED_COMPONENT,
        message=f"Ill-typed value {reason}: correct the value; nothing is compared with it.")
        for (subject, predicate, value), reason in found]
