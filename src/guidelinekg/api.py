"""The Python API: read patients, validate them, derive what the guideline says.

The same safe path as the command line, for a notebook or a service::

    from datetime import date
from decimal import Decimal
    import guidelinekg

    patients = guidelinekg.read_patients(["examples/patients/demo-cohort"])
    report = guidelinekg.validate(patients)
    print(report.text())                      # as `guidelinekg validate` prints it
    results = guidelinekg.recommend(patients, as_of=date(2026, 12, 1))
    for result in results:                    # one PatientResult per patient and guideline
        print(result.population.status, [c.key for c in result.contraindicated])
    results.to_json()                         # the JSON contract: always a list
    results.to_rdf()                          # rdflib Graph with PROV-O provenance

:func:`recommend` validates first and raises :class:`InvalidRecordError` for a record that
violates the shapes (``allow_invalid=True`` derives anyway, for research, and marks every
result). Patients may be files and folders (RDF or FHIR JSON, as the command line reads
them), an rdflib ``Graph`` of patient records, or FHIR JSON documents (Bundles) as Python
objects.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeAlias

from rdflib import Graph

from guidelinekg.derivation import InvalidRecordError, derive
from guidelinekg.loading import shared_guideline_graph
from guidelinekg.patients import PatientInput, load_patient_input
from guidelinekg.results import Derivation, PatientResult
from guidelinekg.validation import (
    PatientValidation,
    annotated_report_graph,
    json_report,
    text_report,
    validate_patients,
)

# What the API reads patients from (see read_patients).
PatientSource: TypeAlias = ("str | Path | Graph | Mapping[str, Any] "
                            "| Sequence[str | Path | Mapping[str, Any]] | Patients")


@dataclass
class Patients:
    """Patient records ready to validate: one graph, and where it came from."""

    graph: Graph
    source: PatientInput | None = None  # files read (FHIR import summaries included)


@dataclass
class ValidationReport:
    """The records against the patient shapes. ``conforms``: no violation (warnings and
    notes may remain: they name the facts a statement would need)."""

    validation: PatientValidation
    patients: Patients

    @property
    def conforms(self) -> bool:
        return not self.validation.has_violations

    @property
    def results(self) -> list:
        """Every result, each with its patient (``validation.PatientResult``)."""
        return list(self.validation.results)

    def text(self) -> str:
        return text_report(self.validation, self.patients.source, data=self.patients.graph)

    def to_json(self) -> str:
        return json_report(self.validation)

    def to_rdf(self) -> Graph:
        """The W3C SHACL validation report, each result naming its patient."""
        return annotated_report_graph(self.validation, self.patients.graph)


@dataclass
class Recommendations:
    """What the guideline says for each patient: iterate for :class:`PatientResult`."""

    derivation: Derivation

    def __iter__(self) -> Iterator[PatientResult]:
        return iter(self.derivation.patients)

    def __len__(self) -> int:
        return len(self.derivation.patients)

    def __getitem__(self, index: int) -> PatientResult:
        return self.derivation.patients[index]

    def to_json(self) -> list[dict[str, Any]]:
        """The JSON contract as Python objects (``json.dumps`` them as they are)."""
        return [result.to_json() for result in self.derivation.patients]

    def to_rdf(self) -> Graph:
        from guidelinekg.recommend_output import to_rdf

        return to_rdf(self.derivation)

    def text(self, verbose: bool = False) -> str:
        """The report a clinician reads (``verbose``: record items by IRI)."""
        from guidelinekg.recommend_output import to_text

        return to_text(self.derivation, verbose)


def load_guideline() -> Graph:
    """The guideline graph (core ontology, domains and every guideline found), as the
    commands read it. Shared: copy it before changing it."""
    return shared_guideline_graph()


def read_patients(source: PatientSource) -> Patients:
    """Patient records from files and folders (paths), an rdflib ``Graph``, or FHIR JSON
    documents given as Python objects (each one patient's Bundle)."""
    if isinstance(source, Patients):
        return source
    if isinstance(source, Graph):
        return Patients(source)
    items = [source] if isinstance(source, str | Path | Mapping) else list(source)
    documents = [item for item in items if isinstance(item, Mapping)]
    paths = [Path(item) for item in items if isinstance(item, str | Path)]
    if documents and paths:
        raise ValueError("give paths or FHIR documents, not both at once")
    if documents:
        return Patients(_imported(documents))
    files = load_patient_input(paths, quiet=True)
    return Patients(files.graph, files)


def _imported(documents: list[Mapping[str, Any]]) -> Graph:
    """FHIR documents imported together, as `import-fhir` imports files (two documents are
    one patient only when they say so). Numbers are read as the JSON text writes them
    (a Python float by its shortest form), exactly as from a file."""
    from guidelinekg.bulk_data import import_groups
    from guidelinekg.fhir_import.datatypes import parse_json_text

    labels = {f"document-{number}": f"document-{number}" for number in range(len(documents))}
    group = [(label, parse_json_text(json.dumps(document, default=_json_number), label))
             for label, document in zip(labels, documents, strict=True)]
    return import_groups([group], labels).graph


def _json_number(value: object) -> float:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def validate(patients: PatientSource) -> ValidationReport:
    """Validate patient records against the patient shapes."""
    read = read_patients(patients)
    return ValidationReport(validate_patients(read.graph), read)


def recommend(patients: PatientSource, as_of: date | None = None, *,
              guidelines: Sequence[str] | None = None,
              allow_invalid: bool = False) -> Recommendations:
    """Validate, then derive every statement's status and every flag for each patient and
    guideline (``guidelines``: their ids; every guideline by default) at ``as_of`` (today
    by default). A record that violates the shapes raises :class:`InvalidRecordError`."""
    read = read_patients(patients)
    return Recommendations(derive(read.graph, as_of or date.today(), guidelines=guidelines,
                                  allow_invalid=allow_invalid))


__all__ = [
    "InvalidRecordError",
    "Patients",
    "Recommendations",
    "ValidationReport",
    "load_guideline",
    "read_patients",
    "recommend",
    "validate",
]
