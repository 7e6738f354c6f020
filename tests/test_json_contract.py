"""The JSON contract against its schema: every vignette and example derived, one patient
and many, and a cohort run's lines (results and refusals)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import jsonschema
import pytest
from rdflib import Graph

from guidelinekg.cohorts import CohortSettings, evaluate_cohort
from guidelinekg.derivation import derive
from guidelinekg.loading import parse_rdf_file
from guidelinekg.recommend_output import to_json
from guidelinekg.resources import examples_dir
from json_contract import cohort_line, results_of, schema

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
