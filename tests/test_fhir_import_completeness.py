"""FHIR import completeness: a record is read as the whole record only when it is one.

A medicine whose own code the code map lacks is read through its ingredients when they say
which medicine it is, and refused when they name several; a Bundle that says it is one page
of a search, or cut short, is refused; a transaction that deletes a resource it also holds
is refused. Each test builds its Bundle from the example record of a patient on denosumab
and asserts the report lines, the item's class, the refusal and what guidelinekg.recommend
derives: a dropped denosumab order would make AVOID-1 ("do not withhold bone-modifying
agents") contraindicated and raise a BMA-1 care gap with full confidence.
"""

from __future__ import annotations

import copy
import json
from datetime import date as calendar_date
from typing import Any

import pytest
from rdflib import Namespace, URIRef
from rdflib.namespace import RDF

import guidelinekg
from fhir_refusals import SOURCE, assert_refused
from guidelinekg.fhir_import import NOTE, RXNORM, FhirImport, import_fhir_json
from guidelinekg.loading import PREFIXES
from guidelinekg.resources import resource_root

GKG = Namespace(PREFIXES["gkg"])
AS_OF = calendar_date(2026, 12, 1)
NDC = "http://hl7.org/fhir/sid/ndc"
EXAMPLE = resource_root() / "examples" / "fhir" / "hr-positive-bone-only-denosumab.json"
ORDER = "urn:uuid:1b000001-0015-4000-8000-000000000015"
METASTASIS = "urn:uuid:1b000001-0003-4000-8000-000000000003"
ORDER_INDEX = 14  # the denosumab order's entry in the example

DENOSUMAB = {"coding": [{"system": RXNORM, "code": "993449", "display": "denosumab"}]}
ZOLEDRONIC_ACID = {"coding": [{"system": RXNORM, "code": "77655", "display": "zoledronic acid"}]}
XGEVA_NDC = {"coding": [{"system": NDC, "code": "55513-0730-01"}]}
UNMAPPED_RXNORM = {"coding": [{"system": RXNORM, "code": "1111111"}]}


def example() -> dict[str, Any]:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


def with_medication(medication: dict[str, Any], dose_mg: float = 120) -> dict[str, Any]:
    """The example with its denosumab order given through a contained Medication."""
    bundle = example()
    order = bundle["entry"][ORDER_INDEX]["resource"]
    del order["medicationCodeableConcept"]
    order["contained"] = [{"resourceType": "Medication", "id": "med1", **medication}]
    order["medicationReference"] = {"reference": "#med1"}
    order["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] = dose_mg
    return bundle


def ingredients(*items: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"itemCodeableConcept": item} for item in items]


def lines(result: FhirImport, reference: str = ORDER) -> list[tuple[str, str]]:
    return [(line.outcome, (f"{line.element}: " if line.element else "") + line.detail)
            for line in result.entries(reference)]


def classes(result: FhirImport, reference: str = ORDER) -> set[URIRef]:
    return {cls for item in result.items_from(reference)
            for cls in result.graph.objects(item, RDF.type)}


def bone_agent_outcome(bundle: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """AVOID-1 contraindicated?, the care gaps, and the dose checks' statuses."""
    (result,) = guidelinekg.recommend(bundle, as_of=AS_OF)
    return ([c.key for c in result.contraindicated], [g.key for g in result.care_gaps],
            [d.status for d in result.dose_checks if d.record_item == ORDER])


# ---------------------------------------------------------------------------------------
# 1. A Medication whose own code the code map lacks, read through its ingredients
# ---------------------------------------------------------------------------------------

THROUGH = ("medicationReference: the Medication #med1 it references {problem}: read through "
           "its ingredient RxNorm 993449 (denosumab), which the code map maps to gkg:Denosumab")
READ_DENOSUMAB = ("imported", "gkg:Denosumab, status code:ongoing, startDate 2026-09-20, "
                  "hasDose (doseAmount 120.0, doseUnit mg, route code:subcutaneous, "
                  "frequency 1, period 4.0, periodUnit wk)")


@pytest.mark.parametrize(("own", "problem"), [
    ({"code": XGEVA_NDC}, "(NDC 55513-0730-01) is not in the code map"),
    ({}, "has no code"),
    ({"code": {"text": "Xgeva"}}, "is given as text only ('Xgeva')"),
], ids=["ndc-code", "no-code", "text-only"])
def test_a_medication_read_through_its_one_mapped_ingredient(own, problem):
    bundle = with_medication({**own, "ingredient": ingredients(DENOSUMAB)})
    result = import_fhir_json(bundle, SOURCE)
    assert classes(result) == {GKG.Denosumab}
    assert lines(result) == [READ_DENOSUMAB, (NOTE, THROUGH.format(problem=problem))]
    contraindicated, gaps, doses = bone_agent_outcome(bundle)
    assert "AVOID-1" not in contraindicated
    assert "BMA-1" not in gaps
    assert doses == ["matches"]


def test_the_dose_of_a_medication_read_through_its_ingredient_is_checked():
    bundle = with_medication({"code": XGEVA_NDC, "ingredient": ingredients(DENOSUMAB)},
                             dose_mg=60)
    assert bone_agent_outcome(bundle)[2] == ["deviates"]


def test_ingredients_that_map_to_one_medicine_are_read_as_it_and_unmapped_ones_are_named():
    xgeva = {"coding": [{"system": RXNORM, "code": "1046402", "display": "Xgeva"}]}
    bundle = with_medication({"code": XGEVA_NDC, "ingredient": [
        *ingredients(DENOSUMAB, xgeva, UNMAPPED_RXNORM),
        {"itemCodeableConcept": ZOLEDRONIC_ACID, "isActive": False}]})
    result = import_fhir_json(bundle, SOURCE)
    assert classes(result) == {GKG.Denosumab}
    assert lines(result)[1] == (NOTE, (
        "medicationReference: the Medication #med1 it references (NDC 55513-0730-01) is not "
        "in the code map: read through its ingredients RxNorm 993449 (denosumab) and RxNorm "
        "1046402 (Xgeva), which the code map maps to gkg:Denosumab; its other ingredients are "
        "no medicine the code map knows and are not read: RxNorm 1111111; its inactive ingredients "
        "(isActive false) are not read: RxNorm 77655 (zoledronic acid)"))


COMBINATION = (
    "{order} (entry 14): the Medication #med1 it references {problem}, and its ingredients "
    "are different medicines: RxNorm 993449 (denosumab) is gkg:Denosumab, RxNorm 77655 "
    "(zoledronic acid) is gkg:ZoledronicAcid; a combination the code map cannot split between "
    "them: add the Medication's code to the code map, or record each medicine in a resource of "
    "its own; the record is refused rather than read without them")


@pytest.mark.parametrize(("own", "problem"), [
    ({"code": XGEVA_NDC}, "(NDC 55513-0730-01) is not in the code map"),
    ({}, "has no code"),
], ids=["ndc-code", "no-code"])
def test_ingredients_that_are_different_medicines_refuse_the_record(own, problem, tmp_path,
                                                                   capsys):
    bundle = with_medication({**own, "ingredient": ingredients(DENOSUMAB, ZOLEDRONIC_ACID)})
    assert_refused(bundle, COMBINATION.format(order=ORDER, problem=problem), tmp_path, capsys)


def test_an_unmapped_ingredient_that_names_another_known_medicine_refuses_the_record(
        tmp_path, capsys):
    named = {"coding": [{"system": RXNORM, "code": "1111111", "display": "Zometa"}]}
    bundle = with_medication({"code": XGEVA_NDC, "ingredient": ingredients(DENOSUMAB, named)})
    assert_refused(bundle, (
        f"{ORDER} (entry 14): the Medication #med1 it references (NDC 55513-0730-01) is not in "
        "the code map, and its ingredients are different medicines: RxNorm 993449 (denosumab) "
        "is gkg:Denosumab, RxNorm 1111111 (Zometa) is not in the code map but names Zometa "
        "(zoledronic acid, gkg:ZoledronicAcid); a combination the code map cannot split between "
        "them: add the Medication's code to the code map, or record each medicine in a resource "
        "of its own; the record is refused rather than read without them"), tmp_path, capsys)


def test_a_combination_ignored_for_its_status_is_not_refused():
    bundle = with_medication({"code": XGEVA_NDC,
                              "ingredient": ingredients(DENOSUMAB, ZOLEDRONIC_ACID)})
    bundle["entry"][ORDER_INDEX]["resource"]["status"] = "entered-in-error"
    result = import_fhir_json(bundle, SOURCE)
    assert lines(result) == [("ignored", "status entered-in-error: recorded by mistake")]


def test_a_medication_whose_ingredients_the_code_map_lacks_is_still_ignored():
    bundle = with_medication({"code": XGEVA_NDC, "ingredient": ingredients(UNMAPPED_RXNORM)})
    result = import_fhir_json(bundle, SOURCE)
    assert lines(result) == [("ignored", "medication NDC 55513-0730-01 is not in the code map")]


def test_an_unmapped_ingredient_whose_display_names_a_known_medicine_refuses_the_record(
        tmp_path, capsys):
    named = {"coding": [{"system": RXNORM, "code": "1111111", "display": "denosumab"}]}
    bundle = with_medication({"code": XGEVA_NDC, "ingredient": ingredients(named)})
    assert_refused(bundle, (
        f"{ORDER} (entry 14): the Medication #med1 it references (NDC 55513-0730-01) is not in "
        "the code map, but its text names denosumab (gkg:Denosumab): add the code to the code "
        "map, or record a code the code map knows; the record is refused rather than read "
        "without it"), tmp_path, capsys)


def test_a_medication_with_no_code_and_no_mapped_ingredient_is_still_refused(tmp_path, capsys):
    bundle = with_medication({"ingredient": ingredients(UNMAPPED_RXNORM)})
    assert_refused(bundle, (
        f"{ORDER} medicationReference (entry 14): the Medication it references has no code, "
        "and the code map knows none of its ingredients (RxNorm 1111111): the importer cannot "
        "tell which medicine it records"), tmp_path, capsys)


def test_a_medication_with_no_code_and_no_ingredient_is_still_refused(tmp_path, capsys):
    bundle = with_medication({})
    assert_refused(bundle, (f"{ORDER} medicationReference (entry 14): the Medication it "
                            "references has no code"), tmp_path, capsys)


def test_a_bundle_medication_read_through_its_ingredient_says_who_reads_it():
    """A Medication entry of the Bundle (not contained): its own line names the order."""
    bundle = with_medication({"code": XGEVA_NDC, "ingredient": ingredients(DENOSUMAB)})
    order = bundle["entry"][ORDER_INDEX]["resource"]
    medication = order.pop("contained")[0]
    medication_url = "urn:uuid:1b000001-0099-4000-8000-000000000099"
    order["medicationReference"] = {"reference": medication_url}
    bundle["entry"].append({"fullUrl": medication_url, "resource": medication})
    result = import_fhir_json(bundle, SOURCE)
    assert classes(result) == {GKG.Denosumab}
    assert lines(result)[1] == (NOTE, (
        f"medicationReference: the Medication {medication_url} it references (NDC "
        "55513-0730-01) is not in the code map: read through its ingredient RxNorm 993449 "
        "(denosumab), which the code map maps to gkg:Denosumab"))
    assert lines(result, medication_url) == [(NOTE, f"read through {ORDER}")]


# ---------------------------------------------------------------------------------------
# 2. A Bundle that is not the whole record: one page of a search, or cut short
# ---------------------------------------------------------------------------------------

NEXT = "http://ehr/fhir/Patient/x/$everything?page=2"
PAGE_REMEDY = ("what it leaves out would be read as absent (a medicine not given, a finding "
               "not made), so the input is refused. It is one page of a search: fetch every "
               "page, or a Bundle of the patient's whole record")


def search_page(total: int | None = None, link: str | None = None,
                outcome: str | None = None, drop_order: bool = True) -> dict[str, Any]:
    """The example as a searchset: without its denosumab order (the next page holds it)."""
    bundle = example()
    bundle["type"] = "searchset"
    if drop_order:
        del bundle["entry"][ORDER_INDEX]
    for entry in bundle["entry"]:
        entry["search"] = {"mode": "match"}
    if total is not None:
        bundle["total"] = total
    if link is not None:
        bundle["link"] = [{"relation": "self", "url": "http://ehr/fhir/Patient/x/$everything"},
                          {"relation": link, "url": NEXT}]
    if outcome is not None:
        bundle["entry"].append({
            "fullUrl": "urn:uuid:00000000-0000-4000-8000-0000000000aa",
            "search": {"mode": "outcome"},
            "resource": {"resourceType": "OperationOutcome", "id": "oo1", "issue": [{
                "severity": "warning", "code": outcome,
                "diagnostics": "Search results truncated"}]}})
    return bundle


PAGES = [
    (dict(total=40, link="next", outcome="incomplete"),
     f"link next ({NEXT}); total 40, but 17 entries match; entry 17 OperationOutcome oo1: "
     "issue incomplete ('Search results truncated')"),
    (dict(link="next"), f"link next ({NEXT})"),
    (dict(link="previous"), f"link previous ({NEXT})"),
    (dict(total=18), "total 18, but 17 entries match"),
    (dict(outcome="too-costly"),
     "entry 17 OperationOutcome oo1: issue too-costly ('Search results truncated')"),
]


@pytest.mark.parametrize(("page", "why"), PAGES)
def test_one_page_of_a_search_is_refused(page, why, tmp_path, capsys):
    message = (f"Bundle hr-positive-bone-only-denosumab (type searchset) is not the whole result "
               f"of its search ({why}): {PAGE_REMEDY}")
    assert_refused(search_page(**page), message, tmp_path, capsys)


def test_a_whole_searchset_is_read():
    """A searchset whose total is its matches, with included resources and an outcome of
    warnings only, and no link to another page, is the whole result."""
    bundle = search_page(total=17, link="self", outcome="informational", drop_order=False)
    bundle["entry"][0]["search"] = {"mode": "include"}
    del bundle["entry"][1]["search"]
    result = import_fhir_json(bundle, SOURCE)
    assert classes(result) == {GKG.Denosumab}
    contraindicated, gaps, _ = bone_agent_outcome(bundle)
    assert "AVOID-1" not in contraindicated and "BMA-1" not in gaps


@pytest.mark.parametrize("place", ["entry", "issues"])
def test_another_bundle_that_says_it_is_incomplete_is_refused(place, tmp_path, capsys):
    bundle = example()
    outcome = {"resourceType": "OperationOutcome", "id": "oo1", "issue": [{
        "severity": "error", "code": "incomplete", "details": {"text": "export cut short"}}]}
    if place == "entry":
        bundle["entry"].append({"fullUrl": "urn:uuid:00000000-0000-4000-8000-0000000000aa",
                                "resource": outcome})
        where = "entry 18 OperationOutcome oo1"
    else:
        bundle["issues"] = outcome
        where = "Bundle.issues OperationOutcome oo1"
    assert_refused(bundle, (
        "Bundle hr-positive-bone-only-denosumab (type collection) says it is not the whole "
        f"result ({where}: issue incomplete ('export cut short')): what it leaves out would be "
        "read as absent (a medicine not given, a finding not made), so the input is refused. "
        "Fetch the whole result, or a Bundle of the patient's whole record"), tmp_path, capsys)


def test_an_operation_outcome_of_other_issues_is_still_only_reported():
    bundle = example()
    bundle["entry"].append({"fullUrl": "urn:uuid:00000000-0000-4000-8000-0000000000aa",
                            "resource": {"resourceType": "OperationOutcome", "id": "oo1",
                                         "issue": [{"severity": "warning",
                                                    "code": "informational"}]}})
    result = import_fhir_json(bundle, SOURCE)
    assert lines(result, "urn:uuid:00000000-0000-4000-8000-0000000000aa") == [
        ("ignored", "resource type OperationOutcome is not imported (no patient fact uses it)")]


# ---------------------------------------------------------------------------------------
# 2b. A transaction that deletes a resource
# ---------------------------------------------------------------------------------------

def transaction(*deletes: dict[str, Any]) -> dict[str, Any]:
    bundle = example()
    bundle["type"] = "transaction"
    for entry in bundle["entry"]:
        entry["request"] = {"method": "POST", "url": entry["resource"]["resourceType"]}
    bundle["entry"] += [{"request": request} for request in deletes]
    return bundle


@pytest.mark.parametrize("url", ["Condition/bone-metastasis",
                                 "http://ehr/fhir/Condition/bone-metastasis/_history/2"])
def test_a_transaction_that_deletes_a_resource_it_holds_is_refused(url, tmp_path, capsys):
    bundle = transaction({"method": "DELETE", "url": url})
    assert_refused(bundle, (
        f"entry 18: request DELETE {url} deletes a resource the input holds ({METASTASIS}, "
        "entry 2): the input says both that it exists and that it is deleted, so it cannot be "
        "read; import the record as it stands after the delete, or correct the Bundle"),
        tmp_path, capsys)


def test_a_conditional_delete_of_a_type_the_input_holds_is_refused(tmp_path, capsys):
    url = "Condition?code=http://snomed.info/sct|94222008"
    bundle = transaction({"method": "DELETE", "url": url})
    assert_refused(bundle, (
        f"entry 18: request DELETE {url} deletes the Condition resources its search matches, "
        "and the input holds 2 Condition resources: the importer cannot tell which of them it "
        "deletes, so it cannot be read; import the record as it stands after the delete, or "
        "correct the Bundle"), tmp_path, capsys)


def test_a_delete_without_a_url_is_refused(tmp_path, capsys):
    bundle = transaction({"method": "DELETE"})
    assert_refused(bundle, (
        "entry 18: request DELETE names no url: the importer cannot tell which resource it "
        "deletes, so the input cannot be read; correct the Bundle"), tmp_path, capsys)


@pytest.mark.parametrize("url", ["Condition/another-condition",
                                 "AllergyIntolerance?code=http://snomed.info/sct|1"])
def test_a_delete_of_a_resource_the_input_does_not_hold_is_reported(url):
    bundle = transaction({"method": "DELETE", "url": url})
    result = import_fhir_json(bundle, SOURCE)
    assert lines(result, f"{SOURCE} entry 18") == [
        ("ignored", f"request DELETE {url}: it deletes no resource the input holds; the "
                    "entry is not read")]
    assert classes(result, METASTASIS) == {GKG.MetastasisCondition}


def test_a_delete_entry_that_holds_the_resource_another_entry_holds_is_refused(
        tmp_path, capsys):
    bundle = transaction()
    metastasis = copy.deepcopy(bundle["entry"][2])
    metastasis["fullUrl"] = "urn:uuid:1b000001-0098-4000-8000-000000000098"
    metastasis["request"] = {"method": "DELETE", "url": "Condition/bone-metastasis"}
    bundle["entry"].append(metastasis)
    assert_refused(bundle, (
        "entry 18: request DELETE Condition/bone-metastasis deletes a resource the input holds "
        f"({METASTASIS}, entry 2): the input says both that it exists and that it is deleted, "
        "so it cannot be read; import the record as it stands after the delete, or correct the "
        "Bundle"), tmp_path, capsys)
