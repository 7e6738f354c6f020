"""A cohort read as a stream: files and folders of RDF, FHIR Bundles and FHIR Bulk Data
NDJSON, of any total size, cut into buckets of whole patients without holding the cohort in
memory.

Every input becomes N-Triples in a spool file on disk (FHIR imported on the way, in worker
processes), each source's blank nodes under a name of its own. Two passes over the spool
then find, and route to one bucket, everything that belongs to one patient:

1. each subject, each patient (``a gkg:Patient``) and each link from a subject to another
   node (kept as pairs of hashes, a few bytes each);
2. links to a node that the input describes (it is the subject of a triple) join the two
   nodes' groups (union-find); a vocabulary term is described by no patient record, so it
   joins nothing;
3. each triple goes to the bucket of its group: groups with patients in the order their
   first patient came, a bounded number to a bucket; the groups without a patient to a
   bucket of their own, which the shapes refuse as a whole run would.

A bucket is then a small graph in which every patient's record is whole (what a whole-input
run would see of it), so evaluating buckets one by one gives the whole run's results.
Memory is a few hundred bytes a node for the routing, and one bucket per worker.

N-Triples and N-Quads files are streamed, with no size limit; other RDF files and FHIR
JSON files are read whole, each within the usual file limit (guidelinekg.loading).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from guidelinekg import console
from guidelinekg import oxigraph as ox
from guidelinekg.bulk_data import (
    BulkProblem,
    PatientDirectory,
    Unreadable,
    bundle_identity_keys,
    export_label,
    export_server,
    import_groups,
    is_manifest,
    is_ndjson,
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
from guidelinekg.grouping import UnionFind, file_groups
from guidelinekg.loading import RDF_FORMATS, UTF8_BOM, InputError, read_bytes_checked
from guidelinekg.namespaces import GKG
from guidelinekg.oxigraph import to_oxigraph
from guidelinekg.patients import given_files, read_patient_bytes, read_patient_file
from guidelinekg.stdio import CONTENT_NAMES, STDIN, is_stdio, said_of_stdin, spool_stdin

STREAMED_FORMATS = {".nt": ox.RdfFormat.N_TRIPLES, ".nq": ox.RdfFormat.N_QUADS}
RDF_TYPE_TEXT = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"
PATIENT_TEXT = f"<{GKG.Patient}>"
# Open bucket files at once, at most: with more patients, buckets grow beyond the partition
# size and are cut into partitions when they are evaluated.
MAX_BUCKETS = 256
# An NDJSON bucket of lines, grouped by patient in memory when it is imported.
NDJSON_BUCKET_BYTES = 32 * 1024 * 1024


@dataclass
class CohortFiles:
    """The input, by how it is read."""

    rdf: list[Path] = field(default_factory=list)
    fhir: list[Path] = field(default_factory=list)
    ndjson: list[Path] = field(default_factory=list)
    # export folder -> the FHIR server its manifest names
    servers: dict[str, str] = field(default_factory=dict)
    # Bundle files that share an identity key, by index in ``fhir`` (found as the files
    # are classified, so each is parsed once here)
    fhir_links: list[tuple[int, int]] = field(default_factory=list)
    # the copy of standard input (``-``), named "standard input" in messages and labels
    stdin: Path | None = None
    _first_with_key: dict[int, int] = field(default_factory=dict, repr=False)

    def label(self, path: Path) -> Path:
        """A file as messages and local IRIs name it: standard input's copy as "standard
        input"."""
        return STDIN if path == self.stdin else path

    def description(self) -> str:
        kinds = [(len(self.rdf), "RDF file"), (len(self.fhir), "FHIR JSON file"),
                 (len(self.ndjson), "NDJSON file")]
        read = ", ".join(console.count(number, kind) for number, kind in kinds if number)
        if self.stdin is not None:
            read += (f" (standard input spooled to a temporary file, "
                     f"{self.stdin.stat().st_size:,} bytes, read as "
                     f"{CONTENT_NAMES.get(self.stdin.suffix, self.stdin.suffix)})")
        return read

    def add_fhir(self, path: Path, document: object) -> None:
        index = len(self.fhir)
        self.fhir.append(path)
        for key in bundle_identity_keys(document):
            first = self._first_with_key.setdefault(hash(key), index)
            if first != index:
                self.fhir_links.append((first, index))


def cohort_files(paths: Iterable[Path | str], folder: Path | None = None) -> CohortFiles:
    """Files as given, and the RDF, JSON and NDJSON files of folders
    (guidelinekg.patients.folder_files); a .json file is FHIR when it is an object with
    resourceType. ``-`` is standard input, spooled to a file of ``folder`` named for its
    content (guidelinekg.stdio.spool_stdin)."""
    suffixes = (*RDF_FORMATS, ".ndjson")
    found = CohortFiles()
    for given in paths:
        path = Path(given)
        if is_stdio(given) and folder is not None:
            if found.stdin is not None:  # it can be read only once
                raise InputError(STDIN, "given twice (as -)")
            found.stdin = spool_stdin(folder)
            files = [found.stdin]
        else:
            files = given_files(path, suffixes, "RDF, JSON or NDJSON")
        for file in files:
            _classify(file, found)
    return found


def _classify(path: Path, found: CohortFiles) -> None:
    suffix = path.suffix.lower()
    if is_ndjson(path):
        found.ndjson.append(path)
    elif suffix in (".json", ".jsonld") and (document := _json_object(path)) is not None:
        if is_manifest(document):
            server = export_server(document)
            if server:
                found.servers[export_label(path)] = server
        else:
            found.add_fhir(path, document)
    elif suffix in RDF_FORMATS:
        found.rdf.append(path)
    else:
        raise InputError(path, "unknown file type; expected .ttl, .nt, .nq, .rdf/.owl/.xml, "
                               ".jsonld, .json (RDF or FHIR JSON) or .ndjson (FHIR Bulk Data)")


def _json_object(path: Path) -> dict | None:
    """A FHIR resource or a Bulk Data manifest; None for anything else (JSON-LD is RDF)."""
    try:
        document = json.loads(read_bytes_checked(path))
    except (ValueError, RecursionError):
        return None  # the RDF reader says what is wrong with it
    if isinstance(document, dict) and ("resourceType" in document or is_manifest(document)):
        return document
    return None


# --------------------------------------------------------------------------------------
# The spool: every source as N-Triples, blank nodes named per source
# --------------------------------------------------------------------------------------


def _scoped(term, scope: str):  # a subject or object (untyped: pyoxigraph's are unions)
    return ox.BlankNode(f"{scope}x{term.value}") if isinstance(term, ox.BlankNode) else term


def scoped_triples(quads: Iterable[ox.Quad | ox.Triple], scope: str) -> Iterator[ox.Triple]:
    """Triples with each blank node renamed into ``scope``: two sources' ``_:dose`` are two
    doses (named graphs of N-Quads are read as the default graph, as everywhere)."""
    for quad in quads:
        subject, obj = quad.subject, quad.object
        if isinstance(subject, ox.BlankNode) or isinstance(obj, ox.BlankNode):
            yield ox.Triple(_scoped(subject, scope), quad.predicate, _scoped(obj, scope))
        else:
            yield ox.Triple(subject, quad.predicate, obj)


class Spool:
    """The N-Triples spool, in the cohort's temporary folder (removed with it)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "spool.nt"
        self.stream: BinaryIO = self.path.open("wb")
        self.sources = 0

    def scope(self) -> str:
        self.sources += 1
        return f"s{self.sources}"

    def add(self, quads: Iterable[ox.Quad | ox.Triple]) -> None:
        ox.serialize(scoped_triples(quads, self.scope()), self.stream, ox.RdfFormat.N_TRIPLES)

    def add_ntriples(self, data: bytes, what: str) -> None:
        try:
            self.add(ox.parse(data, format=ox.RdfFormat.N_TRIPLES))
        except SyntaxError as error:  # written by the project: a fault of the project
            raise InputError(what, f"could not read an imported record back: {error}") from None

    def add_file(self, path: Path, label: Path | None = None) -> None:
        """An RDF file; ``label``: what it stands for (standard input, which it is a copy
        of: it is read as ``-`` is, and named so)."""
        name = label or path
        rdf_format = STREAMED_FORMATS.get(path.suffix.lower())
        if rdf_format is None:
            # Read whole, with every check of the usual reader (XML and JSON-LD limits,
            # blank node depth, file size).
            graph, _ = (read_patient_bytes(name, read_bytes_checked(path)) if label
                        else read_patient_file(path))
            # In the order of their subjects: a graph's own order changes from run to run
            # (string hashing), and the spool's order decides the partitions and the order
            # of the output lines.
            self.add(ox.Triple(to_oxigraph(s), to_oxigraph(p), to_oxigraph(o))  # type: ignore[arg-type]
                     for s, p, o in sorted(graph, key=lambda triple: str(triple[0])))
            return
        try:
            with path.open("rb") as stream:
                # A leading byte-order mark is read past, as the whole-input reader does.
                if stream.read(len(UTF8_BOM)) != UTF8_BOM:
                    stream.seek(0)
                self.add(ox.parse(stream, format=rdf_format, base_iri=name.resolve().as_uri()))
        except (SyntaxError, ValueError, OSError) as error:
            line = getattr(error, "lineno", None)
            raise InputError(name, f"not valid {rdf_format.name}: "
                                   f"{getattr(error, 'msg', error)}", line) from None

    def finish(self) -> None:
        self.stream.close()


# --------------------------------------------------------------------------------------
# Routing: which triples belong together
# --------------------------------------------------------------------------------------


def _split(line: str) -> tuple[str, str, str]:
    subject, rest = line.split(" ", 1)
    predicate, obj = rest.split(" ", 1)
    return subject, predicate, obj[:-3] if obj.endswith(" .\n") else obj.rstrip(" .\n")


@dataclass
class Routing:
    """Where each group goes: bucket number per group root; the rest to the orphans."""

    buckets: dict[int, int]
    count: int
    patients: int
    groups: UnionFind[int]

    @property
    def orphan_bucket(self) -> int:
        return self.count


def plan_routing(spool: Path, partition_size: int) -> Routing:
    """The first pass: subjects, patients and links, then the groups and their buckets."""
    subjects: set[int] = set()
    patients: dict[int, None] = {}
    links_from, links_to = array("q"), array("q")
    with spool.open(encoding="utf-8") as lines:
        for line in lines:
            subject, predicate, obj = _split(line)
            key = hash(subject)
            subjects.add(key)
            if obj[0] in "<_":
                if predicate == RDF_TYPE_TEXT and obj == PATIENT_TEXT:
                    patients[key] = None
                links_from.append(key)
                links_to.append(hash(obj))
    groups: UnionFind[int] = UnionFind()
    for source, target in zip(links_from, links_to, strict=True):
        if target in subjects:
            groups.union(source, target)
    del links_from, links_to, subjects
    ordinals: dict[int, int] = {}
    for patient in patients:
        ordinals.setdefault(groups.find(patient), len(ordinals))
    per_bucket = max(partition_size, -(-len(ordinals) // MAX_BUCKETS))
    buckets = {root: ordinal // per_bucket for root, ordinal in ordinals.items()}
    count = -(-len(ordinals) // per_bucket) if ordinals else 0
    return Routing(buckets, count, len(patients), groups)


def route(spool: Path, routing: Routing, folder: Path) -> list[Path]:
    """The second pass: each triple to its group's bucket file; the bucket files, in order
    (the orphans' last, if there are any)."""
    paths = [folder / f"bucket-{number:04d}.nt" for number in range(routing.count + 1)]
    streams: dict[int, BinaryIO] = {}
    find, buckets, orphans = routing.groups.find, routing.buckets, routing.orphan_bucket
    try:
        with spool.open("rb") as lines:
            for line in lines:
                subject = line[:line.index(b" ")].decode("utf-8")
                number = buckets.get(find(hash(subject)), orphans)
                stream = streams.get(number)
                if stream is None:
                    stream = streams[number] = paths[number].open("ab")
                stream.write(line)
    finally:
        for stream in streams.values():
            stream.close()
    return [path for path in paths if path.exists()]


# --------------------------------------------------------------------------------------
# FHIR on the way in
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# The whole reading
# --------------------------------------------------------------------------------------


@dataclass
class CohortInput:
    """A cohort cut into bucket files of whole patients, in a temporary folder."""

    folder: tempfile.TemporaryDirectory
    buckets: list[Path]
    patients: int
    problems: list[BulkProblem]
    imported: int = 0
    ignored: int = 0
    read: str = ""  # what was read, in words

    def close(self) -> None:
        self.folder.cleanup()


Mapper = Callable[[Callable[[ImportJob], Imported], Iterable[ImportJob]], Iterable[Imported]]


def read_cohort(paths: Sequence[Path | str], partition_size: int,
                mapper: Mapper = map) -> CohortInput:
    """Read the input into buckets; ``mapper`` runs the FHIR import jobs (``map``, or a
    worker pool's ``imap``). ``-`` reads standard input, copied into the cohort's temporary
    folder first (read twice, as a file is)."""
    folder = tempfile.TemporaryDirectory(prefix="guidelinekg-cohort-")
    try:
        root = Path(folder.name)
        files = cohort_files(paths, root)
        with said_of_stdin(files.stdin):
            return _read_files(files, CohortInput(folder, [], 0, [], read=files.description()),
                               partition_size, mapper)
    except BaseException:
        folder.cleanup()
        raise


def _read_files(files: CohortFiles, result: CohortInput, partition_size: int,
                mapper: Mapper) -> CohortInput:
    from guidelinekg.fhir_import.importer import HANDLERS

    root = Path(result.folder.name)
    spool = Spool(root)
    for path in files.rdf:
        spool.add_file(path, STDIN if path == files.stdin else None)
    jobs: list[Iterable[ImportJob]] = []
    if files.fhir:
        jobs.append(fhir_jobs(files.fhir, files.fhir_links, max(1, partition_size // 4),
                              files.label))
    if files.ndjson:
        jobs.append(ndjson_jobs(files.ndjson, root, sorted(HANDLERS), result.problems,
                                files.servers, files.stdin))
    for job_list in jobs:
        for imported in mapper(run_import_job, job_list):
            if imported.ntriples:
                spool.add_ntriples(imported.ntriples, "FHIR import")
            result.imported += imported.imported
            result.ignored += imported.ignored
            result.problems.extend(imported.refused)
    spool.finish()
    routing = plan_routing(spool.path, max(1, partition_size))
    result.buckets = route(spool.path, routing, root)
    result.patients = routing.patients
    os.remove(spool.path)
    if files.stdin is not None:
        os.remove(files.stdin)
    return result
