"""FHIR import, second review: subsetted copies, results inside a panel the code map does not
know, timing.event dates, an ordered and a calculated dose, failed requests of a batch.

Each test imports the example record (examples/fhir/hr-positive-bone-only-denosumab.json)
changed as the review's case was, and asserts the report lines, the triples, the refusal
message or the statuses guidelinekg.recommend derives from it.
"""

from __future__ import annotations

import json
from datetime import date as calendar_date
from typing import Any

import pytest
from rdflib import Literal, Namespace, URIRef
from rdflib.namespace import RDF

import guidelinekg
from fhir_refusals import SOURCE, assert_refused
from guidelinekg.fhir_import import HANDLERS, FhirImport, import_fhir_json
from guidelinekg.fhir_import.bundles import RECORD_TYPES
from guidelinekg.loading import PREFIXES
from guidelinekg.resources import resource_root

GKG = Namespace(PREFIXES["gkg"])
XSD = Namespace(PREFIXES["xsd"])
AS_OF = calendar_date(2026, 12, 1)
EXAMPLE = resource_root() / "examples" / "fhir" / "hr-positive-bone-only-denosumab.json"
BUNDLE = "hr-positive-bone-only-denosumab"
PRIMARY = "urn:uuid:1b000001-0002-4000-8000-000000000002"
METASTASIS = "urn:uuid:1b000001-0003-4000-8000-000000000003"
DENTAL = "urn:uuid:1b000001-0014-4000-8000-000000000014"
ORDER = "urn:uuid:1b000001-0015-4000-8000-000000000015"
PANEL = "urn:uuid:1b000001-0099-4000-8000-000000000099"
PATIENT = "urn:uuid:1b000001-0001-4000-8000-000000000001"
ORDER_INDEX = 14  # the denosumab order's entry in the example
LOINC = "http://loinc.org"
V3_OBSERVATION_VALUE = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
DOSE_RATE_TYPE = "http://terminology.hl7.org/CodeSystem/dose-rate-type"
ABSENT_READ = ("what it leaves out would be read as absent (a medicine not given, a finding "
               "not made), so the input is refused")


def example() -> dict[str, Any]:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


def lines(result: FhirImport, reference: str) -> list[tuple[str, str]]:
    return [(line.outcome, (f"{line.element}: " if line.element else "") + line.detail)
            for line in result.entries(reference)]


def order_dose(result: FhirImport) -> URIRef:
    (item,) = result.items_from(ORDER)
    (dose,) = result.graph.objects(item, GKG.hasDose)
    assert isinstance(dose, URIRef)
    return dose


def dose_check_statuses(bundle: dict[str, Any]) -> list[str]:
    (result,) = guidelinekg.recommend(bundle, as_of=AS_OF)
    return [check.status for check in result.dose_checks if check.record_item == ORDER]


# ---------------------------------------------------------------------------------------
# 1. A resource tagged SUBSETTED (a _summary or _elements copy) refuses the input
# ---------------------------------------------------------------------------------------

def subsetted_tag(system: str | None = V3_OBSERVATION_VALUE) -> dict[str, Any]:
    return {"code": "SUBSETTED"} if system is None else {"system": system, "code": "SUBSETTED"}


def subsetted(kind: str) -> str:
    return (f"the {kind} is a subsetted copy (meta.tag SUBSETTED, {V3_OBSERVATION_VALUE}): the "
            "server left elements out of it (a _summary or _elements fetch), and what it left "
            "out (a verificationStatus, a value, a dose) would be read as not given, so the "
            "input is refused. Fetch the full resource")


@pytest.mark.parametrize("system", [V3_OBSERVATION_VALUE, "http://hl7.org/fhir/v3/ObservationValue",
                                    None], ids=["r4", "r3", "no-system"])
def test_a_subsetted_condition_without_verification_status_refuses_the_input(
        system, tmp_path, capsys):
    """Without its verificationStatus the metastasis would be read as asserted (present)."""
    bundle = example()
    metastasis = bundle["entry"][2]["resource"]
    del metastasis["verificationStatus"]
    metastasis["meta"] = {"tag": [subsetted_tag(system)]}
    assert_refused(bundle, f"{METASTASIS} (entry 2): {subsetted('Condition')}", tmp_path,
                   capsys)


def test_a_subsetted_contained_medication_refuses_the_input(tmp_path, capsys):
    bundle = example()
    order = bundle["entry"][ORDER_INDEX]["resource"]
    order["contained"] = [{"resourceType": "Medication", "id": "med1",
                           "meta": {"tag": [subsetted_tag()]},
                           "code": order.pop("medicationCodeableConcept")}]
    order["medicationReference"] = {"reference": "#med1"}
    assert_refused(bundle, f"{ORDER} contained[0] (entry 14): {subsetted('Medication')}",
                   tmp_path, capsys)


def test_a_subsetted_bundle_refuses_the_input(tmp_path, capsys):
    bundle = example()
    bundle["meta"]["tag"].append(subsetted_tag())
    assert_refused(bundle, f"Bundle {BUNDLE}: {subsetted('Bundle')}", tmp_path, capsys)


def test_other_tags_are_still_read():
    bundle = example()
    bundle["entry"][2]["resource"]["meta"] = {"tag": [
        {"system": V3_OBSERVATION_VALUE, "code": "SUBSETTE"},
        {"system": "http://example.org/tags", "code": "SUBSETTED"}]}
    result = import_fhir_json(bundle, SOURCE)
    assert len(result.items_from(METASTASIS)) == 1


# ---------------------------------------------------------------------------------------
# 2. A panel whose own code the code map does not know names the results it holds
# ---------------------------------------------------------------------------------------

def coded(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}]}


POSITIVE = coded(LOINC, "LA6576-8", "Positive")
NEGATIVE = coded(LOINC, "LA6577-6", "Negative")


def with_panel(components: list[dict[str, Any]], code: str = "55227-7") -> dict[str, Any]:
    """The example with its ER, PR and HER2 results given as components of one panel."""
    bundle = example()
    del bundle["entry"][3:6]
    bundle["entry"].append({"fullUrl": PANEL, "resource": {
        "resourceType": "Observation", "id": "receptor-panel", "status": "final",
        "code": coded(LOINC, code, "Breast cancer biomarkers panel"),
        "subject": {"reference": PATIENT}, "effectiveDateTime": "2026-09-03",
        "component": components}})
    return bundle


RECEPTORS = [
    {"code": coded(LOINC, "85337-4", "ER"), "valueCodeableConcept": POSITIVE},
    {"code": coded(LOINC, "85339-0", "PR"), "valueCodeableConcept": POSITIVE},
    {"code": coded(LOINC, "85319-2", "HER2"), "valueCodeableConcept": NEGATIVE},
]


def test_a_panel_of_an_unknown_code_names_the_results_its_components_hold():
    """Reported, not read: the receptor statuses stay unknown (no item is made)."""
    bundle = with_panel([{"code": coded(LOINC, "00000-0", "other"), "valueString": "x"},
                         *RECEPTORS])
    result = import_fhir_json(bundle, SOURCE)
    assert lines(result, PANEL) == [("ignored", (
        "Observation code LOINC 55227-7 (Breast cancer biomarkers panel) is not in the code "
        "map; its components hold results the code map reads, which are not read from a "
        "panel: component[1] LOINC 85337-4 (ER) (gkg:EstrogenReceptorStatus), value LOINC "
        "LA6576-8 (Positive); component[2] LOINC 85339-0 (PR) "
        "(gkg:ProgesteroneReceptorStatus), value LOINC LA6576-8 (Positive); component[3] "
        "LOINC 85319-2 (HER2) (gkg:HER2Status), value LOINC LA6577-6 (Negative): record "
        "them as Observations of their own"))]
    assert result.items_from(PANEL) == []
    for cls in (GKG.EstrogenReceptorStatus, GKG.ProgesteroneReceptorStatus, GKG.HER2Status):
        assert not list(result.graph.subjects(RDF.type, cls))


def test_a_known_code_no_fact_uses_names_the_results_its_components_hold():
    bundle = with_panel([{"code": coded(LOINC, "85337-4", "ER"),
                          "valueQuantity": {"value": 80, "unit": "%"}}], code="89247-1")
    result = import_fhir_json(bundle, SOURCE)
    assert lines(result, PANEL) == [("ignored", (
        "LOINC 89247-1 (Breast cancer biomarkers panel) is known, but no patient fact uses it; "
        "its components hold results the code map reads, which are not read from a panel: "
        "component[0] LOINC 85337-4 (ER) (gkg:EstrogenReceptorStatus), value 80 %: record "
        "them as Observations of their own"))]


def test_a_panel_whose_components_the_code_map_does_not_know_keeps_its_line():
    bundle = with_panel([{"code": coded(LOINC, "00000-0", "other"), "valueString": "x"}])
    result = import_fhir_json(bundle, SOURCE)
    assert lines(result, PANEL) == [("ignored", (
        "Observation code LOINC 55227-7 (Breast cancer biomarkers panel) is not in the code "
        "map"))]


# ---------------------------------------------------------------------------------------
# 3. timing.event: the dates not read are named
# ---------------------------------------------------------------------------------------

EVENTS = ["2026-10-18", "2026-09-20", "2026-11-15"]


def test_event_dates_after_the_start_date_are_named():
    bundle = example()
    dosage = bundle["entry"][ORDER_INDEX]["resource"]["dosageInstruction"][0]
    dosage["timing"] = {"event": EVENTS}
    result = import_fhir_json(bundle, SOURCE)
    (item,) = result.items_from(ORDER)
    assert list(result.graph.objects(item, GKG.startDate)) == [
        Literal("2026-09-20", datatype=XSD.date)]
    assert not list(result.graph.objects(order_dose(result), GKG.period))
    assert ("ignored", "dosageInstruction[0].timing.event: timing.event 2026-10-18, 2026-11-15 "
            "not read: the start date is the earliest event, 2026-09-20; no schedule is read "
            "from a list of dates (no frequency, period, count or end date is made from "
            "them)") in lines(result, ORDER)


def test_event_dates_beside_a_bounds_period_are_all_named():
    bundle = example()
    timing = bundle["entry"][ORDER_INDEX]["resource"]["dosageInstruction"][0]["timing"]
    timing["event"] = ["2026-09-20", 5]
    result = import_fhir_json(bundle, SOURCE)
    assert ("ignored", "dosageInstruction[0].timing.event: timing.event 2026-09-20, 5 not read: "
            "no schedule is read from a list of dates (no frequency, period, count or end date "
            "is made from them)") in lines(result, ORDER)
    assert dose_check_statuses(bundle) == ["matches"]


def test_one_event_date_is_the_start_date_and_has_no_line():
    bundle = example()
    dosage = bundle["entry"][ORDER_INDEX]["resource"]["dosageInstruction"][0]
    dosage["timing"] = {"event": ["2026-09-20"]}
    result = import_fhir_json(bundle, SOURCE)
    assert not any("timing.event" in detail for _, detail in lines(result, ORDER))


def test_the_event_dates_of_a_service_request_after_its_start_are_named():
    bundle = example()
    procedure = bundle["entry"][13]["resource"]
    bundle["entry"][13]["resource"] = {
        "resourceType": "ServiceRequest", "id": "dental-evaluation", "status": "active",
        "intent": "order", "code": procedure["code"], "subject": procedure["subject"],
        "occurrenceTiming": {"event": ["2026-09-10", "2026-10-10"]}}
    result = import_fhir_json(bundle, SOURCE)
    assert ("ignored", "occurrenceTiming.event: timing.event 2026-10-10 not read: the start "
            "date is the earliest event, 2026-09-10; no schedule is read from a list of dates "
            "(no frequency, period, count or end date is made from them)") in lines(result,
                                                                                   DENTAL)


# ---------------------------------------------------------------------------------------
# 4. An ordered and a calculated dose: the ordered one is read
# ---------------------------------------------------------------------------------------

def typed_dose(kind: str | None, value: float) -> dict[str, Any]:
    dose: dict[str, Any] = {"doseQuantity": {"value": value, "unit": "mg",
                                             "system": "http://unitsofmeasure.org",
                                             "code": "mg"}}
    if kind is not None:
        dose["type"] = {"coding": [{"system": DOSE_RATE_TYPE, "code": kind}]}
    return dose


def with_doses(*doses: dict[str, Any]) -> dict[str, Any]:
    bundle = example()
    bundle["entry"][ORDER_INDEX]["resource"]["dosageInstruction"][0]["doseAndRate"] = list(doses)
    return bundle


@pytest.mark.parametrize("calculated", [120, 118.5])
def test_the_ordered_dose_is_read_and_the_calculated_one_named(calculated):
    bundle = with_doses(typed_dose("calculated", calculated), typed_dose("ordered", 120))
    result = import_fhir_json(bundle, SOURCE)
    dose = order_dose(result)
    assert list(result.graph.objects(dose, GKG.doseAmount)) == [
        Literal("120.0", datatype=XSD.decimal)]
    assert ("ignored", f"dosageInstruction[0].doseAndRate: doseAndRate[0].doseQuantity "
            f"{calculated} mg (type calculated): not read; the dose typed ordered is read, "
            "doseAndRate[1].doseQuantity 120 mg") in lines(result, ORDER)
    assert dose_check_statuses(bundle) == ["matches"]


@pytest.mark.parametrize("kinds", [("ordered", "ordered"), ("ordered", None),
                                   ("calculated", "calculated")])
def test_other_pairs_of_doses_are_still_not_read(kinds):
    bundle = with_doses(*(typed_dose(kind, 120) for kind in kinds))
    result = import_fhir_json(bundle, SOURCE)
    assert not list(result.graph.objects(order_dose(result), GKG.doseAmount))
    assert ("ignored", "dosageInstruction[0].doseAndRate: 2 doses are given "
            "(doseAndRate[0].doseQuantity 120 mg, doseAndRate[1].doseQuantity 120 mg): the "
            "record does not say which is meant; no dose amount written, so the dose is "
            "unknown") in lines(result, ORDER)
    assert dose_check_statuses(bundle) == ["cannot-check"]


# ---------------------------------------------------------------------------------------
# 5. A failed request of a batch or a transaction
# ---------------------------------------------------------------------------------------

FAILED_URL = "urn:uuid:00000000-0000-4000-8000-0000000000ff"


def response_bundle(status: str, diagnostics: str | None, kind: str = "batch-response",
                    ) -> dict[str, Any]:
    bundle = example()
    bundle["type"] = kind
    for entry in bundle["entry"]:
        entry["response"] = {"status": "200 OK"}
    response: dict[str, Any] = {"status": status}
    if diagnostics is not None:
        response["outcome"] = {"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "not-found", "diagnostics": diagnostics}]}
    bundle["entry"].append({"fullUrl": FAILED_URL, "response": response})
    return bundle


@pytest.mark.parametrize("kind", ["batch-response", "transaction-response"])
def test_a_failed_read_of_a_record_resource_refuses_the_input(kind, tmp_path, capsys):
    bundle = response_bundle("404 Not Found", "Observation/her2-ish not found", kind)
    assert_refused(bundle, (
        f"Bundle {BUNDLE} (type {kind}) says it is not the whole result (entry 18 "
        "response.status '404 Not Found' (OperationOutcome: error not-found "
        "'Observation/her2-ish not found'): a request for Observation failed): "
        f"{ABSENT_READ}. Fetch the whole result (repeat the failed requests), or a Bundle of "
        "the patient's whole record"), tmp_path, capsys)


def test_a_failed_request_that_names_no_resource_refuses_the_input(tmp_path, capsys):
    bundle = response_bundle("500", None)
    assert_refused(bundle, (
        f"Bundle {BUNDLE} (type batch-response) says it is not the whole result (entry 18 "
        "response.status '500': a request failed, and the entry does not say for which "
        f"resource): {ABSENT_READ}. Fetch the whole result (repeat the failed requests), or a "
        "Bundle of the patient's whole record"), tmp_path, capsys)


def test_a_failed_read_of_another_resource_is_reported():
    bundle = response_bundle("404 Not Found", "Resource Practitioner/dr-x is not known")
    result = import_fhir_json(bundle, SOURCE)
    assert lines(result, FAILED_URL) == [("ignored", (
        "entry 18 response.status '404 Not Found' (OperationOutcome: error not-found "
        "'Resource Practitioner/dr-x is not known'): the request of this entry failed; it "
        "names Practitioner, no resource the record is read from"))]
    assert len(result.items_from(ORDER)) == 1


def test_a_successful_entry_without_a_resource_keeps_its_line():
    bundle = response_bundle("201 Created", None)
    result = import_fhir_json(bundle, SOURCE)
    assert lines(result, FAILED_URL) == [("ignored", "the entry holds no resource")]


def test_the_record_types_are_those_the_importer_reads():
    assert set(HANDLERS) | {"Patient", "Medication"} == RECORD_TYPES
