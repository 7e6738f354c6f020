"""FHIR imported on the way into a cohort (guidelinekg.cohort_input): the import jobs that
worker processes run, Bundle files in groups linked by identity, and FHIR Bulk Data NDJSON
lines bucketed on disk by patient, so that a patient's lines, of whichever exports, are
imported together without the cohort held in memory."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from guidelinekg.bulk_data import (
    BulkProblem,
    PatientDirectory,
    Unreadable,
    export_label,
    import_groups,
    ndjson_lines,
    owner_of,
    patient_documents,
    read_directory,
    read_line,
    unreadable_owners,
    unreadable_refusal,
)
from guidelinekg.fhir_identity import file_labels
from guidelinekg.fhir_import.datatypes import read_json_file
from guidelinekg.grouping import file_groups
from guidelinekg.loading import InputError
from guidelinekg.stdio import STDIN

# Open bucket files at once, at most: with more patients, buckets grow beyond the partition
# size and are cut into partitions when they are evaluated.
MAX_BUCKETS = 256
# An NDJSON bucket of lines, grouped by patient in memory when it is imported.
NDJSON_BUCKET_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class ImportJob:
    """Documents to import in a worker: groups of Bundle files, each group imported
    together; or a bucket of NDJSON lines (patient, export, resource), one Bundle a patient
    and export, a patient's imported together. ``labels``: the sources' labels in the whole
    input."""

    groups: tuple[tuple[str, ...], ...] = ()
    ndjson_bucket: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    directory: PatientDirectory | None = None  # the exports' Medications
    servers: tuple[tuple[str, str], ...] = ()  # export -> its server (manifest)


@dataclass(frozen=True)
class Imported:
    ntriples: bytes
    imported: int
    ignored: int
    # Groups the importer refused (a record it cannot read without guessing): each a
    # refusal line of its own, while the other patients are derived.
    refused: tuple[BulkProblem, ...] = ()


def run_import_job(job: ImportJob) -> Imported:
    """Import a job's documents, each group on its own; the graph comes back as N-Triples.
    A group the importer refuses is said (:attr:`Imported.refused`), not imported: one
    unreadable record does not stop the cohort."""
    if job.ndjson_bucket:
        groups = ndjson_groups(Path(job.ndjson_bucket), job)
    else:
        groups = [("", [(path, read_json_file(path)) for path in group])
                  for group in job.groups]
    labels = dict(job.labels)
    lines: list[bytes] = []
    imported = ignored = 0
    refused = []
    for patient, group in groups:
        try:
            if isinstance(group, InputError):
                raise group
            part = import_groups([group], labels)
        except InputError as error:  # worded as the distributed run words it
            refused.append(BulkProblem(error.path, error.line, patient,
                                       f"the input cannot be imported: {error.detail}"))
            continue
        skipped = sum(1 for line in part.report if line.outcome == "ignored")
        imported += len(part.report) - skipped
        ignored += skipped
        lines += part.graph.serialize(format="nt", encoding="utf-8").splitlines(keepends=True)
    # Sorted, for the same reason as a graph read whole (Spool.add_file).
    return Imported(b"".join(sorted(lines)), imported, ignored, tuple(refused))


def ndjson_groups(bucket: Path, job: ImportJob
                  ) -> list[tuple[str, list[tuple[str, object]] | InputError]]:
    """The bucket's patients, each (``Patient/<id>`` of its key, what one import reads: its
    Bundle of each export, or why it is refused: a line that names it cannot be read, or an
    order of it references a Medication that cannot be)."""
    directory = job.directory or PatientDirectory()
    servers = dict(job.servers)
    by_patient: dict[str, list[tuple[str, dict]]] = {}
    refusals: dict[str, InputError] = {}
    with bucket.open(encoding="utf-8", newline="\n") as stream:
        for row in stream:
            owner, export_text, text = row.removesuffix("\n").split("\t", 2)
            export = json.loads(export_text)
            if isinstance(export, dict):  # an unreadable line that names the patient
                refusals.setdefault(owner, unreadable_refusal(
                    **export, patient=tuple(json.loads(owner))))
                continue
            resource = read_line(text, export)
            if not isinstance(resource, dict):  # read once already, when it was bucketed
                raise InputError(export, "could not read a bucketed NDJSON line back")
            by_patient.setdefault(owner, []).append((export, resource))
    groups: list[tuple[str, list[tuple[str, object]] | InputError]] = []
    for owner in sorted(by_patient.keys() | refusals.keys()):
        patient = json.loads(owner)[1]
        try:
            groups.append((patient, refusals.get(owner) or list(
                patient_documents(by_patient.get(owner, []), directory, servers))))
        except InputError as error:
            groups.append((patient, error))
    return groups


def _ndjson_row(key: tuple[str, str], export: str, text: str) -> str:
    """A bucket row: the patient and the export as JSON (no tab, no line break in them),
    then the line."""
    return f"{json.dumps(key)}\t{json.dumps(export)}\t{text}\n"


def _unreadable_row(key: tuple[str, str], source: str, number: int, because: str) -> str:
    """A bucket row that refuses the patient: in place of the export, why (an object)."""
    cause = {"source": source, "number": number, "because": because}
    return f"{json.dumps(key)}\t{json.dumps(cause)}\t\n"


def _row_owner(row: str) -> str:
    """The patient of a bucket row (all of whose rows go to one bucket)."""
    return row.split("\t", 1)[0]


def source_labels(sources: Iterable[Path], label: Callable[[Path], Path] = lambda p: p
                  ) -> dict[str, str]:
    """Each source's label in local IRIs (guidelinekg.fhir_identity.file_labels), a source
    known by another name (standard input's copy) labelled by that name."""
    named = {str(source): str(label(source)) for source in sources}
    labels = file_labels(named.values())
    return {source: labels[name] for source, name in named.items()}


def fhir_jobs(files: Sequence[Path], links: Sequence[tuple[int, int]], per_job: int,
              label: Callable[[Path], Path] = lambda p: p) -> Iterator[ImportJob]:
    """Bundle files in groups linked by a shared identity key (each group imported together,
    as a whole import would), about ``per_job`` files a job; ``label``: what a file is
    named (standard input's copy: "standard input")."""
    labels = tuple(source_labels(files, label).items())
    batch: list[tuple[str, ...]] = []
    for indexes in file_groups(len(files), links):
        batch.append(tuple(str(files[i]) for i in indexes))
        if len(batch) >= per_job:
            yield ImportJob(groups=tuple(batch), labels=labels)
            batch = []
    if batch:
        yield ImportJob(groups=tuple(batch), labels=labels)


def _bucket_by_patient(lines: Iterable[str], size: int, folder: Path, name: str,
                       level: int = 0) -> list[Path]:
    """Bucket rows (:func:`_ndjson_row`) into bucket files of about NDJSON_BUCKET_BYTES, a
    patient's rows in one bucket; at most MAX_BUCKETS files open at once: a bucket still too
    large is cut again the same way (another hash each level)."""
    count = min(MAX_BUCKETS, max(1, -(-size // NDJSON_BUCKET_BYTES)))
    paths = [folder / f"{name}-{number:04d}.tsv" for number in range(count)]
    streams = [path.open("w", encoding="utf-8", newline="\n") for path in paths]
    # A keyed hash a level: CRC32 is linear, so a prefix changes no pair's collisions.
    salt = str(level).encode("ascii")
    try:
        for line in lines:
            owner = _row_owner(line).encode("utf-8")
            digest = hashlib.blake2b(owner, digest_size=8, salt=salt).digest()
            streams[int.from_bytes(digest, "big") % count].write(line)
    finally:
        for stream in streams:
            stream.close()
    buckets: list[Path] = []
    for number, path in enumerate(paths):
        bytes_held = path.stat().st_size
        if count == MAX_BUCKETS and bytes_held > NDJSON_BUCKET_BYTES and \
                _several_patients(path):
            with path.open(encoding="utf-8", newline="\n") as held:
                buckets += _bucket_by_patient(held, bytes_held, folder,
                                              f"{name}-{number:04d}", level + 1)
            path.unlink()
        else:
            buckets.append(path)
    return buckets


def _several_patients(path: Path) -> bool:
    """Whether a bucket holds the lines of more than one patient (one that does not cannot
    be cut)."""
    first = None
    with path.open(encoding="utf-8", newline="\n") as lines:
        for line in lines:
            owner = _row_owner(line)
            if first is None:
                first = owner
            elif owner != first:
                return True
    return False


def ndjson_jobs(files: Sequence[Path], folder: Path, clinical_types: Sequence[str],
                problems: list[BulkProblem], servers: dict[str, str],
                stdin: Path | None = None) -> list[ImportJob]:
    """The exports' lines bucketed on disk by patient (a patient's lines in one bucket, of
    whichever exports), one job a bucket; Patient identifiers and Medications are read
    first. Lines that belong to no patient are added to ``problems``. ``stdin``: the copy of
    standard input, an export of its own named "standard input"."""
    clinical = frozenset(clinical_types)

    def export_of(path: Path) -> str:
        return str(STDIN) if path == stdin else export_label(path)

    directory = read_directory(files, export_of)

    labels = tuple(file_labels(export_of(path) for path in files).items())
    total = sum(path.stat().st_size for path in files)

    def owned_lines() -> Iterator[str]:
        for path in files:
            export = export_of(path)
            for number, resource, text in ndjson_lines(path):
                # A problem names the file, where its line number points.
                source = export if path == stdin else str(path)
                if isinstance(resource, Unreadable):  # said, and refuses whom it names
                    for owner in unreadable_owners(resource, directory, export):
                        yield _unreadable_row(owner, source, number, resource.because)
                key, problem = owner_of(source, number, resource, directory, clinical,
                                        export=export)
                if problem is not None:
                    problems.append(problem)
                if key is not None:
                    yield _ndjson_row(key, export, text)

    paths = _bucket_by_patient(owned_lines(), total, folder, "ndjson")
    medications = directory.medicines_only()
    return [ImportJob(ndjson_bucket=str(path), labels=labels, directory=medications,
                      servers=tuple(servers.items())) for path in paths]
