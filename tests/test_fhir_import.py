"""`guidelinekg import-fhir`: FHIR R4 / mCODE bundles to the patient graph.

The project's own bundles (tests/data/fhir/, one per situation) are checked triple by triple;
the real mCODE examples in ../shared/fixtures/fhir/ must import without an error and give
the facts a clinician reads in them; bad input gets a clear message and exit code 2.
"""

from __future__ import annotations

import json
import re
from datetime import date as calendar_date
from functools import cache
from pathlib import Path
from urllib.parse import quote

import pytest
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import RDF
from rdflib.term import Node

from guidelinekg.cli import main
from guidelinekg.fhir_import import (
    FINDING,
    RXNORM,
    SNOMED,
    FhirImport,
    code_map,
    curie,
    import_fhir_file,
    import_fhir_files,
    import_fhir_json,
)
from guidelinekg.loading import PREFIXES, InputError, guideline_graph, merge_graphs, parse_rdf_file
from guidelinekg.resources import resource_root
from json_contract import validation_report

# A plain Namespace: pytest trips over rdflib's closed XSD namespace when collecting.
XSD = Namespace(PREFIXES["xsd"])
GKG = Namespace(PREFIXES["gkg"])
CODE = Namespace(PREFIXES["code"])
DATA = Path(__file__).parent / "data" / "fhir"
INVALID = DATA / "invalid"
SHARED = Path(__file__).resolve().parents[2] / "shared"
FIXTURES = SHARED / "fixtures" / "fhir"
STU1 = FIXTURES / "mcode-stu1-examples"
TRIAL_MATCHING = FIXTURES / "trial-matching"
CODE_LISTS = TRIAL_MATCHING / "code-lists"
TRIAL_MATCHING_PATIENT = URIRef("urn:guidelinekg:patient:http%3A%2F%2Fhospital.example.org:a123")

needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(),
    reason=f"shared FHIR fixtures not found at {FIXTURES} (clone shared/ beside the repository)",
)


ACTIVE = CODE["condition-active"]
VER_STATUS = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


def date(text: str) -> Literal:
    return Literal(text, datatype=XSD.date)


def dec(text: str) -> Literal:
    return Literal(text, datatype=XSD.decimal)


def integer(value: int) -> Literal:
    return Literal(value, datatype=XSD.integer)


@cache
def imported(name: str) -> FhirImport:
    return import_fhir_file(DATA / name)


@cache
def references(name: str) -> dict[str, str]:
    """resource id -> the gkg:sourceResource the importer must write (fullUrl or Type/id)."""
    bundle = json.loads((DATA / name).read_text())
    return {e["resource"]["id"]: e.get("fullUrl") or
            f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]}


def item_iri(reference: str, file: str | None = None) -> URIRef:
    """The documented IRI scheme: the absolute fullUrl, else the file's name and the local
    reference."""
    if ":" in reference.split("/", 1)[0]:
        return URIRef(reference)
    assert file is not None, f"{reference} is relative: its IRI names its file"
    return URIRef(f"urn:guidelinekg:fhir:{quote(file, safe='')}:{reference}")


def file_of(result: FhirImport) -> str | None:
    """The name of the one file imported (relative references are named by it)."""
    return Path(result.sources[0]).name if len(result.sources) == 1 else None


def triples(graph: Graph, subject: Node) -> set[tuple[str, Node]]:
    return {(curie(p).split(":", 1)[-1] if p != RDF.type else "type", o)
            for p, o in graph.predicate_objects(subject)}


def expected(classes: list[URIRef] | URIRef, **props: object) -> set[tuple[str, Node]]:
    classes = classes if isinstance(classes, list) else [classes]
    found = {("type", cls) for cls in classes}
    for prop, value in props.items():
        values = value if isinstance(value, (list, set, tuple)) else [value]
        found |= {(prop, v if isinstance(v, Node) else Literal(v)) for v in values}
    return found


def check_item(result: FhirImport, reference: str, classes: list[URIRef] | URIRef,
               iri: URIRef | None = None, patient: URIRef | None = None,
               **props: object) -> URIRef:
    """The record item made from one resource has exactly these triples."""
    iri = iri or item_iri(reference, file_of(result))
    assert triples(result.graph, iri) == expected(
        classes, subject=patient or result.patient, sourceResource=reference, **props), iri
    return iri


def check_dose(result: FhirImport, iri: URIRef, **props: object) -> None:
    assert triples(result.graph, iri) == expected(GKG.DoseSpecification, **props), iri


def report_lines(result: FhirImport, reference: str, outcome: str | None = None) -> list[str]:
    return [e.detail for e in result.entries(reference, outcome)]


def all_items(result: FhirImport) -> set[Node]:
    return set(result.graph.subjects(GKG.subject, result.patient))


# ---------------------------------------------------------------------------------------
# The project's own bundles, one per situation
# ---------------------------------------------------------------------------------------

HR_POS = "hr-positive-bone-only-denosumab.json"
HER2 = "her2-positive-trastuzumab-weight-in-pounds.json"
TNBC = "triple-negative-germline-brca1.json"
ZOL = "zoledronic-acid-administrations-stable.json"
DENTAL = "tooth-extraction-on-denosumab.json"
CHEMO = "first-line-chemotherapy-line-extension.json"
CONDITIONS = "conditions-and-observations-statuses.json"
ORDERS = "orders-and-procedures-statuses.json"
OWN_BUNDLES = [HR_POS, HER2, TNBC, ZOL, DENTAL, CHEMO, CONDITIONS, ORDERS]


def test_hr_positive_bone_only_bundle_with_denosumab_every_4_weeks_and_dental_evaluation():
    result, ref = imported(HR_POS), references(HR_POS)
    assert result.patient == URIRef(ref["hr-pos-bone-only"])
    assert triples(result.graph, result.patient) == expected(
        GKG.Patient, birthDate=date("1962-03-14"))
    check_item(result, ref["primary"], GKG.PrimaryBreastCancer, clinicalStatus=ACTIVE,
               stageGroup=CODE["stage-iv"], effectiveDate=date("2026-09-01"))
    check_item(result, ref["bone-metastasis"], GKG.MetastasisCondition,
               clinicalStatus=ACTIVE, site=CODE["site-bone"],
               present=True, effectiveDate=date("2026-09-01"))
    for rid, cls, value in (("er", GKG.EstrogenReceptorStatus, CODE.positive),
                            ("pr", GKG.ProgesteroneReceptorStatus, CODE.positive),
                            ("her2", GKG.HER2Status, CODE.negative)):
        check_item(result, ref[rid], cls, valueCode=value, effectiveDate=date("2026-09-03"))
    day = date("2026-09-05")
    check_item(result, ref["bone-only"], GKG.BoneOnlyMetastasisAssessment, valueBoolean=True,
               effectiveDate=day)
    check_item(result, ref["lesions"], GKG.MetastaticLesionCount, valueInteger=integer(3),
               effectiveDate=day)
    check_item(result, ref["visceral-crisis"], GKG.VisceralCrisisAssessment, valueBoolean=False,
               effectiveDate=day)
    check_item(result, ref["pain"], GKG.BonePainAssessment, valueCode=CODE["pain-moderate"],
               effectiveDate=day)
    check_item(result, ref["fracture-risk"], GKG.FractureRiskAssessment,
               valueCode=CODE["risk-low"], effectiveDate=day)
    check_item(result, ref["mscc"], GKG.SpinalCordCompressionAssessment, valueBoolean=False,
               effectiveDate=day)
    check_item(result, ref["weight"], GKG.BodyWeight, valueDecimal=dec("68.5"), unitCode="kg",
               effectiveDate=day)
    check_item(result, ref["dental-evaluation"], GKG.DentalEvaluation, status=CODE.completed,
               startDate=date("2026-09-10"))
    denosumab = item_iri(ref["denosumab"])
    dose = URIRef(f"{denosumab}#dose-1")
    check_item(result, ref["denosumab"], GKG.Denosumab, status=CODE.ongoing,
               startDate=date("2026-09-20"), hasDose=dose)
    check_dose(result, dose, doseAmount=dec("120.0"), doseUnit="mg", route=CODE.subcutaneous,
               frequency=integer(1), period=dec("4.0"), periodUnit="wk",
               doseText="120 mg subcutaneously every 4 weeks")
    check_item(result, ref["calcium-vitamin-d"], GKG.CalciumVitaminDSupplement,
               status=CODE.ongoing, startDate=date("2026-09-20"))
    letrozole = item_iri(ref["letrozole"])
    check_item(result, ref["letrozole"], GKG.Letrozole, status=CODE.ongoing,
               startDate=date("2026-09-15"), lineOfTherapy=integer(1),
               hasDose=URIRef(f"{letrozole}#dose-1"))
    check_dose(result, URIRef(f"{letrozole}#dose-1"), doseAmount=dec("2.5"), doseUnit="mg",
               route=CODE.oral, frequency=integer(1), period=dec("1.0"), periodUnit="d")
    check_item(result, ref["goals-discussion"], GKG.GoalsOfCareDiscussion,
               status=CODE.completed, startDate=date("2026-09-08"))
    assert len(all_items(result)) == 17
    assert result.entries(outcome="ignored") == []


def test_her2_positive_trastuzumab_in_mg_per_kg_with_weight_in_pounds():
    result, ref = imported(HER2), references(HER2)
    # The stage comes from an Observation (LOINC 21908-9, SNOMED 1222837003) naming its focus.
    check_item(result, ref["primary"], GKG.PrimaryBreastCancer,
               clinicalStatus=ACTIVE, stageGroup=CODE["stage-iv"],
               effectiveDate=date("2026-09-20"))
    assert report_lines(result, ref["stage"], "imported") == [
        f"stage group code:stage-iv of the primary breast cancer {ref['primary']}"]
    check_item(result, ref["liver-metastasis"], GKG.MetastasisCondition, clinicalStatus=ACTIVE,
               site=CODE["site-liver"], present=True, effectiveDate=date("2026-09-22"))
    check_item(result, ref["lung-metastasis"], GKG.MetastasisCondition,
               clinicalStatus=ACTIVE, site=CODE["site-lung"],
               present=True, effectiveDate=date("2026-09-22"))
    check_item(result, ref["er"], GKG.EstrogenReceptorStatus, valueCode=CODE.negative,
               effectiveDate=date("2026-09-24"))
    check_item(result, ref["her2"], GKG.HER2Status, valueCode=CODE.positive,
               effectiveDate=date("2026-09-24"))
    # The original value and UCUM unit: converting to kg is the fact layer's job.
    check_item(result, ref["weight"], GKG.BodyWeight, valueDecimal=dec("150.0"),
               unitCode="[lb_av]", effectiveDate=date("2026-10-01"))
    trastuzumab = item_iri(ref["trastuzumab"])
    loading, maintenance = URIRef(f"{trastuzumab}#dose-1"), URIRef(f"{trastuzumab}#dose-2")
    check_item(result, ref["trastuzumab"], GKG.Trastuzumab, status=CODE.ongoing,
               startDate=date("2026-10-02"), hasDose=[loading, maintenance])
    check_dose(result, loading, doseAmount=dec("8.0"), doseUnit="mg/kg", perBodyWeight=True,
               route=CODE.intravenous, count=integer(1), dosePhase=CODE["loading-dose"],
               infusionDuration=dec("90.0"), infusionDurationUnit="min",
               doseText="loading dose 8 mg/kg IV over 90 minutes")
    check_dose(result, maintenance, doseAmount=dec("6.0"), doseUnit="mg/kg", perBodyWeight=True,
               route=CODE.intravenous, frequency=integer(1), period=dec("3.0"), periodUnit="wk",
               dosePhase=CODE["maintenance-dose"], infusionDuration=dec("30.0"),
               infusionDurationUnit="min", doseText="then 6 mg/kg IV every 3 weeks")
    pertuzumab = item_iri(ref["pertuzumab"])
    check_dose(result, URIRef(f"{pertuzumab}#dose-1"), doseAmount=dec("840.0"), doseUnit="mg",
               route=CODE.intravenous, count=integer(1), dosePhase=CODE["loading-dose"])
    check_dose(result, URIRef(f"{pertuzumab}#dose-2"), doseAmount=dec("420.0"), doseUnit="mg",
               route=CODE.intravenous, frequency=integer(1), period=dec("3.0"), periodUnit="wk",
               dosePhase=CODE["maintenance-dose"])


def test_triple_negative_with_germline_brca1_pathogenic_variant():
    result, ref = imported(TNBC), references(TNBC)
    # No fullUrl and no identifier in this bundle: the patient and the items are named by
    # the file and the local id, urn:guidelinekg:fhir:<file>:<type>/<id>.
    assert result.patient == URIRef(
        "urn:guidelinekg:fhir:triple-negative-germline-brca1.json:Patient/tnbc")
    check_item(result, "Condition/primary", GKG.PrimaryBreastCancer, clinicalStatus=ACTIVE,
               stageGroup=CODE["stage-iv"], effectiveDate=date("2026-08-01"))
    check_item(result, "Condition/bone-metastasis", GKG.MetastasisCondition, clinicalStatus=ACTIVE,
               site=CODE["site-bone"], present=True, effectiveDate=date("2026-08-03"))
    check_item(result, "Condition/brain-metastasis", GKG.MetastasisCondition, clinicalStatus=ACTIVE,
               site=CODE["site-brain"], present=True, effectiveDate=date("2026-08-03"))
    for rid, cls in (("er", GKG.EstrogenReceptorStatus), ("pr", GKG.ProgesteroneReceptorStatus),
                     ("her2", GKG.HER2Status)):
        check_item(result, ref[rid], cls, valueCode=CODE.negative,
                   effectiveDate=date("2026-08-05"))
    check_item(result, ref["brca1-germline"], GKG.GermlineBRCA1Status,
               valueCode=CODE["variant-present"], effectiveDate=date("2026-08-10"))
    check_item(result, ref["brca2-germline"], GKG.GermlineBRCA2Status,
               valueCode=CODE["variant-absent"], effectiveDate=date("2026-08-10"))
    assert report_lines(result, ref["brca2-somatic"], "ignored") == [
        "somatic variant: not a germline result"]
    assert report_lines(result, ref["brca1-unknown-origin"], "ignored") == [
        "genomic source class not given: not known to be germline, so not a germline result"]
    assert report_lines(result, ref["brca1-germline-vus"], "ignored") == [
        "a variant of uncertain significance is present: not a pathogenic variant, and not "
        "an absent one"]
    for rid in ("brca2-somatic", "brca1-unknown-origin", "brca1-germline-vus"):
        assert result.items_from(ref[rid]) == []
    check_item(result, ref["olaparib"], GKG.Olaparib, status=CODE.planned,
               startDate=date("2026-09-01"))


def test_three_zoledronic_acid_administrations_and_stable_disease():
    result, ref = imported(ZOL), references(ZOL)
    order = item_iri(ref["zoledronic-acid-order"])
    check_item(result, ref["zoledronic-acid-order"], GKG.ZoledronicAcid, status=CODE.ongoing,
               startDate=date("2026-06-01"), hasDose=URIRef(f"{order}#dose-1"))
    check_dose(result, URIRef(f"{order}#dose-1"), doseAmount=dec("4.0"), doseUnit="mg",
               route=CODE.intravenous, frequency=integer(1), period=dec("4.0"), periodUnit="wk",
               infusionDuration=dec("15.0"), infusionDurationUnit="min")
    given = ["2026-06-01", "2026-06-29", "2026-07-27"]
    for number, day in enumerate(given, start=1):
        reference = ref[f"zoledronic-acid-dose-{number}"]
        iri = item_iri(reference)
        check_item(result, reference, GKG.ZoledronicAcid, status=CODE.completed,
                   startDate=date(day), hasDose=URIRef(f"{iri}#dose-1"))
        check_dose(result, URIRef(f"{iri}#dose-1"), doseAmount=dec("4.0"), doseUnit="mg",
                   route=CODE.intravenous)
    completed = {s for s in result.graph.subjects(RDF.type, GKG.ZoledronicAcid)
                 if (s, GKG.status, CODE.completed) in result.graph}
    assert len(completed) == 3
    assert report_lines(result, ref["zoledronic-acid-dose-4"]) == [
        "status not-done: it was not done"]
    check_item(result, ref["disease-status"], GKG.DiseaseStatusObservation,
               valueCode=CODE["stable-disease"], effectiveDate=date("2026-08-20"))


def test_tooth_extraction_requested_while_on_denosumab():
    result, ref = imported(DENTAL), references(DENTAL)
    check_item(result, ref["tooth-extraction"], GKG.ToothExtraction, status=CODE.planned,
               startDate=date("2026-11-15"))
    denosumab = item_iri(ref["denosumab"])
    check_item(result, ref["denosumab"], GKG.Denosumab, status=CODE.ongoing,
               startDate=date("2026-03-01"), hasDose=URIRef(f"{denosumab}#dose-1"))
    check_dose(result, URIRef(f"{denosumab}#dose-1"), doseAmount=dec("120.0"), doseUnit="mg",
               route=CODE.subcutaneous, frequency=integer(1), period=dec("4.0"), periodUnit="wk")
    check_item(result, ref["dental-evaluation"], GKG.DentalEvaluation, status=CODE.completed,
               startDate=date("2026-02-15"))
    assert len(all_items(result)) == 5


def test_first_line_chemotherapy_with_line_extension_for_bone_only_disease():
    result, ref = imported(CHEMO), references(CHEMO)
    check_item(result, ref["primary"], GKG.PrimaryBreastCancer,
               clinicalStatus=ACTIVE, stageGroup=CODE["stage-iv"],
               effectiveDate=date("2026-09-12"))
    check_item(result, ref["bone-only"], GKG.BoneOnlyMetastasisAssessment, valueBoolean=True,
               effectiveDate=date("2026-09-16"))
    check_item(result, ref["visceral-crisis"], GKG.VisceralCrisisAssessment,
               valueBoolean=False, effectiveDate=date("2026-09-16"))
    paclitaxel = item_iri(ref["paclitaxel"])
    check_item(result, ref["paclitaxel"], GKG.Paclitaxel, status=CODE.ongoing,
               startDate=date("2026-10-05"), lineOfTherapy=integer(1),
               hasDose=URIRef(f"{paclitaxel}#dose-1"))
    check_dose(result, URIRef(f"{paclitaxel}#dose-1"), doseAmount=dec("140.0"), doseUnit="mg",
               route=CODE.intravenous, frequency=integer(1), period=dec("1.0"), periodUnit="wk",
               infusionDuration=dec("1.0"), infusionDurationUnit="h")
    for rid, cls, value in (("er", GKG.EstrogenReceptorStatus, CODE.positive),
                            ("pr", GKG.ProgesteroneReceptorStatus, CODE.positive),
                            ("her2", GKG.HER2Status, CODE.negative)):
        check_item(result, ref[rid], cls, valueCode=value, effectiveDate=date("2026-09-14"))


def test_no_line_of_therapy_is_written_without_the_extension():
    result = imported(HR_POS)
    lines = {(s, o) for s, o in result.graph.subject_objects(GKG.lineOfTherapy)}
    assert lines == {(item_iri(references(HR_POS)["letrozole"]), integer(1))}


def test_conditions_and_observations_are_read_with_their_statuses():
    result, ref = imported(CONDITIONS), references(CONDITIONS)
    ignored = {rid: report_lines(result, ref[rid], "ignored") for rid in ref}
    assert ignored["primary-entered-in-error"] == ["verificationStatus entered-in-error"]
    # Condition.stage.summary says 3C, an Observation says IV: no stage is guessed.
    check_item(result, ref["primary"], GKG.PrimaryBreastCancer,
               clinicalStatus=ACTIVE, effectiveDate=date("2026-04-02"))
    assert [e.detail for e in result.entries(ref["primary"]) if e.element == "stage"] == [
        f"stage groups disagree (code:stage-i-iii from {ref['primary']} stage[0].summary; "
        f"code:stage-iv from {ref['stage']}): no stage group written"]
    check_item(result, ref["liver-refuted"], GKG.MetastasisCondition,
               clinicalStatus=ACTIVE, site=CODE["site-liver"],
               present=False, effectiveDate=date("2026-06-01"))
    assert ignored["lung-provisional"] == [
        "verificationStatus provisional: not read as present (only confirmed metastases are), "
        "nor as absent"]
    # A resolved metastasis stays present (the site was metastatic), with its status.
    check_item(result, ref["brain-resolved"], GKG.MetastasisCondition, site=CODE["site-brain"],
               present=True, clinicalStatus=CODE["condition-resolved"],
               effectiveDate=date("2026-06-01"))
    assert ignored["brain-resolved"] == []
    assert ignored["other-site-unknown-code"] == [
        "Condition code ICD-10-CM C79.89 (Secondary malignant neoplasm of other specified "
        "sites) is not in the code map"]
    check_item(result, ref["fracture"], GKG.PathologicalFracture, clinicalStatus=ACTIVE,
               present=True, effectiveDate=date("2026-06-03"))
    # A refuted diagnosis says the fracture is absent (RT-1's "uncomplicated"): kept as such.
    check_item(result, ref["fracture-refuted"], GKG.PathologicalFracture, clinicalStatus=ACTIVE,
               present=False, effectiveDate=date("2026-05-20"))
    assert ignored["fracture-refuted"] == []
    check_item(result, ref["skin-no-verification"], GKG.MetastasisCondition, clinicalStatus=ACTIVE,
               site=CODE["site-skin-soft-tissue"], present=True, effectiveDate=date("2026-06-04"))
    assert report_lines(result, ref["skin-no-verification"], "note") == [
        "no verificationStatus: read as asserted (present)"]
    assert ignored["her2-entered-in-error"] == ["status entered-in-error"]
    assert ignored["er-preliminary"] == [
        "status preliminary: only final, amended or corrected results are read"]
    day = date("2026-06-02")
    check_item(result, ref["pr"], GKG.ProgesteroneReceptorStatus, valueCode=CODE.negative,
               effectiveDate=day)
    check_item(result, ref["her2"], GKG.HER2Status, valueCode=CODE.equivocal, effectiveDate=day)
    check_item(result, ref["er-from-interpretation"], GKG.EstrogenReceptorStatus,
               valueCode=CODE.positive, effectiveDate=day)
    check_item(result, ref["pain-severe"], GKG.BonePainAssessment, valueCode=CODE["pain-severe"],
               effectiveDate=date("2026-06-05"))
    # Values the importer cannot read are kept as given, for the shapes to refuse.
    check_item(result, ref["pain-out-of-range"], GKG.BonePainAssessment,
               valueCode=integer(12), effectiveDate=date("2026-06-05"))
    assert report_lines(result, ref["pain-out-of-range"], "note") == [
        "pain severity needs a whole-number score from 0 to 10; found valueInteger 12; "
        "written as given, for the patient shapes to judge (they refuse it)"]
    june_6 = date("2026-06-06")
    check_item(result, ref["response"], GKG.ResponseAssessment, valueCode=CODE["good-response"],
               effectiveDate=june_6)
    for rid, cls, value in (("neuro", GKG.NeurologicalComplicationAssessment, False),
                            ("weight-bearing", GKG.WeightBearingLesionAssessment, True),
                            ("bone-predominant", GKG.BonePredominantDiseaseAssessment, True),
                            ("engaged", GKG.PatientEngagementRecord, True)):
        check_item(result, ref[rid], cls, valueBoolean=value, effectiveDate=june_6)
    check_item(result, ref["visceral-crisis-wrong-type"], GKG.VisceralCrisisAssessment,
               valueBoolean=Literal("no"), effectiveDate=june_6)
    assert report_lines(result, ref["visceral-crisis-wrong-type"], "note") == [
        "gkg:VisceralCrisisAssessment needs valueBoolean; found valueString 'no'; written as "
        "given, for the patient shapes to judge (they refuse it)"]
    assert ignored["hemoglobin"] == [
        "Observation code LOINC 718-7 (Hemoglobin [Mass/volume] in Blood) is not in the code map"]
    assert ignored["ecog"] == ["LOINC 89247-1 is known, but no patient fact uses it"]
    # A partial date is not a date: it is written as given (xsd:gYearMonth), and the
    # patient shapes refuse it.
    check_item(result, ref["weight-partial-date"], GKG.BodyWeight, valueDecimal=dec("70.0"),
               unitCode="kg", effectiveDate=Literal("2026-06", datatype=XSD.gYearMonth))
    assert report_lines(result, ref["weight-partial-date"], "note") == [
        "date '2026-06': only a year or a month is given; written as given, for the patient "
        "shapes to judge (they refuse it)"]
    assert ignored["lesions-no-value"] == [
        "no value (dataAbsentReason http://terminology.hl7.org/CodeSystem/data-absent-reason "
        "not-performed)"]
    assert ignored["other-patient"] == [
        f"its subject Patient/someone-else is not a patient of this input (its file holds "
        f"{result.patient})"]
    assert ignored["oncologist"] == [
        "resource type Practitioner is not imported (no patient fact uses it)"]
    for rid in ("primary-entered-in-error", "lung-provisional",
                "her2-entered-in-error", "er-preliminary", "other-patient", "oncologist"):
        assert result.items_from(ref[rid]) == []


def test_orders_and_procedures_are_read_with_their_statuses():
    result, ref = imported(ORDERS), references(ORDERS)
    ignored = {rid: report_lines(result, ref[rid], "ignored") for rid in ref}
    assert ignored["dental-not-done"] == ["status not-done: it was not done"]
    assert ignored["stabilization-do-not-perform"] == ["doNotPerform: a request not to do it"]
    assert ignored["extraction-option"] == ["intent option: an option is not a plan"]
    check_item(result, ref["orthopedic-consultation"], GKG.OrthopedicConsultation,
               status=CODE.planned)
    assert report_lines(result, ref["orthopedic-consultation"], "note") == [
        "no occurrence date: the planned date is unknown"]
    check_item(result, ref["mdt"], GKG.MultidisciplinaryDiscussion, status=CODE.completed,
               startDate=date("2026-03-10"))
    spine = item_iri(ref["spine-radiotherapy"])
    check_item(result, ref["spine-radiotherapy"], GKG.BoneRadiotherapy, status=CODE.completed,
               startDate=date("2026-03-20"), endDate=date("2026-03-24"),
               bodySite="SNOMED CT 421060004 (Structure of vertebral column (body structure))",
               purpose=CODE.palliation, hasDose=URIRef(f"{spine}#dose-1"))
    check_dose(result, URIRef(f"{spine}#dose-1"), doseAmount=dec("2000.0"), doseUnit="cGy",
               fractions=integer(5))
    # Radiotherapy whose reason is the bone metastasis Condition is radiotherapy to bone.
    check_item(result, ref["hip-radiotherapy"], GKG.BoneRadiotherapy, status=CODE.ongoing,
               startDate=date("2026-04-02"))
    check_item(result, ref["chest-wall-radiotherapy"], GKG.Radiotherapy, status=CODE.completed,
               startDate=date("2026-04-10"),
               bodySite="SNOMED CT 78904004 (Chest wall structure (body structure))")
    check_item(result, ref["local-control-surgery"], GKG.LocalControlSurgery,
               status=CODE.ongoing, startDate=date("2026-05-20"), purpose=CODE["local-control"])
    assert ignored["ablation"] == [
        "Procedure code SNOMED CT 879916008 (Radiofrequency ablation (procedure)) is not in the "
        "code map"]
    assert ignored["denosumab-entered-in-error"] == ["status entered-in-error: recorded by mistake"]
    check_item(result, ref["zoledronic-acid-stopped"], GKG.ZoledronicAcid, status=CODE.stopped,
               startDate=date("2026-03-05"), endDate=date("2026-04-02"))
    check_item(result, ref["capecitabine-draft"], GKG.Capecitabine, status=CODE.planned)
    check_item(result, ref["tamoxifen-proposal"], GKG.Tamoxifen, status=CODE.planned)
    # Cancelled: withdrawn before any dose was given; not read as stopped (a treatment given).
    assert result.items_from(ref["palbociclib-cancelled"]) == []
    assert ignored["palbociclib-cancelled"] == [
        "status cancelled: the order was withdrawn before any dose was given; not a medicine "
        "given, ongoing or planned"]
    # A combination product: one item per active ingredient, its dose not split.
    phesgo = URIRef(ref["phesgo"])
    for cls in ("Pertuzumab", "Trastuzumab"):
        check_item(result, ref["phesgo"], GKG[cls], iri=URIRef(f"{phesgo}#{cls}"),
                   status=CODE.ongoing, startDate=date("2026-04-05"))
    assert ignored["phesgo"] == [
        "dose of a combination product: it cannot be split between its ingredients"]
    # medicationReference to a contained Medication, and to a Medication entry.
    fulvestrant = item_iri(ref["fulvestrant-contained"])
    check_item(result, ref["fulvestrant-contained"], GKG.Fulvestrant, status=CODE.ongoing,
               startDate=date("2026-03-15"), hasDose=URIRef(f"{fulvestrant}#dose-1"))
    check_dose(result, URIRef(f"{fulvestrant}#dose-1"), doseAmount=dec("500.0"), doseUnit="mg",
               frequency=integer(1), period=dec("4.0"), periodUnit="wk")
    assert ignored["fulvestrant-contained"] == [
        "route SNOMED CT 78421000 (Intramuscular route (qualifier value)) is not in the code map"]
    check_item(result, ref["anastrozole-statement"], GKG.Anastrozole, status=CODE.completed,
               startDate=date("2025-01-01"), endDate=date("2026-02-28"))
    assert report_lines(result, ref["anastrozole"]) == [
        f"read through {ref['anastrozole-statement']}"]
    # An unknown medicine is ignored before its dosage is read (its dose has no unit).
    assert ignored["gefitinib"] == [
        "medication RxNorm 349472 (gefitinib 250 MG Oral Tablet) is not in the code map"]
    assert ignored["denosumab-line"] == [
        "line of therapy 2 on gkg:Denosumab, which is not a systemic cancer therapy"]
    assert (item_iri(ref["denosumab-line"]), GKG.lineOfTherapy, None) not in result.graph
    # A chemotherapy dose per body surface area (mg/m2) is read with its unit: a dose unit of
    # its own dimension, never compared with mg or mg/kg.
    docetaxel = item_iri(ref["docetaxel-per-m2"])
    check_item(result, ref["docetaxel-per-m2"], GKG.Docetaxel, status=CODE.ongoing,
               startDate=date("2026-04-07"), hasDose=URIRef(f"{docetaxel}#dose-1"))
    check_dose(result, URIRef(f"{docetaxel}#dose-1"), route=CODE.intravenous,
               frequency=integer(1), period=dec("3.0"), periodUnit="wk",
               doseAmount=dec("75.0"), doseUnit="mg/m2")
    assert ignored["docetaxel-per-m2"] == []
    assert report_lines(result, ref["docetaxel-per-m2"], "note") == []


@pytest.mark.parametrize("name", OWN_BUNDLES)
def test_every_resource_of_a_bundle_is_reported(name):
    """Nothing is dropped silently: each resource has a line saying what became of it."""
    result = imported(name)
    reported = {e.resource for e in result.entries() if not e.element}
    assert set(references(name).values()) <= reported | {str(result.patient)}
    for item in all_items(result):
        (source,) = result.graph.objects(item, GKG.sourceResource)
        assert str(source) in references(name).values()


def test_the_bundle_timestamp_is_not_read_as_the_evaluation_date():
    result = imported(HR_POS)
    (bundle_line,) = result.entries(outcome="note", resource=str(DATA / HR_POS))
    assert "Bundle.timestamp is not read (it is not the evaluation date)" in bundle_line.detail
    assert not any("2026-11-30" in str(o) for o in result.graph.objects())


# ---------------------------------------------------------------------------------------
# Input forms
# ---------------------------------------------------------------------------------------


def test_a_single_resource_without_its_patient_names_the_subject_as_the_patient():
    condition = {
        "resourceType": "Condition", "id": "mets",
        "verificationStatus": {"coding": [{"system": VER_STATUS, "code": "confirmed"}]},
        "code": {"coding": [{"system": SNOMED, "code": "94222008"}]},
        "subject": {"reference": "Patient/p1"}, "onsetDateTime": "2026-01-05T10:00:00+01:00",
    }
    result = import_fhir_json(condition, "condition.json")
    # A relative reference names a patient of its own file: the file is in the IRI.
    assert result.patient == URIRef("urn:guidelinekg:fhir:condition.json:Patient/p1")
    assert triples(result.graph, result.patient) == {("type", GKG.Patient)}
    check_item(result, "Condition/mets", GKG.MetastasisCondition, site=CODE["site-bone"],
               present=True, effectiveDate=date("2026-01-05"))
    assert [e.detail for e in result.entries("Patient/p1")] == [
        "no Patient resource for it in the input: the patient is the subject the resources of "
        "condition.json name (Patient/p1); no birth date is known"]


def test_files_without_identifiers_or_absolute_references_stay_apart(tmp_path):
    """patient.json holds Patient/p1; statement.json names Patient/p1 relatively, with no
    base: nothing says they are one patient, so they are two. A file given twice is read
    once."""
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": "1960-02-03"}
    order = {"resourceType": "MedicationStatement", "id": "ms", "status": "active",
             "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "72965"}]},
             "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-03-01"}
    (tmp_path / "patient.json").write_text(json.dumps(patient))
    (tmp_path / "statement.json").write_text(json.dumps(order))
    paths = [tmp_path / "patient.json", tmp_path / "statement.json", tmp_path / "patient.json"]
    result = import_fhir_files(paths)
    first = URIRef("urn:guidelinekg:fhir:patient.json:Patient/p1")
    second = URIRef("urn:guidelinekg:fhir:statement.json:Patient/p1")
    assert result.patients == [first, second]
    assert (first, GKG.birthDate, date("1960-02-03")) in result.graph
    assert (second, GKG.birthDate, None) not in result.graph
    statement = item_iri("MedicationStatement/ms", "statement.json")
    check_item(result, "MedicationStatement/ms", GKG.Letrozole, iri=statement, patient=second,
               status=CODE.ongoing, startDate=date("2026-03-01"))
    details = [e.detail for e in result.entries("Patient/p1")]
    assert details == ["gkg:Patient, birthDate 1960-02-03",
                       f"the same resource as the resource of {tmp_path / 'patient.json'}: "
                       "read once",
                       "no Patient resource for it in the input: the patient is the subject the "
                       "resources of " + str(tmp_path / "statement.json") + " name (Patient/p1); "
                       "no birth date is known"]


def test_a_logical_reference_by_identifier_joins_two_files(tmp_path):
    """The statement names its subject by the patient's identifier: one patient."""
    mrn = {"system": "http://hospital.example.org/mrn", "value": "12 345"}
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": "1960-02-03",
               "identifier": [{"value": "no system"}, mrn]}
    order = {"resourceType": "MedicationStatement", "id": "ms", "status": "active",
             "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "72965"}]},
             "subject": {"reference": "Patient/p1", "identifier": mrn},
             "effectiveDateTime": "2026-03-01"}
    (tmp_path / "patient.json").write_text(json.dumps(patient))
    (tmp_path / "statement.json").write_text(json.dumps(order))
    result = import_fhir_files([tmp_path / "patient.json", tmp_path / "statement.json"])
    # The first identifier with both a system and a value, each part percent-encoded.
    iri = URIRef("urn:guidelinekg:patient:http%3A%2F%2Fhospital.example.org%2Fmrn:12%20345")
    assert result.patients == [iri]
    check_item(result, "MedicationStatement/ms", GKG.Letrozole,
               iri=item_iri("MedicationStatement/ms", "statement.json"),
               status=CODE.ongoing, startDate=date("2026-03-01"))
    assert result.item_origins == {
        item_iri("MedicationStatement/ms", "statement.json"): (str(tmp_path / "statement.json"),
                                                               iri)}


def test_finding_codes_and_the_calcium_vitamin_d_code_are_read():
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "id": "p"}},
        {"fullUrl": "urn:uuid:ca", "resource": {
            "resourceType": "MedicationRequest", "id": "ca", "status": "draft", "intent": "plan",
            "medicationCodeableConcept": {"coding": [{"system": FINDING,
                                                      "code": "calcium-vitamin-d-supplement"}]},
            "subject": {"reference": "urn:uuid:p"}}},
    ]}
    result = import_fhir_json(bundle)
    check_item(result, "urn:uuid:ca", GKG.CalciumVitaminDSupplement, status=CODE.planned)
    assert report_lines(result, "urn:uuid:p", "note") == ["no birthDate: age is unknown"]


def test_elements_of_the_wrong_type_are_reported_not_tracebacks():
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "id": "p",
                                               "birthDate": "1960-02-30"}},
        {"fullUrl": "urn:uuid:er", "resource": {
            "resourceType": "Observation", "id": "er", "status": ["final"],
            "code": {"coding": [{"system": "http://loinc.org", "code": "85337-4"}]},
            "subject": {"reference": "urn:uuid:p"}}},
        {"fullUrl": "urn:uuid:pr", "resource": {
            "resourceType": "Observation", "id": "pr", "status": "final",
            "code": {"coding": [{"system": 5, "code": "85339-0"},
                                {"system": "http://loinc.org", "code": "85339-0"}]},
            "subject": {"reference": "urn:uuid:p"}, "effectiveDateTime": 20260101,
            "valueCodeableConcept": {"coding": [{"system": "http://loinc.org",
                                                 "code": "LA6576-8"}]}}},
    ]}
    result = import_fhir_json(bundle)
    # Dates that are not dates are written as given (text), for the shapes to refuse.
    assert triples(result.graph, result.patient) == {("type", GKG.Patient),
                                                     ("birthDate", Literal("1960-02-30"))}
    assert [(e.element, e.detail) for e in result.entries("urn:uuid:p", "note")] == [
        ("birthDate", "date '1960-02-30': not a calendar date; written as given, for the "
         "patient shapes to judge (they refuse it)")]
    assert report_lines(result, "urn:uuid:er", "ignored") == [
        "no status: not known to be final, amended or corrected"]
    check_item(result, "urn:uuid:pr", GKG.ProgesteroneReceptorStatus, valueCode=CODE.positive,
               effectiveDate=Literal("20260101"))
    assert [(e.element, e.detail) for e in result.entries("urn:uuid:pr", "note")] == [
        ("effectiveDateTime", "date 20260101: not a FHIR date (not text); written as given, "
         "for the patient shapes to judge (they refuse it)")]


# ---------------------------------------------------------------------------------------
# Nothing lost on the way in: impossible values, clinical status, other primary cancers,
# resources without a subject
# ---------------------------------------------------------------------------------------

NEGATIVE_WEIGHT = INVALID / "negative-body-weight.json"
IMPOSSIBLE = INVALID / "impossible-values.json"
REMISSION = DATA / "bone-metastasis-in-remission-denosumab.json"
LUNG = DATA / "lung-cancer-other-primary.json"
SUBJECTLESS = DATA / "subjectless-resource-one-patient.json"
AS_GIVEN = "written as given, for the patient shapes to judge (they refuse it)"


def violations_of(graph: Graph) -> set[tuple[str, str]]:
    """(focus, patient shape) of every violation, as `guidelinekg validate` finds them."""
    from guidelinekg.validation import validate_patients

    return {(str(r.result.focus), str(r.result.source_shape).rsplit("#", 1)[-1])
            for r in validate_patients(graph).results if r.result.severity == "Violation"}


def test_a_negative_body_weight_is_imported_and_refused_by_validate_and_recommend(capsys):
    result = import_fhir_file(NEGATIVE_WEIGHT)
    weight = "urn:uuid:a1000001-0003-4000-8000-000000000003"
    check_item(result, weight, GKG.BodyWeight, valueDecimal=dec("-70.0"), unitCode="kg",
               effectiveDate=date("2026-09-05"))
    assert report_lines(result, weight, "note") == [
        f"body weight -70 is not a positive number; {AS_GIVEN}"]
    assert main(["validate", str(NEGATIVE_WEIGHT)]) == 1
    shape_message = (
        "  VIOLATION <urn:uuid:a1000001-0003-4000-8000-000000000003> gkg:valueDecimal\n"
        "      The body weight carries its value, a number above 0 (gkg:valueDecimal), and its "
        "unit.\n      value: -70.0; shape: body weight: a number above 0\n")
    assert shape_message in capsys.readouterr().out
    assert main(["recommend", str(NEGATIVE_WEIGHT), "--as-of", "2026-11-30"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("guidelinekg recommend: the record violates the patient "
                                   "shapes; nothing is derived.")
    assert shape_message in captured.err


def test_impossible_values_are_written_as_given_and_each_is_refused_by_its_shape():
    result = import_fhir_file(IMPOSSIBLE)
    u = "urn:uuid:a2000002-{0:04d}-4000-8000-{0:012d}".format
    assert (result.patient, GKG.birthDate, date("2999-01-01")) in result.graph
    check_item(result, u(2), GKG.MetastasisCondition, site=CODE["site-bone"], present=True,
               clinicalStatus=Literal("smouldering"),
               effectiveDate=Literal("2026-09", datatype=XSD.gYearMonth))
    check_dose(result, URIRef(u(3) + "#dose-1"), doseAmount=dec("-120.0"), doseUnit="mg",
               route=CODE.subcutaneous, frequency=integer(0), period=dec("4.0"),
               periodUnit="wk")
    check_item(result, u(4), GKG.MetastaticLesionCount, valueInteger=integer(-2),
               effectiveDate=date("2026-09-05"))
    assert (URIRef(u(5)), GKG.lineOfTherapy, integer(0)) in result.graph
    assert (URIRef(u(5) + "#dose-1"), GKG.periodUnit, Literal("day")) in result.graph
    assert result.entries(outcome="ignored") == []
    assert violations_of(result.graph) == {
        (u(1), "BirthDateNotInFuture"),
        # A partial date cannot be compared with the birth date: ill-typed (literal_checks).
        (u(2), "ClinicalStatus"), (u(2), "IllTypedValue"),
        (u(3), "StartDateNotBeforeBirth"),
        (u(3) + "#dose-1", "DoseAmount"), (u(3) + "#dose-1", "DoseFrequency"),
        (u(4), "EffectiveDateNotBeforeBirth"), (u(4), "LesionCountValue"),
        (u(5), "StartDateNotBeforeBirth"), (u(5), "LineOfTherapy"),
        (u(5) + "#dose-1", "DosePeriodUnit"),
    }


@pytest.mark.parametrize(("name", "focus", "shape", "message"), [
    ("weight-unit-not-convertible.json", "urn:uuid:9d00000b-0002-4000-8000-000000000002",
     "BodyWeightUnit", 'The body weight unit is a UCUM body-weight unit, "kg" or "[lb_av]" '
     '(pounds, converted to kg): other units, such as "lbs" or "stone", are not read.'),
    ("dose-without-unit.json", "urn:uuid:9c00000c-0002-4000-8000-000000000002#dose-1",
     "DoseAmountHasUnit", 'The dose amount has no unit (gkg:doseUnit, e.g. "mg" or "mg/kg"): '
     "a dose without a unit cannot be read."),
])
def test_a_unit_the_project_cannot_read_is_refused_by_validate(name, focus, shape, message,
                                                               capsys):
    """Once an InputError of the importer; now written as given, and validate refuses the
    record with the shape's message (exit 1)."""
    assert main(["validate", "--format", "json", str(INVALID / name)]) == 1
    document = validation_report(capsys.readouterr().out)
    found = [(r["focus"], r["shape"].rsplit("#", 1)[-1], r["message"])
             for r in document["results"] if r["severity"] == "Violation"]
    assert found == [(focus, shape, message)]


def test_a_bone_metastasis_in_remission_stays_a_bone_metastasis():
    from guidelinekg.facts import derive_facts, read_fact_values
    from guidelinekg.sparql import make_engine

    result = import_fhir_file(REMISSION)
    u = "urn:uuid:a4000004-{0:04d}-4000-8000-{0:012d}".format
    check_item(result, u(3), GKG.MetastasisCondition, site=CODE["site-bone"], present=True,
               clinicalStatus=CODE["condition-remission"], effectiveDate=date("2024-03-01"))
    assert result.entries(outcome="ignored") == []
    assert violations_of(result.graph) == set()
    graph = guideline_graph()
    for triple in result.graph:
        graph.add(triple)
    as_of = calendar_date(2026, 11, 30)
    views = read_fact_values(derive_facts(make_engine("oxigraph", graph), as_of))
    bone = [v for v in views if v.fact == URIRef(PREFIXES["fact"] + "bone-metastasis")]
    assert [(v.patient, v.value) for v in bone] == [(result.patient, Literal(True))]
    assert URIRef(u(3)) in bone[0].sources


def test_a_lung_cancer_is_a_primary_cancer_of_another_site():
    result = import_fhir_file(LUNG)
    u = "urn:uuid:a5000005-{0:04d}-4000-8000-{0:012d}".format
    check_item(result, u(2), GKG.PrimaryCancerOtherSite, present=True, clinicalStatus=ACTIVE,
               effectiveDate=date("2026-01-15"))
    assert set(result.graph.subjects(RDF.type, GKG.PrimaryBreastCancer)) == set()
    assert violations_of(result.graph) == set()


def condition_bundle(*conditions: dict) -> dict:
    entries = [{"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "id": "p"}}]
    for number, extra in enumerate(conditions):
        resource = {"resourceType": "Condition", "id": f"c{number}",
                    "verificationStatus": {"coding": [{"system": VER_STATUS, "code": "confirmed"}]},
                    "subject": {"reference": "urn:uuid:p"}, **extra}
        entries.append({"fullUrl": f"urn:uuid:c{number}", "resource": resource})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def test_primary_cancers_by_icd_10_and_icd_10_cm_code():
    icd10, icd10cm = "http://hl7.org/fhir/sid/icd-10", "http://hl7.org/fhir/sid/icd-10-cm"
    codes = [(icd10, "C18.7"), (icd10, "C509"), (icd10cm, "C91.10"), (icd10cm, "C80.1"),
             (icd10cm, "C79.51"), (icd10cm, "C76.1"), (icd10cm, "C7B.03")]
    result = import_fhir_json(condition_bundle(*(
        {"code": {"coding": [{"system": system, "code": code}]}} for system, code in codes)))
    classes = [result.graph.value(URIRef(f"urn:uuid:c{n}"), RDF.type) for n in range(len(codes))]
    assert classes == [GKG.PrimaryCancerOtherSite, GKG.PrimaryBreastCancer,
                       GKG.PrimaryCancerOtherSite, None, GKG.MetastasisCondition,
                       GKG.PrimaryCancerOtherSite, None]
    # C80 (site unspecified) does not say the site is not the breast; C7B is secondary.
    assert report_lines(result, "urn:uuid:c3", "ignored") == [
        "Condition code ICD-10-CM C80.1 is not in the code map"]


def test_an_unknown_code_under_the_mcode_primary_cancer_profile():
    profile = {"profile": [
        "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-primary-cancer-condition"]}
    colon = {"system": SNOMED, "code": "93761005", "display": "Primary malignant neoplasm of "
             "colon"}
    breast = {"system": SNOMED, "code": "372137005", "display": "Primary malignant neoplasm of "
              "breast"}
    result = import_fhir_json(condition_bundle(
        {"meta": profile, "code": {"coding": [colon]}},
        {"meta": profile, "code": {"coding": [breast]}},
        {"code": {"coding": [colon]}}))
    check_item(result, "urn:uuid:c0", GKG.PrimaryCancerOtherSite, present=True)
    assert [(e.element, e.detail) for e in result.entries("urn:uuid:c0", "note")] == [(
        "meta.profile", "Condition code SNOMED CT 93761005 (Primary malignant neoplasm of colon) "
        "is not in the code map; read as a primary cancer of a site other than the breast "
        "because its profile is mCODE primary-cancer-condition and its code names no breast "
        "(if it is a breast cancer, add its code to the code map)")]
    # An unknown code that may be a breast cancer is not read as another site's; without
    # the profile an unknown code is not read at all.
    assert report_lines(result, "urn:uuid:c1", "ignored") == [
        "Condition code SNOMED CT 372137005 (Primary malignant neoplasm of breast) is not in "
        "the code map"]
    assert report_lines(result, "urn:uuid:c2", "ignored") == [
        "Condition code SNOMED CT 93761005 (Primary malignant neoplasm of colon) is not in the "
        "code map"]


def test_a_resource_without_a_subject_is_the_only_patient_of_its_bundle():
    result = import_fhir_file(SUBJECTLESS)
    her2 = "urn:uuid:a3000003-0003-4000-8000-000000000003"
    check_item(result, her2, GKG.HER2Status, valueCode=CODE.positive,
               effectiveDate=date("2026-03-04"))
    assert report_lines(result, her2, "note") == [
        "no subject: attributed to the only patient of its file, "
        "urn:uuid:a3000003-0001-4000-8000-000000000001"]


def test_resources_without_a_subject_in_a_bundle_of_two_patients_are_refused(capsys):
    path = INVALID / "two-patients.json"
    for command in ("validate", "recommend", "import-fhir"):
        assert main([command, str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"guidelinekg {command}: error: {path}: 1 resource names no "
                              "subject (urn:uuid:9f000009-0003-4000-8000-000000000003) and the "
                              "file holds 2 patients")


def test_a_medicine_dose_in_a_unit_of_another_kind_is_bad_input():
    """The dose shape accepts Gy (a radiotherapy dose): a medicine dose in Gy would pass it,
    so it is refused here."""
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "id": "p"}},
        {"fullUrl": "urn:uuid:d", "resource": {
            "resourceType": "MedicationStatement", "id": "d", "status": "active",
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "72965"}]},
            "subject": {"reference": "urn:uuid:p"},
            "dosage": [{"doseAndRate": [{"doseQuantity": {"value": 2, "system":
                                                          "http://unitsofmeasure.org",
                                                          "code": "Gy"}}]}]}},
    ]}
    with pytest.raises(InputError) as raised:
        import_fhir_json(bundle, "gy.json")
    assert str(raised.value) == (
        "gy.json: urn:uuid:d dosage[0].doseAndRate[0].doseQuantity (entry 1): dose unit 'Gy' "
        "is not a unit of a dose (g, mg, mg/kg, mg/m2, ug)")


def test_a_chemotherapy_dose_per_body_surface_area_is_read_and_accepted():
    """mg/m2, the usual unit of chemotherapy doses, is a dose unit of its own dimension: the
    record is not refused for it, and it is never read as mg or mg/kg."""
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "id": "p",
                                               "birthDate": "1960-01-01"}},
        {"fullUrl": "urn:uuid:d", "resource": {
            "resourceType": "MedicationRequest", "id": "d", "status": "active",
            "intent": "order", "authoredOn": "2026-01-05",
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "56946"}]},
            "subject": {"reference": "urn:uuid:p"},
            "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {
                "value": 80, "unit": "mg/m2", "system": "http://unitsofmeasure.org",
                "code": "mg/m2"}}]}]}},
    ]}
    result = import_fhir_json(bundle, "per-m2.json")
    doses = list(result.graph.subjects(GKG.doseUnit, Literal("mg/m2")))
    assert len(doses) == 1
    assert (doses[0], GKG.doseAmount, dec("80.0")) in result.graph
    assert (doses[0], GKG.perBodyWeight, None) not in result.graph
    assert violations_of(result.graph) == set()


# ---------------------------------------------------------------------------------------
# Bad input: a clear error, exit code 2, no traceback
# ---------------------------------------------------------------------------------------

BAD_INPUT = [
    ("not-fhir.json", "not FHIR JSON: a JSON object without resourceType"),
    ("not-json.json", "not valid JSON (Expecting value: line 2 column 1"),
    ("two-patients.json", "1 resource names no subject (urn:uuid:9f000009-0003-4000-8000-"
     "000000000003) and the file holds 2 patients (urn:uuid:9f000009-0001-4000-8000-"
     "000000000001, urn:uuid:9f000009-0002-4000-8000-000000000002): the importer cannot tell "
     "whose they are; give each its subject"),
    ("observation-without-code.json", "urn:uuid:9e00000a-0002-4000-8000-000000000002 (entry 1): "
     "the Observation has no code: the importer cannot tell what it records"),
]


@pytest.mark.parametrize(("name", "message"), BAD_INPUT)
def test_bad_input_gets_a_clear_error_and_exit_code_2(name, message, capsys, tmp_path):
    path = INVALID / name
    output = tmp_path / "patient.ttl"
    assert main(["import-fhir", str(path), "-o", str(output)]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"guidelinekg import-fhir: error: {path}: {message}" + (
        captured.err.split(message, 1)[1])
    assert message in captured.err
    assert "Traceback" not in captured.err + captured.out
    assert not output.exists()


@pytest.mark.parametrize(("name", "message"), BAD_INPUT)
def test_bad_input_raises_input_error_naming_the_file(name, message):
    with pytest.raises(InputError) as raised:
        import_fhir_file(INVALID / name)
    assert raised.value.path == str(INVALID / name)
    assert message in str(raised.value)


@pytest.mark.parametrize(("data", "message"), [
    ([{"resourceType": "Patient"}], "not FHIR JSON: a JSON array"),
    ("Patient", "not FHIR JSON: a JSON str"),
    ({"resourceType": "Bundle", "entry": [{"resource": {"id": "x"}}]},
     "entry 0: not a FHIR resource (no resourceType)"),
    ({"resourceType": "Observation", "status": "final", "subject": {"reference": "Patient/a"},
      "code": {"coding": [{"system": FINDING, "code": "visceral-crisis"}]}, "valueBoolean": True},
     "Observation (the file): the resource has neither an id nor an absolute fullUrl"),
])
def test_json_that_is_not_fhir_is_refused(data, message):
    with pytest.raises(InputError) as raised:
        import_fhir_json(data, "input.json")
    assert str(raised.value).startswith(f"input.json: {message}")


def test_resources_naming_two_patients_without_a_patient_resource_are_two_patients():
    def condition(rid: str, patient: str) -> dict:
        return {"resource": {"resourceType": "Condition", "id": rid,
                             "code": {"coding": [{"system": SNOMED, "code": "94222008"}]},
                             "subject": {"reference": f"Patient/{patient}"}}}
    bundle = {"resourceType": "Bundle", "entry": [condition("a", "p1"), condition("b", "p2")]}
    result = import_fhir_json(bundle, "b.json")
    first, second = (URIRef(f"urn:guidelinekg:fhir:b.json:Patient/{p}") for p in ("p1", "p2"))
    assert result.patients == [first, second]
    for rid, patient in (("a", first), ("b", second)):
        check_item(result, f"Condition/{rid}", GKG.MetastasisCondition, patient=patient,
                   site=CODE["site-bone"], present=True)


def test_cli_writes_the_graph_and_the_report(tmp_path, capsys):
    output = tmp_path / "patient.ttl"
    assert main(["import-fhir", str(DATA / DENTAL), "-o", str(output)]) == 0
    captured = capsys.readouterr()
    written = parse_rdf_file(output)
    assert isomorphic(written, imported(DENTAL).graph)
    ref = references(DENTAL)
    assert captured.out.startswith(f"wrote {output}\npatient {ref['dental']}: 5 record items;")
    assert (f"  {ref['tooth-extraction']} (ServiceRequest): imported: gkg:ToothExtraction, "
            "status code:planned, startDate 2026-11-15\n") in captured.out
    assert "@prefix gkg: <https://w3id.org/guidelinekg/ontology#>" in output.read_text()


def test_cli_without_output_writes_turtle_to_stdout_and_the_report_to_stderr(capsys):
    assert main(["import-fhir", str(DATA / ZOL)]) == 0
    captured = capsys.readouterr()
    graph = Graph().parse(data=captured.out, format="turtle")
    assert isomorphic(graph, imported(ZOL).graph)
    assert "status not-done: it was not done" in captured.err
    assert "ignored" not in captured.out


# ---------------------------------------------------------------------------------------
# Real mCODE records (../shared/fixtures/fhir)
# ---------------------------------------------------------------------------------------


@needs_fixtures
def test_trial_matching_patient01_reads_as_a_clinician_reads_it():
    result = import_fhir_file(TRIAL_MATCHING / "TrialMatching_Patient01.json")
    graph = result.graph
    # Named by its business identifier (http://hospital.example.org a123), not its fullUrl.
    assert result.patient == TRIAL_MATCHING_PATIENT
    assert (result.patient, GKG.birthDate, date("1959-01-01")) in graph
    primaries = set(graph.subjects(RDF.type, GKG.PrimaryBreastCancer))
    assert primaries == {URIRef("urn:uuid:mCODETrialMatchingPrimaryCancerConditionExample01")}
    assert {o for p in primaries for o in graph.objects(p, GKG.stageGroup)} == {CODE["stage-iv"]}
    sites = {(graph.value(m, GKG.site), graph.value(m, GKG.present))
             for m in graph.subjects(RDF.type, GKG.MetastasisCondition)}
    assert sites == {(CODE["site-axillary-lymph-nodes"], Literal(True)),
                     (CODE["site-liver"], Literal(True)), (CODE["site-bone"], Literal(True))}
    receptors = {(graph.value(o, RDF.type), graph.value(o, GKG.valueCode))
                 for o in graph.subjects(GKG.valueCode, None)}
    assert receptors == {(GKG.EstrogenReceptorStatus, CODE.positive),
                         (GKG.ProgesteroneReceptorStatus, CODE.positive),
                         (GKG.HER2Status, CODE.negative)}
    medicines = {(graph.value(m, RDF.type), graph.value(m, GKG.status),
                  str(graph.value(m, GKG.startDate)))
                 for m in graph.subjects(GKG.status, None)}
    assert medicines == {
        (GKG.Leuprolide, CODE.completed, "2019-04-01"),
        (GKG.Fulvestrant, CODE.completed, "2019-04-01"),
        (GKG.Abemaciclib, CODE.ongoing, "2019-04-01"),
        (GKG.Fulvestrant, CODE.ongoing, "2019-06-01"),
        (GKG.Ribociclib, CODE.ongoing, "2019-06-01"),
    }
    ignored = {e.resource: e.detail for e in result.entries(outcome="ignored")}
    assert ignored == {
        "urn:uuid:mCODETrialMatchingTumorMarker04PatientExample01":
            "Observation code LOINC 62862-8 (Microsatellite instability [Presence] in Tissue by "
            "Immune stain) is not in the code map",
        "urn:uuid:mCODETrialMatchingCancerGeneticVariantPatientExample01":
            "gene studied HGNC HGNC:3467 (estrogen receptor 1): not BRCA1 or BRCA2",
        "urn:uuid:mCODETrialMatchingCancerGeneticVariant02PatientExample01":
            "gene studied HGNC HGNC:8975 (phosphatidylinositol-4,5-biphosphate 3-kinase "
            "catalytic subunit alpha): not BRCA1 or BRCA2",
        "urn:uuid:mCODETrialMatchingECOGPerformanceStatusPatientExample01":
            "LOINC 89247-1 is known, but no patient fact uses it",
    }
    assert len(all_items(result)) == 12


# file -> what a clinician reads in it (class, property, value) or the reason it says nothing
STU1_EXPECTED: dict[str, tuple[URIRef, str, Node] | str] = {
    "Condition-mCODEPrimaryCancerConditionExample01.json":  # lung cancer (SNOMED 254637007)
        (GKG.PrimaryCancerOtherSite, "present", Literal(True)),
    "Condition-mCODESecondaryCancerConditionExample01.json":
        (GKG.MetastasisCondition, "site", CODE["site-brain"]),
    "MedicationStatement-mCODECancerRelatedMedicationStatementExample01.json":
        "medication RxNorm 349472 is not in the code map",  # gefitinib
    "MedicationStatement-mCODECancerRelatedMedicationStatementExample02.json":
        "medication RxNorm 349472 is not in the code map",
    "Observation-mCODECancerDiseaseStatusExample01.json":
        (GKG.DiseaseStatusObservation, "valueCode", CODE["improved-disease"]),
    "Observation-mCODECancerGeneticVariantExample01.json":
        "gene studied HGNC HGNC:11389: not BRCA1 or BRCA2",
    "Observation-mCODECancerGeneticVariantExample02.json":
        (GKG.GermlineBRCA1Status, "valueCode", CODE["variant-present"]),
    "Observation-mCODEECOGPerformanceStatusExample01.json":
        "LOINC 89247-1 is known, but no patient fact uses it",
    "Observation-mCODETNMClinicalDistantMetastasesCategoryExample01.json":
        "LOINC 21907-1 is known, but no patient fact uses it",
    "Observation-mCODETNMClinicalStageGroupExample01.json":
        "stage code:stage-i-iii: no primary breast cancer in the record to attach it to",
    "Observation-mCODETumorMarkerExample01.json":
        "Observation code LOINC 39004-7 is not in the code map",  # EGFR
    "Patient-mCODEPatientExample01.json": (GKG.Patient, "birthDate", date("1951-01-20")),
    "Patient-mCODEPatientExample02.json": (GKG.Patient, "birthDate", date("1955-05-20")),
    "Procedure-mCODECancerRelatedRadiationProcedureExample01.json":
        (GKG.Radiotherapy, "startDate", date("2019-03-01")),
}


@needs_fixtures
def test_every_stu1_example_is_listed():
    assert sorted(p.name for p in STU1.glob("*.json")) == sorted(STU1_EXPECTED)


@needs_fixtures
@pytest.mark.parametrize("name", sorted(STU1_EXPECTED))
def test_each_mcode_stu1_example_imports_with_what_a_clinician_reads(name):
    result = import_fhir_file(STU1 / name)
    want = STU1_EXPECTED[name]
    resource = json.loads((STU1 / name).read_text())
    reference = f"{resource['resourceType']}/{resource['id']}"
    if isinstance(want, str):
        assert report_lines(result, reference, "ignored") == [want]
        assert all_items(result) == set()
        return
    cls, prop, value = want
    if cls == GKG.Patient:  # named by its identifier (http://hospital.example.org m123...)
        iri = URIRef(f"urn:guidelinekg:patient:http%3A%2F%2Fhospital.example.org:"
                     f"{resource['identifier'][0]['value']}")
    else:  # a resource on its own: named by its file and id, as is the patient it names
        iri = item_iri(reference, name)
        assert result.patient == item_iri("Patient/mCODEPatientExample01", name)
        assert (iri, GKG.sourceResource, Literal(reference)) in result.graph
    assert (iri, RDF.type, cls) in result.graph
    assert (iri, GKG[prop], value) in result.graph


@needs_fixtures
def test_stu1_examples_do_not_say_they_are_one_patient():
    """Each STU1 example is a resource on its own: relative references (Patient/
    mCODEPatientExample01) with no base and no identifier. Nothing says that the files are
    one patient, so no item reaches another file's patient: each file's resources stay with
    the patient its file names, and the two Patient files are two patients (by identifier)."""
    paths = sorted(STU1.glob("*.json"))
    result = import_fhir_files(paths)
    hospital = "urn:guidelinekg:patient:http%3A%2F%2Fhospital.example.org:"
    named = {item_iri("Patient/mCODEPatientExample01", p.name) for p in paths
             if not p.name.startswith("Patient-")}
    assert set(result.patients) == {URIRef(hospital + "m123"), URIRef(hospital + "m456")} | named
    for item, (source, patient) in result.item_origins.items():
        assert patient == item_iri("Patient/mCODEPatientExample01", Path(source).name), item
    assert (URIRef(hospital + "m123"), GKG.birthDate, date("1951-01-20")) in result.graph
    assert not set(result.graph.subjects(GKG.subject, URIRef(hospital + "m123")))
    # The lung cancer and the brain metastasis are in two files: the metastasis's related
    # primary does not resolve, so it is read as a metastasis of its own file's patient.
    brain = item_iri("Condition/mCODESecondaryCancerConditionExample01",
                     "Condition-mCODESecondaryCancerConditionExample01.json")
    assert (brain, GKG.site, CODE["site-brain"]) in result.graph


@needs_fixtures
def test_a_metastasis_of_a_lung_cancer_in_the_same_bundle_is_not_read_as_breast_cancers():
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": json.loads(path.read_text())} for path in (
            STU1 / "Patient-mCODEPatientExample01.json",
            STU1 / "Condition-mCODEPrimaryCancerConditionExample01.json",
            STU1 / "Condition-mCODESecondaryCancerConditionExample01.json")]}
    result = import_fhir_json(bundle, "stu1.json")
    lung = item_iri("Condition/mCODEPrimaryCancerConditionExample01", "stu1.json")
    check_item(result, "Condition/mCODEPrimaryCancerConditionExample01",
               GKG.PrimaryCancerOtherSite, iri=lung, present=True, clinicalStatus=ACTIVE,
               effectiveDate=date("2019-04-01"))
    assert report_lines(result, "Condition/mCODESecondaryCancerConditionExample01",
                        "ignored") == [
        "a metastasis of Condition/mCODEPrimaryCancerConditionExample01, a primary cancer of "
        "another site (not a breast cancer)"]
    # Its stage (3C) is a lung cancer's: not read as a breast cancer's.
    assert report_lines(result, "Condition/mCODEPrimaryCancerConditionExample01", "note") == [
        "not read (no patient fact uses it): bodySite, stage, extension "
        "mcode-histology-morphology-behavior"]


# ---------------------------------------------------------------------------------------
# The code map, the ontology's code annotations and the finding CodeSystem agree
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ontology() -> Graph:
    return guideline_graph()


def test_every_code_map_term_is_an_ontology_term(ontology):
    terms = {row.term for row in code_map().rows if row.term is not None}
    missing = sorted(str(t) for t in terms if (t, RDF.type, None) not in ontology)
    assert missing == []


def test_code_map_rows_are_unique_and_sourced():
    keys = [(r.role, r.system, r.code, r.maps_to) for r in code_map().rows]
    assert len(keys) == len(set(keys))
    assert all(row.source for row in code_map().rows)


@pytest.mark.parametrize(("annotation", "system"), [
    ("rxnormCode", RXNORM), ("snomedCode", SNOMED), ("findingCode", FINDING)])
def test_every_ontology_code_annotation_is_in_the_code_map_with_the_same_term(
        ontology, annotation, system):
    """The code map is the importer's single source; the ontology's annotations must agree."""
    mapped = {(row.code, row.term) for row in code_map().rows if row.system == system}
    annotated = {(str(code), term) for term, code in ontology.subject_objects(GKG[annotation])}
    assert annotated, annotation
    assert sorted(annotated - mapped) == []


def finding_concepts() -> tuple[dict, set[str], set[str]]:
    path = resource_root() / "domains" / "oncology" / "fhir" / "CodeSystem-finding.json"
    resource = json.loads(path.read_text())
    selectable, groups = set(), set()

    def walk(concepts: list[dict]) -> None:
        for concept in concepts:
            flags = {p["code"]: p.get("valueBoolean") for p in concept.get("property", [])}
            (groups if flags.get("not-selectable") else selectable).add(concept["code"])
            walk(concept.get("concept", []))
    walk(resource["concept"])
    return resource, selectable, groups


def test_the_finding_codesystem_is_valid_fhir_r4_and_matches_the_code_map():
    from fhir.resources.R4B.codesystem import CodeSystem  # R4B: CodeSystem unchanged from R4

    resource, selectable, groups = finding_concepts()
    code_system = CodeSystem.model_validate(resource)
    assert code_system.url == FINDING
    assert code_system.count == len(selectable) + len(groups)
    mapped = {row.code for row in code_map().rows if row.system == FINDING}
    assert mapped == selectable
    required = {
        "visceral-crisis", "fracture-risk", "impending-neurological-complication",
        "spinal-cord-compression", "significant-weight-bearing-lesion", "metastatic-lesion-count",
        "bone-only-metastasis", "response-to-systemic-therapy",
        "patient-engaged-in-local-therapy-decision", "bone-predominant-disease",
        "dental-evaluation", "invasive-dental-procedure", "multidisciplinary-discussion",
        "orthopedic-consultation", "stabilization-surgery", "separation-surgery",
        "local-control-surgery", "local-ablative-therapy", "bone-radiotherapy",
        "goals-of-care-discussion", "calcium-vitamin-d-supplement", "low", "moderate", "high",
        "good", "poor",
    }
    assert required <= selectable


@needs_fixtures
def test_every_medication_of_the_fixture_code_list_is_mapped_with_its_source():
    listed = json.loads((CODE_LISTS / "medications-breast-bone-subset.DERIVED.json").read_text())
    source = "fixture trial-matching/code-lists/medications-breast-bone-subset.DERIVED.json"
    rows = {row.code: row for row in code_map().rows if row.role == "medication"}
    assert sorted(e["code"] for e in listed if e["code"] not in rows) == []
    assert all(source in rows[e["code"]].source for e in listed)


@needs_fixtures
def test_every_metastasis_site_of_the_fixture_code_list_is_mapped():
    listed = json.loads((CODE_LISTS / "metastases.json").read_text())
    sites = {row.code for row in code_map().rows if row.role == "metastasis-site"}
    assert sorted(e["code"] for e in listed if e["code"] not in sites) == []


# ---------------------------------------------------------------------------------------
# The imported graphs conform to the patient shapes
# ---------------------------------------------------------------------------------------


# What the patient shapes refuse in the project's bundles: exactly the values written as
# given because they cannot be read (a pain score of 12, "no" for a yes/no finding, a
# partial date); everything else conforms (a dose in mg/m2 too: a dose unit of its own).
EXPECTED_VIOLATIONS = {
    (CONDITIONS, "pain-severe", "ContradictoryFindings"),  # severe pain vs a score of 12
    (CONDITIONS, "pain-out-of-range", "ContradictoryFindings"),
    (CONDITIONS, "pain-out-of-range", "ObservationValueCode"),
    (CONDITIONS, "pain-out-of-range", "BonePainValue"),
    (CONDITIONS, "visceral-crisis-wrong-type", "ObservationValueBoolean"),
    (CONDITIONS, "weight-partial-date", "IllTypedValue"),  # not comparable with a date
}


def test_imported_graphs_conform_to_the_patient_shapes_but_for_values_they_refuse():
    from guidelinekg.validation import validate_patients

    graphs = [imported(name).graph for name in OWN_BUNDLES]
    if FIXTURES.is_dir():
        graphs.append(import_fhir_file(TRIAL_MATCHING / "TrialMatching_Patient01.json").graph)
        graphs += [import_fhir_file(p).graph for p in sorted(STU1.glob("*.json"))]
    # One validation of every patient at once: the shapes judge each patient's items alone.
    validation = validate_patients(merge_graphs(graphs))
    violations = {(str(r.result.focus), str(r.result.source_shape).rsplit("#", 1)[-1])
                  for r in validation.results if r.result.severity == "Violation"}
    want = {(references(name)[rid] + ("#dose-1" if shape.startswith("Dose") else ""), shape)
            for name, rid, shape in EXPECTED_VIOLATIONS}
    assert violations == want


def test_a_pain_score_is_bone_pain_only_when_its_site_is_bone() -> None:
    # RT-2 asks for radiotherapy for bone pain (issue 10): a pain score with no bone site is
    # not read as bone pain, and says so; one whose body site is a bone is.
    result = imported("pain-score-without-bone-site.json")
    ref = references("pain-score-without-bone-site.json")
    pains = set(result.graph.subjects(RDF.type, GKG.BonePainAssessment))
    assert pains == {item_iri(ref["pain-in-bone"], file_of(result))}
    assert report_lines(result, ref["pain-unsited"], "ignored") == [
        "a pain score is read as bone pain only when its bodySite says bone (a bone, a "
        "vertebra, the spine, the pelvis ...): bone pain stays unknown"]
    check_item(result, ref["pain-in-bone"], GKG.BonePainAssessment,
               valueCode=CODE["pain-moderate"], effectiveDate=date("2026-11-21"))


# ---------------------------------------------------------------------------------------
# Values that are not exact, and names that are not IRIs (tests/fixtures/fhir-defects)
# ---------------------------------------------------------------------------------------

DEFECTS = Path(__file__).parent / "fixtures" / "fhir-defects"


def dose_checks(path: Path, capsys: pytest.CaptureFixture[str]) -> list[dict]:
    """recommend's dose checks of a one-patient record, through the command line."""
    assert main(["recommend", str(path), "--as-of", "2026-12-01", "--format", "json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    return result["dose_checks"]


# (fixture, resource, element, the report's line, the dose check's key and reason)
NOT_EXACT = [
    ("dose-quantity-with-comparator.json", "urn:uuid:d0000001-0000-4000-8000-000000000001-"
     "denosumab", "dosageInstruction[0].doseAndRate[0].doseQuantity",
     "the comparator '<' makes <120 mg a bound, not a value: no dose amount or unit written, "
     "so the dose is unknown", "BMA-2", "the dose has no amount"),
    ("dose-unit-text-mg-per-kg-code-mg.json", "urn:uuid:d0000003-0000-4000-8000-000000000003-"
     "denosumab", "dosageInstruction[0].doseAndRate[0].doseQuantity",
     "its unit 'mg/kg' and its UCUM code 'mg' name different units (120 mg/kg (code mg)): no "
     "dose amount or unit written, so the dose is unknown", "BMA-2", "the dose has no amount"),
    ("dosage-with-two-doseandrate.json", "urn:uuid:d0000006-0000-4000-8000-000000000006-"
     "trastuzumab", "dosageInstruction[0].doseAndRate",
     "2 doses are given (doseAndRate[0].doseQuantity 6 mg/kg, doseAndRate[1].doseQuantity "
     "60 mg/kg): the record does not say which is meant; no dose amount written, so the dose "
     "is unknown", "HER2-3", "the dose has no amount"),
    ("body-weight-with-comparator.json", "urn:uuid:d0000002-0000-4000-8000-000000000002-"
     "weight", "valueQuantity",
     "the comparator '<' makes <150 lb (code [lb_av]) a bound, not a value: the body weight "
     "is not read, so it is unknown", "HER2-3", "no body weight in kg is recorded"),
    ("body-weight-unit-text-kg-code-pounds.json", "urn:uuid:d0000004-0000-4000-8000-"
     "000000000004-weight", "valueQuantity",
     "its unit 'kg' and its UCUM code '[lb_av]' name different units (68 kg (code [lb_av])): "
     "the body weight is not read, so it is unknown", "HER2-3",
     "no body weight in kg is recorded"),
]


@pytest.mark.parametrize(("name", "resource", "element", "detail", "key", "because"), NOT_EXACT)
def test_a_quantity_that_is_not_exact_is_reported_and_not_imported(
        name, resource, element, detail, key, because, capsys):
    """A bound ("<120 mg"), a unit whose text and code disagree, or two doses in one Dosage:
    the number is no value, so nothing is written and the dose cannot be checked."""
    result = import_fhir_file(DEFECTS / name)
    ignored = result.entries(resource, "ignored")
    assert [(e.element, e.detail) for e in ignored] == [(element, detail)]
    items = result.items_from(resource)
    if element == "valueQuantity":  # the observation is not read: no item without its value
        assert items == []
        assert not set(result.graph.subjects(RDF.type, GKG.BodyWeight))
    else:  # the dose is written without an amount or a unit: its route and timing stay
        (item,) = items
        (dose,) = result.graph.objects(item, GKG.hasDose)
        assert {p for p, _ in triples(result.graph, dose)} == {
            "type", "route", "frequency", "period", "periodUnit"}
    (check,) = dose_checks(DEFECTS / name, capsys)
    assert check["key"] == key
    assert check["status"] == "cannot-check"
    # Every comparison names the part it could not read (and, HER2 status being unknown,
    # that whether HER2-3 applies is undetermined).
    compared = [r for r in check["because"] if "applies to this patient is undetermined" not in r
                and "compared with the regimen alone" not in r]
    assert compared and all(reason.endswith(because) for reason in compared)


def test_unit_texts_that_are_displays_do_not_disagree_with_their_codes(capsys):
    """'milligram' and 'lb' are no UCUM codes: a display beside the code, read as usual."""
    result = import_fhir_file(DEFECTS / "unit-texts-that-are-displays.json")
    assert result.entries(outcome="ignored") == []
    (weight,) = result.graph.subjects(RDF.type, GKG.BodyWeight)
    assert result.graph.value(weight, GKG.valueDecimal) == dec("150.0")
    assert result.graph.value(weight, GKG.unitCode) == Literal("[lb_av]")
    (dose,) = result.graph.subjects(GKG.doseAmount, dec("120.0"))
    assert result.graph.value(dose, GKG.doseUnit) == Literal("mg")
    (check,) = dose_checks(DEFECTS / "unit-texts-that-are-displays.json", capsys)
    assert (check["key"], check["status"]) == ("BMA-2", "matches")


# The commands that read a FHIR record, each of which must refuse one it cannot read.
READING_COMMANDS = [["import-fhir"], ["validate"], ["recommend", "--as-of", "2026-12-01"]]
NOT_IRIS = [
    ("fullurl-with-brace.json", "entry 0 fullUrl: 'http://example.org/fhir/Patient/p{1}': the "
     "character '{' (U+007B) is not allowed in an IRI; correct the record"),
    ("fullurl-with-nul.json", "entry 0 fullUrl: 'urn:uuid:a\\x00b': the character '\\x00' "
     "(U+0000) is not allowed in an IRI; correct the record"),
    ("fullurl-with-space.json", "entry 0 fullUrl: 'http://example.org/fhir/Patient/p 1': the "
     "character ' ' (U+0020) is not allowed in an IRI; correct the record"),
    ("reference-with-pipe.json", "urn:uuid:d0000007-0000-4000-8000-000000000002 reference "
     "(entry 1): 'urn:uuid:d0000007|0000': the character '|' (U+007C) is not allowed in an "
     "IRI; correct the record"),
    ("reference-with-bad-percent-encoding.json", "urn:uuid:d0000007-0000-4000-8000-"
     "000000000002 reference (entry 1): 'http://example.org/fhir/Patient/p%zz': it is not a "
     "valid IRI (Invalid IRI percent encoding '%zz'); correct the record"),
]


@pytest.mark.parametrize("command", READING_COMMANDS)
@pytest.mark.parametrize(("name", "message"), NOT_IRIS)
def test_a_fullurl_or_reference_that_is_not_an_iri_is_refused_with_exit_code_2(
        command, name, message, capsys, tmp_path):
    _assert_refused(command, DEFECTS / name, message, capsys, tmp_path)


def _assert_refused(command: list[str], path: Path, message: str, capsys, tmp_path) -> None:
    """The command refuses the record: exit code 2, one line naming the file and why, no
    output and no file written."""
    output = tmp_path / "patient.ttl"
    written = ["-o", str(output)] if command[0] == "import-fhir" else []
    assert main([command[0], str(path), *command[1:], *written]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"guidelinekg {command[0]}: error: {path}: {message}\n"
    assert captured.out == ""
    assert not output.exists()


@pytest.mark.parametrize(("name", "message"), NOT_IRIS)
def test_a_fullurl_or_reference_that_is_not_an_iri_raises_input_error(name, message):
    with pytest.raises(InputError) as raised:
        import_fhir_file(DEFECTS / name)
    assert str(raised.value) == f"{DEFECTS / name}: {message}"


# ---------------------------------------------------------------------------------------
# A medicine the code map cannot read, named in a text: refused, never ignored (red-team
# finding 5: an Xgeva order coded by NDC was ignored, and AVOID-1 came out contraindicated)
# ---------------------------------------------------------------------------------------

UNMAPPED = Path(__file__).parent / "fixtures" / "fhir-unmapped-medication"
REFUSED_TAIL = "; the record is refused rather than read without it"
ADD_THE_CODE = "add the code to the code map, or record a code the code map knows" + REFUSED_TAIL
UNMAPPED_REFUSED = [
    ("ndc-code-with-denosumab-text.json",
     "urn:uuid:1b000001-0015-4000-8000-000000000015 (entry 14): the medication of this "
     "MedicationRequest (NDC 55513-730-01 (Xgeva 120 mg/1.7 mL injection), text 'Xgeva "
     "(denosumab) 120 mg') is not in the code map, but its text names denosumab "
     f"(gkg:Denosumab): {ADD_THE_CODE}"),
    ("text-only-brand-name.json",
     "urn:uuid:1c000001-0004-4000-8000-000000000004 (entry 3): the medication of this "
     "MedicationStatement is given as text only ('Xgeva 120 mg'), but its text names Xgeva "
     f"(denosumab, gkg:Denosumab): record a code the code map knows{REFUSED_TAIL}"),
    ("unresolved-medication-reference.json",
     "urn:uuid:1c000002-0004-4000-8000-000000000004 (entry 3): its medicationReference "
     "Medication/zoledronic-4mg ('Zometa 4 mg/5 mL') is not a Medication in the input, but "
     "its text names Zometa (zoledronic acid, gkg:ZoledronicAcid): give the Medication it "
     f"references in the input, or record a code the code map knows{REFUSED_TAIL}"),
    ("referenced-medication-not-in-code-map.json",
     "urn:uuid:1c000003-0005-4000-8000-000000000005 (entry 4): the Medication "
     "urn:uuid:1c000003-0004-4000-8000-000000000004 it references (NDC 61703-326-18 "
     "(pamidronate disodium 90 mg/10 mL)) is not in the code map, but its text names "
     f"pamidronate (bisphosphonate, gkg:Bisphosphonate): {ADD_THE_CODE}"),
    ("named-only-in-dosage-text.json",
     "urn:uuid:1c000004-0004-4000-8000-000000000004 (entry 3): the medication of this "
     "MedicationRequest (NDC 55513-730-01) is not in the code map, but its dosage text "
     "'denosumab 120 mg subcutaneously every 4 weeks' names denosumab (gkg:Denosumab): "
     f"{ADD_THE_CODE}"),
]


@pytest.mark.parametrize("command", READING_COMMANDS)
@pytest.mark.parametrize(("name", "message"), UNMAPPED_REFUSED)
def test_an_unmapped_medicine_whose_text_names_a_known_one_is_refused_with_exit_code_2(
        command, name, message, capsys, tmp_path):
    _assert_refused(command, UNMAPPED / name, message, capsys, tmp_path)


@pytest.mark.parametrize(("name", "message"), UNMAPPED_REFUSED)
def test_an_unmapped_medicine_whose_text_names_a_known_one_raises_input_error(name, message):
    import guidelinekg

    path = UNMAPPED / name
    with pytest.raises(InputError) as raised:
        import_fhir_file(path)
    assert str(raised.value) == f"{path}: {message}"
    for call in (guidelinekg.read_patients, guidelinekg.validate, guidelinekg.recommend):
        with pytest.raises(InputError) as raised:
            call([path])
        assert str(raised.value) == f"{path}: {message}"
    # A FHIR document given as a Python object: the same refusal, named by its label.
    with pytest.raises(InputError) as raised:
        guidelinekg.read_patients(json.loads(path.read_text(encoding="utf-8")))
    assert str(raised.value) == f"document-0: {message}"


def test_an_unrelated_medicine_not_in_the_code_map_is_still_ignored_with_its_line(capsys):
    path = UNMAPPED / "unrelated-medicine.json"
    result = import_fhir_file(path)
    statin = "urn:uuid:1c000005-0004-4000-8000-000000000004"
    assert [line.detail for line in result.entries(statin)] == [
        "medication NDC 0071-0155-23 (atorvastatin calcium 20 mg tablet) is not in the code map"]
    assert [line.outcome for line in result.entries(statin)] == ["ignored"]
    assert not result.items_from(statin)
    assert main(["import-fhir", str(path), "-o", "-"]) == 0
    assert (f"  {statin} (MedicationStatement): ignored: medication NDC 0071-0155-23 "
            "(atorvastatin calcium 20 mg tablet) is not in the code map\n") in \
        capsys.readouterr().err
    assert main(["recommend", str(path), "--as-of", "2026-12-01", "--format", "json"]) == 0
    (document,) = json.loads(capsys.readouterr().out)
    assert document["population"]["status"] == "in"


def test_an_unmapped_medicine_named_in_a_resource_ignored_for_its_status_is_not_refused():
    """An order entered in error says nothing of the medicine: it is ignored for its
    status, as with a code the map knows, and the record is read."""
    result = import_fhir_file(UNMAPPED / "entered-in-error-brand-name.json")
    mistake = "urn:uuid:1c000006-0004-4000-8000-000000000004"
    assert [(line.outcome, line.detail) for line in result.entries(mistake)] == [
        ("ignored", "status entered-in-error: recorded by mistake")]


@pytest.mark.parametrize("command", [["recommend", "--as-of", "2026-12-01", "--format", "jsonl"],
                                     ["validate", "--format", "jsonl"]])
def test_a_cohort_run_refuses_only_the_record_with_an_unreadable_medicine(
        command, capsys, tmp_path):
    """In a cohort run, the record the importer refuses is a refusal line of its own (exit
    1), and the other patients are read and derived: one unreadable record of a population
    does not stop it."""
    cohort = tmp_path / "cohort"
    cohort.mkdir()
    (cohort / "a-readable.json").write_bytes(
        (resource_root() / "examples" / "fhir" / "hr-positive-bone-only-denosumab.json")
        .read_bytes())
    name, message = UNMAPPED_REFUSED[1]
    refused = cohort / name
    refused.write_bytes((UNMAPPED / name).read_bytes())
    assert main([command[0], str(cohort), *command[1:]]) == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    refusals = [line for line in lines if line.get("refused") and line["patient"] is None]
    assert refusals == [{
        "patient": None, "refused": True, "source": str(refused), "line": None,
        "resource": None, "because": f"the input cannot be imported: {message}"}]
    others = [line for line in lines if line not in refusals]
    assert others, "the readable patient is still read"
    if command[0] == "recommend":
        assert {line["population"]["status"] for line in others} == {"in"}


def test_medicine_names_match_whole_words_case_insensitively():
    from guidelinekg.fhir_import.base import ImporterBase

    names = ImporterBase([]).medicine_names
    assert names.named_in("XGEVA 120 mg") == {GKG.Denosumab: ["Xgeva"]}
    assert names.named_in("Zoledronic-acid 4 mg") == {GKG.ZoledronicAcid: ["zoledronic acid"]}
    assert names.named_in("trastuzumab-dkst 150 mg")[GKG.Trastuzumab] == ["trastuzumab"]
    assert names.named_in("denosumabx; predenosumab; zoledronic") == {}
    assert names.named_in("atorvastatin 20 mg at night") == {}


# ---------------------------------------------------------------------------------------
# Review fixes: a verification status of another system, withdrawn requests, Patient.link and
# Patient.active, malformed dateTimes, huge exponents, lone surrogates
# (tests/data/fhir/review/, tests/data/fhir/invalid/review-*.json)
# ---------------------------------------------------------------------------------------

REVIEW = DATA / "review"


def review_uuid(fixture: int, number: int) -> str:
    return f"urn:uuid:0e00000{fixture}-0000-4000-8000-{number:012d}"


UNREADABLE_VERIFICATION = ("cannot be read (no code of http://terminology.hl7.org/CodeSystem/"
                           "condition-ver-status): the condition is read neither as present "
                           "nor as absent")


def test_a_verification_status_of_another_system_or_none_is_not_read():
    """Only condition-ver-status codes are read: a local "refuted", a code without a system,
    a text or an unknown code is no verification status, so the Condition is ignored (the
    fact stays unknown) rather than read as refuted, or as asserted."""
    result = import_fhir_file(REVIEW / "review-verification-status-unreadable.json")
    ignored = {number: report_lines(result, review_uuid(1, number), "ignored")
               for number in range(101, 109)}
    assert ignored[102] == [
        f"verificationStatus http://example.org/local refuted {UNREADABLE_VERIFICATION}"]
    assert ignored[103] == [f"verificationStatus no system refuted {UNREADABLE_VERIFICATION}"]
    assert ignored[104] == [
        f"verificationStatus text only: 'Refuted' {UNREADABLE_VERIFICATION}"]
    # A primary breast cancer refuted without a system is not "refuted: not a breast cancer".
    assert ignored[105] == [f"verificationStatus no system refuted {UNREADABLE_VERIFICATION}"]
    assert ignored[106] == [
        "verificationStatus http://terminology.hl7.org/CodeSystem/condition-ver-status maybe "
        "cannot be read ('maybe' is not a condition-ver-status code): the condition is read "
        "neither as present nor as absent"]
    for number in range(102, 107):
        assert result.items_from(review_uuid(1, number)) == []
    assert not set(result.graph.subjects(GKG.site, CODE["site-bone"]))
    # The condition-ver-status codes, and no verificationStatus at all, read as before.
    check_item(result, review_uuid(1, 107), GKG.MetastasisCondition, site=CODE["site-liver"],
               present=False, clinicalStatus=ACTIVE, effectiveDate=date("2025-01-10"))
    check_item(result, review_uuid(1, 108), GKG.MetastasisCondition, site=CODE["site-lung"],
               present=True, clinicalStatus=ACTIVE, effectiveDate=date("2025-01-10"))
    assert report_lines(result, review_uuid(1, 108), "note") == [
        "no verificationStatus: read as asserted (present)"]


def test_a_local_refuted_bone_metastasis_leaves_the_population_undetermined(capsys):
    """Read as refuted it made the population "out"; unread, bone metastasis is unknown."""
    path = REVIEW / "review-verification-status-unreadable.json"
    assert main(["recommend", str(path), "--as-of", "2026-01-01", "--format", "json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["population"]["status"] == "undetermined"
    assert "bone-metastasis" in result["population"]["missing"]


def test_a_cancelled_order_and_a_revoked_request_are_not_read_as_given():
    """FHIR R4: a cancelled MedicationRequest was withdrawn before any administration; a
    revoked ServiceRequest does not say any of it was done. Neither is code:stopped (which
    the fact layer counts as a treatment received)."""
    result = import_fhir_file(REVIEW / "review-request-cancelled-and-revoked.json")
    order, request = review_uuid(2, 201), review_uuid(2, 202)
    assert report_lines(result, order) == [
        "status cancelled: the order was withdrawn before any dose was given; not a medicine "
        "given, ongoing or planned"]
    assert report_lines(result, request) == [
        "status revoked: the request was withdrawn, and a request does not say whether any of "
        "it was done (a Procedure records what was done); not a procedure done, ongoing or "
        "planned"]
    assert result.items_from(order) == result.items_from(request) == []
    assert not set(result.graph.subjects(RDF.type, GKG.Denosumab))
    assert not set(result.graph.subjects(RDF.type, GKG.DentalEvaluation))
    assert not set(result.graph.subjects(GKG.status, CODE.stopped))


REPLACED_BY = INVALID / "review-patient-link-replaced-by.json"
LINK_REFUSED = ("The importer does not follow Patient.link (it neither merges two patient "
                "records nor reads them as two people): merge the records first (one Patient "
                "without the link, every resource naming it) and import the merged record")


@pytest.mark.parametrize("command", READING_COMMANDS)
def test_a_patient_replaced_by_another_is_refused_with_exit_code_2(command, capsys, tmp_path):
    message = (f"{review_uuid(3, 2)} link[0] (entry 1): Patient.link replaced-by "
               f"{review_uuid(3, 1)}: this Patient record is no longer in use, the one it "
               f"links to replaces it. {LINK_REFUSED}")
    _assert_refused(command, REPLACED_BY, message, capsys, tmp_path)


@pytest.mark.parametrize(("link", "says"), [
    ({"type": "replaces", "other": {"reference": "Patient/old"}},
     "Patient.link replaces Patient/old: this Patient record replaces the one it links to, "
     "which was merged into it"),
    ({"type": "refer", "other": {"identifier": {"system": "http://h.example.org", "value": "9"}}},
     "Patient.link refer identifier http://h.example.org 9: the record it links to is the "
     "main record of this person"),
    ({"type": "same-as", "other": {"display": "Jane Doe"}},
     "Patient.link same-as Jane Doe: a link of a type the importer does not know (it may say "
     "the records are one person)"),
    ({"other": {"reference": "Patient/old"}},
     "Patient.link (no type) Patient/old: a link of a type the importer does not know (it may "
     "say the records are one person)"),
])
def test_a_patient_link_saying_which_record_to_use_raises_input_error(link, says):
    patient = {"resourceType": "Patient", "id": "p", "link": [
        {"type": "seealso", "other": {"reference": "Patient/other"}}, link]}
    with pytest.raises(InputError) as raised:
        import_fhir_json(patient, "patient.json")
    assert str(raised.value) == f"patient.json: Patient/p link[1]: {says}. {LINK_REFUSED}"


def test_an_inactive_patient_and_a_seealso_link_are_reported():
    result = import_fhir_file(REVIEW / "review-patient-link-seealso-inactive.json")
    first, second = review_uuid(4, 1), review_uuid(4, 2)
    mrn = URIRef("urn:guidelinekg:patient:http%3A%2F%2Fhospital.example.org%2Fmrn:REVIEW-4")
    assert result.patients == [mrn, URIRef(second)]
    assert [(e.element, e.detail) for e in result.entries(first, "note")] == [
        ("active", "active false: the record says this Patient record is not in active use "
         "(FHIR: created in error, merged, or of a patient no longer seen); it is read all the "
         "same: check that it is the record to use")]
    tail = ("the importer does not merge records: this patient's record items are those of the "
            "resources that name this Patient")
    assert [(e.element, e.detail) for e in result.entries(second, "note")] == [
        ("link[0]", f"Patient.link seealso {first}: the record says another record of the same "
         f"person, equally valid, exists (it is patient {mrn} of this input, read apart); "
         + tail),
        ("link[1]", "Patient.link seealso http://other.example.org/fhir/Patient/9: the record "
         "says another record of the same person, equally valid, exists (it is not in this "
         "input); " + tail)]
    check_item(result, review_uuid(4, 201), GKG.Denosumab, patient=URIRef(second),
               status=CODE.ongoing, startDate=date("2025-02-01"))


NOT_A_DATETIME = ("not a FHIR dateTime (its time must be hh:mm:ss, hours 00-23, with a zone: Z "
                  "or +/-hh:mm up to 14:00); " + AS_GIVEN)


@pytest.mark.parametrize(("value", "reason"), [
    ("2026-09-05T25:00:00+99:00", NOT_A_DATETIME),
    ("2025-01-15T25:00:00Z", NOT_A_DATETIME),
    ("2025-01-15T10:60:00Z", NOT_A_DATETIME),
    ("2025-01-15T10:00:00+15:00", NOT_A_DATETIME),
    ("2025-01-15T10:00:00", NOT_A_DATETIME),  # FHIR requires a zone with a time
    ("2025-01-15T10:00Z", NOT_A_DATETIME),
    ("2025-01-15Tgarbage", NOT_A_DATETIME),
    ("2025-02-30T10:00:00Z", "not a calendar date; " + AS_GIVEN),
    ("2025-01-15T23:59:60.123+14:00", None),
    ("2025-01-15T00:00:00-03:30", None),
    ("2025-01-15T10:00:00Z", None),
])
def test_a_datetime_with_a_malformed_time_is_written_as_given(value, reason):
    observation = {"resourceType": "Observation", "id": "vc", "status": "final",
                   "code": {"coding": [{"system": FINDING, "code": "visceral-crisis"}]},
                   "subject": {"reference": "Patient/p"}, "effectiveDateTime": value,
                   "valueBoolean": False}
    result = import_fhir_json(observation, "vc.json")
    written = Literal(value) if reason else date("2025-01-15")
    check_item(result, "Observation/vc", GKG.VisceralCrisisAssessment,
               valueBoolean=Literal(False), effectiveDate=written)
    notes = [(e.element, e.detail) for e in result.entries("Observation/vc", "note")]
    assert notes == ([("effectiveDateTime", f"date {value!r}: {reason}")] if reason else [])


BIG_EXPONENT = INVALID / "review-big-exponent.json"
OUT_OF_RANGE = ("not valid JSON (the number 1e99999999999999999999 is out of range (more than "
                "100 digits before or after the point))")


@pytest.mark.parametrize("command", READING_COMMANDS)
def test_a_number_with_a_huge_exponent_is_refused_with_exit_code_2(command, capsys, tmp_path):
    _assert_refused(command, BIG_EXPONENT, OUT_OF_RANGE, capsys, tmp_path)


def test_a_huge_exponent_is_out_of_range_wherever_fhir_json_is_parsed():
    from guidelinekg.fhir_import import parse_json_text

    for text in ("1e99999999999999999999", "-1E-99999999999999999999", "1e101"):
        with pytest.raises(InputError) as raised:
            parse_json_text(f'{{"value": {text}}}', "line.ndjson")
        assert "is out of range (more than 100 digits before or after the point)" in str(
            raised.value)


LONE_SURROGATE = INVALID / "review-lone-surrogate.json"
SURROGATE_REFUSED = ("not valid JSON text: entry[1].resource.valueString holds a lone surrogate "
                     "(\\ud800), which is no Unicode character; correct the record")


@pytest.mark.parametrize("command", [
    *READING_COMMANDS, ["recommend", "--as-of", "2026-12-01", "--format", "jsonl"],
    ["validate", "--format", "jsonl"]])
def test_a_lone_surrogate_is_refused_with_exit_code_2(command, capsys, tmp_path):
    _assert_refused(command, LONE_SURROGATE, SURROGATE_REFUSED, capsys, tmp_path)


def test_a_lone_surrogate_is_refused_where_it_is_and_a_pair_is_read():
    from guidelinekg.fhir_import import parse_json_text

    with pytest.raises(InputError) as raised:
        parse_json_text('{"entry": [{"resource": {"\\udfff": 1}}]}', "x.json")
    assert str(raised.value) == (
        "x.json: not valid JSON text: the name of 'entry[0].resource.\\udfff' holds a lone "
        "surrogate (\\udfff), which is no Unicode character; correct the record")
    with pytest.raises(InputError) as raised:
        parse_json_text('["\\ud83d"]', "x.json")
    assert "[0] holds a lone surrogate (\\ud83d)" in str(raised.value)
    # A pair is one character (an emoji); an escaped backslash before "ud800" is no escape.
    assert parse_json_text('{"a": "\\ud83d\\ude00", "b": "\\\\ud800"}', "x.json") == {
        "a": "\U0001f600", "b": "\\ud800"}


def test_a_her2_result_coded_indeterminate_in_snomed_is_read_as_indeterminate():
    """SNOMED CT 82334004 "Indeterminate" is an indeterminate result: read as such (HER2 then
    stays unknown, with the note that says what would settle it), never refused or guessed."""
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "id": "p"}},
        {"fullUrl": "urn:uuid:h", "resource": {
            "resourceType": "Observation", "id": "h", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "48676-1"}]},
            "subject": {"reference": "urn:uuid:p"}, "effectiveDateTime": "2026-09-03",
            "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct",
                                                 "code": "82334004"}]}}},
    ]}
    result = import_fhir_json(bundle, "indeterminate.json")
    assert (URIRef("urn:uuid:h"), GKG.valueCode, URIRef(PREFIXES["code"] + "indeterminate")
            ) in result.graph
    assert violations_of(result.graph) == set()


# ---------------------------------------------------------------------------------------
# Review fixes: patient identity. Every current identifier of a Patient counts, in any order;
# a retired identifier (use old, a period with an end) neither joins nor names patients;
# another server's Patient/p1 is not this server's (tests/data/fhir/review/review-identity-*,
# tests/data/fhir/invalid/review-identity-*)
# ---------------------------------------------------------------------------------------

MRN_SYSTEM = "http://hospital.example.org/mrn"
EMPI_SYSTEM = "http://empi.example.org"
IDENTIFIER_ORDER = REVIEW / "review-identity-identifier-order.json"
RETIRED_IDENTIFIER = REVIEW / "review-identity-retired-identifier.json"
OTHER_SERVER = REVIEW / "review-identity-other-server.json"
CONTRADICTING = INVALID / "review-identity-contradicting-identifiers.json"
NOT_FOR_IDENTITY = ("not used for identity (it neither makes this Patient one patient with "
                    "another record nor names it)")


def identified(system: str, value: str) -> URIRef:
    return URIRef(f"urn:guidelinekg:patient:{quote(system, safe='')}:{quote(value, safe='')}")


def subjects_of(result: FhirImport, references: list[str]) -> dict[str, Node | None]:
    return {reference: result.graph.value(URIRef(reference), GKG.subject)
            for reference in references}


def test_patients_sharing_an_identifier_in_another_order_are_one_patient():
    """Defect: only the first identifier counted, so two records of one person (MRN-1 and
    E-77, in opposite orders) were two patients, and a logical reference by E-77 a third
    one without a birth date."""
    result = import_fhir_file(IDENTIFIER_ORDER)
    e77 = identified(EMPI_SYSTEM, "E-77")  # the smallest: http://empi... < http://hospital...
    assert result.patients == [e77]
    assert set(result.graph.subjects(RDF.type, GKG.Patient)) == {e77}
    assert result.graph.value(e77, GKG.birthDate) == date("1960-04-12")
    items = [review_uuid(5, number) for number in range(101, 107)]
    # 102 names the patient by its second identifier (a logical reference), 106 by the second
    # Patient record: every item is the one patient's.
    assert subjects_of(result, items) == dict.fromkeys(items, e77)
    assert result.entries(f"identifier {EMPI_SYSTEM} E-77") == []
    assert report_lines(result, review_uuid(5, 1), "note") == []
    assert report_lines(result, review_uuid(5, 2), "note") == [
        f"the same patient as {review_uuid(5, 1)} of {IDENTIFIER_ORDER} (the same identifiers "
        f"{EMPI_SYSTEM} E-77, {MRN_SYSTEM} MRN-1): one patient, {e77}"]
    assert not result.entries(outcome="ignored")


def test_the_denosumab_order_of_the_second_record_is_the_patients(capsys):
    """Defect: the order landed on the other patient; the first got a false AVOID-1
    contraindication (denosumab with zoledronic acid...) and a BMA-1 care gap."""
    assert main(["recommend", str(IDENTIFIER_ORDER), "--as-of", "2026-01-01",
                 "--format", "json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["patient"] == str(identified(EMPI_SYSTEM, "E-77"))
    assert "AVOID-1" not in [found["key"] for found in result["contraindicated"]]
    assert "BMA-1" not in [gap["key"] for gap in result["care_gaps"]]
    # The order is read as this patient's: no dental evaluation before it.
    assert {(found["key"], found["record_item"]) for found in result["contraindicated"]} == {
        ("AVOID-3", review_uuid(5, 106))}


def test_the_patient_iri_depends_neither_on_identifier_nor_on_entry_order():
    data = json.loads(IDENTIFIER_ORDER.read_text())
    baseline = import_fhir_json(data, "order.json")
    reordered = json.loads(IDENTIFIER_ORDER.read_text())
    for entry in reordered["entry"]:
        if entry["resource"]["resourceType"] == "Patient":
            entry["resource"]["identifier"].reverse()
    reordered["entry"].reverse()
    result = import_fhir_json(reordered, "order.json")
    assert result.patients == baseline.patients == [identified(EMPI_SYSTEM, "E-77")]
    assert isomorphic(result.graph, baseline.graph)


def test_records_joined_through_a_third_are_one_patient_named_by_the_smallest_identifier():
    def patient(local_id: str, *identifiers: tuple[str, str]) -> dict:
        return {"fullUrl": f"urn:uuid:{local_id}", "resource": {
            "resourceType": "Patient", "id": local_id, "birthDate": "1960-04-12",
            "identifier": [{"system": system, "value": value} for system, value in identifiers]}}

    crisis = {"resourceType": "Observation", "id": "o", "status": "final",
               "code": {"coding": [{"system": FINDING, "code": "visceral-crisis"}]},
               "subject": {"identifier": {"system": "http://c.example.org", "value": "3"}},
               "effectiveDateTime": "2025-01-15", "valueBoolean": False}
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        patient("a", ("http://b.example.org", "2"), ("http://c.example.org", "3")),
        patient("b", ("http://a.example.org", "1"), ("http://b.example.org", "2")),
        {"fullUrl": "urn:uuid:o", "resource": crisis},
        patient("c", ("http://c.example.org", "3"), ("http://d.example.org", "4"))]}
    result = import_fhir_json(bundle, "three.json")
    one = identified("http://a.example.org", "1")
    assert result.patients == [one]
    assert result.graph.value(URIRef("urn:uuid:o"), GKG.subject) == one
    assert report_lines(result, "urn:uuid:b", "note") == [
        f"the same patient as urn:uuid:a of three.json (the same identifier "
        f"http://b.example.org 2): one patient, {one}"]
    assert report_lines(result, "urn:uuid:c", "note") == [
        f"the same patient as urn:uuid:a of three.json (the same identifier "
        f"http://c.example.org 3): one patient, {one}"]


def contradiction(first: str, second: str, source: str) -> str:
    return (f"{first} ({source}) and {second} ({source}) have the same identifier "
            f"{EMPI_SYSTEM} E-77 but other identifiers of the system {MRN_SYSTEM} (MRN-1; "
            "MRN-2): the records contradict each other, and the importer neither merges nor "
            "splits them; correct the identifiers")


@pytest.mark.parametrize("command", READING_COMMANDS)
def test_records_sharing_one_identifier_and_disagreeing_on_another_are_refused(
        command, capsys, tmp_path):
    message = contradiction(review_uuid(6, 1), review_uuid(6, 2), str(CONTRADICTING))
    _assert_refused(command, CONTRADICTING, message, capsys, tmp_path)


def test_identifiers_that_disagree_across_two_files_are_refused(tmp_path):
    paths = []
    for name, mrn in (("a.json", "MRN-1"), ("b.json", "MRN-2")):
        path = tmp_path / name
        path.write_text(json.dumps({"resourceType": "Patient", "id": "p", "identifier": [
            {"system": MRN_SYSTEM, "value": mrn}, {"system": EMPI_SYSTEM, "value": "E-77"}]}))
        paths.append(path)
    with pytest.raises(InputError) as raised:
        import_fhir_files(paths)
    assert str(raised.value) == (
        f"{paths[0]}, {paths[1]}: Patient/p ({paths[0]}) and Patient/p ({paths[1]}) have the "
        f"same identifier {EMPI_SYSTEM} E-77 but other identifiers of the system {MRN_SYSTEM} "
        "(MRN-1; MRN-2): the records contradict each other, and the importer neither merges "
        "nor splits them; correct the identifiers")


def test_a_retired_identifier_neither_joins_nor_names_a_patient():
    """Defect: OLD-9, retired (use old, its period ended) and reissued to another person,
    merged the two Patients and named the merged patient."""
    result = import_fhir_file(RETIRED_IDENTIFIER)
    mrn1, old9 = identified(MRN_SYSTEM, "MRN-1"), identified(MRN_SYSTEM, "OLD-9")
    assert result.patients == [mrn1, old9]
    items = [review_uuid(7, number) for number in range(101, 106)]
    assert subjects_of(result, items) == dict.fromkeys(items, mrn1)
    # A logical reference by OLD-9 is about the patient that holds it now.
    assert subjects_of(result, [review_uuid(7, 106)]) == {review_uuid(7, 106): old9}
    assert [(e.element, e.detail) for e in result.entries(review_uuid(7, 1), "note")] == [
        ("identifier[0]", f"identifier {MRN_SYSTEM} OLD-9: use old and its period ends "
         f"2019-01-01: {NOT_FOR_IDENTITY}; it is a current identifier of patient {old9} of "
         "this input, read apart"),
        ("identifier[2]", f"identifier {MRN_SYSTEM} OLD-8: its period ends 2018-06-30: "
         f"{NOT_FOR_IDENTITY}")]
    assert result.entries(review_uuid(7, 2), "note") == []
    # One that no record holds as current names no one: not guessed onto its old holder.
    assert report_lines(result, review_uuid(7, 107)) == [
        f"its subject names the identifier {MRN_SYSTEM} OLD-8, which {review_uuid(7, 1)} of "
        f"{RETIRED_IDENTIFIER} holds as retired (its period ends 2018-06-30) and no Patient "
        "of the input holds as current: whose record it is now is not known; name the subject "
        "by a current identifier or a reference"]
    assert result.items_from(review_uuid(7, 107)) == []
    assert result.entries(review_uuid(7, 107))[0].outcome == "ignored"


def test_patients_with_only_retired_identifiers_are_named_by_their_fullurls():
    """A period with an end is retired whatever the date (the importer has no clock)."""
    mrn = {"system": MRN_SYSTEM, "value": "T-1", "period": {"end": "2099-12-31"}}
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": f"urn:uuid:{name}", "resource": {
            "resourceType": "Patient", "id": name, "birthDate": "1960-04-12",
            "identifier": [mrn]}} for name in "ab"]}
    result = import_fhir_json(bundle, "temporary.json")
    assert result.patients == [URIRef("urn:uuid:a"), URIRef("urn:uuid:b")]
    for name in "ab":
        assert [(e.element, e.detail) for e in result.entries(f"urn:uuid:{name}", "note")] == [
            ("identifier[0]", f"identifier {MRN_SYSTEM} T-1: its period ends 2099-12-31: "
             f"{NOT_FOR_IDENTITY}")]


def test_another_servers_patient_with_the_same_id_is_not_this_servers():
    """Defect: https://other.example.org/fhir/Patient/p1 was read as this file's
    https://ehr.example.org/fhir/Patient/p1 (the same Type/id at the end of the URL)."""
    result = import_fhir_file(OTHER_SERVER)
    ehr = "https://ehr.example.org/fhir/"
    patient = URIRef(ehr + "Patient/p1")
    assert result.patients == [patient]
    unresolved = {
        ehr + "Condition/c1": "its subject https://other.example.org/fhir/Patient/p1 is not a "
                              f"patient of this input (its file holds {patient})",
        # A relative reference of a resource of the other server is that server's.
        "https://other.example.org/fhir/Observation/o1": "its subject Patient/p1 is not a "
                                                         f"patient of this input (its file "
                                                         f"holds {patient})"}
    for reference, line in unresolved.items():
        assert report_lines(result, reference) == [line]
        assert result.entries(reference)[0].outcome == "ignored"
        assert result.items_from(reference) == []
    # This server's versioned URL, and a relative reference of this server's resource.
    resolved = [ehr + "Condition/c2", ehr + "Observation/o2"]
    assert subjects_of(result, resolved) == dict.fromkeys(resolved, patient)


def test_another_servers_patient_named_by_a_file_without_patients_is_a_patient_of_its_own():
    patient = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "https://ehr.example.org/fhir/Patient/p1",
         "resource": {"resourceType": "Patient", "id": "p1", "birthDate": "1960-04-12"}}]}
    other = "https://other.example.org/fhir/Patient/p1"
    observation = {"resourceType": "Observation", "id": "o", "status": "final",
                   "code": {"coding": [{"system": FINDING, "code": "visceral-crisis"}]},
                   "subject": {"reference": other}, "effectiveDateTime": "2025-01-15",
                   "valueBoolean": False}
    with_patient = {"resourceType": "Bundle", "type": "collection", "entry": [
        *patient["entry"], {"fullUrl": "https://other.example.org/fhir/Observation/o",
                            "resource": observation}]}
    result = import_fhir_json(with_patient, "one.json")
    assert result.patients == [URIRef("https://ehr.example.org/fhir/Patient/p1")]
    assert result.items_from("https://other.example.org/fhir/Observation/o") == []
    # Without a Patient in its file, the reference names a patient of its own.
    alone = import_fhir_json(observation, "alone.json")
    assert alone.patients == [URIRef(other)]
    assert alone.graph.value(item_iri("Observation/o", "alone.json"), GKG.subject) == \
        URIRef(other)


def test_an_absolute_reference_still_resolves_in_a_bundle_without_fullurls():
    """Resources named by their ids only: an absolute URL ending in Patient/p1 is the file's
    Patient/p1 (no fullUrl says it is on another server)."""
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p1", "birthDate": "1960-04-12"}},
        {"resource": {"resourceType": "Observation", "id": "o", "status": "final",
                      "code": {"coding": [{"system": FINDING, "code": "visceral-crisis"}]},
                      "subject": {"reference": "https://ehr.example.org/fhir/Patient/p1"},
                      "effectiveDateTime": "2025-01-15", "valueBoolean": False}}]}
    result = import_fhir_json(bundle, "ids.json")
    assert result.patients == [item_iri("Patient/p1", "ids.json")]
    assert result.graph.value(item_iri("Observation/o", "ids.json"), GKG.subject) == \
        result.patient


def test_a_modifier_extension_anywhere_in_a_resource_is_never_read_past():
    """A modifierExtension inside an element (a Dosage, a primitive's _status) may change
    what the resource means as much as one at its root, and the resource cannot be left out
    either (an ordered denosumab not read was a BMA-1 care gap to start one): the record is
    refused, the element and the extension named, as it is for one on the Patient."""
    hold = {"url": "http://example.org/on-hold"}
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "id": "p"}},
        {"fullUrl": "urn:uuid:d", "resource": {
            "resourceType": "MedicationRequest", "id": "d", "status": "active",
            "intent": "order", "_status": {"modifierExtension": [hold]},
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "993449"}]},
            "subject": {"reference": "urn:uuid:p"},
            "dosageInstruction": [{"modifierExtension": [hold], "text": "120 mg"}]}},
    ]}
    with pytest.raises(InputError, match=re.escape(
            "the MedicationRequest carries a modifierExtension the importer does not "
            "understand (_status: http://example.org/on-hold, dosageInstruction[0]: "
            "http://example.org/on-hold): it may change what the resource means, and left out "
            "the resource would be read as absent, so the record cannot be read")):
        import_fhir_json(bundle, "modifiers.json")
    bundle["entry"][0]["resource"]["name"] = [{"modifierExtension": [hold], "family": "X"}]
    with pytest.raises(InputError, match="the Patient carries a modifierExtension the "
                                         r"importer does not understand \(name\[0\]: "):
        import_fhir_json(bundle, "modifiers.json")


def test_a_unit_code_without_a_system_is_read_as_ucum_with_a_note():
    """FHIR asks for a system with a unit code; without one, the code is read as UCUM (the
    only system the project reads units of), and the report says it was assumed."""
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "id": "p"}},
        {"fullUrl": "urn:uuid:d", "resource": {
            "resourceType": "MedicationRequest", "id": "d", "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "993449"}]},
            "subject": {"reference": "urn:uuid:p"},
            "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {
                "value": 120, "unit": "mg", "code": "mg"}}]}]}},
    ]}
    result = import_fhir_json(bundle, "no-system.json")
    assert set(result.graph.objects(None, GKG.doseUnit)) == {Literal("mg")}
    assert "unit code 'mg' has no system: read as a UCUM code" in report_lines(
        result, "urn:uuid:d", "note")


@pytest.mark.parametrize(("text", "message"), [
    ('{"resourceType": "Patient", "id": "p", "birthDate": "1962-03-14", '
     '"birthDate": "2020-01-01"}',
     'the key "birthDate" is given twice in one object: which value holds is not known'),
    ('{"resourceType": "Patient", "id": "p", "multipleBirthInteger": ' + "9" * 5_000 + "}",
     "is out of range (more than 100 digits)"),
])
def test_a_key_given_twice_or_a_number_of_thousands_of_digits_is_refused(
        text: str, message: str, tmp_path, capsys) -> None:
    """JSON readers keep the last of two values of one key, silently (a second birthDate
    replaced the first); Python refuses integers of over 4,300 digits with a message about
    its own settings. Both are refused, as the file's fault, in Bundles and in NDJSON."""
    from guidelinekg.bulk_data import Unreadable, read_line
    from guidelinekg.cli import main

    path = tmp_path / "record.json"
    path.write_text(text, encoding="utf-8")
    assert main(["validate", str(path)]) == 2
    assert message in capsys.readouterr().err
    line = read_line(text, "Patient.ndjson")
    assert isinstance(line, Unreadable) and message in line.because


def test_the_report_written_beside_an_output_file_escapes_control_characters(
        tmp_path, capsys) -> None:
    """With -o, the report goes to standard output: a status holding escape sequences (clear
    the screen, set the window title) is written as escapes there too, as on stderr."""
    from guidelinekg.cli import main

    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "id": "p"}},
        {"fullUrl": "urn:uuid:o", "resource": {
            "resourceType": "Observation", "id": "o", "status": "fi\x1b[2J\x1b]0;owned\x07nal",
            "code": {"coding": [{"system": "http://loinc.org", "code": "85337-4"}]},
            "subject": {"reference": "urn:uuid:p"}}}]}
    path = tmp_path / "escapes.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    assert main(["import-fhir", str(path), "-o", str(tmp_path / "out.ttl")]) == 0
    out = capsys.readouterr().out
    assert "status fi\\x1b[2J\\x1b]0;owned\\x07nal" in out
    assert "\x1b" not in out and "\x07" not in out
