"""``import-fhir`` of FHIR Bulk Data exports: NDJSON read as a cohort run reads it, into one
patient graph and one import report.

The lines are grouped by patient by the cohort run's own functions
(:func:`guidelinekg.cohort_import.ndjson_jobs`, :func:`~guidelinekg.cohort_import.ndjson_groups`:
bucketed on disk, a patient's Bundle of each export, the export's Medications added, its
manifest's server naming the resources), each patient imported on its own, as the cohort
run imports it: so the report says what became of each resource that the cohort run counts
as imported or ignored. Bundle files given beside the export are imported together, as
``import-fhir`` imports Bundles. A line given to no patient (no subject, not a resource) is
a line of its own, with why.

Unlike a cohort run, the export is held whole: the patient graph of every patient is one
graph in memory (``import-fhir`` writes one graph).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rdflib import Graph, URIRef

from guidelinekg.bulk_data import (
    BulkProblem,
    Manifest,
    export_label,
    export_servers,
    import_groups,
    is_manifest,
    is_ndjson,
    unread_export_errors,
)
from guidelinekg.fhir_import.report import FhirImport, ReportEntry
from guidelinekg.loading import InputError
from guidelinekg.patients import given_files
from guidelinekg.stdio import STDIN, is_stdio, said_of_stdin

# What import-fhir reads of a folder (every other file is named in a warning).
FHIR_SUFFIXES = (".json", ".ndjson")


@dataclass
class ExportFiles:
    """The FHIR input of import-fhir: Bundle files (parsed), NDJSON files, the exports'
    manifests."""

    bundles: list[tuple[Path, object]] = field(default_factory=list)
    ndjson: list[Path] = field(default_factory=list)
    manifests: list[Manifest] = field(default_factory=list)
    stdin: Path | None = None  # the copy of standard input, if it was given

    @property
    def servers(self) -> dict[str, str]:
        """Export folder -> the FHIR server its manifest names."""
        return export_servers(self.manifests)

    def label(self, path: Path) -> Path:
        return STDIN if path == self.stdin else path

    def files(self) -> list[Path]:
        """Every file read, as messages name them."""
        return [self.label(path) for path in
                [*(path for path, _ in self.bundles), *self.ndjson]]


@dataclass
class ExportImport:
    """The import of FHIR input with exports: the merged import, and the export lines given
    to no patient."""

    fhir: FhirImport
    problems: list[BulkProblem]
    files: list[Path]

    def problem_lines(self) -> list[str]:
        """Each line given to no patient, with why."""
        return [problem.source + (f" line {problem.line}" if problem.line is not None else "")
                + (f" ({problem.resource})" if problem.resource else "")
                + f": not imported: {problem.because}" for problem in self.problems]

    def report_text(self) -> str:
        """The import report, then the lines given to no patient, then which files (exports)
        made each patient when there are several."""
        text = self.fhir.report_text()
        if self.problems:
            text += (f"{len(self.problems)} input line{'s' if len(self.problems) != 1 else ''}"
                     " given to no patient:\n")
            text += "".join(f"  {line}\n" for line in self.problem_lines())
        if len(set(self.fhir.sources)) > 1:
            text += "".join(f"{line}\n" for line in provenance_lines(self.fhir))
        return text


def contains_ndjson(paths: Iterable[Path | str]) -> bool:
    """Whether the input holds a FHIR Bulk Data NDJSON file: given, or in a folder (hidden
    files and folders are not read)."""
    for given in paths:
        path = Path(given)
        if is_stdio(given):
            continue
        if path.is_dir():
            if any(candidate.is_file() and is_ndjson(candidate) and not any(
                    part.startswith(".") for part in candidate.relative_to(path).parts)
                   for candidate in path.rglob("*")):
                return True
        elif is_ndjson(path):
            return True
    return False


def export_files(paths: Sequence[Path | str], stdin: Path | None = None) -> ExportFiles:
    """The files of the input: each as given, a folder's .json and .ndjson files
    (guidelinekg.patients.folder_files: others named in a warning); ``-`` is ``stdin``, the
    copy of standard input, named for its content. A .json file is a Bundle (or resource)
    for the importer, or an export's manifest."""
    found = ExportFiles(stdin=stdin)
    listed: list[Path] = []
    for given in paths:
        path = Path(given)
        if is_stdio(given):
            if stdin is None or stdin in listed:
                raise InputError(STDIN, "given twice (as -)")
            listed.append(stdin)
        else:
            listed += given_files(path, FHIR_SUFFIXES, "JSON or NDJSON")
    for path in listed:
        _classify(path, found)
    return found


def _classify(path: Path, found: ExportFiles) -> None:
    from guidelinekg.fhir_import.datatypes import read_json_file

    if is_ndjson(path):
        found.ndjson.append(path)
        return
    with said_of_stdin(found.stdin):
        document = read_json_file(path)  # as the importer reads it (its errors, too)
    if is_manifest(document):
        found.manifests.append((export_label(path), str(found.label(path)), document))
        return
    found.bundles.append((path, document))


def import_exports(paths: Sequence[Path | str], stdin: Path | None = None) -> ExportImport:
    """Import FHIR input with Bulk Data exports into one graph (module docstring):
    ``stdin``, the copy of standard input (``-``)."""
    files = export_files(paths, stdin)
    problems = unread_export_errors(files.manifests,
                                    [(export_label(path), path.name) for path in files.ndjson])
    parts: list[FhirImport] = []
    with said_of_stdin(stdin):
        if files.bundles:
            parts.append(_import_bundles(files))
        if files.ndjson:
            with tempfile.TemporaryDirectory(prefix="guidelinekg-import-") as folder:
                parts += _import_ndjson(files, Path(folder), problems)
    order = [str(files.label(path)) for path, _ in files.bundles]
    order += [str(STDIN) if path == stdin else export_label(path) for path in files.ndjson]
    merged = merge_imports(parts, order)
    return ExportImport(merged, problems, files.files())


def _import_bundles(files: ExportFiles) -> FhirImport:
    """The Bundle files together, as import-fhir imports Bundles."""
    from guidelinekg.fhir_import.importer import Importer

    return Importer([(str(files.label(path)), document)
                     for path, document in files.bundles]).run()


def _import_ndjson(files: ExportFiles, folder: Path, problems: list[BulkProblem]
                   ) -> Iterator[FhirImport]:
    """Each patient of the exports imported on its own, grouped as the cohort run groups
    them (its functions); the lines given to no patient added to ``problems``."""
    from guidelinekg.cohort_import import ndjson_groups, ndjson_jobs
    from guidelinekg.fhir_import.importer import HANDLERS

    jobs = ndjson_jobs(files.ndjson, folder, sorted(HANDLERS), problems, files.servers,
                       files.stdin)
    for job in jobs:
        labels = dict(job.labels)
        for _patient, group in ndjson_groups(Path(job.ndjson_bucket), job):
            # A patient the importer refuses stops the import, as a refused Bundle does.
            if isinstance(group, InputError):
                raise group
            yield import_groups([group], labels)
        os.remove(job.ndjson_bucket)


def merge_imports(parts: Sequence[FhirImport], order: Sequence[str]) -> FhirImport:
    """Imports of separate groups as one: graphs, reports (by source, in ``order``, each
    source's lines in the order they came), patients and provenance."""
    if not parts:
        raise InputError("import-fhir", "no FHIR resource in the input")
    if len(parts) == 1:
        return parts[0]
    merged = FhirImport(Graph(), [], [])
    patients: dict[URIRef, None] = {}
    for part in parts:
        for triple in part.graph:
            merged.graph.add(triple)
        merged.report += part.report
        patients.update(dict.fromkeys(part.patients))
        merged.sources += [source for source in part.sources if source not in merged.sources]
        merged.item_origins.update(part.item_origins)
        for patient, sources in part.patient_sources.items():
            known = merged.patient_sources.setdefault(patient, [])
            known += [source for source in sources if source not in known]
    merged.patients = list(patients)
    rank = {source: index for index, source in enumerate(dict.fromkeys(order))}
    merged.sources.sort(key=lambda source: rank.get(source, len(rank)))
    merged.report.sort(key=lambda entry: _rank(entry, rank))
    return merged


def _rank(entry: ReportEntry, rank: dict[str, int]) -> int:
    return rank.get(entry.source, len(rank))


def provenance_lines(imported: FhirImport) -> list[str]:
    """Per patient, the files (an export: its folder) it came from."""
    made: dict[URIRef, list[str]] = {patient: list(sources) for patient, sources
                                     in imported.patient_sources.items()}
    for source, patient in imported.item_origins.values():
        known = made.setdefault(patient, [])
        if source not in known:
            known.append(source)
    return [f"patient <{patient}>: from {', '.join(sources)}"
            for patient, sources in made.items() if sources]
