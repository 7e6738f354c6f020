"""The input of a Spark run (``guidelinekg recommend --spark``), read by Spark's executors:
local paths, which every executor opens itself (on a cluster, storage that every node mounts
at the same path), or Hadoop FileSystem URIs (hdfs://, s3a://, gs://, abfs://, file://...),
which Python cannot open, so Spark's JVM lists and reads them.

- Listing (driver): a URI is listed by the Hadoop file system of its scheme, as the Spark
  session's Hadoop configuration sets it up (connectors, endpoints, credentials: the
  cluster's, or ``--spark-conf spark.hadoop.fs...``): a file, or a folder's files
  recursively, names starting with ``.`` or ``_`` skipped below the folder; sizes from the
  listing. Manifests (small) are read on the driver through the same file system.
- NDJSON files of at most CHUNK_BYTES (64 MB): read whole by Spark's ``binaryFile`` source
  (a file a row, many files a task) and cut into lines exactly as a local chunk is. Larger
  ones: Hadoop's TextInputFormat, one RDD a file, read in splits of at most CHUNK_BYTES (a
  task each) one line at a time; a split's lines come in order with their byte offsets, and
  line numbers come from the lines of the splits before it, counted in the first pass (as
  the newlines of a local chunk are).
- Bundle files: ``binaryFile``, a file's bytes a row (a file is at most
  guidelinekg.loading.MAX_FILE_BYTES; a larger one is refused from its listed size, unread).
  The files of a group are brought together by a shuffle on the group.

The work on each line or file is guidelinekg.distributed_cohorts', the same for both kinds
of input. pyspark is imported only when a Spark run uses this module (guidelinekg.spark_cohorts
imports it then).
"""
from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol

import guidelinekg.distributed_cohorts as work
from guidelinekg.cohorts import CohortSettings
from guidelinekg.distributed_cohorts import (
    Chunk,
    DistributedInput,
    FileKeys,
    Group,
    HasValue,
    KeyedLine,
    Line,
    ListedFile,
    Record,
    Scan,
)
from guidelinekg.fhir_import.datatypes import read_json_bytes
from guidelinekg.loading import MAX_FILE_BYTES, InputError

if TYPE_CHECKING:
    from pyspark import RDD, Broadcast, SparkContext
    from pyspark.sql import SparkSession

    from guidelinekg.bulk_data import PatientDirectory

TEXT_INPUT = "org.apache.hadoop.mapreduce.lib.input.TextInputFormat"
REPLACEMENT_UTF8 = "\ufffd".encode()  # what Hadoop's text has for bytes that are not UTF-8
INPUT_DIR = "mapreduce.input.fileinputformat.inputdir"
# Characters Hadoop's input paths read as a glob (escaped with a backslash to be literal)
GLOB = re.compile(r"([\\\[\]{}*?])")
HIDDEN = (".", "_")


# --------------------------------------------------------------------------------------
# Listing URIs (driver)
# --------------------------------------------------------------------------------------


def _java_reason(uri: str, error: Any) -> str:
    """What a Java exception of Hadoop says, in one line, without its stack trace."""
    java = error.java_exception
    name = str(java.getClass().getName())
    message = str(java.getMessage() or "").strip().splitlines()
    if name == "java.io.FileNotFoundException":
        return "no such file or folder"
    if name.endswith("UnsupportedFileSystemException"):
        scheme = uri.split(":", 1)[0]
        return (f"Hadoop has no file system for {scheme}:// in this Spark session: its "
                "connector is not on Spark's classpath, or not configured (e.g. --spark-conf "
                f"spark.jars.packages=..., spark.hadoop.fs.{scheme}.impl=...)")
    return f"cannot be read through Hadoop ({name.rsplit('.', 1)[-1]}: " \
           f"{message[0] if message else 'no message'})"


@contextmanager
def _hadoop_errors(uri: str) -> Iterator[None]:
    from py4j.protocol import Py4JJavaError  # type: ignore[import-untyped]

    try:
        yield
    except Py4JJavaError as error:
        raise InputError(uri, _java_reason(uri, error)) from None


def _relative(root: str, location: str) -> str | None:
    """A listed file's path below its folder's (None when Hadoop lists it elsewhere)."""
    prefix = root.rstrip("/") + "/"
    return location[len(prefix):] if location.startswith(prefix) else None


class HadoopFiles:
    """URIs listed and small files read through the Spark session's Hadoop file systems
    (guidelinekg.distributed_cohorts.HadoopListing)."""

    def __init__(self, spark: SparkSession) -> None:
        context: Any = spark.sparkContext
        self._jvm: Any = context._jvm
        self._conf: Any = context._jsc.hadoopConfiguration()

    def _path(self, uri: str) -> tuple[Any, Any]:
        path = self._jvm.org.apache.hadoop.fs.Path(uri)
        return path, path.getFileSystem(self._conf)

    def files(self, uri: str, suffixes: Sequence[str]) -> list[ListedFile]:
        with _hadoop_errors(uri):
            path, system = self._path(uri)
            status = system.getFileStatus(path)
            if not status.isDirectory():
                return [self._file(uri, status, suffixes)]
            return self._folder(uri, system, status, suffixes)

    @staticmethod
    def _file(uri: str, status: Any, suffixes: Sequence[str]) -> ListedFile:
        name = str(status.getPath().getName())
        if PurePosixPath(name).suffix.lower() not in suffixes:
            raise InputError(uri, "a distributed run reads FHIR: NDJSON exports (.ndjson) or "
                                  "Bundle files (.json)")
        if name.startswith(HIDDEN):
            raise InputError(uri, "Hadoop's readers skip a file whose name starts with . or _ "
                                  "(hidden): rename it")
        return ListedFile(uri, str(status.getPath().toString()), int(status.getLen()))

    @staticmethod
    def _folder(uri: str, system: Any, status: Any, suffixes: Sequence[str]
                ) -> list[ListedFile]:
        """The folder's files with one of the suffixes, recursively, in the order of their
        paths below it (as local folders are read); hidden names skipped at any level."""
        root = str(status.getPath().toString())
        found: list[tuple[list[str], ListedFile]] = []
        listed = system.listFiles(status.getPath(), True)
        while listed.hasNext():
            entry = listed.next()
            location = str(entry.getPath().toString())
            relative = _relative(root, location)
            parts = (relative or location.rsplit("/", 1)[-1]).split("/")
            if any(part.startswith(HIDDEN) for part in parts) \
                    or PurePosixPath(parts[-1]).suffix.lower() not in suffixes:
                continue
            source = f"{uri.rstrip('/')}/{relative}" if relative is not None else location
            found.append((parts, ListedFile(source, location, int(entry.getLen()))))
        return [listed_file for _, listed_file in sorted(found, key=lambda item: item[0])]

    def read(self, listed: ListedFile) -> bytes:
        if listed.size > MAX_FILE_BYTES:
            raise InputError(listed.source, f"file is too large ({listed.size} bytes; limit "
                                            f"{MAX_FILE_BYTES})")
        with _hadoop_errors(listed.source):
            path, system = self._path(listed.location)
            stream = system.open(path)
            try:
                return bytes(stream.readAllBytes())
            finally:
                stream.close()


def literal_path(location: str) -> str:
    """A listed location as Hadoop's input formats read it literally (not as a glob)."""
    return GLOB.sub(r"\\\1", location)


def input_dir(location: str) -> str:
    """A location as the one input folder of a Hadoop job's configuration (a list of
    comma-separated globs: commas and backslashes escaped)."""
    return literal_path(location).replace("\\", "\\\\").replace(",", "\\,")


# --------------------------------------------------------------------------------------
# What the executors do with what Spark read (no pyspark here)
# --------------------------------------------------------------------------------------


def whole_chunk(index: int, data: bytes) -> Chunk:
    """A file read whole, as the one chunk a local file of that size is."""
    return Chunk(index, 0, len(data))


def scan_bytes(index: int, data: bytes, location: str) -> Scan:
    """The first pass over file ``index`` read whole (its bytes), as :func:`scan_chunk`."""
    chunk = whole_chunk(index, data)
    patients, found = work.directory_lines(work.stream_lines(io.BytesIO(data), chunk, 0),
                                           location)
    return chunk, data.count(b"\n"), patients, found


def key_bytes(index: int, data: bytes, source: str, directory: PatientDirectory,
              clinical: frozenset[str]) -> Iterator[KeyedLine]:
    """The second pass over file ``index`` read whole, as :func:`key_lines`."""
    lines = work.stream_lines(io.BytesIO(data), whole_chunk(index, data), 0)
    return work.keyed_lines(index, lines, source, directory, clinical)


def split_lines(records: Iterable[tuple[int, str]], before: int) -> Iterator[Line]:
    """The lines of a split (TextInputFormat's (offset, text), in order) as
    :func:`chunk_lines` gives them; ``before``: the lines of the file's splits before it.
    (Hadoop hands over a line without its newline: a line of MAX_LINE_BYTES bytes or more
    is too long, as a local line of that many with its newline is.) Hadoop's text has
    U+FFFD in place of bytes that are not UTF-8, so that it cannot tell them from the
    character itself: U+FFFD is given back as a byte that is not UTF-8, and the line is
    unreadable, as a local line with such bytes is (the safer reading)."""
    from guidelinekg.bulk_data import MAX_LINE_BYTES

    for number, (offset, text) in enumerate(records, before + 1):
        raw = text.encode("utf-8", errors="replace").replace(REPLACEMENT_UTF8, b"\xff")
        yield number, offset, raw if len(raw) < MAX_LINE_BYTES else None


def scan_split(index: int, location: str, split: int, records: Iterable[tuple[int, str]]
               ) -> list[Scan]:
    """The first pass over split ``split`` of file ``index``, as :func:`scan_chunk`: its
    chunk is Chunk(index, split, split + 1), its "newlines" the lines read from it."""
    counted = 0

    def lines() -> Iterator[Line]:
        nonlocal counted
        for line in split_lines(records, 0):
            counted = line[0]
            yield line

    patients, found = work.directory_lines(lines(), location)
    return [(Chunk(index, split, split + 1), counted, patients, found)]


def key_split(index: int, source: str, before: Mapping[int, int], directory: HasValue,
              clinical: frozenset[str], split: int, records: Iterable[tuple[int, str]]
              ) -> Iterator[KeyedLine]:
    """The second pass over split ``split`` of file ``index`` (``before``: by split, the
    lines of the file before it), as :func:`key_lines`."""
    return work.keyed_lines(index, split_lines(records, before.get(split, 0)), source,
                            directory.value, clinical)


def bytes_keys(index: int, data: bytes, source: str) -> FileKeys:
    """The identity keys of a Bundle file's bytes, or why it cannot be read."""
    return work.keys_of(index, lambda: read_json_bytes(data, source))


def bytes_group(files: Sequence[tuple[str, bytes, str]]) -> Group:
    """Bundle files (source, their bytes, label) that belong together, as one import."""
    return work.files_group(files, read_json_bytes)


# --------------------------------------------------------------------------------------
# NDJSON files: both passes
# --------------------------------------------------------------------------------------


def file_contents(spark: SparkSession, locations: Sequence[str], indexes: Sequence[int]
                  ) -> RDD[tuple[int, bytes]]:
    """(index, bytes) of the files ``indexes`` of ``locations``, read by Spark's binaryFile
    source (a file a row; the rows of a task come one at a time)."""
    context = spark.sparkContext
    if not indexes:
        return context.parallelize([], 1)
    index_of = context.broadcast({locations[i]: i for i in indexes})
    frame = (spark.read.format("binaryFile").option("recursiveFileLookup", "true")
             .load([literal_path(locations[i]) for i in indexes]))
    # a path Spark would give in another form than the listing's: left out, then said
    return (frame.select("path", "content").rdd
            .map(lambda row: (index_of.value.get(row[0], -1), bytes(row[1])))
            .filter(lambda item: item[0] >= 0))


class NdjsonReader(Protocol):
    def scans(self) -> list[Scan]:
        """The first pass: a Scan of each chunk (or split) of each file."""
        ...

    def keyed(self, before: Mapping[Chunk, int], directory: Broadcast[PatientDirectory],
              clinical: frozenset[str]) -> RDD[KeyedLine]:
        """The second pass: every line keyed by its patient (of one export or several)."""
        ...


class LocalNdjson:
    """Local files, read in byte chunks by tasks that open them (by absolute path)."""

    def __init__(self, context: SparkContext, inputs: DistributedInput) -> None:
        self.context, self.inputs = context, inputs
        self.chunks = work.file_chunks(inputs.locations)
        self.slices = max(1, min(len(self.chunks), 4 * context.defaultParallelism))

    def scans(self) -> list[Scan]:
        locations = self.inputs.locations
        return (self.context.parallelize(self.chunks, self.slices)
                .map(lambda chunk: work.scan_chunk(chunk, locations[chunk.index])).collect())

    def keyed(self, before: Mapping[Chunk, int], directory: Broadcast[PatientDirectory],
              clinical: frozenset[str]) -> RDD[KeyedLine]:
        sources, locations = self.inputs.sources, self.inputs.locations
        return (self.context.parallelize([(chunk, before[chunk]) for chunk in self.chunks],
                                         self.slices)
                .flatMap(lambda job: work.key_lines(job[0], job[1], sources[job[0].index],
                                                    locations[job[0].index], directory.value,
                                                    clinical)))


class HadoopNdjson:
    """URIs. A file of at most CHUNK_BYTES is read whole by Spark's binaryFile source and
    cut into lines as a local chunk is (one task reads many such files); a larger one by
    Hadoop's TextInputFormat, one RDD a file, its partitions the file's splits of at most
    CHUNK_BYTES, each split's lines (offset, text) in order and one at a time. Lines end
    at ``\\n`` only, as local lines do (a ``\\r`` before it is stripped as whitespace)."""

    def __init__(self, spark: SparkSession, inputs: DistributedInput) -> None:
        self.spark, self.context, self.inputs = spark, spark.sparkContext, inputs
        sizes = inputs.sizes
        self.whole = [i for i, length in enumerate(sizes) if 0 < length <= work.CHUNK_BYTES]
        settings = {"textinputformat.record.delimiter": "\n",
                    "mapreduce.input.fileinputformat.split.maxsize": str(work.CHUNK_BYTES)}
        # (pyspark reads each file's first line here, to check what it converts)
        self.split: dict[int, RDD[tuple[int, str]]] = {
            i: self.context.newAPIHadoopRDD(
                TEXT_INPUT, "org.apache.hadoop.io.LongWritable", "org.apache.hadoop.io.Text",
                conf=settings | {INPUT_DIR: input_dir(inputs.locations[i])})
            for i, length in enumerate(sizes) if length > work.CHUNK_BYTES}

    def scans(self) -> list[Scan]:
        sources, locations = self.inputs.sources, self.inputs.locations
        parts = [file_contents(self.spark, locations, self.whole)
                 .map(lambda item: scan_bytes(item[0], item[1], locations[item[0]]))]
        parts += [lines.mapPartitionsWithIndex(partial(scan_split, i, locations[i]))
                  for i, lines in self.split.items()]
        scans: list[Scan] = self.context.union(parts).collect()
        read = {chunk.index for chunk, _, _, _ in scans}
        for i in self.whole:
            if i not in read:
                raise InputError(sources[i], "Spark read nothing from it")
        return scans

    def keyed(self, before: Mapping[Chunk, int], directory: Broadcast[PatientDirectory],
              clinical: frozenset[str]) -> RDD[KeyedLine]:
        sources, locations = self.inputs.sources, self.inputs.locations
        by_split: dict[int, dict[int, int]] = {}
        for chunk, count in before.items():
            by_split.setdefault(chunk.index, {})[chunk.start] = count
        parts = [file_contents(self.spark, locations, self.whole)
                 .flatMap(lambda item: key_bytes(item[0], item[1], sources[item[0]],
                                                 directory.value, clinical))]
        parts += [lines.mapPartitionsWithIndex(partial(key_split, i, sources[i],
                                                       by_split.get(i, {}), directory,
                                                       clinical))
                  for i, lines in self.split.items()]
        return self.context.union(parts)


def ndjson_reader(spark: SparkSession, inputs: DistributedInput) -> NdjsonReader:
    if inputs.hadoop:
        return HadoopNdjson(spark, inputs)
    return LocalNdjson(spark.sparkContext, inputs)


# --------------------------------------------------------------------------------------
# Bundle files: identity keys, then the groups evaluated
# --------------------------------------------------------------------------------------


class BundleReader(Protocol):
    def keys(self) -> RDD[FileKeys]:
        """Each file's identity keys, or why it cannot be read."""
        ...

    def evaluate(self, groups: Sequence[Sequence[int]], labels: Mapping[str, str],
                 problems: Sequence[Group], partitions: int, settings: CohortSettings,
                 size: int) -> RDD[Record]:
        """The records of the groups of files (by index) and of the input problems."""
        ...


class LocalBundles:
    """Local files, each opened by the task that reads it (by absolute path)."""

    def __init__(self, spark: SparkSession, inputs: DistributedInput) -> None:
        self.context, self.inputs = spark.sparkContext, inputs

    def keys(self) -> RDD[FileKeys]:
        locations = self.inputs.locations
        slices = max(1, min(len(locations), 4 * self.context.defaultParallelism))
        return (self.context.parallelize(list(enumerate(locations)), slices)
                .map(lambda item: work.file_keys(*item)))

    def evaluate(self, groups: Sequence[Sequence[int]], labels: Mapping[str, str],
                 problems: Sequence[Group], partitions: int, settings: CohortSettings,
                 size: int) -> RDD[Record]:
        sources, locations = self.inputs.sources, self.inputs.locations
        jobs: list[Any] = [[(sources[i], locations[i], labels[sources[i]]) for i in group]
                           for group in groups]
        return (self.context.parallelize([*jobs, *problems], partitions)
                .map(lambda job: job if isinstance(job, Group) else work.bundle_group(job))
                .mapPartitions(lambda batch: work.evaluate_groups(batch, settings, size)))


class HadoopBundles:
    """URIs, read by Spark's binaryFile source (a file's bytes a row). A file larger than
    MAX_FILE_BYTES, or empty (binaryFile gives no row for it), is refused from its listed
    size, unread, with what reading it locally says."""

    def __init__(self, spark: SparkSession, inputs: DistributedInput) -> None:
        self.spark, self.context, self.inputs = spark, spark.sparkContext, inputs
        self.unread = {index: f"file is too large ({length} bytes; limit {MAX_FILE_BYTES})"
                       if length else "the file is empty"
                       for index, length in enumerate(inputs.sizes)
                       if length > MAX_FILE_BYTES or not length}

    def _contents(self) -> RDD[tuple[int, bytes]]:
        """(index, bytes) of each file but those refused unread."""
        locations = self.inputs.locations
        return file_contents(self.spark, locations,
                             [i for i in range(len(locations)) if i not in self.unread])

    def keys(self) -> RDD[FileKeys]:
        sources = self.inputs.sources
        found = self._contents().map(lambda item: bytes_keys(item[0], item[1],
                                                                  sources[item[0]]))
        if not self.unread:
            return found
        refused: list[FileKeys] = [(i, [], why) for i, why in self.unread.items()]
        return found.union(self.context.parallelize(refused, 1))

    def evaluate(self, groups: Sequence[Sequence[int]], labels: Mapping[str, str],
                 problems: Sequence[Group], partitions: int, settings: CohortSettings,
                 size: int) -> RDD[Record]:
        sources = self.inputs.sources
        group_of = self.context.broadcast({i: number for number, group in enumerate(groups)
                                           for i in group})

        def group(files: Any) -> Group:
            return bytes_group([(sources[i], data, labels[sources[i]])
                                     for i, data in sorted(files, key=lambda item: item[0])])

        records = (self._contents().filter(lambda item: item[0] in group_of.value)
                   .map(lambda item: (group_of.value[item[0]], item))
                   .groupByKey(partitions).map(lambda item: group(item[1]))
                   .mapPartitions(lambda batch: work.evaluate_groups(batch, settings, size)))
        if not problems:
            return records
        return records.union(self.context.parallelize(list(problems), 1).mapPartitions(
            lambda batch: work.evaluate_groups(batch, settings, size)))


def bundle_reader(spark: SparkSession, inputs: DistributedInput) -> BundleReader:
    reader = HadoopBundles if inputs.hadoop else LocalBundles
    return reader(spark, inputs)
