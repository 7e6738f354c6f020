"""The JSON contracts against their schemas: recommend's (every vignette and example
derived, one patient and many, a cohort run's lines: results and refusals) and validate's
(the report of conforming and violating records, a cohort run's lines: results and export
lines that belong to no patient), and wrong documents refused."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from rdflib import Graph

from guidelinekg.bulk_data import BulkProblem
from guidelinekg.cohorts import CohortSettings, evaluate_cohort, problem_line
from guidelinekg.derivation import derive
from guidelinekg.loading import parse_rdf_file
from guidelinekg.recommend_output import to_json
from guidelinekg.resources import examples_dir
from guidelinekg.validation import json_report, validate_patients
from json_contract import (
    cohort_line,
    definition,
    results_of,
    schema,
    validation_line,
    validation_report,
    validation_schema,
)

AS_OF = date(2026, 12, 1)
VIGNETTES = sorted((Path(__file__).parent / "vignettes").glob("*.ttl"))


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())


def test_one_patient_is_a_list_of_one() -> None:
    (document,) = results_of(to_json(derive(parse_rdf_file(VIGNETTES[0]), AS_OF)))
    assert next(iter(document)) == "population"


def test_every_vignette_gives_results_the_schema_accepts() -> None:
    graph = Graph()
    for path in VIGNETTES:
        graph += parse_rdf_file(path)
    documents = results_of(to_json(derive(graph, AS_OF)))
    assert len(documents) == len(VIGNETTES)
    statuses = {d["population"]["status"] for d in documents}
    assert statuses == {"in", "out", "undetermined"}
    assert any(d["contraindicated"] for d in documents)
    assert any(d["dose_checks"] for d in documents)


def test_cohort_lines_results_and_refusals_follow_the_schema() -> None:
    graph = Graph()
    for path in sorted((examples_dir() / "patients").glob("*.ttl")):
        graph += parse_rdf_file(path)
    lines = [cohort_line(line) for outcome in evaluate_cohort(graph, CohortSettings(AS_OF), 4, 1)
             for line in outcome.lines]
    assert any(line.get("refused") for line in lines)
    assert any("population" in line for line in lines)


def test_a_result_with_an_unknown_field_is_refused_by_the_schema() -> None:
    (document,) = results_of(to_json(derive(parse_rdf_file(VIGNETTES[0]), AS_OF)))
    document["surprise"] = 1
    with pytest.raises(jsonschema.ValidationError, match="surprise"):
        jsonschema.validate([document], schema())


# ---------------------------------------------------------------------------------------
# validate --format json and jsonl


def _examples() -> Graph:
    graph = Graph()
    for path in sorted((examples_dir() / "patients").glob("*.ttl")):
        graph += parse_rdf_file(path)
    return graph


@pytest.fixture(scope="module")
def report_of_the_examples() -> dict[str, Any]:
    """validate --format json of every example patient: violations, warnings and notes."""
    return validation_report(json_report(validate_patients(_examples())))


def test_the_validation_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(validation_schema())
    assert validation_schema()["$schema"] == schema()["$schema"]


def test_the_report_of_every_example_follows_the_schema(report_of_the_examples) -> None:
    report = report_of_the_examples
    assert report["conforms"] is False
    assert {r["severity"] for r in report["results"]} == {"Violation", "Warning", "Info"}
    assert any(r["fact"] for r in report["results"])
    assert any(r["path"] for r in report["results"])
    assert any(r["focus"].startswith("_:") for r in report["results"])


def test_a_conforming_report_follows_the_schema() -> None:
    graph = Graph()
    for path in sorted((examples_dir() / "patients" / "demo-cohort").glob("*.ttl")):
        graph += parse_rdf_file(path)
    report = validation_report(json_report(validate_patients(graph)))
    assert report["conforms"] is True
    assert report["summary"]["patients"] == 3
    assert report["results"]  # warnings: the record lacks facts the guideline reads


def test_validate_cohort_lines_and_export_lines_of_no_patient_follow_the_schema() -> None:
    settings = CohortSettings(AS_OF, validate_only=True)
    lines = [validation_line(line) for outcome in evaluate_cohort(_examples(), settings, 4, 1)
             for line in outcome.lines]
    assert {line["severity"] for line in lines} == {"Violation", "Warning", "Info"}
    # What validate --format jsonl writes first for an export's lines that name no patient.
    unowned = [validation_line(problem_line(problem)) for problem in (
        BulkProblem("export", 3, "Condition/c1", "it names no patient of the export"),
        BulkProblem("export", 1, "", "the line is not a FHIR resource"))]
    assert [line["resource"] for line in unowned] == ["Condition/c1", None]
    assert all(line["patient"] is None and line["refused"] is True for line in unowned)


def _without(document: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != key}


WRONG_REPORTS = {
    "no summary": lambda d: _without(d, "summary"),
    "no results": lambda d: _without(d, "results"),
    "a count missing": lambda d: {**d, "summary": _without(d["summary"], "warnings")},
    "a negative count": lambda d: {**d, "summary": {**d["summary"], "infos": -1}},
    "a result without its severity": lambda d: {
        **d, "results": [_without(d["results"][0], "severity"), *d["results"][1:]]},
    "an unknown severity": lambda d: {
        **d, "results": [{**d["results"][0], "severity": "Error"}, *d["results"][1:]]},
    "a severity in lower case": lambda d: {
        **d, "results": [{**d["results"][0], "severity": "violation"}, *d["results"][1:]]},
    "an unknown field in a result": lambda d: {
        **d, "results": [{**d["results"][0], "surprise": 1}, *d["results"][1:]]},
    "an unknown field at the top": lambda d: {**d, "surprise": 1},
    "conforms with violations": lambda d: {**d, "conforms": True},
    "conforms as a string": lambda d: {**d, "conforms": "false"},
    "an empty path": lambda d: {
        **d, "results": [{**d["results"][0], "path": ""}, *d["results"][1:]]},
}


@pytest.mark.parametrize("wrong", list(WRONG_REPORTS))
def test_the_validation_schema_refuses_a_wrong_report(report_of_the_examples, wrong) -> None:
    document = WRONG_REPORTS[wrong](copy.deepcopy(report_of_the_examples))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, validation_schema())


def test_a_report_without_violations_cannot_say_it_does_not_conform(
        report_of_the_examples) -> None:
    warnings_only = [r for r in report_of_the_examples["results"] if r["severity"] != "Violation"]
    document = {"conforms": False,
                "summary": {"patients": 1, "patients_with_violations": 0, "violations": 0,
                            "warnings": len(warnings_only), "infos": 0},
                "results": warnings_only}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, validation_schema())
    jsonschema.validate({**document, "conforms": True}, validation_schema())


@pytest.mark.parametrize("line", [
    {"patient": None, "severity": "Fatal", "focus": "urn:x", "path": None, "value": None,
     "fact": None, "message": "", "shape": "urn:s", "shape_name": "s", "constraint": None},
    {"patient": None, "severity": "Warning", "focus": "urn:x", "path": None, "value": None,
     "fact": None, "message": "", "shape": "urn:s", "shape_name": "s"},
    {"patient": "urn:p", "refused": True, "because": "why", "source": "export", "line": 1,
     "resource": None},
    {"patient": None, "refused": True, "because": "why", "source": "export", "line": 1},
    {"patient": None, "refused": True, "because": "why", "source": "export", "line": 1,
     "resource": None, "violations": []},
], ids=["unknown severity", "no constraint", "a patient's refusal", "no resource",
        "recommend's refusal"])
def test_the_validation_schema_refuses_a_wrong_line(line: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validation_line(json.dumps(line))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(line, definition(validation_schema(), "result"))
