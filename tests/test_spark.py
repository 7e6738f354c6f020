"""`guidelinekg recommend --spark`: a cohort on Apache Spark (local[2], one session for the
module) gives, patient by patient, the lines of a cohort run on one machine; an NDJSON
export gives the lines of the same patients as Bundles; Parquet holds the same rows; input
lines that go to no patient come out as refusal lines; no Java, a clear exit 2.

pyspark and Java 17+ are required: nothing here is skipped without them.

The same patient as a Bundle and in an export has the same IRI (it carries an identifier),
and so have its record items: the Bundles here carry their server's RESTful fullUrls
(``http://example.org/fhir/<Type>/<id>``), and the export's manifest names that server, so
an export resource is named by its URL there too (guidelinekg.bulk_data.patient_bundle).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from pyspark.sql import SparkSession

from guidelinekg import distributed_cohorts, recommend_command
from guidelinekg.bulk_data import ndjson_lines, owner_of, read_directory, read_raw_line
from guidelinekg.cohorts import CSV_COLUMNS, CohortSettings, csv_rows, evaluate_partition
from guidelinekg.distributed_cohorts import (
    build_directory,
    chunk_lines,
    distributed_inputs,
    file_chunks,
    key_lines,
    key_links,
    newlines_before,
    scan_chunk,
)
from guidelinekg.fhir_identity import TYPE_ID_TAIL
from guidelinekg.fhir_import.importer import HANDLERS
from guidelinekg.grouping import file_groups
from guidelinekg.loading import InputError
from guidelinekg.patients import load_patient_input
from guidelinekg.spark_cohorts import add_spark_arguments, run_on_spark, run_spark, start_session
from guidelinekg.spark_input import HadoopFiles
from guidelinekg.synth_fhir import bundle_to_export_resources

# One Spark session (one JVM) for the module: with `pytest -n 2 --dist loadgroup` its tests
# stay in one worker process.
pytestmark = pytest.mark.xdist_group("spark")

FHIR = Path(__file__).parent / "data" / "fhir"
AS_OF = date(2026, 12, 1)
SETTINGS = CohortSettings(AS_OF)
MASTER = "local[2]"
BASE = "http://example.org/fhir/"
MRN = "https://example.org/test/mrn"
# Patients in both forms: the top-level Bundles (valid and invalid records) and records the
# shapes refuse. The subjectless resource of subjectless-resource-one-patient.json is its
# file's only patient's in a Bundle, and no one's in an export: it is a Bundle only.
BOTH_FORMS = sorted(path for path in FHIR.glob("*.json")
                    if path.name != "subjectless-resource-one-patient.json") + [
    FHIR / "invalid" / f"{name}.json" for name in
    ("dose-without-unit", "impossible-values", "negative-body-weight",
     "weight-unit-not-convertible")]
# Bundle files only: patients of several files joined by identifier or absolute reference
# (the union-find), two patients without identifiers, the subjectless resource.
BUNDLES_ONLY = [*sorted((FHIR / "identity").glob("*.json")),
                FHIR / "subjectless-resource-one-patient.json"]
# Lines added to the export that go to no patient: each gets a refusal line
STRAY_LINES = [
    b"this line is not JSON {",
    json.dumps({"resourceType": "Observation", "id": "no-subject", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                "valueQuantity": {"value": 70, "unit": "kg"}}).encode(),
    # Latin-1, not UTF-8 (Hadoop's text reader makes it U+FFFD: read as not UTF-8 alike)
    json.dumps({"resourceType": "Observation", "id": "latin-1", "status": "final",
                "note": [{"text": "r\u00e9vis\u00e9e"}]}).encode().replace(b"\\u00e9", b"\xe9"),
]
CHUNK = 8 * 1024  # small chunks: the export's files are read by several tasks


# --------------------------------------------------------------------------------------
# The cohort in both forms
# --------------------------------------------------------------------------------------


def _names(entry: dict[str, Any]) -> list[str]:
    resource = entry["resource"]
    names = [f"{resource['resourceType']}/{resource['id']}"] if resource.get("id") else []
    if isinstance(entry.get("fullUrl"), str):
        names.append(entry["fullUrl"])
    return names


def _rewrite(value: Any, renamed: dict[str, str]) -> None:
    if isinstance(value, list):
        for item in value:
            _rewrite(item, renamed)
    elif isinstance(value, dict):
        reference = value.get("reference")
        if isinstance(reference, str):
            match = TYPE_ID_TAIL.search(reference)
            tail = f"{match.group(1)}/{match.group(2)}" if match else None
            target = renamed.get(reference) or (renamed.get(tail) if tail else None)
            if target is not None:
                value["reference"] = target
        for item in value.values():
            _rewrite(item, renamed)


def _subject_resolves(resource: dict[str, Any]) -> bool:
    subject = resource.get("subject") or resource.get("patient")
    return subject is None or str(subject.get("reference", "")).startswith(BASE)


def restful_bundle(bundle: dict[str, Any], prefix: str, mrn: str) -> dict[str, Any]:
    """The Bundle with ids unique in the cohort (``<prefix>-<id>``), RESTful fullUrls and
    references, and an identifier on its Patient; a resource whose subject names no
    resource of the Bundle (the importer ignores it) is left out."""
    bundle = copy.deepcopy(bundle)
    renamed: dict[str, str] = {}
    for entry in bundle["entry"]:
        resource = entry["resource"]
        old_names = _names(entry)
        local = resource.get("id") or entry["fullUrl"].rsplit(":", 1)[-1]
        resource["id"] = f"{prefix}-{local}"[:64]
        entry["fullUrl"] = f"{BASE}{resource['resourceType']}/{resource['id']}"
        renamed.update(dict.fromkeys(old_names, entry["fullUrl"]))
    for entry in bundle["entry"]:
        _rewrite(entry["resource"], renamed)
        if entry["resource"]["resourceType"] == "Patient":
            entry["resource"]["identifier"] = [{"system": MRN, "value": mrn},
                                               *entry["resource"].get("identifier", [])]
    bundle["entry"] = [entry for entry in bundle["entry"]
                       if _subject_resolves(entry["resource"])]
    return bundle


def write_export(bundles: list[dict[str, Any]], folder: Path) -> list[tuple[str, int]]:
    """The Bundles as a Bulk Data export (one file per resource type, and the manifest
    naming the server), then a blank line and the stray lines at the end of
    Observation.ndjson; (file, line number) of each."""
    folder.mkdir(parents=True)
    by_type: dict[str, list[str]] = {}
    for bundle in bundles:
        for resource in bundle_to_export_resources(bundle):
            by_type.setdefault(resource["resourceType"], []).append(json.dumps(resource))
    for kind, lines in by_type.items():
        # Patient.ndjson starts with a byte order mark, as some exporters write one.
        (folder / f"{kind}.ndjson").write_text("\n".join(lines) + "\n", encoding=(
            "utf-8-sig" if kind == "Patient" else "utf-8"))
    manifest = {"transactionTime": "2026-12-01T00:00:00Z", "request": f"{BASE}$export",
                "requiresAccessToken": False, "error": [],
                "output": [{"type": kind, "url": f"{BASE}files/{kind}.ndjson"}
                           for kind in sorted(by_type)]}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    observations = folder / "Observation.ndjson"
    with observations.open("ab") as out:
        out.write(b"\n" + b"\n".join(STRAY_LINES) + b"\n")
    first = len(by_type["Observation"]) + 2
    return [(str(observations), first + index) for index in range(len(STRAY_LINES))]


class Cohort:
    """The cohort in a folder: ``bundles/`` (Bundle files) and ``export/`` (NDJSON)."""

    def __init__(self, root: Path) -> None:
        self.bundles = root / "bundles"
        self.export = root / "export"
        self.bundles.mkdir()
        restful = []
        for number, path in enumerate(BOTH_FORMS):
            bundle = restful_bundle(json.loads(path.read_text(encoding="utf-8")),
                                    f"b{number:02d}", path.stem)
            restful.append(bundle)
            # The first Bundle file starts with a byte order mark.
            (self.bundles / path.name).write_text(json.dumps(bundle), encoding=(
                "utf-8-sig" if number == 0 else "utf-8"))
        for path in BUNDLES_ONLY:
            (self.bundles / path.name).write_bytes(path.read_bytes())
        self.stray = write_export(restful, self.export)
        self.bundle_files = sorted(str(path) for path in self.bundles.glob("*.json"))
        self.both_forms = {f"urn:guidelinekg:patient:{quote(MRN, safe='')}:{path.stem}"
                           for path in BOTH_FORMS}


def _by_patient(lines: list[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """Lines by (patient, guideline); a patient's lines are one each."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for line in lines:
        document = json.loads(line)
        key = (document["patient"], document.get("guideline") or "refused")
        assert key not in found, f"two lines for {key}"
        found[key] = document
    return found


def _read_lines(folder: Path) -> list[str]:
    return [line for part in sorted(folder.glob("part-*"))
            for line in part.read_text(encoding="utf-8").splitlines() if line]


# --------------------------------------------------------------------------------------
# The runs: one Spark session for the module
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    scratch = Path(tempfile.mkdtemp(prefix="guidelinekg-test-spark-"))
    session = start_session(MASTER, scratch)
    yield session
    session.stop()
    shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Cohort:
    return Cohort(tmp_path_factory.mktemp("cohort"))


@pytest.fixture(scope="module")
def single_machine(cohort: Cohort) -> list[str]:
    """The cohort run on one machine over the same Bundle files."""
    graph = load_patient_input(cohort.bundle_files, quiet=True).graph
    return evaluate_partition(graph, SETTINGS).lines


@pytest.fixture(scope="module")
def on_spark_bundles(spark: SparkSession, cohort: Cohort) -> list[str]:
    output = cohort.bundles.parent / "out-bundles"
    summary = run_on_spark([cohort.bundles], SETTINGS, MASTER, output, "jsonl",
                           partition_size=4)
    assert summary.lines == len(_read_lines(output))
    return _read_lines(output)


@pytest.fixture(scope="module")
def on_spark_ndjson(spark: SparkSession, cohort: Cohort) -> list[str]:
    output = cohort.export.parent / "out-ndjson"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(distributed_cohorts, "CHUNK_BYTES", CHUNK)
        run_on_spark([cohort.export], SETTINGS, MASTER, output, "jsonl", partition_size=4)
    return _read_lines(output)


@pytest.fixture(scope="module")
def parquet_run(spark: SparkSession, cohort: Cohort) -> tuple[int, str, Path]:
    """The command's function (run_spark) on the export, as Parquet: exit code, stderr."""
    parser = argparse.ArgumentParser()
    recommend_command.add_arguments(parser)
    with contextlib.suppress(argparse.ArgumentError):  # recommend_command adds them itself
        add_spark_arguments(parser)
    output = cohort.export.parent / "out-parquet"
    args = parser.parse_args([str(cohort.export), "--as-of", AS_OF.isoformat(),
                              "--spark", MASTER, "--spark-output", str(output),
                              "--spark-format", "parquet", "--partition-size", "3"])
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = run_spark(args)
    return code, stderr.getvalue(), output


# --------------------------------------------------------------------------------------
# Spark gives what one machine gives
# --------------------------------------------------------------------------------------


def test_spark_over_bundles_gives_the_single_machine_lines(
        on_spark_bundles: list[str], single_machine: list[str]) -> None:
    spark_lines, single_lines = _by_patient(on_spark_bundles), _by_patient(single_machine)
    assert sorted(spark_lines) == sorted(single_lines)
    for key, expected in single_lines.items():
        assert spark_lines[key] == expected, key
    # every patient of the cohort: both forms', the files joined by identifier or by
    # absolute reference (one patient each), the two without identifiers, the subjectless
    assert len({patient for patient, _ in spark_lines}) == len(BOTH_FORMS) + 5


def test_invalid_records_are_refused_alike(on_spark_bundles: list[str],
                                           single_machine: list[str], cohort: Cohort) -> None:
    refused = {document["patient"]: document for document in map(json.loads, on_spark_bundles)
               if document.get("refused")}
    expected = {document["patient"]: document for document in map(json.loads, single_machine)
                if document.get("refused")}
    assert refused == expected
    assert len(refused) >= 5  # a top-level record and the four of invalid/
    assert all(document["violations"] for document in refused.values())


def test_an_export_gives_the_lines_of_the_same_patients_as_bundles(
        on_spark_ndjson: list[str], on_spark_bundles: list[str], cohort: Cohort) -> None:
    from_export = _by_patient([line for line in on_spark_ndjson
                               if json.loads(line)["patient"] is not None])
    from_bundles = {key: document for key, document in _by_patient(on_spark_bundles).items()
                    if key[0] in cohort.both_forms}
    assert {patient for patient, _ in from_export} == cohort.both_forms
    assert sorted(from_export) == sorted(from_bundles)
    for key, expected in from_bundles.items():
        assert from_export[key] == expected, key


def test_lines_of_an_export_that_go_to_no_patient_are_refusal_lines(
        on_spark_ndjson: list[str], cohort: Cohort) -> None:
    nobody = [document for document in map(json.loads, on_spark_ndjson)
              if document["patient"] is None]
    assert all(d["refused"] is True and d["because"] and d["line"] for d in nobody)
    stray = sorted((d for d in nobody if d["source"].endswith("Observation.ndjson")),
                   key=lambda d: d["line"])
    assert [(d["source"], d["line"]) for d in stray] == cohort.stray
    assert "not a FHIR resource" in stray[0]["because"]
    assert stray[1]["resource"] == "Observation/no-subject"
    assert "names no patient" in stray[1]["because"]
    latin_1 = STRAY_LINES[2].index("é".encode("latin-1")) + 1
    assert stray[2]["because"] == (f"the line is not UTF-8 text (from byte {latin_1}), so not "
                                   "a FHIR resource")
    # a resource of a type no fact reads (the Practitioner a Bundle named) has its line too
    others = [d for d in nobody if d not in stray]
    assert [d["resource"].split("/")[0] for d in others] == ["Practitioner"]
    assert "no patient fact is read from this type" in others[0]["because"]


def test_an_export_error_and_an_unread_error_file_are_said_on_spark(
        spark: SparkSession, tmp_path: Path) -> None:
    """As on one machine (test_bulk_data_exports): the error a given error file reports
    refuses the patient it names; an error file the manifest lists that is not in the input
    has a line of its own, the union of the input's problems with the patients' groups."""
    from guidelinekg.synth_fhir import FhirOptions, synthesize_fhir, write_ndjson

    export = tmp_path / "export"
    export.mkdir()
    write_ndjson(synthesize_fhir(FhirOptions(patients=3, seed=5)), export)
    first = json.loads((export / "Patient.ndjson").read_text(encoding="utf-8").splitlines()[0])
    (export / "OperationOutcome.ndjson").write_text(json.dumps({
        "resourceType": "OperationOutcome", "issue": [{
            "severity": "error", "code": "processing",
            "diagnostics": f"Observation of Patient/{first['id']} not exported"}]}) + "\n",
        encoding="utf-8")
    manifest = json.loads((export / "manifest.json").read_text(encoding="utf-8"))
    manifest["error"] = [{"type": "OperationOutcome", "url": "OperationOutcome.ndjson"},
                         {"type": "OperationOutcome", "url": "more-errors.ndjson"}]
    (export / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    output = tmp_path / "out"
    run_on_spark([export], SETTINGS, MASTER, output, "jsonl", partition_size=2)
    nobody = [document for document in map(json.loads, _read_lines(output))
              if document["patient"] is None]
    assert sorted((d["source"].rsplit("/", 1)[-1], d["line"], d["resource"] or "")
                  for d in nobody) == [
        ("OperationOutcome.ndjson", 1, ""),
        ("OperationOutcome.ndjson", 1, f"Patient/{first['id']}"),
        ("manifest.json", None, "")]
    assert "'more-errors.ndjson' under error" in next(
        d for d in nobody if d["line"] is None)["because"]


def test_parquet_holds_the_same_rows_and_the_status_rows(
        spark: SparkSession, parquet_run: tuple[int, str, Path],
        on_spark_ndjson: list[str]) -> None:
    code, stderr, output = parquet_run
    results = spark.read.parquet(str(output / "results")).collect()
    assert sorted(row["document"] for row in results) == sorted(on_spark_ndjson)
    for row in results:
        document = json.loads(row["document"])
        assert (row["patient"], row["guideline"], row["refused"]) == (
            document.get("patient"), document.get("guideline"), bool(document.get("refused")))
    rows = spark.read.parquet(str(output / "status-rows")).collect()
    assert sorted(tuple(row[name] for name in CSV_COLUMNS) for row in rows) == sorted(
        row for line in on_spark_ndjson for row in csv_rows(line))
    # refused records and stray lines: exit 1, and the summary a cohort run gives
    assert code == 1
    assert "patients," in stderr and "refused" in stderr and "Violation" in stderr
    assert "given to no patient" in stderr


# --------------------------------------------------------------------------------------
# The pieces, without Spark
# --------------------------------------------------------------------------------------


def test_chunks_give_every_line_once_with_its_number(cohort: Cohort) -> None:
    files = sorted(str(path) for path in cohort.export.glob("*.ndjson"))
    chunks = file_chunks(files, 1000)
    assert len(chunks) > len(files)  # several chunks a file
    scans = [scan_chunk(chunk, files[chunk.index]) for chunk in chunks]
    assert build_directory(scans, files) == read_directory([Path(f) for f in files])
    before = newlines_before(scans)
    read = [(files[chunk.index], number, read_raw_line(raw, files[chunk.index])[0])
            for chunk in chunks
            for number, _, raw in chunk_lines(files[chunk.index], chunk, before[chunk])
            if raw is not None and raw.strip()]
    whole = [(path, number, text) for path in files
             for number, _, text in ndjson_lines(Path(path))]
    assert read == whole


def test_lines_are_keyed_by_export_and_patient(cohort: Cohort) -> None:
    files = sorted(str(path) for path in cohort.export.glob("*.ndjson"))
    directory = read_directory([Path(f) for f in files])
    clinical = frozenset(HANDLERS)
    keyed = [key for chunk in file_chunks(files)
             for key, _ in key_lines(chunk, 0, files[chunk.index], files[chunk.index],
                                     directory, clinical)]
    expected = []
    for path in files:
        for number, resource, _ in ndjson_lines(Path(path)):
            key, problem = owner_of(path, number, resource, directory, clinical,
                                    export=str(cohort.export))
            if key is not None:
                assert key[0] == str(cohort.export)  # each patient's first Patient is there
                expected.append(key)
            elif problem is not None:
                expected.append(("", f"{files.index(path)}:{number}"))
    assert keyed == expected


def test_an_export_is_read_with_its_manifest_and_alone(cohort: Cohort) -> None:
    found = distributed_inputs([cohort.export])
    assert found.kind == "ndjson" and found.servers == {str(cohort.export): BASE}
    assert all(source.endswith(".ndjson") for source in found.sources)
    assert distributed_inputs([cohort.bundles]).kind == "bundles"
    with pytest.raises(InputError, match="not both"):
        distributed_inputs([cohort.export, cohort.bundle_files[0]])


def test_files_that_share_a_key_are_one_group() -> None:
    keys = [["a"], ["b"], ["c", "a"], [], ["b", "d"], ["d"], ["e"], ["d", "a"]]
    files: dict[str, list[int]] = {}
    for index, found in enumerate(keys):
        for key in found:
            files.setdefault(key, []).append(index)
    links = [link for indexes in files.values() for link in key_links(indexes)]
    assert file_groups(len(keys), links) == [[0, 1, 2, 4, 5, 7], [3], [6]]
    assert file_groups(3, []) == [[0], [1], [2]]


# --------------------------------------------------------------------------------------
# URI input: read through the Spark session's Hadoop file systems. file:// URIs go
# through Hadoop's LocalFileSystem, the path an hdfs:// or s3a:// input takes (there is no
# HDFS or object store here).
# --------------------------------------------------------------------------------------


def _uri(path: Path) -> str:
    return f"file://{path}"


def _as_local(lines: list[str], folder: Path) -> list[str]:
    """The lines with the folder's URI, wherever it names a source, as its local path; each
    line parsed and written back with sorted keys, the lines sorted."""
    return sorted(json.dumps(json.loads(line.replace(_uri(folder), str(folder))),
                             sort_keys=True) for line in lines)


@pytest.fixture(scope="module")
def uri_ndjson(spark: SparkSession, cohort: Cohort) -> list[str]:
    output = cohort.export.parent / "out-uri-ndjson"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(distributed_cohorts, "CHUNK_BYTES", CHUNK)  # several splits a file
        run_on_spark([_uri(cohort.export)], SETTINGS, MASTER, output, "jsonl",
                     partition_size=4)
    return _read_lines(output)


@pytest.fixture(scope="module")
def uri_bundles(spark: SparkSession, cohort: Cohort) -> list[str]:
    output = cohort.bundles.parent / "out-uri-bundles"
    run_on_spark([_uri(cohort.bundles)], SETTINGS, MASTER, output, "jsonl", partition_size=4)
    return _read_lines(output)


def test_an_export_given_as_a_uri_gives_the_lines_of_its_local_path(
        uri_ndjson: list[str], on_spark_ndjson: list[str], cohort: Cohort) -> None:
    assert _as_local(uri_ndjson, cohort.export) == sorted(
        json.dumps(json.loads(line), sort_keys=True) for line in on_spark_ndjson)
    # the sources are the URI as given, joined with the file's path; the line numbers are
    # those of the file, over the splits Hadoop read it in
    stray = sorted(((d["source"], d["line"]) for d in map(json.loads, uri_ndjson)
                    if d["patient"] is None and d["source"].endswith("Observation.ndjson")),
                   key=lambda found: found[1])
    assert stray == [(_uri(Path(source)), line) for source, line in cohort.stray]


def test_bundle_files_given_as_a_uri_give_the_lines_of_their_local_path(
        uri_bundles: list[str], on_spark_bundles: list[str], cohort: Cohort) -> None:
    assert _as_local(uri_bundles, cohort.bundles) == sorted(
        json.dumps(json.loads(line), sort_keys=True) for line in on_spark_bundles)


def test_hidden_files_and_folders_below_a_uri_are_skipped(
        spark: SparkSession, cohort: Cohort, tmp_path: Path) -> None:
    folder = tmp_path / "cohort"
    for name in (".cache", "_meta", "sub [1]"):
        (folder / name).mkdir(parents=True)
    first, second = BOTH_FORMS[0], BOTH_FORMS[1]
    shutil.copy(cohort.bundles / first.name, folder / "a.json")
    # a name Hadoop would read as a glob or a list of paths, were it not escaped
    shutil.copy(cohort.bundles / second.name, folder / "sub [1]" / "b, {c}.json")
    for hidden in (".hidden.json", ".cache/d.json", "_meta/e.json", "_SUCCESS.json"):
        (folder / hidden).write_text("not JSON {", encoding="utf-8")
    (folder / "notes.txt").write_text("not FHIR", encoding="utf-8")
    # files that cannot be read: said as when they are read locally
    (folder / "empty.json").write_bytes(b"")
    (folder / "not-json.json").write_text("not JSON {", encoding="utf-8")
    uri = _uri(folder)
    found = distributed_inputs([uri], HadoopFiles(spark))
    assert (found.kind, found.hadoop) == ("bundles", True)
    assert found.sources == [f"{uri}/{name}" for name in
                             ("a.json", "empty.json", "not-json.json", "sub [1]/b, {c}.json")]
    assert found.sizes == [(folder / name).stat().st_size for name in
                           ("a.json", "empty.json", "not-json.json", "sub [1]/b, {c}.json")]
    run_on_spark([uri + "/"], SETTINGS, MASTER, tmp_path / "out", "jsonl")
    documents = [json.loads(line) for line in _read_lines(tmp_path / "out")]
    assert {d["patient"] for d in documents} == {None} | {
        f"urn:guidelinekg:patient:{quote(MRN, safe='')}:{path.stem}" for path in (first, second)}
    unread = sorted((d["source"], d["because"]) for d in documents if d["patient"] is None)
    assert [source for source, _ in unread] == [f"{uri}/empty.json", f"{uri}/not-json.json"]
    assert unread[0][1] == "the file cannot be read: the file is empty"
    assert unread[1][1].startswith("the file cannot be read: not valid JSON")


def _command(arguments: list[str], spark: bool = True) -> tuple[int, str]:
    """``guidelinekg recommend ARGUMENTS --spark MASTER`` (without ``--spark`` when not
    ``spark``) in this process (in the module's session): the exit code and standard error."""
    from guidelinekg.cli import main

    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = main(["recommend", *arguments, "--as-of", AS_OF.isoformat(),
                     *(["--spark", MASTER] if spark else [])])
    return code, stderr.getvalue()


def test_a_uri_that_does_not_exist_is_said_as_a_missing_path_is(
        spark: SparkSession, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    output = ["--spark-output", str(tmp_path / "out")]
    local_code, local_said = _command([str(missing), *output])
    code, said = _command([_uri(missing), *output])
    assert code == local_code == 2
    assert f"error: {missing}: no such file or folder" in local_said
    assert f"error: {_uri(missing)}: no such file or folder" in said
    assert not (tmp_path / "out").exists()
    with pytest.raises(InputError, match="not both in one run"):
        distributed_inputs([tmp_path, _uri(tmp_path)], HadoopFiles(spark))


def test_a_uri_of_a_scheme_hadoop_does_not_know_is_a_clear_error(
        spark: SparkSession, tmp_path: Path) -> None:
    code, said = _command(["nosuchfs://x/y", "--spark-output", str(tmp_path / "out")])
    assert code == 2
    assert "error: nosuchfs://x/y: Hadoop has no file system for nosuchfs://" in said
    assert "Traceback" not in said and "\tat " not in said and "Exception" not in said


def test_a_uri_without_spark_is_refused_as_spark_input_only(tmp_path: Path) -> None:
    """One machine's runs read local files: a URI is said to be Spark's, not a missing
    file with its // folded."""
    for extra in ([], ["--format", "jsonl"]):
        code, said = _command(["hdfs://namenode/cohort", *extra], spark=False)
        assert code == 2
        assert "error: hdfs://namenode/cohort: a URI is read only by a Spark run" in said


# --------------------------------------------------------------------------------------
# Without Java
# --------------------------------------------------------------------------------------

NO_JAVA_RUN = """
import argparse, sys
from guidelinekg import recommend_command, spark_cohorts
parser = argparse.ArgumentParser()
recommend_command.add_arguments(parser)
try:
    spark_cohorts.add_spark_arguments(parser)
except argparse.ArgumentError:  # recommend_command adds them already
    pass
sys.exit(spark_cohorts.run_spark(parser.parse_args(sys.argv[1:])))
"""


@pytest.mark.parametrize("java_home", [None, "/nonexistent/jdk"])
def test_without_java_the_run_says_so_and_exits_2(tmp_path: Path, java_home: str | None
                                                   ) -> None:
    env = {key: value for key, value in os.environ.items()
           if key not in ("JAVA_HOME", "PATH", "SPARK_HOME")}
    env["PATH"] = str(tmp_path)  # no java there
    if java_home:
        env["JAVA_HOME"] = java_home
    done = subprocess.run(
        [sys.executable, "-c", NO_JAVA_RUN, str(FHIR / "lung-cancer-other-primary.json"),
         "--spark", MASTER, "--spark-output", str(tmp_path / "out")],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert "Java 17" in done.stderr and "JAVA_HOME" in done.stderr
    if java_home:
        assert java_home in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()
