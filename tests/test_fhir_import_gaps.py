"""FHIR import gaps: a medication course that ended without an end date, extensions of
primitives and codings, a resource repeated with another meta, and RxNorm named by its OID.

Each test imports a small Bundle made here and asserts the triples, the report lines or the
statuses guidelinekg.recommend derives from it.
"""

from __future__ import annotations

import copy
import json
from datetime import date as calendar_date
from pathlib import Path
from typing import Any

import pytest
from rdflib import Literal, Namespace, URIRef
from rdflib.namespace import RDF

import guidelinekg
from guidelinekg.fhir_import import NOTE, RXNORM, FhirImport, import_fhir_json
from guidelinekg.loading import PREFIXES, InputError

XSD = Namespace(PREFIXES["xsd"])
GKG = Namespace(PREFIXES["gkg"])
CODE = Namespace(PREFIXES["code"])
DATA = Path(__file__).parent / "data" / "fhir"
AS_OF = calendar_date(2026, 12, 1)

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
FINDING = "https://w3id.org/guidelinekg/CodeSystem/finding"
DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
# RxNorm's OID (HL7 Terminology, CodeSystem v3-rxNorm: identifier urn:oid:2.16.840.1.113883.6.88
# of http://www.nlm.nih.gov/research/umls/rxnorm).
RXNORM_OID = "urn:oid:2.16.840.1.113883.6.88"
PATIENT = "urn:uuid:a4000004-0001-4000-8000-000000000001"
ITEM = "urn:uuid:a4000009-0009-4000-8000-000000000009"


def date(text: str) -> Literal:
    return Literal(text, datatype=XSD.date)


def absent(code: str = "unknown") -> dict[str, Any]:
    """A primitive's data-absent-reason extension (FHIR JSON ``_element``)."""
    return {"extension": [{"url": DATA_ABSENT, "valueCode": code}]}


def remission_bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    """A patient with a breast cancer and a bone metastasis (tests/data/fhir), in complete
    remission since 2026-10-01, and the resources given (the first one's fullUrl is ITEM)."""
    bundle = json.loads((DATA / "bone-metastasis-in-remission-denosumab.json").read_text())
    entries = bundle["entry"][:3]
    entries.append({"fullUrl": "urn:uuid:a4000009-0008-4000-8000-000000000008", "resource": {
        "resourceType": "Observation", "id": "disease-status", "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "97509-4"}]},
        "subject": {"reference": PATIENT}, "effectiveDateTime": "2026-10-01",
        "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "550991000124107"}]}}})
    for number, resource in enumerate(resources):
        resource = {**resource, "subject": {"reference": PATIENT}}
        url = ITEM if number == 0 else f"urn:uuid:a4000009-00{10 + number}-4000-8000-0000000000aa"
        entries.append({"fullUrl": url, "resource": resource})
    bundle["entry"] = entries
    return bundle


def denosumab(kind: str, status: str = "completed", **elements: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": kind, "id": "dmab", "status": status,
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "993449"}]}}
    if kind == "MedicationRequest":
        resource["intent"] = "order"
    return {**resource, **elements}


def every_4_weeks(bounds: dict[str, str]) -> list[dict[str, Any]]:
    return [{"timing": {"repeat": {"frequency": 1, "period": 4, "periodUnit": "wk",
                                   "boundsPeriod": bounds}}}]


def lines(result: FhirImport, reference: str = ITEM, outcome: str | None = None) -> list[str]:
    return [(f"{e.element}: " if e.element else "") + e.detail
            for e in result.entries(reference, outcome)]


def bma_6(bundle: dict[str, Any]) -> tuple[str, list[str], list[str]]:
    """BMA-6 (interrupt the bone-modifying agent after 2 years in complete remission): its
    status, why and the facts it misses."""
    (result,) = guidelinekg.recommend(bundle, as_of=AS_OF)
    (outcome,) = [o for o in result.recommendations if o.key == "BMA-6"]
    return outcome.status, outcome.because, outcome.missing


# ---------------------------------------------------------------------------------------
# 1. A course that has ended without an end date is not one administration
# ---------------------------------------------------------------------------------------

NO_END = ("the course has ended (status {status}) but its end date is missing: when its last "
          "dose was given is unknown")
COURSES_WITHOUT_END = [
    pytest.param(denosumab("MedicationStatement", effectivePeriod={"start": "2023-01-10"}),
                 "completed", id="statement-period-start-only"),
    pytest.param(denosumab("MedicationStatement", "stopped",
                           effectivePeriod={"start": "2023-01-10"}),
                 "stopped", id="statement-stopped-start-only"),
    pytest.param(denosumab("MedicationStatement", effectiveDateTime="2023-01-10"),
                 "completed", id="statement-one-date"),
    pytest.param(denosumab("MedicationRequest",
                           dosageInstruction=every_4_weeks({"start": "2023-01-10"})),
                 "completed", id="request-bounds-start-only"),
    pytest.param(denosumab("MedicationAdministration", effectivePeriod={"start": "2023-01-10"}),
                 "completed", id="administration-period-start-only"),
]


@pytest.mark.parametrize(("resource", "status"), COURSES_WITHOUT_END)
def test_a_course_that_ended_without_an_end_date_says_its_end_date_is_missing(resource, status):
    result = import_fhir_json(remission_bundle(resource))
    item = URIRef(ITEM)
    # What the record says, and no more: its start, no end date, no administration date.
    assert set(result.graph.objects(item, GKG.startDate)) == {date("2023-01-10")}
    assert set(result.graph.objects(item, GKG.endDate)) == set()
    assert set(result.graph.objects(item, GKG.status)) == {CODE[status]}
    assert NO_END.format(status=status) in lines(result, outcome=NOTE)


@pytest.mark.parametrize("resource", [
    pytest.param(denosumab("MedicationAdministration", effectiveDateTime="2023-01-10"),
                 id="administration-one-date"),
    pytest.param(denosumab("MedicationStatement", effectivePeriod={"start": "2023-01-10",
                                                                   "end": "2025-03-01"}),
                 id="statement-with-its-end"),
    pytest.param(denosumab("MedicationStatement", "active",
                           effectivePeriod={"start": "2023-01-10"}), id="statement-ongoing"),
])
def test_an_administration_an_ended_course_with_its_end_or_an_ongoing_one_has_no_such_line(
        resource):
    result = import_fhir_json(remission_bundle(resource))
    assert not [line for line in lines(result) if "end date is missing" in line]


def test_an_administration_on_one_day_is_one_dose_of_the_duration():
    """A single administration covers its own day: 0 months, BMA-6 does not apply. (Given
    after the metastatic diagnosis of 2024: one of 2023, before it, is not counted at all.)"""
    bundle = remission_bundle(denosumab("MedicationAdministration",
                                        effectiveDateTime="2024-06-10"))
    status, because, _ = bma_6(bundle)
    assert status == "does-not-apply"
    assert any("bone-modifying-agent-duration = 0" in line for line in because)


@pytest.mark.parametrize(("performed", "says"), [
    ({"performedPeriod": {"start": "2026-03-02"}}, True),
    ({"performedPeriod": {"start": "2026-03-02", "end": "2026-03-13"}}, False),
    ({"performedDateTime": "2026-03-02"}, False),
])
def test_a_procedure_course_that_ended_without_an_end_date_says_so(performed, says):
    radiotherapy = {"resourceType": "Procedure", "id": "rt", "status": "completed",
                    "code": {"coding": [{"system": SNOMED, "code": "1217123003"}]},
                    **performed}
    result = import_fhir_json(remission_bundle(radiotherapy))
    assert set(result.graph.objects(URIRef(ITEM), GKG.startDate)) == {date("2026-03-02")}
    line = ("the course has ended (status completed) but its end date is missing: when it "
            "ended is unknown")
    assert (line in lines(result, outcome=NOTE)) is says


# The duration (domains/oncology/queries/facts/treatment-history.rq) reads a completed item
# with a start date, no end date and no gkg:dosesGiven as ONE administration on its start
# date, unless the item is recorded as a course (gkg:recordedAsCourse, which the import
# writes on such a course): then its end is unknown.
@pytest.mark.parametrize(("resource", "status"), [
    p for p in COURSES_WITHOUT_END if p.id != "statement-stopped-start-only"])
def test_a_completed_course_without_an_end_date_leaves_the_duration_unknown(resource, status):
    result = import_fhir_json(remission_bundle(resource))
    assert set(result.graph.objects(URIRef(ITEM), GKG.recordedAsCourse)) == {Literal(True)}
    result_status, _, missing = bma_6(remission_bundle(resource))
    assert result_status == "undetermined"
    assert any("bone-modifying-agent-duration" in fact for fact in missing), missing


def test_a_stopped_course_without_an_end_date_leaves_the_duration_unknown():
    """Already so before this change: a stopped item without an end date has no known end."""
    status, _, missing = bma_6(remission_bundle(denosumab(
        "MedicationStatement", "stopped", effectivePeriod={"start": "2023-01-10"})))
    assert status == "undetermined"
    assert any("bone-modifying-agent-duration" in fact for fact in missing), missing


# ---------------------------------------------------------------------------------------
# 2. Extensions of primitives and codings are reported; a data-absent-reason is unknown
# ---------------------------------------------------------------------------------------


def patient_bundle(patient: dict[str, Any], *resources: dict[str, Any]) -> dict[str, Any]:
    entries = [{"fullUrl": PATIENT, "resource": {"resourceType": "Patient", "id": "p",
                                                 **patient}}]
    for number, resource in enumerate(resources):
        url = ITEM if number == 0 else f"urn:uuid:a4000009-00{10 + number}-4000-8000-0000000000aa"
        entries.append({"fullUrl": url, "resource": {**resource,
                                                     "subject": {"reference": PATIENT}}})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def test_extensions_of_patient_primitives_are_reported_and_an_absent_birth_date_is_unknown():
    birth_time = "http://hl7.org/fhir/StructureDefinition/patient-birthTime"
    result = import_fhir_json(patient_bundle({
        "gender": "female",
        "_gender": {"extension": [{"url": "http://example.org/fhir/gender-source",
                                   "valueString": "self-reported"}]},
        "_birthDate": {"extension": [
            *absent("asked-declined")["extension"],
            {"url": "http://example.org/fhir/birth-date-source", "valueString": "form"}]},
        "name": [{"family": "Doe", "_family": {"extension": [
            {"url": birth_time, "valueDateTime": "1960-01-01T10:00:00Z"}]}}],
    }))
    patient = result.patient
    assert list(result.graph.objects(patient, GKG.birthDate)) == []
    assert lines(result, PATIENT) == [
        "gkg:Patient",
        "no birthDate (data-absent-reason asked-declined): age is unknown",
        # The data-absent-reason is read (the line above); the other extensions are not.
        "not read (extensions the importer does not read): _gender extension gender-source, "
        "_birthDate extension birth-date-source, name[0]._family extension patient-birthTime",
    ]


def test_a_primitive_extension_beside_its_value_is_reported_and_the_value_read():
    birth_time = "http://hl7.org/fhir/StructureDefinition/patient-birthTime"
    result = import_fhir_json(patient_bundle({
        "birthDate": "1960-01-01",
        "_birthDate": {"extension": [{"url": birth_time, "valueDateTime":
                                      "1960-01-01T10:00:00Z"}]}}))
    assert list(result.graph.objects(result.patient, GKG.birthDate)) == [date("1960-01-01")]
    assert lines(result, PATIENT) == [
        "gkg:Patient, birthDate 1960-01-01",
        "not read (extensions the importer does not read): _birthDate extension "
        "patient-birthTime"]


def test_a_coding_extension_is_reported_on_the_item_it_belongs_to():
    metastasis = {
        "resourceType": "Condition", "id": "bone",
        "verificationStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
            "code": "confirmed"}]},
        "code": {"coding": [{"system": SNOMED, "code": "94222008", "extension": [
            {"url": "http://example.org/fhir/coding-confidence", "valueDecimal": 0.9}]}]},
        "onsetDateTime": "2024-03-01"}
    result = import_fhir_json(patient_bundle({"birthDate": "1960-01-01"}, metastasis))
    assert (URIRef(ITEM), GKG.present, Literal(True)) in result.graph
    assert ("not read (extensions the importer does not read): code.coding[0] extension "
            "coding-confidence") in lines(result, outcome=NOTE)


def test_a_data_absent_reason_on_a_date_is_reported_and_makes_no_date():
    count = {"resourceType": "Observation", "id": "count", "status": "final",
             "code": {"coding": [{"system": FINDING, "code": "metastatic-lesion-count"}]},
             "_effectiveDateTime": absent("unknown"), "valueInteger": 3}
    result = import_fhir_json(remission_bundle(count))
    assert set(result.graph.objects(URIRef(ITEM), GKG.effectiveDate)) == set()
    assert lines(result) == [
        "gkg:MetastaticLesionCount, valueInteger 3",
        "no effective date",
        "not read (extensions the importer does not read): _effectiveDateTime extension "
        "data-absent-reason (unknown)"]


def test_an_observation_value_absent_with_a_data_absent_reason_is_unknown_not_an_empty_value():
    """Before: an item without a value, which the shapes refuse (the whole record)."""
    compression = {"resourceType": "Observation", "id": "scc", "status": "final",
                   "code": {"coding": [{"system": FINDING, "code": "spinal-cord-compression"}]},
                   "effectiveDateTime": "2026-11-01", "_valueBoolean": absent("not-asked")}
    bundle = remission_bundle(compression)
    result = import_fhir_json(bundle)
    assert result.items_from(ITEM) == []
    assert lines(result) == ["no value (_valueBoolean: data-absent-reason not-asked): the "
                             "finding is unknown"]
    # The record is read: the finding is unknown, not refused and not "no".
    (derived,) = guidelinekg.recommend(bundle, as_of=AS_OF)
    assert derived.population.status == "in"


def test_a_quantity_value_absent_with_a_data_absent_reason_is_unknown():
    weight = {"resourceType": "Observation", "id": "weight", "status": "final",
              "code": {"coding": [{"system": LOINC, "code": "29463-7"}]},
              "effectiveDateTime": "2026-11-01",
              "valueQuantity": {"_value": absent("unknown"), "unit": "kg",
                                "system": "http://unitsofmeasure.org", "code": "kg"}}
    result = import_fhir_json(remission_bundle(weight))
    assert result.items_from(ITEM) == []
    assert lines(result) == ["valueQuantity: no value (valueQuantity._value: data-absent-reason "
                             "unknown): the body weight is unknown"]


def test_do_not_perform_absent_with_a_data_absent_reason_is_not_read_as_an_order():
    """doNotPerform is a modifier: unknown, the request may be an order NOT to give it."""
    order = denosumab("MedicationRequest", "active", _doNotPerform=absent("unknown"),
                      dosageInstruction=every_4_weeks({"start": "2026-01-10"}))
    result = import_fhir_json(remission_bundle(order))
    assert result.items_from(ITEM) == []
    assert lines(result) == ["doNotPerform is unknown (data-absent-reason unknown): whether it "
                             "is an order not to give it is unknown, so it is not read"]


# ---------------------------------------------------------------------------------------
# 3. A resource given twice with another meta is one resource; RxNorm by its OID
# ---------------------------------------------------------------------------------------


def repeated(first_meta: dict[str, Any], second_meta: dict[str, Any],
             **changes: Any) -> dict[str, Any]:
    statement = denosumab("MedicationStatement", "active",
                          effectivePeriod={"start": "2026-01-10"})
    bundle = remission_bundle({**statement, "meta": first_meta})
    again = copy.deepcopy(bundle["entry"][-1])
    again["resource"]["meta"] = second_meta
    again["resource"].update(changes)
    bundle["entry"].append(again)
    return bundle


def test_a_resource_repeated_with_another_version_is_read_once_with_a_line():
    bundle = repeated({"versionId": "1", "lastUpdated": "2026-01-10T10:00:00Z"},
                      {"versionId": "2", "lastUpdated": "2026-02-01T09:30:00Z"})
    result = import_fhir_json(bundle, "repeated.json")
    assert result.items_from(ITEM) == [URIRef(ITEM)]
    assert set(result.graph.objects(URIRef(ITEM), GKG.startDate)) == {date("2026-01-10")}
    assert lines(result) == [
        "gkg:Denosumab, status code:ongoing, startDate 2026-01-10",
        "entry 5 is the same resource as entry 4 of repeated.json but for its meta (versionId "
        "1 and 2, lastUpdated 2026-01-10T10:00:00Z and 2026-02-01T09:30:00Z): read once"]
    # Derived, not refused: one ongoing denosumab since 2026-01-10, 10 months on 2026-12-01.
    assert bma_6(bundle) == ("does-not-apply", [
        "bone-modifying agent for 2 years or more: no (bone-modifying-agent-duration = 10; "
        f"from {ITEM})"], [])


@pytest.mark.parametrize(("changes", "second_meta"), [
    pytest.param({"status": "completed"}, {"versionId": "2"}, id="other-status"),
    pytest.param({}, {"versionId": "2", "profile": [
        "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-cancer-related-medication-"
        "statement"]}, id="other-profile-which-the-importer-reads"),
])
def test_a_resource_repeated_with_other_contents_is_still_refused(changes, second_meta):
    bundle = repeated({"versionId": "1"}, second_meta, **changes)
    with pytest.raises(InputError) as raised:
        import_fhir_json(bundle, "repeated.json")
    assert str(raised.value) == (f"repeated.json: two different resources are named {ITEM} "
                                 "(repeated.json entry 4, entry 5)")


def test_rxnorm_given_by_its_oid_is_read_as_rxnorm_with_a_line():
    statement = denosumab("MedicationStatement", "active",
                          effectivePeriod={"start": "2026-01-10"})
    statement["medicationCodeableConcept"] = {"coding": [{"system": RXNORM_OID,
                                                          "code": "993449"}]}
    result = import_fhir_json(remission_bundle(statement))
    assert set(result.graph.objects(URIRef(ITEM), GKG.status)) == {CODE.ongoing}
    assert lines(result) == [
        "gkg:Denosumab, status code:ongoing, startDate 2026-01-10",
        "medicationCodeableConcept.coding[0].system: system urn:oid:2.16.840.1.113883.6.88 is "
        "the OID of RxNorm: read as http://www.nlm.nih.gov/research/umls/rxnorm"]


def test_rxnorm_by_its_oid_in_a_referenced_medication_is_read_with_a_line_on_it():
    medication = {"resourceType": "Medication", "id": "med",
                  "code": {"coding": [{"system": RXNORM_OID, "code": "993449"}]}}
    statement = denosumab("MedicationStatement", "active",
                          effectivePeriod={"start": "2026-01-10"})
    del statement["medicationCodeableConcept"]
    statement["medicationReference"] = {"reference": "Medication/med"}
    bundle = remission_bundle(statement)
    bundle["entry"].append({"resource": medication})
    result = import_fhir_json(bundle)
    assert set(result.graph.objects(URIRef(ITEM), GKG.status)) == {CODE.ongoing}
    assert lines(result, "Medication/med") == [
        f"read through {ITEM}",
        "code.coding[0].system: system urn:oid:2.16.840.1.113883.6.88 is the OID of RxNorm: "
        "read as http://www.nlm.nih.gov/research/umls/rxnorm"]


# ---------------------------------------------------------------------------------------
# A breast surgery of unknown purpose (mCODE's partial mastectomy) is not left out
# ---------------------------------------------------------------------------------------


def partial_mastectomy(performed: str) -> dict[str, Any]:
    """The partial mastectomy of mCODE's extended example (SNOMED 64368001), with no
    purpose the import reads."""
    return {"resourceType": "Procedure", "id": "partial-mastectomy", "status": "completed",
            "code": {"coding": [{"system": SNOMED, "code": "64368001",
                                 "display": "Excision of part of breast (procedure)"}]},
            "performedDateTime": performed}


@pytest.mark.parametrize(("performed", "flagged"), [
    pytest.param("2026-11-02", True, id="after-the-metastatic-diagnosis"),
    pytest.param("2018-04-01", False, id="early-disease-years-before"),
])
def test_a_partial_mastectomy_of_unknown_purpose_may_be_surgery_for_local_control(
        performed, flagged):
    """Imported as a surgery with no purpose: after the metastatic diagnosis it may be surgery
    solely for local control, so AVOID-5 is undetermined and the surgery is possibly
    contraindicated, naming its purpose to confirm (and AVOID-6's local therapy); years
    before, it treated early disease."""
    bundle = remission_bundle(partial_mastectomy(performed))
    result = import_fhir_json(bundle)
    assert set(result.graph.objects(URIRef(ITEM), RDF.type)) == {GKG.Surgery}
    (derived,) = guidelinekg.recommend(bundle, as_of=AS_OF)
    (avoid_5,) = [o for o in derived.recommendations if o.key == "AVOID-5"]
    flags = [(c.key, c.status, c.to_confirm) for c in derived.contraindicated
             if c.record_item == ITEM]
    if flagged:
        assert avoid_5.status == "undetermined"
        assert "local-control-surgery-planned-or-done" in avoid_5.missing
        # AVOID-6 too: it may be local therapy, in a patient given no systemic therapy
        assert flags == [("AVOID-5", "possibly-contraindicated", avoid_5.missing),
                         ("AVOID-6", "possibly-contraindicated",
                          ["local-therapy-planned-or-done"])]
    else:
        assert avoid_5.status == "does-not-apply"
        assert flags == []
