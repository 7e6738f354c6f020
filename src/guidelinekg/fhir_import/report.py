"""The result of an import: the patient graph, and the report of what became of each resource.

Nothing is dropped silently: every resource has a line saying what it became, or why it (or
one of its elements) was ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rdflib import Graph, Literal, URIRef

from guidelinekg.loading import bind_project_prefixes
from guidelinekg.namespaces import GKG

IMPORTED, IGNORED, NOTE = "imported", "ignored", "note"
# The report's words for a value written as the record gives it, impossible as it is.
AS_GIVEN = "written as given, for the patient shapes to judge (they refuse it)"


@dataclass(frozen=True)
class ReportEntry:
    """One line of the import report."""

    resource: str  # gkg:sourceResource form (fullUrl or resourceType/id), or the file
    resource_type: str
    outcome: str  # imported, ignored or note
    detail: str  # what it became, or why it was ignored
    element: str = ""  # the FHIR element the line is about, when not the whole resource
    item: str = ""  # the IRI of the record item made, if any
    source: str = ""  # the file

    def text(self) -> str:
        where = f"{self.resource} ({self.resource_type})"
        if self.element:
            where += f" {self.element}"
        return f"{where}: {self.outcome}: {self.detail}"


@dataclass
class FhirImport:
    """The patient graph made from FHIR input, and the report of what became of each resource."""

    graph: Graph
    report: list[ReportEntry]
    patients: list[URIRef]
    sources: list[str] = field(default_factory=list)
    # record item -> (the file it came from, its patient)
    item_origins: dict[URIRef, tuple[str, URIRef]] = field(default_factory=dict)
    # patient -> the files that hold its Patient resource or name it
    patient_sources: dict[URIRef, list[str]] = field(default_factory=dict)

    @property
    def patient(self) -> URIRef:
        """The patient of an input that holds one (use ``patients`` otherwise)."""
        if len(self.patients) != 1:
            raise ValueError(f"the input holds {len(self.patients)} patients: "
                             f"{', '.join(map(str, self.patients))}")
        return self.patients[0]

    def entries(self, resource: str | None = None, outcome: str | None = None) -> list[ReportEntry]:
        return [e for e in self.report
                if (resource is None or e.resource == resource)
                and (outcome is None or e.outcome == outcome)]

    def items_from(self, resource: str) -> list[URIRef]:
        """The record items made from one FHIR resource (by its gkg:sourceResource)."""
        return sorted(s for s in self.graph.subjects(GKG.sourceResource, Literal(resource))
                      if isinstance(s, URIRef))

    def turtle(self) -> str:
        return bind_project_prefixes(self.graph).serialize(format="turtle")

    def item_counts(self, source: str | None = None) -> dict[URIRef, int]:
        """Record items per patient, of one file or of the whole input."""
        counts: dict[URIRef, int] = {}
        for item_source, patient in self.item_origins.values():
            if source is None or item_source == source:
                counts[patient] = counts.get(patient, 0) + 1
        return counts

    def summary(self, source: str | None = None) -> str:
        """One line: each patient (of one file, or of the input) with its record items, and
        how many resources or elements were ignored."""
        return self.summaries()[source]

    def summaries(self) -> dict[str | None, str]:
        """The summary of the whole input (key None) and of each file, in one pass (a
        cohort may have thousands of files)."""
        counts: dict[str | None, dict[URIRef, int]] = {None: self.item_counts()}
        for item_source, patient in self.item_origins.values():
            per_file = counts.setdefault(item_source, {})
            per_file[patient] = per_file.get(patient, 0) + 1
        ignored: dict[str | None, int] = {}
        for entry in self.report:
            if entry.outcome == IGNORED:
                for key in (None, entry.source):
                    ignored[key] = ignored.get(key, 0) + 1
        named: dict[str | None, list[URIRef]] = {None: list(self.patients)}
        for patient in self.patients:
            found = set(self.patient_sources.get(patient, []))
            found |= {s for s in counts if s is not None and patient in counts[s]}
            for file_source in found:
                named.setdefault(file_source, []).append(patient)
        summaries: dict[str | None, str] = {}
        for source in [None, *self.sources]:
            parts = [f"patient {p}: {counts.get(source, {}).get(p, 0)} record items"
                     for p in named.get(source, [])]
            summaries[source] = "; ".join(parts or ["no patient"]) + (
                f"; {ignored.get(source, 0)} resources or elements ignored")
        return summaries

    def report_text(self) -> str:
        """The summary, then one line per resource or element; by file when there are
        several."""
        summaries = self.summaries()
        lines = [summaries[None]]
        several = len(set(self.sources)) > 1
        current = None
        for entry in self.report:
            if several and entry.source != current:
                current = entry.source
                lines.append(f"  {current}: {summaries[current]}")
            lines.append(("    " if several else "  ") + entry.text())
        return "\n".join(lines) + "\n"
