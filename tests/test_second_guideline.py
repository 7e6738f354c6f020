"""A guideline is a folder: the example guideline of tests/fixtures/library (a test fixture,
not clinical content) is added beside the seed guideline through GUIDELINEKG_LIBRARY, with no
change to src/ or queries/, and every command handles both.

The example brings its own fact (current-smoker), observation class and intervention in its
own namespace, reuses statement keys of the seed guideline (GOAL-1, AVOID-1) and forbids a
domain action (HER2-targeted therapy) on a domain fact (HER2 status).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from json_contract import results_of, validation_report

LIBRARY = Path(__file__).resolve().parent / "fixtures" / "library"
PATIENTS = LIBRARY / "patients"
EXAMPLE = "https://w3id.org/guidelinekg/guideline/example/"
SEED = "https://w3id.org/guidelinekg/guideline/bcbm/"
SMOKER = "http://example.org/patients/smoker/patient"
UNRECORDED = "http://example.org/patients/unrecorded/patient"
MINOR = "http://example.org/patients/minor/patient"


def _run(*args: str, library: bool = True) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "GUIDELINEKG_LIBRARY"}
    if library:
        env["GUIDELINEKG_LIBRARY"] = str(LIBRARY)
    return subprocess.run([sys.executable, "-m", "guidelinekg.cli", *args], env=env,
                          capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture(scope="module")
def results() -> list[dict]:
    result = _run("recommend", str(PATIENTS), "--as-of", "2026-12-01", "--format", "json")
    assert result.returncode == 0, result.stderr
    return results_of(result.stdout)


def _result(results: list[dict], patient: str, guideline: str) -> dict:
    [found] = [r for r in results if r["patient"] == patient and r["guideline"] == guideline]
    return found


def _statuses(result: dict) -> dict[str, str]:
    return {o["key"]: o["status"] for o in result["recommendations"]}


# --------------------------------------------------------------------------------------
# check
# --------------------------------------------------------------------------------------


def test_check_covers_each_guideline_against_its_own_spec() -> None:
    result = _run("check", "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["graph"]["recommendations"] == 37 + 3
    coverage = {c["guideline"]: c for c in report["coverage"]}
    assert sorted(coverage) == ["bcbm", "example"]
    assert (coverage["example"]["statements_covered"], coverage["example"]["statements_total"]) \
        == (3, 3)
    assert coverage["example"]["statements"].endswith("guidelines/example/statements.tsv")
    assert coverage["bcbm"]["statements_covered"] == 37
    assert all(q["passed"] for q in report["qc"])  # GOAL-1 twice, in two guidelines: allowed


def test_check_of_one_guideline_only() -> None:
    result = _run("check", "--guideline", "example", "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert [c["guideline"] for c in report["coverage"]] == ["example"]
    assert report["graph"]["recommendations"] == 3


def test_the_library_option_adds_a_library_like_the_variable() -> None:
    result = _run("--library", str(LIBRARY), "check", "--guideline", "example", library=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Coverage (example: " in result.stdout
    missing = _run("--library", str(LIBRARY / "nowhere"), "check", library=False)
    assert missing.returncode == 2
    assert "which is not a folder" in missing.stderr


def test_check_refuses_an_unknown_guideline() -> None:
    result = _run("check", "--guideline", "nowhere")
    assert result.returncode == 2
    assert "no guideline named 'nowhere' (known: bcbm, example)" in result.stderr


def test_without_the_library_the_example_is_unknown() -> None:
    # Its records use the example guideline's terms, which nothing declares without it:
    # refused, never read as if the unknown item were not there.
    result = _run("recommend", str(PATIENTS / "minor-who-smokes.ttl"), "--as-of", "2026-12-01",
                  library=False)
    assert result.returncode == 1
    assert "SmokingStatusAssessment" in result.stderr
    unknown = _run("check", "--guideline", "example", library=False)
    assert unknown.returncode == 2
    assert "no guideline named 'example' (known: bcbm)" in unknown.stderr


# --------------------------------------------------------------------------------------
# validate
# --------------------------------------------------------------------------------------


def test_records_using_the_guidelines_own_terms_are_valid() -> None:
    result = _run("validate", str(PATIENTS), "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert validation_report(result.stdout)["conforms"] is True


def test_its_generated_completeness_warnings_name_its_own_fact() -> None:
    result = _run("validate", str(PATIENTS / "adult-smoking-status-unrecorded.ttl"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert ('Currently smokes is missing: SMOKE-1 of "Example guideline for tests: smoking '
            'cessation for patients with cancer" cannot be decided.') in result.stdout
    # The committed file is what the generator writes for it today.
    script = Path(__file__).resolve().parents[1] / "scripts" / "generate_completeness_shapes.py"
    env = {**os.environ, "GUIDELINEKG_LIBRARY": str(LIBRARY)}
    check = subprocess.run([sys.executable, str(script), "--check"], env=env,
                           capture_output=True, text=True, timeout=300, check=False)
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_guidelines_own_terms_are_checked_like_the_cores(tmp_path: Path) -> None:
    record = tmp_path / "misspelt.ttl"
    record.write_text(
        (PATIENTS / "minor-who-smokes.ttl").read_text(encoding="utf-8").replace(
            "example:SmokingStatusAssessment", "example:SmokingStatusAsessment"),
        encoding="utf-8")
    result = _run("validate", str(record))
    assert result.returncode == 1
    assert "SmokingStatusAsessment" in result.stdout


# --------------------------------------------------------------------------------------
# recommend
# --------------------------------------------------------------------------------------


def test_one_result_per_patient_and_guideline(results: list[dict]) -> None:
    assert sorted((r["patient"], r["guideline"]) for r in results) == sorted(
        (patient, guideline + "guideline") for patient in (SMOKER, UNRECORDED, MINOR)
        for guideline in (SEED, EXAMPLE))


def test_the_example_guideline_speaks_for_its_own_population(results: list[dict]) -> None:
    minor = _result(results, MINOR, EXAMPLE + "guideline")
    assert minor["population"]["status"] == "out"
    assert set(_statuses(minor).values()) == {"does-not-apply"}
    # The seed guideline knows nothing of a primary cancer here: undetermined, not out.
    assert _result(results, MINOR, SEED + "guideline")["population"]["status"] == \
        "undetermined"


def test_its_own_fact_decides_its_statements(results: list[dict]) -> None:
    smoker = _result(results, SMOKER, EXAMPLE + "guideline")
    assert _statuses(smoker) == {"SMOKE-1": "applies", "GOAL-1": "applies",
                                 "AVOID-1": "applies"}
    assert [g["key"] for g in smoker["care_gaps"]] == ["SMOKE-1"]
    unrecorded = _result(results, UNRECORDED, EXAMPLE + "guideline")
    assert _statuses(unrecorded) == {"SMOKE-1": "undetermined", "GOAL-1": "applies",
                                     "AVOID-1": "undetermined"}
    smoke_1 = next(o for o in unrecorded["recommendations"] if o["key"] == "SMOKE-1")
    assert smoke_1["missing"] == ["current-smoker"]
    # Its own intervention, planned, fills the care gap it would otherwise raise.
    assert unrecorded["care_gaps"] == []


def test_a_forbidden_domain_action_in_the_record_is_contraindicated(
        results: list[dict]) -> None:
    smoker = _result(results, SMOKER, EXAMPLE + "guideline")
    assert [(c["key"], c["status"], c["record_item"], c["recommendation"])
            for c in smoker["contraindicated"]] == [
        ("AVOID-1", "contraindicated", "http://example.org/patients/smoker/trastuzumab",
         EXAMPLE + "AVOID-1")]


def test_keys_repeat_across_guidelines_and_results_link_to_the_right_statement(
        results: list[dict]) -> None:
    for result in results:
        prefix = result["guideline"].removesuffix("guideline")
        for outcome in result["recommendations"]:
            assert outcome["recommendation"] == prefix + outcome["key"]
    seed_keys = {o["key"] for o in _result(results, SMOKER, SEED + "guideline")[
        "recommendations"]}
    assert {"GOAL-1", "AVOID-1"} <= seed_keys


def test_recommend_for_one_guideline() -> None:
    result = _run("recommend", str(PATIENTS), "--as-of", "2026-12-01", "--format", "json",
                  "--guideline", "example")
    assert result.returncode == 0, result.stderr
    assert {r["guideline"] for r in results_of(result.stdout)} == {EXAMPLE + "guideline"}
    unknown = _run("recommend", str(PATIENTS), "--as-of", "2026-12-01",
                   "--guideline", "nowhere")
    assert unknown.returncode == 2
    assert "no guideline named 'nowhere'" in unknown.stderr


def test_turtle_results_link_to_each_guidelines_statements() -> None:
    from rdflib import Graph, URIRef

    result = _run("recommend", str(PATIENTS / "smoker-her2-negative-on-trastuzumab.ttl"),
                  "--as-of", "2026-12-01", "--format", "turtle", "--guideline", "example")
    assert result.returncode == 0, result.stderr
    graph = Graph().parse(data=result.stdout, format="turtle")
    linked = {str(o) for o in graph.objects(None, URIRef(
        "https://w3id.org/guidelinekg/ontology#recommendation"))}
    assert linked == {EXAMPLE + key for key in ("SMOKE-1", "GOAL-1", "AVOID-1")}


def test_the_text_names_each_guideline_by_title_and_id() -> None:
    result = _run("recommend", str(PATIENTS / "minor-who-smokes.ttl"), "--as-of", "2026-12-01")
    assert result.returncode == 0, result.stderr
    assert ("guideline Example guideline for tests: smoking cessation for patients with cancer "
            f"(example), {EXAMPLE}guideline") in result.stdout
    assert "guideline Treatment for Stage 4 Breast Cancer with Bone Metastasis (bcbm)" \
        in result.stdout
