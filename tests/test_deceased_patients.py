"""A deceased patient is outside every guideline's population, told first.

The record says so by gkg:deathDate (FHIR Patient.deceasedDateTime) or gkg:deceased
(Patient.deceasedBoolean). The fact ``deceased`` reads them at the evaluation date; a
record that records no death is a living patient's (its documented silence rule). The
vignettes deceased-* and death-date-after-evaluation-date hold the record-form cases; the
shapes' cases are in tests/data/patients/shapes-patients.ttl. Here: the FHIR import.
"""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from rdflib import Literal, Namespace, URIRef

import guidelinekg
from guidelinekg.fhir_import import import_fhir_json
from guidelinekg.loading import PREFIXES
from guidelinekg.namespaces import curie

XSD = Namespace(PREFIXES["xsd"])
GKG = Namespace(PREFIXES["gkg"])
BUNDLE = Path(__file__).parent / "data" / "fhir" / "bone-metastasis-in-remission-denosumab.json"
PATIENT = URIRef("urn:uuid:a4000004-0001-4000-8000-000000000001")
AS_OF = date(2026, 12, 1)


def bundle_with(**death: Any) -> dict[str, Any]:
    bundle = json.loads(BUNDLE.read_text(encoding="utf-8"))
    patient = copy.deepcopy(bundle)["entry"][0]["resource"]
    bundle["entry"][0]["resource"] = {**patient, **death}
    return bundle


def population(bundle: dict[str, Any]) -> tuple[str, list[str], set[str]]:
    """The population verdict, its reasons, and the statuses of the statements."""
    (result,) = guidelinekg.recommend(bundle, as_of=AS_OF)
    return (result.population.status, result.population.because,
            {outcome.status for outcome in result.recommendations})


@pytest.mark.parametrize(("death", "triple"), [
    ({"deceasedDateTime": "2026-10-01T08:30:00+01:00"}, (GKG.deathDate, Literal(
        "2026-10-01", datatype=XSD.date))),
    ({"deceasedBoolean": True}, (GKG.deceased, Literal(True))),
], ids=["date-time", "boolean"])
def test_a_recorded_death_puts_the_patient_outside_the_population(death, triple) -> None:
    result = import_fhir_json(bundle_with(**death))
    assert set(result.graph.predicate_objects(PATIENT)) >= {triple}
    status, because, statuses = population(bundle_with(**death))
    assert status == "out"
    assert because == ["alive at the evaluation date: no (deceased = yes; from "
                       f"{PATIENT})"]
    assert statuses == {"does-not-apply"}


def test_a_death_after_the_evaluation_date_leaves_the_patient_in_the_population() -> None:
    status, because, statuses = population(bundle_with(deceasedDateTime="2026-12-03"))
    assert status == "in"
    assert f"alive at the evaluation date: yes (deceased = no; from {PATIENT})" in because
    assert "applies" in statuses


@pytest.mark.parametrize("death", [{}, {"deceasedBoolean": False}], ids=["silent", "false"])
def test_a_living_patient_is_in_the_population(death) -> None:
    status, because, _ = population(bundle_with(**death))
    assert status == "in"
    shown = "not recorded" if not death else f"no; from {PATIENT}"
    assert f"alive at the evaluation date: yes (deceased = {shown})" in because


@pytest.mark.parametrize(("death", "shape"), [
    ({"deceasedDateTime": "2025"}, "psh:DeathDate"),
    ({"deceasedBoolean": "yes"}, "psh:Deceased"),
    ({"deceasedDateTime": "1950-01-01"}, "psh:DeathNotBeforeBirth"),
], ids=["year-only", "boolean-as-text", "before-birth"])
def test_a_death_that_cannot_be_read_refuses_the_record(death, shape) -> None:
    """A death given as a year alone, as text, or before the birth is refused with the
    shape named, never read as living nor guessed."""
    with pytest.raises(guidelinekg.InvalidRecordError) as refused:
        guidelinekg.recommend(bundle_with(**death), as_of=AS_OF)
    violated = {(curie(r.result.source_shape), r.result.focus)
                for r in refused.value.validation.results if r.result.severity == "Violation"}
    assert violated == {(shape, PATIENT)}
