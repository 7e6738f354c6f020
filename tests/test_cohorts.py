"""Cohort runs (`recommend --format jsonl`, `--partition-size`, `--workers`): the same results
as the whole cohort, whatever the partitioning, with each invalid record refused on its own
and said so, and the triples that name no patient refused too."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from rdflib import Graph, URIRef
from rdflib.namespace import RDF

from guidelinekg.cohorts import CohortSettings, evaluate_cohort, patient_partitions
from guidelinekg.derivation import derive
from guidelinekg.loading import PREFIXES, parse_rdf_file
from guidelinekg.resources import examples_dir
from guidelinekg.synth import SynthOptions, synthesize, templates_from
from json_contract import cohort_line, validation_line, validation_report

VIGNETTES = Path(__file__).parent / "vignettes"
AS_OF = date(2026, 12, 1)
GKG = PREFIXES["gkg"]
PATIENT = URIRef(GKG + "Patient")


def _vignette_cohort(count: int = 12) -> Graph:
    graph = Graph()
    for path in sorted(VIGNETTES.glob("*.ttl"))[:count]:
        graph += parse_rdf_file(path)
    return graph


def _lines(graph: Graph, size: int, workers: int = 1) -> list[dict]:
    outcomes = evaluate_cohort(graph, CohortSettings(AS_OF), size, workers)
    return sorted((cohort_line(line) for outcome in outcomes for line in outcome.lines),
                  key=lambda d: (d["patient"] or "", d.get("guideline", "")))


@pytest.fixture(scope="module")
def cohort() -> Graph:
    return _vignette_cohort()


@pytest.fixture(scope="module")
def whole(cohort: Graph) -> list[dict]:
    results = derive(cohort, AS_OF).patients
    return sorted((r.to_json() for r in results), key=lambda d: (d["patient"], d["guideline"]))


@pytest.mark.parametrize("size", [1, 5, 1000])
def test_partitions_of_any_size_give_the_whole_cohorts_results(
        cohort: Graph, whole: list[dict], size: int) -> None:
    assert _lines(cohort, size) == whole


def test_worker_processes_give_the_same_results(cohort: Graph, whole: list[dict]) -> None:
    assert _lines(cohort, 4, workers=2) == whole


def test_an_invalid_record_refuses_its_patient_only() -> None:
    templates = templates_from(parse_rdf_file(
        examples_dir() / "patients" / "hr-positive-her2-negative-bone-only.ttl"))
    graph = Graph()
    for triples in synthesize(SynthOptions(patients=12, seed=4, invalid_rate=0.3,
                                           incomplete_rate=0.0), templates):
        for triple in triples:
            graph.add(triple)
    lines = _lines(graph, 5)
    refused = {d["patient"] for d in lines if d.get("refused")}
    assert refused  # the seed gives some invalid records
    for line in lines:
        if line.get("refused"):
            assert line["violations"] and all(v["shape"] for v in line["violations"])
            assert "nothing is derived" in line["because"]
    derived = {d["patient"] for d in lines if not d.get("refused")}
    assert refused.isdisjoint(derived)
    assert len(refused | derived) == 12
    # The derived patients get exactly what a run on their records alone gives.
    kept = Graph()
    for partition in patient_partitions(graph, 1):
        patients = {str(p) for p in partition.subjects(RDF.type, PATIENT)}
        if patients and not patients & refused:
            kept += partition
    alone = sorted((r.to_json() for r in derive(kept, AS_OF).patients),
                   key=lambda d: (d["patient"], d["guideline"]))
    assert [d for d in lines if not d.get("refused")] == alone


def test_patients_sharing_an_item_stay_together_and_orphans_are_kept() -> None:
    graph = _vignette_cohort(3)
    patients = sorted(graph.subjects(RDF.type, PATIENT), key=str)
    shared = URIRef("http://example.org/shared-item")
    orphan = URIRef("http://example.org/orphan-item")
    graph.add((shared, URIRef(GKG + "subject"), patients[0]))
    graph.add((shared, URIRef(GKG + "subject"), patients[2]))
    graph.add((orphan, RDF.type, URIRef(GKG + "Observation")))
    parts = list(patient_partitions(graph, 1))
    together = [p for p in parts if (shared, None, None) in p]
    assert len(together) == 1
    assert {patients[0], patients[2]} <= set(together[0].subjects(RDF.type, PATIENT))
    assert (orphan, RDF.type, URIRef(GKG + "Observation")) in parts[-1]
    assert sum(len(p) for p in parts) == len(graph)
    lines = _lines(graph, 1)
    orphans = [d for d in lines if d.get("refused") and d["patient"] is None]
    assert len(orphans) == 1 and "name no patient" in orphans[0]["because"]


def test_the_command_writes_json_lines_and_exits_1_when_a_patient_is_refused(
        tmp_path: Path) -> None:
    cohort = tmp_path / "cohort.nt"
    subprocess.run([sys.executable, "-m", "guidelinekg.cli", "synth", "--patients", "20",
                    "--seed", "11", "--invalid", "0.2", "-o", str(cohort)], check=True,
                   capture_output=True, timeout=300)
    result = subprocess.run([sys.executable, "-m", "guidelinekg.cli", "recommend",
                             str(cohort), "--as-of", "2026-12-01", "--partition-size", "6",
                             "--workers", "2"], capture_output=True, text=True,
                            timeout=600, check=False)
    lines = [cohort_line(line) for line in result.stdout.splitlines()]
    refused = [d for d in lines if d.get("refused")]
    assert result.returncode == (1 if refused else 0), result.stderr
    assert len({d["patient"] for d in lines}) == 20
    assert "20 patients" in result.stderr
    for document in lines:
        if not document.get("refused"):
            assert document["population"]["status"] in {"in", "out", "undetermined"}


def test_a_cohort_run_refuses_an_unknown_guideline_before_it_starts() -> None:
    example = examples_dir() / "patients" / "hr-positive-her2-negative-bone-only.ttl"
    result = subprocess.run([sys.executable, "-m", "guidelinekg.cli", "recommend",
                             str(example), "--format", "jsonl", "--guideline", "nowhere"],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 2
    assert "no guideline named 'nowhere'" in result.stderr


@pytest.mark.parametrize(("command", "options", "said"), [
    ("recommend", ["--format", "jsonl", "--workers", "0"], "--workers: must be a whole number "
                                                            "from 1 to 64, not 0"),
    ("recommend", ["--workers", "65"], "--workers: must be a whole number from 1 to 64, not 65"),
    ("recommend", ["--partition-size", "-1"], "--partition-size: must be a whole number from 0 "
                                              "to 100000, not -1"),
    ("validate", ["--format", "jsonl", "--partition-size", "100001"],
     "--partition-size: must be a whole number from 0 to 100000, not 100001"),
    ("recommend", ["--spark", "local[1]", "--spark-output", "{tmp}/out", "--partition-size",
                   "1000000"], "--partition-size: must be a whole number from 0 to 100000"),
])
def test_a_cohort_run_refuses_sizes_out_of_bounds_before_it_starts(
        command: str, options: list[str], said: str, tmp_path: Path) -> None:
    example = examples_dir() / "patients" / "hr-positive-her2-negative-bone-only.ttl"
    result = subprocess.run([sys.executable, "-m", "guidelinekg.cli", command, str(example),
                             *[option.format(tmp=tmp_path) for option in options]],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 2, result.stderr
    assert said in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "out").exists()


def test_csv_rows_flatten_the_json_lines_and_the_summary_counts_shapes(tmp_path: Path) -> None:
    import csv
    import io

    from guidelinekg.cohorts import CSV_COLUMNS, write_lines

    graph = _vignette_cohort(6)
    outcomes = list(evaluate_cohort(graph, CohortSettings(AS_OF), 3, 1))
    out = io.StringIO()
    summary = write_lines(outcomes, out, as_csv=True)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert tuple(rows[0]) == CSV_COLUMNS
    documents = [cohort_line(line) for outcome in outcomes for line in outcome.lines]
    for document in documents:
        mine = [r for r in rows if r["patient"] == document["patient"]
                and r["guideline"] == document["guideline"]]
        statuses = {r["key"]: r["status"] for r in mine if r["result"] == "statement"}
        assert statuses == {o["key"]: o["status"] for o in document["recommendations"]}
        flags = {(r["key"], r["record_item"]) for r in mine if r["result"] == "contraindication"}
        assert flags == {(c["key"], c["record_item"]) for c in document["contraindicated"]}
        [population] = [r for r in mine if r["result"] == "population"]
        assert population["status"] == document["population"]["status"]
    assert summary.patients == 6
    assert sum(count for (severity, _), count in summary.shapes.items()
               if severity == "Warning") == summary.warnings
    assert all(line.strip() for line in summary.shape_lines())


def test_one_partition_with_patients_and_triples_of_no_patient_refuses_only_those() -> None:
    """evaluate_partition called on a graph that mixes both (the Python API allows it): the
    triples of no patient are refused in their line, the patients derived."""
    from guidelinekg.cohorts import evaluate_partition

    graph = _vignette_cohort(3)
    orphan = URIRef("http://example.org/orphan-item")
    graph.add((orphan, RDF.type, URIRef(GKG + "Observation")))
    outcome = evaluate_partition(graph, CohortSettings(AS_OF))
    documents = [cohort_line(line) for line in outcome.lines]
    refused = [d for d in documents if d.get("refused")]
    assert [d["patient"] for d in refused if d["patient"] is None] == [None]
    derived = {d["patient"] for d in documents if not d.get("refused")}
    assert derived | {d["patient"] for d in refused} >= {
        str(p) for p in graph.subjects(RDF.type, PATIENT)}


def test_validate_streams_a_cohort_with_the_results_of_the_whole(tmp_path: Path) -> None:
    """validate --format jsonl --workers 2: every result of the whole input's validation,
    one line each (the patient named), the results in brief on standard error, exit 1."""
    cohort = tmp_path / "cohort.nt"
    subprocess.run([sys.executable, "-m", "guidelinekg.cli", "synth", "--patients", "30",
                    "--seed", "5", "--invalid", "0.2", "-o", str(cohort)], check=True,
                   capture_output=True, timeout=300)
    whole = subprocess.run([sys.executable, "-m", "guidelinekg.cli", "validate", str(cohort),
                            "--format", "json"], capture_output=True, text=True, timeout=300,
                           check=False)
    streamed = subprocess.run([sys.executable, "-m", "guidelinekg.cli", "validate",
                               str(cohort), "--format", "jsonl", "--workers", "2",
                               "--partition-size", "4"], capture_output=True, text=True,
                              timeout=300, check=False)
    assert whole.returncode == streamed.returncode == 1, streamed.stderr
    expected = validation_report(whole.stdout)["results"]
    lines = [validation_line(line) for line in streamed.stdout.splitlines()]

    def key(result: dict) -> tuple:
        return (result["patient"], result["severity"], result["focus"], result["path"],
                result["value"], result["message"])

    assert sorted(map(key, lines)) == sorted(map(key, expected))
    assert {"Violation", "Warning"} <= {r["severity"] for r in lines}
    violations = {r["patient"] for r in lines if r["severity"] == "Violation"}
    assert (f"30 patients, {len(violations)} with violations, 0 input lines given to no "
            "patient") in streamed.stderr
    assert "Violation" in streamed.stderr.split("Results by shape:")[1]


def test_validate_of_a_cohort_without_patients_is_an_input_error(tmp_path: Path) -> None:
    data = tmp_path / "no-patient.nt"
    data.write_text('<http://example.org/a> <http://example.org/p> "x" .\n', encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "guidelinekg.cli", "validate", str(data),
                             "--format", "jsonl", "--quiet"], capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 2
    assert "no patient found (nothing is declared `a gkg:Patient`): nothing to validate" in \
        result.stderr


@pytest.mark.parametrize("form, name", [("ttl", "cohort.ttl"), ("ndjson", "export")])
def test_a_cohort_run_writes_the_same_bytes_whatever_the_string_hashing(
        tmp_path: Path, form: str, name: str) -> None:
    """A Turtle file is read whole into a graph and FHIR is imported into one, and a graph's
    order follows Python's string hashing, which changes from process to process; the
    partitions, and so the order of the lines, must not."""
    import os

    cohort = tmp_path / name
    subprocess.run([sys.executable, "-m", "guidelinekg.cli", "synth", "--patients", "24",
                    "--seed", "3", "--format", form, "-o", str(cohort)], check=True,
                   capture_output=True, timeout=300)
    outputs = []
    for seed in ("1", "2"):
        result = subprocess.run(
            [sys.executable, "-m", "guidelinekg.cli", "recommend", str(cohort), "--as-of",
             "2026-12-01", "--format", "jsonl", "--partition-size", "5", "--quiet"],
            capture_output=True, timeout=600, check=False,
            env={**os.environ, "PYTHONHASHSEED": seed})
        assert result.returncode in (0, 1), result.stderr
        outputs.append(result.stdout)
    patients = [cohort_line(line)["patient"] for line in outputs[0].decode().splitlines()]
    assert len(set(patients)) == 24
    assert outputs[0] == outputs[1]


NO_PATIENT = Path(__file__).parent / "fixtures" / "reading-defects" / "no-patient.ttl"


@pytest.mark.parametrize("argv", [["--format", "jsonl"], ["--format", "csv"],
                                  ["--workers", "2"], []])
def test_recommend_on_input_without_a_patient_is_exit_2_in_every_mode(
        capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    # Red-team finding 9: the cohort run said "0 patients" and exit 0; the text mode exit 2.
    from guidelinekg import cli

    code = cli.main(["recommend", str(NO_PATIENT), *argv])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err == "guidelinekg recommend: no gkg:Patient in the input\n"


def test_validate_jsonl_on_input_without_a_patient_is_exit_2_before_any_output(
        capsys: pytest.CaptureFixture[str]) -> None:
    from guidelinekg import cli

    code = cli.main(["validate", str(NO_PATIENT), "--format", "jsonl"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err == (f"guidelinekg validate: error: {NO_PATIENT}: no patient found "
                            "(nothing is declared `a gkg:Patient`): nothing to validate\n")


@pytest.mark.parametrize("workers", [1, 2])
def test_a_refused_triple_that_redefines_a_guideline_term_changes_no_patients_results(
        tmp_path: Path, workers: int) -> None:
    """A triple naming no patient that makes the supplement a kind of bone radiotherapy is
    refused in its own line; the patient whose item uses that class is derived without it:
    its line is the one it gets without the triple (the RT-2 care gap stays)."""
    record = examples_dir() / "patients" / "hr-positive-her2-negative-bone-only.ttl"
    hostile = tmp_path / "hostile.ttl"
    hostile.write_text(
        record.read_text(encoding="utf-8") + "\n<https://w3id.org/guidelinekg/ontology#"
        "CalciumVitaminDSupplement> <http://www.w3.org/2000/01/rdf-schema#subClassOf> "
        "<https://w3id.org/guidelinekg/ontology#BoneRadiotherapy> .\n", encoding="utf-8")

    def lines(path: Path) -> list[dict]:
        done = subprocess.run(
            [sys.executable, "-m", "guidelinekg.cli", "recommend", str(path), "--format",
             "jsonl", "--as-of", AS_OF.isoformat(), "--quiet", "--workers", str(workers)],
            capture_output=True, text=True, timeout=300, check=False)
        return [cohort_line(line) for line in done.stdout.splitlines()]

    clean = lines(record)
    found = lines(hostile)
    assert [d["patient"] for d in found if d.get("refused")] == [None]
    assert [d for d in found if not d.get("refused")] == clean
    assert "RT-2" in [gap["key"] for gap in clean[0]["care_gaps"]]
