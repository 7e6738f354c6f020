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
    Manifest,
    bundle_identity_keys,
    export_label,
    export_servers,
    is_manifest,
    is_ndjson,
    unread_export_errors,
)
from guidelinekg.cohort_import import (
    MAX_BUCKETS,
    Imported,
    ImportJob,
    fhir_jobs,
    ndjson_jobs,
    run_import_job,
)
from guidelinekg.grouping import UnionFind
from guidelinekg.loading import RDF_FORMATS, UTF8_BOM, InputError, read_bytes_checked
from guidelinekg.namespaces import GKG
from guidelinekg.oxigraph import to_oxigraph
from guidelinekg.patients import given_files, read_patient_bytes, read_patient_file
from guidelinekg.stdio import CONTENT_NAMES, STDIN, is_stdio, said_of_stdin, spool_stdin

STREAMED_FORMATS = {".nt": ox.RdfFormat.N_TRIPLES, ".nq": ox.RdfFormat.N_QUADS}
RDF_TYPE_TEXT = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"
PATIENT_TEXT = f"<{GKG.Patient}>"


@dataclass
class CohortFiles:
    """The input, by how it is read."""

    rdf: list[Path] = field(default_factory=list)
    fhir: list[Path] = field(default_factory=list)
    ndjson: list[Path] = field(default_factory=list)
    manifests: list[Manifest] = field(default_factory=list)
    # Bundle files that share an identity key, by index in ``fhir`` (found as the files
    # are classified, so each is parsed once here)
    fhir_links: list[tuple[int, int]] = field(default_factory=list)
    # the copy of standard input (``-``), named "standard input" in messages and labels
    stdin: Path | None = None
    _first_with_key: dict[int, int] = field(default_factory=dict, repr=False)

    @property
    def servers(self) -> dict[str, str]:
        """Export folder -> the FHIR server its manifest names."""
        return export_servers(self.manifests)

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
            found.manifests.append((export_label(path), str(path), document))
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
    result.problems += unread_export_errors(
        files.manifests, [(export_label(path), path.name) for path in files.ndjson])
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
