"""The import of one resource (its context: what was read, its report lines) and the record
items it writes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF, XSD
from rdflib.term import Node

from guidelinekg.fhir_identity import Entry
from guidelinekg.fhir_import.codes import local_name
from guidelinekg.fhir_import.datatypes import (
    FHIR_TIME,
    FULL_DATE,
    PARTIAL_DATE,
    is_calendar_date,
)
from guidelinekg.fhir_import.report import AS_GIVEN, IGNORED, IMPORTED, NOTE, ReportEntry
from guidelinekg.loading import InputError
from guidelinekg.namespaces import curie

if TYPE_CHECKING:
    from guidelinekg.fhir_import.base import ImporterBase


def not_a_date(value: Any, day: str | None) -> str:
    """Why a FHIR date or dateTime is not one; ``day``: its date part, if it has one."""
    if not isinstance(value, str):
        return "not a FHIR date (not text)"
    if day is None:
        return "not a FHIR date"
    if not is_calendar_date(day):
        return "not a calendar date"
    return ("not a FHIR dateTime (its time must be hh:mm:ss, hours 00-23, with a zone: Z or "
            "+/-hh:mm up to 14:00)")


class Conflict(Exception):
    """Codings of one concept that map to different terms."""


class Item:
    """A record item (or dose specification) being written, with its report description."""

    def __init__(self, graph: Graph, iri: URIRef, classes: Sequence[URIRef]) -> None:
        self.graph = graph
        self.iri = iri
        self.classes = list(classes)
        self.parts: list[str] = []
        for cls in classes:
            graph.add((iri, RDF.type, cls))

    def set(self, prop: URIRef, value: Node, text: str | None = None,
            report: bool = True) -> None:
        """Write a property (a core one from GKG, any other from the import maps); the
        report names it by its local name."""
        self.graph.add((self.iri, prop, value))
        if report:
            shown = text if text is not None else (
                curie(value) if isinstance(value, URIRef) else str(value))
            self.parts.append(f"{local_name(prop)} {shown}")

    def describe(self) -> str:
        head = " + ".join(curie(cls) for cls in self.classes)
        return ", ".join([head, *self.parts])


class Context:
    """The import of one resource: what was read, and its report lines."""

    def __init__(self, importer: ImporterBase, entry: Entry) -> None:
        self.importer = importer
        self.entry = entry
        self.resource = entry.resource
        self.read: set[str] = {"resourceType", "id", "subject", "patient"}
        self.read_extensions: set[str] = set()
        # Extensions of elements below the root that were read, as (element, url): a
        # primitive's data-absent-reason (``_birthDate``).
        self.read_element_extensions: set[tuple[str, str]] = set()
        self.patient: URIRef | None = None  # the patient its record items are about
        self.items: list[Item] = []
        # Notes and element-level lines wait for the line saying what the resource became.
        self.pending: list[ReportEntry] = []

    def _add(self, outcome: str, detail: str, element: str = "", item: str = "") -> None:
        line = ReportEntry(self.entry.reference, self.entry.type, outcome, detail, element, item,
                           self.entry.source)
        if outcome == NOTE or element:
            self.pending.append(line)
            return
        self.importer.add_report(self.entry, line)
        self.flush()

    def flush(self) -> None:
        for line in self.pending:
            self.importer.add_report(self.entry, line)
        self.pending.clear()

    def imported(self, item: Item) -> Item:
        self.items.append(item)
        self._add(IMPORTED, item.describe(), item=str(item.iri))
        return item

    def imported_into(self, detail: str, target: URIRef) -> None:
        self._add(IMPORTED, detail, item=str(target))
        self.items.append(Item(self.importer.graph, target, []))

    def ignore(self, why: str, element: str = "") -> None:
        self._add(IGNORED, why, element)

    def note(self, text: str, element: str = "") -> None:
        self._add(NOTE, text, element)

    def error(self, message: str, element: str = "") -> InputError:
        where = self.entry.reference + (f" {element}" if element else "")
        if self.entry.position:
            where += f" ({self.entry.position})"
        return InputError(self.entry.source, f"{where}: {message}")

    def date(self, item: Item, prop: URIRef, value: Any, element: str) -> bool:
        """Write the xsd:date part of a FHIR date or dateTime. Any other value is written as
        given (a partial date as xsd:gYear or xsd:gYearMonth, anything else as text): the
        patient shapes refuse it, where dropping it would leave the item undated unseen."""
        self.read.add(element.split(".", 1)[0].split("[", 1)[0])
        text = value.strip() if isinstance(value, str) else str(value)
        match = FULL_DATE.match(text) if isinstance(value, str) else None
        time = match.group(2) if match else None
        if match and is_calendar_date(match.group(1)) and (
                time is None or FHIR_TIME.match(time)):
            item.set(prop, Literal(match.group(1), datatype=XSD.date))
            return True
        if isinstance(value, str) and PARTIAL_DATE.match(text):
            datatype = XSD.gYear if len(text) == 4 else XSD.gYearMonth
            item.set(prop, Literal(text, datatype=datatype))
            reason = "only a year or a month is given"
        else:
            item.set(prop, Literal(text))
            reason = not_a_date(value, match.group(1) if match else None)
        self.note(f"date {value!r}: {reason}; {AS_GIVEN}", element)
        return False

