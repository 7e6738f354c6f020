"""The importer: every resource of the input read by the reader of its family, in an order
that lets one resource inform another, and the public functions that run it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from guidelinekg.fhir_identity import Entry, as_dict, as_list
from guidelinekg.fhir_import.conditions import ConditionImport
from guidelinekg.fhir_import.context import Context
from guidelinekg.fhir_import.datatypes import has_code, json_elements, read_json_file
from guidelinekg.fhir_import.medications import MedicationImport
from guidelinekg.fhir_import.observations import ObservationImport
from guidelinekg.fhir_import.patient import PatientImport
from guidelinekg.fhir_import.procedures import ProcedureImport
from guidelinekg.fhir_import.report import FhirImport, ReportEntry
from guidelinekg.loading import InputError, bind_project_prefixes


class Importer(ConditionImport, ObservationImport, MedicationImport, ProcedureImport,
               PatientImport):
    """Turns the documents of a record (one or several files, one or several patients)
    into the patient graph."""

    def run(self) -> FhirImport:
        self.collect()
        pending = [e for e in self.entries if e.order not in self.skipped]
        self.assign_patients(pending, frozenset(HANDLERS))
        self.survey(pending)
        # Conditions first: stage observations attach to the primary cancer, and conditions
        # at a site and procedures read what their related condition is.
        for entry in sorted(pending, key=lambda e: (PROCESS_ORDER.get(e.type, 9), e.order)):
            self.import_entry(entry)
        self.finish_stages()
        self.report_medications()
        sources = list(dict.fromkeys(source for source, _ in self.documents))
        report: list[ReportEntry] = []
        for source in sources:  # grouped by file, each in input order
            report += [line for line in self.file_reports if line.source == source]
            for entry in self.entries:
                if entry.source == source:
                    report.extend(self.reports.get(entry.order, []))
        patients = list(self.attribution.patients)
        return FhirImport(bind_project_prefixes(self.graph), report, patients, sources,
                          self.item_origins,
                          {p: self.attribution.sources(p) for p in patients})

    def survey(self, entries: Sequence[Entry]) -> None:
        """What other resources need to know before each is imported: the kind of each
        Condition (is a metastasis's related primary the guideline's cancer?) and which orders
        have completed administrations (an active plan with doses given is ongoing)."""
        for entry in entries:
            res = entry.resource
            if entry.type == "Condition" and has_code(res.get("code")):
                self.condition_kinds[entry.order] = self.condition_kind(res)[0]
            elif entry.type == "MedicationAdministration" and res.get("status") == "completed":
                request = self.resolve(res.get("request"), entry)
                if isinstance(request, Entry) and request.type == "MedicationRequest":
                    self.administered_requests.add(request.order)

    def import_entry(self, entry: Entry) -> None:
        ctx = Context(self, entry)
        # A modifier extension, wherever it is in the resource (a Dosage, a stage, a primitive's
        # _status), may change what the resource means: FHIR forbids reading a resource on
        # while one is not understood, and the importer understands none.
        modifiers = modifier_extensions(entry.resource)
        if entry.type == "Patient":
            if modifiers:
                raise ctx.error("the Patient carries a modifierExtension the importer does not "
                                f"understand ({modifiers}): it may change what the record "
                                "means, so the record cannot be read")
            self.import_patient(ctx)
            return
        handler = HANDLERS.get(entry.type)
        if handler is None:
            if entry.type != "Medication":
                ctx.ignore(f"resource type {entry.type} is not imported (no patient fact uses it)")
            return
        if modifiers:
            # Left out, the resource would be read as absent (a medicine ordered but not read:
            # a care gap to start it, or a pitfall of its absence): the record is refused, as
            # a Bundle that is not the whole record is.
            raise ctx.error(f"the {entry.type} carries a modifierExtension the importer does "
                            f"not understand ({modifiers}): it may change what the resource "
                            "means, and left out the resource would be read as absent, so the "
                            "record cannot be read")
        if entry.order in self.attribution.ignored:
            ctx.ignore(self.attribution.ignored[entry.order])
            return
        ctx.patient = self.attribution.of_entry[entry.order]
        if entry.order in self.attribution.notes:
            ctx.note(self.attribution.notes[entry.order])
        handler(self, ctx)
        self.note_system_oids(ctx, entry.resource)
        if ctx.items:
            self.report_unread(ctx)
        ctx.flush()


def modifier_extensions(resource: dict) -> str:
    """Every modifierExtension of a resource, at any depth, as ``element: url`` (the URL
    alone at the resource's root), in document order; empty when there is none."""
    found: list[str] = []
    for where, value in json_elements(resource):
        within_one = "modifierExtension" in (part.split("[", 1)[0] for part in where.split("."))
        if isinstance(value, dict) and not within_one:
            for extension in as_list(value.get("modifierExtension")):
                url = str(as_dict(extension).get("url", "?"))
                found.append(f"{where}: {url}" if where else url)
    return ", ".join(found)


# The handler registry: the reader of each resource type that becomes record items.
HANDLERS: dict[str, Callable[[Importer, Context], None]] = {
    "Condition": Importer.import_condition,
    "Observation": Importer.import_observation,
    "MedicationRequest": Importer.import_medication,
    "MedicationStatement": Importer.import_medication,
    "MedicationAdministration": Importer.import_medication,
    "Procedure": Importer.import_procedure,
    "ServiceRequest": Importer.import_procedure,
}
PROCESS_ORDER = {"Patient": 0, "Condition": 1, "MedicationAdministration": 2}


def import_fhir_json(data: object, source: str = "<FHIR JSON>") -> FhirImport:
    """Import one parsed FHIR JSON document (a Bundle or a single resource)."""
    return Importer([(source, data)]).run()


def import_fhir_files(paths: Sequence[Path | str]) -> FhirImport:
    """Import files together: identifiers and absolute references join the files that say
    they are one patient (guidelinekg.fhir_identity); each file's other patients stay its
    own."""
    if not paths:
        raise InputError("import-fhir", "no FHIR file given")
    return Importer([(str(path), read_json_file(path)) for path in paths]).run()


def import_fhir_file(path: Path | str) -> FhirImport:
    """Import one FHIR JSON file (a Bundle or a single resource)."""
    return import_fhir_files([path])
