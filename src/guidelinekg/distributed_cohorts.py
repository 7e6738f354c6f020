"""The work of a cohort run spread over machines, without the cluster library
(guidelinekg.spark_cohorts drives it on Spark): input files found and cut into pieces,
NDJSON lines keyed by patient, Bundle files grouped, groups imported and evaluated a batch
at a time.

- An NDJSON file is read in byte chunks, each by its own task: a chunk's lines are those
  that start in it, and line numbers come from the newlines of the chunks before it (counted
  in a first pass, which also reads the Patient and Medication lines of the export's
  directory, guidelinekg.bulk_data).
- A line goes to its patient (guidelinekg.bulk_data.owner_of: a local id within its export,
  Patients of any export that share a current identifier one patient); a line that goes to
  no patient becomes a refusal line of its own (patient null, why, source, line).
- Bundle files that share an identity key (guidelinekg.bulk_data.bundle_identity_keys) are
  one group (union-find), imported together as one machine's import would.
- URI input (hdfs://, s3a://, file://...) is listed by the Spark session's Hadoop file
  systems and read through Spark (guidelinekg.spark_input), which hands these functions a
  file's bytes or a split's lines: the same work, the same lines.
- A batch of groups is imported group by group (guidelinekg.bulk_data.import_groups, with
  the labels of the whole input, so local IRIs are those of one machine's run) and evaluated
  as one partition (guidelinekg.cohorts.evaluate_partition). A group that cannot be read or
  imported is refused on its own, with a line saying why.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from guidelinekg.cohorts import CohortSettings, evaluate_partition, problem_line, unowned_line
from guidelinekg.loading import InputError
from guidelinekg.patients import folder_files

if TYPE_CHECKING:
    from rdflib import Graph

    from guidelinekg.bulk_data import BulkProblem, PatientDirectory

CHUNK_BYTES = 64 * 1024 * 1024  # an NDJSON file is read by several tasks above this size
# A line that may be a Patient or Medication resource (the directory); parsed to be sure.
DIRECTORY_LINE = re.compile(rb'"resourceType"\s*:\s*"(?:Patient|Medication)"')

# What evaluation gives: ("row", patient, guideline, refused, document) for each line, and
# ("stats", patients, refused patients, warnings, shape counts, lines given to no patient,
# of them the input that could not be read, lines) for each batch
Record = tuple[Any, ...]


# --------------------------------------------------------------------------------------
# The input
# --------------------------------------------------------------------------------------

# A Hadoop FileSystem URI (hdfs://, s3a://, gs://, abfs://, file:/...): a scheme of two
# characters or more (C:/ is a Windows drive), then a slash.
URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+:/")
SUFFIXES = (".ndjson", ".json")


def is_uri(given: Path | str) -> bool:
    """Whether an input or output is a URI for Hadoop's file systems, not a local path."""
    return isinstance(given, str) and bool(URI.match(given))


def path_or_uri(text: str) -> Path | str:
    """A command-line path: a URI as given (a Path would fold its ``//``), else a Path."""
    return text if URI.match(text) else Path(text)


def source_export(source: str) -> str:
    """The export an NDJSON file belongs to, its folder (guidelinekg.bulk_data.export_label);
    of a URI, the URI up to its last slash."""
    from guidelinekg.bulk_data import export_label

    return source.rsplit("/", 1)[0] if is_uri(source) else export_label(Path(source))


@dataclass(frozen=True)
class DistributedInput:
    """The files of the input: each as given (its name in sources and local IRIs) and where
    the executors read it (an absolute path: on a cluster, a folder they all see; or, when
    ``hadoop``, the URI of Hadoop's listing, read through Spark, with its size)."""

    kind: str  # "ndjson" or "bundles"
    sources: list[str] = field(default_factory=list)
    locations: list[str] = field(default_factory=list)
    # export -> the FHIR server its manifest.json names (its resources' URLs are there)
    servers: dict[str, str] = field(default_factory=dict)
    hadoop: bool = False
    sizes: list[int] = field(default_factory=list)  # of Hadoop input only, from its listing
    # what the input says of itself that goes to no patient (error files a manifest lists
    # that are not in the input)
    problems: list[BulkProblem] = field(default_factory=list)


@dataclass(frozen=True)
class ListedFile:
    """A file of a URI input: its source (the URI given, joined with the file's path below
    it for a folder), its location (the URI Hadoop lists) and its size in bytes."""

    source: str
    location: str
    size: int


class HadoopListing(Protocol):
    """The files of URIs, as the Spark session's Hadoop file systems list and read them
    (guidelinekg.spark_input.HadoopFiles)."""

    def files(self, uri: str, suffixes: Sequence[str]) -> list[ListedFile]:
        """The file, or the folder's files (recursively, hidden ones skipped), with one of
        the suffixes; an InputError naming the URI when it cannot be listed."""
        ...

    def read(self, listed: ListedFile) -> bytes:
        """A small file's bytes (a manifest)."""
        ...


def distributed_inputs(paths: Iterable[Path | str], listing: HadoopListing | None = None
                       ) -> DistributedInput:
    """The NDJSON files (``*.ndjson``) or the Bundle files (``*.json``) of the paths, folders
    read recursively (hidden ones skipped); one kind per run. Beside NDJSON files, a .json
    file must be an export's manifest. URIs (given as str) are listed by ``listing``; local
    paths and URIs are not mixed in one run."""
    given = list(paths)
    uris = [str(path) for path in given if is_uri(path)]
    if not uris:
        return _local_inputs(given)
    local = next((path for path in given if not is_uri(path)), None)
    if local is not None:
        raise InputError(local, "give local paths or URIs (hdfs://, s3a://, file://...), not "
                                "both in one run: a local folder can be given as file:///...")
    if listing is None:
        raise InputError(uris[0], "a URI is read through Spark's Hadoop file systems: "
                                  "give --spark")
    unique: dict[str, ListedFile] = {}  # a file given twice is read once, named as first
    for uri in uris:
        for listed in listing.files(uri, SUFFIXES):
            unique.setdefault(listed.location, listed)
    found = list(unique.values())
    if not found:
        raise InputError("FHIR input", "no .ndjson or .json file in the input")
    ndjson = [listed for listed in found if _suffix(listed.source) == ".ndjson"]
    kind, files = "bundles", found
    servers: dict[str, str] = {}
    problems: list[BulkProblem] = []
    if ndjson:
        kind, files = "ndjson", ndjson
        servers, problems = _manifests(
            [(listed.source, _reader(listing, listed)) for listed in found
             if listed not in ndjson], [listed.source for listed in ndjson])
    return DistributedInput(kind, [listed.source for listed in files],
                            [listed.location for listed in files], servers, hadoop=True,
                            sizes=[listed.size for listed in files], problems=problems)


def _suffix(source: str) -> str:
    return PurePosixPath(source.rsplit("/", 1)[-1]).suffix.lower()


def _reader(listing: HadoopListing, listed: ListedFile) -> Callable[[], object]:
    from guidelinekg.fhir_import.datatypes import read_json_bytes

    return lambda: read_json_bytes(listing.read(listed), listed.source)


def _local_inputs(paths: Iterable[Path | str]) -> DistributedInput:
    found: list[Path] = []
    for given in map(Path, paths):
        if given.is_dir():
            found += folder_files(given, SUFFIXES)
        elif given.is_file():
            if given.suffix.lower() not in SUFFIXES:
                raise InputError(given, "a distributed run reads FHIR: NDJSON exports "
                                        "(.ndjson) or Bundle files (.json)")
            found.append(given)
        else:
            raise InputError(given, "no such file or folder")
    unique = list(dict.fromkeys(found))
    ndjson = [path for path in unique if path.suffix.lower() == ".ndjson"]
    if not unique:
        raise InputError("FHIR input", "no .ndjson or .json file in the input")
    kind, files = "bundles", unique
    servers: dict[str, str] = {}
    problems: list[BulkProblem] = []
    if ndjson:
        kind, files = "ndjson", ndjson
        servers, problems = _manifests(
            [(str(path), _file_reader(path)) for path in unique if path not in ndjson],
            [str(path) for path in ndjson])
    return DistributedInput(kind, [str(path) for path in files],
                            [str(path.resolve()) for path in files], servers,
                            problems=problems)


def _file_reader(path: Path) -> Callable[[], object]:
    from guidelinekg.fhir_import.datatypes import read_json_file

    return lambda: read_json_file(path)


def _manifests(manifests: Sequence[tuple[str, Callable[[], object]]], ndjson: Sequence[str]
               ) -> tuple[dict[str, str], list[BulkProblem]]:
    """Each export's server, from the manifests (source, its JSON read when called) among
    the input's .json files, and the error files they list that are not among the NDJSON
    files given (guidelinekg.bulk_data.unread_export_errors)."""
    from guidelinekg.bulk_data import export_servers, is_manifest, unread_export_errors

    read = []
    for source, reader in manifests:
        document = reader()
        if not is_manifest(document):
            raise InputError(source, "give NDJSON exports or Bundle files, not both in one "
                                     "run (beside NDJSON files, a .json file is an export's "
                                     "manifest)")
        read.append((source_export(source), source, document))
    return export_servers(read), unread_export_errors(
        read, [(source_export(source), source) for source in ndjson])


# --------------------------------------------------------------------------------------
# Evaluating groups of documents, a batch at a time
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """What one import reads: the documents of a patient (or of files that belong
    together), read when needed; or an input problem, already a refusal line, ``unreadable``
    when the input could not be read (not when a resource names no patient)."""

    source: str
    documents: Callable[[], list[tuple[str, object]]] | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    resource: str | None = None
    problem: str | None = None
    unreadable: bool = True


def problem_groups(problems: Iterable[BulkProblem]) -> list[Group]:
    """Problems of the input as a whole (guidelinekg.bulk_data.BulkProblem), each a group
    that is only its refusal line."""
    return [Group(problem.source, problem=problem_line(problem), unreadable=False)
            for problem in problems]


def _row(line: str) -> Record:
    document = json.loads(line)
    return ("row", document.get("patient"), document.get("guideline"),
            bool(document.get("refused")), line)


def import_batch(batch: Sequence[Group]) -> tuple[Graph | None, list[str], int]:
    """The batch's graph (each group imported on its own, the graphs merged), the refusal
    lines of its input problems and of the groups that could not be imported, and how many
    of those are input that could not be read."""
    from guidelinekg.bulk_data import import_groups

    graph: Graph | None = None
    refused: list[str] = []
    unreadable = 0
    for group in batch:
        if group.problem is not None or group.documents is None:
            refused.append(group.problem or unowned_line("nothing to read", group.source))
            unreadable += group.unreadable
            continue
        try:
            imported = import_groups([group.documents()], group.labels)
        except InputError as error:
            refused.append(unowned_line(f"the input cannot be imported: {error.detail}",
                                        error.path, error.line, group.resource))
            unreadable += 1
            continue
        if graph is None:
            graph = imported.graph
        else:
            graph += imported.graph
    return graph, refused, unreadable


def evaluate_batch(batch: Sequence[Group], settings: CohortSettings) -> Iterator[Record]:
    """The batch's lines (refusal lines of input problems first), then its counts."""
    graph, refused, unreadable = import_batch(batch)
    yield from map(_row, refused)
    if graph is None or not len(graph):
        yield ("stats", 0, [], 0, [], len(refused), unreadable, len(refused))
        return
    outcome = evaluate_partition(graph, settings, disposable=True)
    yield from map(_row, outcome.lines)
    yield ("stats", outcome.patients, list(outcome.refused), outcome.warnings,
           list(outcome.shapes.items()), len(refused), unreadable,
           len(refused) + len(outcome.lines))


def evaluate_groups(groups: Iterable[Group], settings: CohortSettings, size: int
                    ) -> Iterator[Record]:
    """Every group of a partition, ``size`` groups a batch."""
    batch: list[Group] = []
    for group in groups:
        batch.append(group)
        if len(batch) >= size:
            yield from evaluate_batch(batch, settings)
            batch = []
    if batch:
        yield from evaluate_batch(batch, settings)


# --------------------------------------------------------------------------------------
# Bundle files
# --------------------------------------------------------------------------------------

FileKeys = tuple[int, list[str], str | None]


def file_keys(index: int, location: str) -> FileKeys:
    """A Bundle file's identity keys, or why the file cannot be read."""
    from guidelinekg.fhir_import.datatypes import read_json_file

    return keys_of(index, lambda: read_json_file(location))


def keys_of(index: int, read: Callable[[], object]) -> FileKeys:
    """The identity keys of file ``index`` (its JSON read when called), or why it cannot be
    read."""
    from guidelinekg.bulk_data import bundle_identity_keys

    try:
        document = read()
    except InputError as error:
        return index, [], error.detail
    return index, sorted(bundle_identity_keys(document)), None


def key_links(files: Iterable[int]) -> list[tuple[int, int]]:
    """The files (by index) that share one key, as links from the first to each other."""
    first, *others = sorted(set(files))
    return [(first, other) for other in others]


def bundle_group(files: Sequence[tuple[str, str, str]]) -> Group:
    """Bundle files (source, location, label) that belong together, as one import."""
    from guidelinekg.fhir_import.datatypes import read_json_file

    return files_group(files, lambda location, _: read_json_file(location))


def files_group(files: Sequence[tuple[str, Any, str]], read: Callable[[Any, str], object]
                ) -> Group:
    """Files (source, where it is read from, label) that belong together, as one import;
    ``read(where, source)`` reads one's JSON."""

    def documents() -> list[tuple[str, object]]:
        read_files: list[tuple[str, object]] = []
        for source, where, _ in files:
            try:
                read_files.append((source, read(where, source)))
            except InputError as error:
                raise InputError(source, error.detail, error.line, error.column) from None
        return read_files

    return Group(", ".join(source for source, _, _ in files), documents,
                 {source: label for source, _, label in files})


# --------------------------------------------------------------------------------------
# NDJSON exports
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    """Bytes [start, end) of an NDJSON file: its task reads the lines that start there. (Of
    a file Hadoop reads, URI input: its split number ``start``, and ``end`` = start + 1.)"""

    index: int
    start: int
    end: int


# (line number, offset, the line's bytes or None when it is too long)
Line = tuple[int, int, bytes | None]


def file_chunks(locations: Sequence[str], size: int | None = None) -> list[Chunk]:
    """Each file's chunks of ``size`` bytes (default: CHUNK_BYTES); none for an empty file."""
    size = size or CHUNK_BYTES
    chunks = []
    for index, location in enumerate(locations):
        length = os.path.getsize(location)
        chunks += [Chunk(index, start, min(start + size, length))
                   for start in range(0, length, size)]
    return chunks


def _skip_line(stream: BinaryIO) -> None:
    while True:
        part = stream.readline(1 << 20)
        if not part or part.endswith(b"\n"):
            return


def chunk_lines(location: str, chunk: Chunk, newlines_before: int) -> Iterator[Line]:
    """(line number, offset, the line or None when it is too long) for each line that starts
    in the chunk; ``newlines_before``: the newlines of the file before the chunk."""
    with open(location, "rb") as stream:
        yield from stream_lines(stream, chunk, newlines_before)


def stream_lines(stream: BinaryIO, chunk: Chunk, newlines_before: int) -> Iterator[Line]:
    """:func:`chunk_lines` of an open file (or of its bytes, read by Spark)."""
    from guidelinekg.bulk_data import MAX_LINE_BYTES

    number = newlines_before + 1
    if chunk.start > 0:
        stream.seek(chunk.start - 1)
        if stream.read(1) != b"\n":  # the line began in the chunk before
            _skip_line(stream)
            number += 1
    offset = stream.tell()
    while offset < chunk.end:
        raw = stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            _skip_line(stream)
        yield number, offset, raw if len(raw) <= MAX_LINE_BYTES else None
        number += 1
        offset = stream.tell()


def count_newlines(location: str, chunk: Chunk) -> int:
    count, left = 0, chunk.end - chunk.start
    with open(location, "rb") as stream:
        stream.seek(chunk.start)
        while left > 0:
            block = stream.read(min(left, 1 << 22))
            if not block:
                break
            count += block.count(b"\n")
            left -= len(block)
    return count


Scan = tuple[Chunk, int, int, list[tuple[int, bytes]]]


def scan_chunk(chunk: Chunk, location: str) -> Scan:
    """The first pass over a chunk: (the chunk, its newlines, its Patient resources, the
    Patient and Medication lines (offset, bytes) for the directory)."""
    patients, found = directory_lines(chunk_lines(location, chunk, 0), location)
    return chunk, count_newlines(location, chunk), patients, found


def directory_lines(lines: Iterable[Line], source: str) -> tuple[int, list[tuple[int, bytes]]]:
    from guidelinekg.bulk_data import Unreadable, read_raw_line

    found: list[tuple[int, bytes]] = []
    patients = 0
    for _, offset, raw in lines:
        if raw is None or not DIRECTORY_LINE.search(raw):
            continue
        _, read = read_raw_line(raw, source)
        resource = read.resource if isinstance(read, Unreadable) else read
        if resource is not None and resource.get("resourceType") in ("Patient", "Medication"):
            patients += resource["resourceType"] == "Patient"
            found.append((offset, raw))
    return patients, found


def build_directory(scans: Iterable[Scan], sources: Sequence[str]) -> PatientDirectory:
    """The exports' directory, its resources added in input order, each of its file's export
    (as read_directory)."""
    from guidelinekg.bulk_data import PatientDirectory, read_raw_line

    directory = PatientDirectory()
    ordered = sorted((chunk.index, offset, raw) for chunk, _, _, found in scans
                     for offset, raw in found)
    for index, _, raw in ordered:
        _, read = read_raw_line(raw, sources[index])
        directory.add_line(read, source_export(sources[index]))
    return directory


def newlines_before(scans: Iterable[Scan]) -> dict[Chunk, int]:
    """Each chunk's newlines of its file before it (line numbers start after them)."""
    before: dict[Chunk, int] = {}
    seen: dict[int, int] = {}
    for chunk, newlines, _, _ in sorted(scans, key=lambda scan: (scan[0].index,
                                                                 scan[0].start)):
        before[chunk] = seen.get(chunk.index, 0)
        seen[chunk.index] = before[chunk] + newlines
    return before


KeyedLine = tuple[tuple[str, str], tuple[int, int, str, bool]]


def key_lines(chunk: Chunk, before: int, source: str, location: str,
              directory: PatientDirectory, clinical: frozenset[str]) -> Iterator[KeyedLine]:
    """The second pass: each line keyed by its patient (guidelinekg.bulk_data.PatientKey)
    with (file, line number, text, False); a line that goes to no patient keyed on its own
    (an empty export), its text a refusal line, True when the line is not a resource."""
    return keyed_lines(chunk.index, chunk_lines(location, chunk, before), source, directory,
                       clinical)


def keyed_lines(index: int, lines: Iterable[Line], source: str, directory: PatientDirectory,
                clinical: frozenset[str]) -> Iterator[KeyedLine]:
    """The lines of file ``index`` keyed (see :func:`key_lines`)."""
    from guidelinekg.bulk_data import (
        MAX_LINE_BYTES,
        Unreadable,
        owner_of,
        read_raw_line,
        unreadable_owners,
    )

    export = source_export(source)
    for number, _, raw in lines:
        alone = ("", f"{index}:{number}")
        if raw is None:
            yield alone, (index, number, unowned_line(
                f"the line is longer than {MAX_LINE_BYTES} bytes: not an NDJSON resource",
                source, number), True)
            continue
        text, resource = read_raw_line(raw, source)  # without a byte order mark
        if not text:
            continue
        if isinstance(resource, Unreadable):  # said, and refuses whom it names (flagged)
            yield from ((owner, (index, number, resource.because, True))
                        for owner in unreadable_owners(resource, directory, export))
        key, problem = owner_of(source, number, resource, directory, clinical, export=export)
        if key is not None:
            yield key, (index, number, text, False)
        elif problem is not None:
            yield alone, (index, number, unowned_line(
                problem.because, problem.source, problem.line, problem.resource),
                not isinstance(resource, dict))


class HasValue(Protocol):
    """A broadcast value (read on the executor that uses it)."""

    @property
    def value(self) -> PatientDirectory: ...


def patient_group(key: tuple[str, str], lines: Iterable[tuple[int, int, str, bool]],
                  sources: Sequence[str], labels: Mapping[str, str],
                  directory: HasValue, servers: Mapping[str, str]) -> Group:
    """One patient's lines as one import (a Bundle of each export its lines come from, its
    fullUrls those of the export's server when its manifest names one), or a line that goes
    to no patient."""
    label, patient = key
    ordered = sorted(lines)
    if not label:
        index, _, line, unreadable = ordered[0]
        return Group(sources[index], problem=line, unreadable=unreadable)
    exports = [source_export(sources[index]) for index, _, _, _ in ordered]

    def documents() -> list[tuple[str, object]]:
        from guidelinekg.bulk_data import patient_documents, read_line, unreadable_refusal

        resources = []
        for (index, number, text, unreadable), export in zip(ordered, exports, strict=True):
            if unreadable:  # a line that names the patient and cannot be read: why
                raise unreadable_refusal(sources[index], number, text, key)
            resource = read_line(text, sources[index])
            if not isinstance(resource, dict):  # read once already, when it was keyed
                raise InputError(sources[index], "not a FHIR resource", number)
            resources.append((export, resource))
        return list(patient_documents(resources, directory.value, servers))

    return Group(", ".join(dict.fromkeys(exports)), documents, labels, resource=patient)
