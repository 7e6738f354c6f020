"""Cohorts on Apache Spark (``guidelinekg recommend --spark MASTER``): FHIR Bulk Data NDJSON
exports or FHIR Bundle files, each patient refused or derived on its own, as in a cohort run
on one machine (guidelinekg.cohorts), with Spark spreading the patients over executors.

What runs where:

- NDJSON exports: a first pass (on the executors, a task per file chunk) finds the Patient
  identifiers and Medication resources and counts each chunk's lines; the driver makes the
  export's directory of them (guidelinekg.bulk_data) and broadcasts it, with the server
  each export's manifest names. A second pass keys every line by (its export, its patient)
  and Spark groups the lines by key; a line that belongs to no patient becomes a refusal
  line of its own, saying why (nothing is dropped).
- Bundle files: the executors read each file's identity keys (identifiers, absolute URLs)
  and link the files that share one; the driver groups the linked files (union-find), as
  one machine's import would, and the groups go to the executors.
- Each Spark partition imports its patients a batch at a time (``--partition-size``
  patients, each patient's Bundle or files imported on its own, as one machine names them),
  and evaluates the batch with guidelinekg.cohorts.evaluate_partition: one JSON line per
  patient and guideline, or a refusal line. The guideline graph is cached per executor
  process (Python workers are reused), not read per record.

The input is local paths (every executor opens them) or Hadoop FileSystem URIs (hdfs://,
s3a://, file://...: listed and read through Spark; guidelinekg.spark_input). The output
folder holds the lines as JSON Lines (part files) or as Parquet: ``results/`` (patient,
guideline, refused, document: the JSON line) and ``status-rows/`` (the flat rows of
``--format csv``). This module and guidelinekg.spark_input are the only ones that import
pyspark, and only when a Spark run starts.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from guidelinekg.cohorts import (
    CSV_COLUMNS,
    DEFAULT_PARTITION_SIZE,
    CohortSettings,
    CohortSummary,
    csv_rows,
)
from guidelinekg.distributed_cohorts import (
    DistributedInput,
    Record,
    distributed_inputs,
    is_uri,
)
from guidelinekg.loading import InputError

if TYPE_CHECKING:
    from pyspark import RDD
    from pyspark.sql import SparkSession

MINIMUM_JAVA = 17  # Spark 4 runs on Java 17 or later
FORMATS = ("jsonl", "parquet")
JAVA_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


class SparkUnavailable(Exception):
    """Spark cannot run here: pyspark is not installed, or there is no Java 17+."""


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def add_spark_arguments(parser: argparse.ArgumentParser) -> None:
    """``--spark MASTER``, ``--spark-output DIR``, ``--spark-format``, ``--spark-conf``."""
    parser.add_argument("--spark", metavar="MASTER", default=None,
                        help="run the cohort on Apache Spark (pip install 'guidelinekg[spark]', "
                             "Java 17+): local[2], spark://host:7077, yarn... Input: FHIR NDJSON "
                             "exports or FHIR Bundle files, as local paths every node sees or "
                             "as URIs Spark's Hadoop file systems read (hdfs://, s3a://, gs://, "
                             "abfs://, file://; connectors and credentials from the Spark "
                             "configuration, e.g. --spark-conf spark.hadoop.fs.s3a.endpoint=...); "
                             "output: --spark-output")
    parser.add_argument("--spark-output", metavar="DIR", default=None,
                        help="with --spark: the folder to write (it must not exist yet; on a "
                             "cluster, a folder every executor can write: HDFS, S3, a shared "
                             "mount; a folder, so not - for standard output)")
    parser.add_argument("--spark-format", choices=FORMATS, default="jsonl",
                        help="with --spark: jsonl (one JSON line per patient and guideline, in "
                             "part files) or parquet (results/ and status-rows/ tables) "
                             "(default: jsonl)")
    parser.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE",
                        help="with --spark: a Spark setting (repeatable), e.g. "
                             "spark.executor.memory=4g")


def _conf_pairs(items: Sequence[str]) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, equals, value = item.partition("=")
        if not equals or not key.strip():
            raise InputError("--spark-conf", f"{item!r} is not KEY=VALUE")
        pairs[key.strip()] = value.strip()
    return pairs


def run_spark(args: argparse.Namespace) -> int:
    """``guidelinekg recommend --spark MASTER``: 0, or 1 when a patient was refused or input
    could not be read; 2 when Spark cannot run here (no pyspark, no Java 17+)."""
    from guidelinekg.cohort_command import check_cohort_sizes, cohort_settings
    from guidelinekg.stdio import STDIN, is_stdio

    if getattr(args, "patient", None):
        raise InputError("--patient", "a Spark run covers every patient of the input")
    if any(is_stdio(path) for path in args.paths):
        raise InputError(STDIN, "cannot be read by Spark, whose executors read files: give "
                                "files or folders")
    if not args.spark_output:
        raise InputError("--spark-output", "--spark needs --spark-output DIR, the folder to "
                                           "write the results to (it must not exist yet)")
    if getattr(args, "validation_report", None) is not None:
        raise InputError("--validation-report", "not with --spark: the Spark run's lines and "
                                                "its summary say what was refused and why")
    check_cohort_sizes(args)
    settings = cohort_settings(args)
    size = getattr(args, "partition_size", 0) or DEFAULT_PARTITION_SIZE
    try:
        summary = run_on_spark(args.paths, settings, args.spark, args.spark_output,
                               args.spark_format, partition_size=size,
                               conf=_conf_pairs(getattr(args, "spark_conf", None) or []),
                               log=None if getattr(args, "quiet", False) else sys.stderr)
    except SparkUnavailable as error:
        print(f"guidelinekg recommend: {error}", file=sys.stderr)
        return 2
    for line in summary.report_lines():
        print(line, file=sys.stderr)
    return summary.exit_code(args.allow_invalid)


# --------------------------------------------------------------------------------------
# Java and the Spark session
# --------------------------------------------------------------------------------------


def find_java() -> str:
    """The java Spark will run (JAVA_HOME's, else the one on PATH), checked to be 17+."""
    home = os.environ.get("JAVA_HOME")
    if home:
        java = Path(home) / "bin" / "java"
        if not (java.is_file() and os.access(java, os.X_OK)):
            raise SparkUnavailable(f"--spark needs Java {MINIMUM_JAVA} or later, and JAVA_HOME "
                                   f"({home}) holds no bin/java: set JAVA_HOME to a JDK or JRE "
                                   "folder, or unset it to use the java on PATH")
        found = str(java)
    else:
        on_path = shutil.which("java")
        if on_path is None:
            raise SparkUnavailable(
                f"--spark needs Java {MINIMUM_JAVA} or later, and none was found (JAVA_HOME is "
                "not set and there is no java on PATH): install one (e.g. apt-get install "
                "openjdk-17-jre-headless) or set JAVA_HOME")
        found = on_path
    try:
        shown = subprocess.run([found, "-version"], capture_output=True, text=True,
                               timeout=60, check=False).stderr
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SparkUnavailable(f"--spark: {found} does not run ({error})") from None
    match = JAVA_VERSION.search(shown)
    major = int(match.group(1)) if match else 0
    if major == 1 and match and match.group(2):  # 1.8 is Java 8
        major = int(match.group(2))
    if major < MINIMUM_JAVA:
        first = shown.strip().splitlines()[0] if shown.strip() else "no version"
        raise SparkUnavailable(f"--spark needs Java {MINIMUM_JAVA} or later; {found} is "
                               f"{first!r}: install a newer one or set JAVA_HOME to it")
    return found


def _require_pyspark() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise SparkUnavailable("--spark needs pyspark, which is not installed: pip install "
                               "'guidelinekg[spark]'") from None


# Spark's own log: warnings and errors (Hadoop's errors only: it warns that it runs without
# its native library); at the level pyspark gives its shell, so it does not say so.
LOG4J = """rootLogger.level = warn
logger.hadoop.name = org.apache.hadoop
logger.hadoop.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
"""


def session_settings(master: str, scratch: Path, conf: Mapping[str, str] | None = None
                     ) -> dict[str, str]:
    """The settings of a session: no web UI, no console progress bars, scratch space under
    ``scratch``; on a local master nothing listens beyond the loopback interface. ``conf``
    comes last and wins."""
    log4j = scratch / "log4j2.properties"
    log4j.write_text(LOG4J, encoding="utf-8")
    local_dir = scratch / "local"
    local_dir.mkdir(exist_ok=True)
    settings = {
        "spark.app.name": "guidelinekg recommend",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.warehouse.dir": str(scratch / "warehouse"),
        # the driver's scratch space (and a local master's, the executors' too): Spark's
        # local dirs default to the JVM's temporary folder
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={log4j.as_uri()} "
                                         f"-Djava.io.tmpdir={local_dir}",
        "spark.python.worker.reuse": "true",  # the guideline graph is cached per worker
    }
    if master.startswith("local"):
        settings |= {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"}
    library = os.environ.get("GUIDELINEKG_LIBRARY")
    if library:
        settings["spark.executorEnv.GUIDELINEKG_LIBRARY"] = library
    return settings | dict(conf or {})


@contextmanager
def spark_session(master: str, conf: Mapping[str, str] | None = None
                  ) -> Iterator[SparkSession]:
    """The active session if there is one (a test's, or spark-submit's), else a new one on
    ``master``, stopped and its scratch folder removed at the end."""
    _require_pyspark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        yield active
        return
    scratch = Path(tempfile.mkdtemp(prefix="guidelinekg-spark-"))
    try:
        session = start_session(master, scratch, conf)
        try:
            yield session
        finally:
            session.stop()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def start_session(master: str, scratch: Path, conf: Mapping[str, str] | None = None
                  ) -> SparkSession:
    """A new Spark session on ``master`` (see :func:`session_settings`)."""
    _require_pyspark()
    from pyspark.sql import SparkSession

    find_java()
    if master.startswith("local"):  # the workers run this Python, on the loopback only
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master)
    for key, value in session_settings(master, scratch, conf).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


# --------------------------------------------------------------------------------------
# The run and its summary
# --------------------------------------------------------------------------------------


@dataclass
class SparkSummary(CohortSummary):
    """The counts of a Spark run (those of a cohort run, and the lines of the input that
    went to no patient), with where the output is."""

    problems: int = 0
    unreadable: int = 0
    lines: int = 0
    output: str = ""
    output_format: str = "jsonl"
    seconds: float = 0.0
    master: str = ""

    def add(self, record: Record) -> None:
        _, patients, refused, warnings, shapes, problems, unreadable, lines = record
        self.patients += patients
        self.refused += refused
        self.warnings += warnings
        self.problems += problems
        self.unreadable += unreadable
        self.lines += lines
        for key, count in shapes:
            self.shapes[tuple(key)] = self.shapes.get(tuple(key), 0) + count

    def report_lines(self) -> list[str]:
        lines = [f"guidelinekg recommend: {self.patients} patients, {len(self.refused)} refused "
                 "(their records violate the patient shapes; each has a line saying why), "
                 f"{self.warnings} warnings. Validation results by shape:",
                 *self.shape_lines()]
        if self.problems:
            lines.append(f"guidelinekg recommend: {self.problems} input lines or files are "
                         f"given to no patient ({self.unreadable} of them could not be read "
                         "or imported); each has a refusal line (patient null) saying why, "
                         "with its source")
        lines.append(f"guidelinekg recommend: {self.lines} lines written to {self.output} "
                     f"({self.output_format}) in {self.seconds:.1f} s on {self.master}")
        return lines

    def exit_code(self, allow_invalid: bool = False) -> int:
        """1 when a patient was refused or input could not be read (a resource that names
        no patient, like a resource of a type no fact reads, has its line but is no
        refusal of a record), else 0."""
        return 1 if self.unreadable or (self.refused and not allow_invalid) else 0


def _output_location(output: Path | str) -> str:
    text = str(output)
    if is_uri(text):
        return text  # hdfs://, s3a://, file://: Spark's to check
    path = Path(text).resolve()
    if path.exists():
        raise InputError(path, "the output folder exists already: remove it or name another")
    return str(path)


def run_on_spark(paths: Sequence[Path | str], settings: CohortSettings, master: str,
                 output: Path | str, output_format: str, *,
                 partition_size: int = DEFAULT_PARTITION_SIZE,
                 conf: Mapping[str, str] | None = None,
                 log: TextIO | None = None) -> SparkSummary:
    """Evaluate the cohort of ``paths`` on Spark and write it to ``output`` (a folder that
    does not exist yet) as ``jsonl`` or ``parquet``; the run's counts."""
    if output_format not in FORMATS:
        raise InputError("--spark-format", f"{output_format!r} is not one of {FORMATS}")
    # Local paths are listed here; URIs (all of the input, or none) once Spark is up
    inputs = None if paths and all(map(is_uri, paths)) else distributed_inputs(paths)
    target = _output_location(output)
    started = time.monotonic()
    summary = SparkSummary(output=target, output_format=output_format, master=master)
    with spark_session(master, conf) as spark:
        summary.master = spark.sparkContext.master or master
        if inputs is None:
            from guidelinekg.spark_input import HadoopFiles

            inputs = distributed_inputs(paths, HadoopFiles(spark))
        if inputs.kind == "ndjson":
            evaluated = _ndjson_records(spark, inputs, settings, partition_size, log)
        else:
            evaluated = _bundle_records(spark, inputs, settings, partition_size, log)
        _say(log, f"evaluating on {summary.master}, {evaluated.getNumPartitions()} partitions")
        from pyspark import StorageLevel

        evaluated.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            _write(spark, evaluated, target, output_format)
            for record in evaluated.filter(lambda r: r[0] == "stats").collect():
                summary.add(record)
        finally:
            evaluated.unpersist()
    summary.seconds = time.monotonic() - started
    return summary


def _say(log: TextIO | None, text: str) -> None:
    if log is not None:
        print(f"guidelinekg recommend: {text}", file=log, flush=True)


def _partitions(spark: SparkSession, groups: int, size: int) -> int:
    parallel = spark.sparkContext.defaultParallelism
    return max(1, min(groups, max(parallel, -(-groups // max(1, size)))))


def _write(spark: SparkSession, evaluated: RDD[Record], target: str, output_format: str
           ) -> None:
    from pyspark.sql.types import BooleanType, StringType, StructField, StructType

    schema = StructType([StructField("patient", StringType(), True),
                         StructField("guideline", StringType(), True),
                         StructField("refused", BooleanType(), False),
                         StructField("document", StringType(), False)])
    rows = evaluated.filter(lambda r: r[0] == "row").map(lambda r: r[1:])
    frame = spark.createDataFrame(rows, schema)
    if output_format == "jsonl":
        frame.select("document").write.text(target)
        return
    frame.write.parquet(target.rstrip("/") + "/results")
    flat = StructType([StructField(name, StringType(), False) for name in CSV_COLUMNS])
    spark.createDataFrame(rows.flatMap(lambda r: list(csv_rows(r[3]))), flat) \
        .write.parquet(target.rstrip("/") + "/status-rows")


# --------------------------------------------------------------------------------------
# The two inputs on Spark (the work itself: guidelinekg.distributed_cohorts)
# --------------------------------------------------------------------------------------


def _bundle_records(spark: SparkSession, inputs: DistributedInput, settings: CohortSettings,
                    size: int, log: TextIO | None) -> RDD[Record]:
    """Bundle files: identity keys read by the executors, which link the files that share
    one; the files grouped by their links on the driver; the groups evaluated by the
    executors."""
    from pyspark import StorageLevel

    from guidelinekg.cohorts import unowned_line
    from guidelinekg.distributed_cohorts import Group, key_links
    from guidelinekg.fhir_identity import file_labels
    from guidelinekg.grouping import file_groups
    from guidelinekg.spark_input import bundle_reader

    sources = inputs.sources
    reader = bundle_reader(spark, inputs)
    keyed = reader.keys().persist(StorageLevel.MEMORY_AND_DISK)
    try:
        read = dict(keyed.map(lambda found: (found[0], found[2])).collect())
        links = (keyed.flatMap(lambda found: [(key, found[0]) for key in found[1]])
                 .groupByKey().flatMap(lambda item: key_links(item[1])).distinct().collect())
    finally:
        keyed.unpersist()
    unread = {index: why for index, why in read.items() if why is not None}
    unread |= {index: "Spark read nothing from it" for index in range(len(sources))
               if index not in read}
    groups = [group for group in file_groups(len(sources), links) if group[0] not in unread]
    _say(log, f"{len(sources)} Bundle files, {len(groups)} groups of files that belong "
              "together")
    problems = [Group(sources[index], problem=unowned_line(f"the file cannot be read: {why}",
                                                           sources[index]))
                for index, why in sorted(unread.items())]
    return reader.evaluate(groups, file_labels(sources), problems,
                           _partitions(spark, len(groups) + len(problems), size), settings,
                           size)


def _ndjson_records(spark: SparkSession, inputs: DistributedInput, settings: CohortSettings,
                    size: int, log: TextIO | None) -> RDD[Record]:
    """NDJSON exports: the directory and line counts from a first pass, broadcast; the
    lines keyed by (export, patient) in a second, grouped by Spark, evaluated by patient."""
    from guidelinekg.distributed_cohorts import (
        build_directory,
        evaluate_groups,
        newlines_before,
        patient_group,
        problem_groups,
        source_export,
    )
    from guidelinekg.fhir_identity import file_labels
    from guidelinekg.fhir_import.importer import HANDLERS
    from guidelinekg.spark_input import ndjson_reader

    context = spark.sparkContext
    sources = inputs.sources
    reader = ndjson_reader(spark, inputs)
    scans = reader.scans()
    directory = context.broadcast(build_directory(scans, sources))
    patients = sum(found for _, _, found, _ in scans)
    labels = file_labels(dict.fromkeys(source_export(source) for source in sources))
    servers = inputs.servers
    _say(log, f"{len(sources)} NDJSON files in {len(labels)} exports ({len(servers)} with a "
              f"manifest naming their server), {patients} Patient resources")
    records = (reader.keyed(newlines_before(scans), directory, frozenset(HANDLERS))
               .groupByKey(_partitions(spark, max(patients, 1), size))
               .map(lambda item: patient_group(item[0], item[1], sources, labels, directory,
                                               servers))
               .mapPartitions(lambda groups: evaluate_groups(groups, settings, size)))
    if not inputs.problems:
        return records
    # What the input says of itself (a manifest's unread error files): its refusal lines,
    # made here (a group holds the broadcast directory, which only the driver may pickle).
    said = list(evaluate_groups(problem_groups(inputs.problems), settings, size))
    return records.union(context.parallelize(said, 1))
