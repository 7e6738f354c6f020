"""`guidelinekg import-fhir`: FHIR R4 / mCODE bundles to the patient graph.

The project's own bundles (tests/data/fhir/, one per situation) are checked triple by triple;
the real mCODE examples in ../shared/fixtures/fhir/ must import without an error and give
the facts a clinician reads in them; bad input gets a clear message and exit code 2.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

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
from guidelinekg.resources import ontology_dir, shapes_dir

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

needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(),
    reason=f"shared FHIR fixtures not found at {FIXTURES} (clone shared/ beside the repository)",
)


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


def item_iri(reference: str) -> URIRef:
    if ":" in reference.split("/", 1)[0]:
        return URIRef(reference)
    return URIRef(f"urn:guidelinekg:fhir:{reference}")


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
               iri: URIRef | None = None, **props: object) -> URIRef:
    """The record item made from one resource has exactly these triples."""
    iri = iri or item_iri(reference)
    assert triples(result.graph, iri) == expected(
        classes, subject=result.patient, sourceResource=reference, **props), iri
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
    check_item(result, ref["primary"], GKG.PrimaryBreastCancer,
               stageGroup=CODE["stage-iv"], effectiveDate=date("2026-09-01"))
    check_item(result, ref["bone-metastasis"], GKG.MetastasisCondition, site=CODE["site-bone"],
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
    check_item(result, ref["primary"], GKG.PrimaryBreastCancer, stageGroup=CODE["stage-iv"],
               effectiveDate=date("2026-09-20"))
    assert report_lines(result, ref["stage"], "imported") == [
        f"stage group code:stage-iv of the primary breast cancer {ref['primary']}"]
    check_item(result, ref["liver-metastasis"], GKG.MetastasisCondition,
               site=CODE["site-liver"], present=True, effectiveDate=date("2026-09-22"))
    check_item(result, ref["lung-metastasis"], GKG.MetastasisCondition, site=CODE["site-lung"],
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
    # No fullUrl in this bundle: items are named urn:guidelinekg:fhir:<type>/<id>.
    assert result.patient == URIRef("urn:guidelinekg:fhir:Patient/tnbc")
    check_item(result, "Condition/primary", GKG.PrimaryBreastCancer,
               stageGroup=CODE["stage-iv"], effectiveDate=date("2026-08-01"))
    check_item(result, "Condition/bone-metastasis", GKG.MetastasisCondition,
               site=CODE["site-bone"], present=True, effectiveDate=date("2026-08-03"))
    check_item(result, "Condition/brain-metastasis", GKG.MetastasisCondition,
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
    check_item(result, ref["primary"], GKG.PrimaryBreastCancer, stageGroup=CODE["stage-iv"],
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
    check_item(result, ref["primary"], GKG.PrimaryBreastCancer, effectiveDate=date("2026-04-02"))
    assert [e.detail for e in result.entries(ref["primary"]) if e.element == "stage"] == [
        f"stage groups disagree (code:stage-i-iii from {ref['primary']} stage[0].summary; "
        f"code:stage-iv from {ref['stage']}): no stage group written"]
    check_item(result, ref["liver-refuted"], GKG.MetastasisCondition, site=CODE["site-liver"],
               present=False, effectiveDate=date("2026-06-01"))
    assert ignored["lung-provisional"] == [
        "verificationStatus provisional: not read as present (only confirmed metastases are), "
        "nor as absent"]
    assert ignored["brain-resolved"] == [
        "clinicalStatus resolved: the record does not say the site is involved now, so it is "
        "read neither as present nor as absent"]
    assert ignored["other-site-unknown-code"] == [
        "Condition code ICD-10-CM C79.89 (Secondary malignant neoplasm of other specified "
        "sites) is not in the code map"]
    check_item(result, ref["fracture"], GKG.PathologicalFracture,
               effectiveDate=date("2026-06-03"))
    check_item(result, ref["skin-no-verification"], GKG.MetastasisCondition,
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
    assert ignored["pain-out-of-range"] == [
        "pain severity needs a whole-number score from 0 to 10; found valueInteger 12"]
    june_6 = date("2026-06-06")
    check_item(result, ref["response"], GKG.ResponseAssessment, valueCode=CODE["good-response"],
               effectiveDate=june_6)
    for rid, cls, value in (("neuro", GKG.NeurologicalComplicationAssessment, False),
                            ("weight-bearing", GKG.WeightBearingLesionAssessment, True),
                            ("bone-predominant", GKG.BonePredominantDiseaseAssessment, True),
                            ("engaged", GKG.PatientEngagementRecord, True)):
        check_item(result, ref[rid], cls, valueBoolean=value, effectiveDate=june_6)
    assert ignored["visceral-crisis-wrong-type"] == [
        "gkg:VisceralCrisisAssessment needs valueBoolean; found valueString"]
    assert ignored["hemoglobin"] == [
        "Observation code LOINC 718-7 (Hemoglobin [Mass/volume] in Blood) is not in the code map"]
    assert ignored["ecog"] == ["LOINC 89247-1 is known, but no patient fact uses it"]
    # A partial date is not a date: the weight is kept without one, and the report says so.
    check_item(result, ref["weight-partial-date"], GKG.BodyWeight, valueDecimal=dec("70.0"),
               unitCode="kg")
    assert ignored["weight-partial-date"] == [
        "date '2026-06': only a year or a month is given; no effectiveDate written"]
    assert ignored["lesions-no-value"] == [
        "no value (dataAbsentReason http://terminology.hl7.org/CodeSystem/data-absent-reason "
        "not-performed)"]
    assert ignored["modified"] == [
        "it carries a modifierExtension the importer does not understand "
        "(http://example.org/fhir/StructureDefinition/refuted-by-review): it may change its "
        "meaning"]
    assert ignored["other-patient"] == [
        f"its subject Patient/someone-else is not the patient of this record ({result.patient})"]
    assert ignored["oncologist"] == [
        "resource type Practitioner is not imported (no patient fact uses it)"]
    for rid in ("primary-entered-in-error", "lung-provisional", "brain-resolved", "modified",
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
    check_item(result, ref["palbociclib-cancelled"], GKG.Palbociclib, status=CODE.stopped)
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
    # A dose unit the project cannot convert (mg/m2) keeps the medicine, without an amount.
    docetaxel = item_iri(ref["docetaxel-per-m2"])
    check_item(result, ref["docetaxel-per-m2"], GKG.Docetaxel, status=CODE.ongoing,
               startDate=date("2026-04-07"), hasDose=URIRef(f"{docetaxel}#dose-1"))
    check_dose(result, URIRef(f"{docetaxel}#dose-1"), route=CODE.intravenous,
               frequency=integer(1), period=dec("3.0"), periodUnit="wk")
    assert ignored["docetaxel-per-m2"] == [
        "dose unit 'mg/m2' cannot be converted to a unit the project checks (g, mg, mg/kg, ug): "
        "the amount 75 mg/m2 is not recorded"]


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
        "verificationStatus": {"coding": [{"code": "confirmed"}]},
        "code": {"coding": [{"system": SNOMED, "code": "94222008"}]},
        "subject": {"reference": "Patient/p1"}, "onsetDateTime": "2026-01-05T10:00:00+01:00",
    }
    result = import_fhir_json(condition, "condition.json")
    assert result.patient == URIRef("urn:guidelinekg:fhir:Patient/p1")
    assert triples(result.graph, result.patient) == {("type", GKG.Patient)}
    check_item(result, "Condition/mets", GKG.MetastasisCondition, site=CODE["site-bone"],
               present=True, effectiveDate=date("2026-01-05"))
    assert [e.detail for e in result.entries("Patient/p1")] == [
        "no Patient resource in the input: the patient is the subject the resources name "
        "(Patient/p1); no birth date is known"]


def test_files_of_one_patient_are_imported_together_and_duplicates_read_once(tmp_path):
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": "1960-02-03"}
    order = {"resourceType": "MedicationStatement", "id": "ms", "status": "active",
             "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "72965"}]},
             "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-03-01"}
    (tmp_path / "patient.json").write_text(json.dumps(patient))
    (tmp_path / "statement.json").write_text(json.dumps(order))
    paths = [tmp_path / "patient.json", tmp_path / "statement.json", tmp_path / "patient.json"]
    result = import_fhir_files(paths)
    assert result.patient == URIRef("urn:guidelinekg:fhir:Patient/p1")
    check_item(result, "MedicationStatement/ms", GKG.Letrozole, status=CODE.ongoing,
               startDate=date("2026-03-01"))
    details = [e.detail for e in result.entries("Patient/p1")]
    assert details == ["gkg:Patient, birthDate 1960-02-03",
                       f"the same resource as the resource of {tmp_path / 'patient.json'}: "
                       "read once"]


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
    assert triples(result.graph, result.patient) == {("type", GKG.Patient)}
    assert [(e.element, e.detail) for e in result.entries("urn:uuid:p", "ignored")] == [
        ("birthDate", "date '1960-02-30': not a calendar date; no birthDate written")]
    assert report_lines(result, "urn:uuid:er", "ignored") == [
        "no status: not known to be final, amended or corrected"]
    check_item(result, "urn:uuid:pr", GKG.ProgesteroneReceptorStatus, valueCode=CODE.positive)
    assert [(e.element, e.detail) for e in result.entries("urn:uuid:pr", "ignored")] == [
        ("effectiveDateTime", "date 20260101 is not a FHIR date; no effectiveDate written")]


# ---------------------------------------------------------------------------------------
# Bad input: a clear error, exit code 2, no traceback
# ---------------------------------------------------------------------------------------

BAD_INPUT = [
    ("not-fhir.json", "not FHIR JSON: a JSON object without resourceType"),
    ("not-json.json", "not valid JSON (Expecting value: line 2 column 1"),
    ("two-patients.json", "bundle holds 2 patients: urn:uuid:9f000009-0001-4000-8000-"
     "000000000001, urn:uuid:9f000009-0002-4000-8000-000000000002; import one patient per "
     "bundle"),
    ("observation-without-code.json", "urn:uuid:9e00000a-0002-4000-8000-000000000002 (entry 1): "
     "the Observation has no code: the importer cannot tell what it records"),
    ("weight-unit-not-convertible.json", "urn:uuid:9d00000b-0002-4000-8000-000000000002 "
     "valueQuantity (entry 1): body weight unit '[stone_av]' cannot be converted to a unit the "
     "project checks ([lb_av], kg)"),
    ("dose-without-unit.json", "urn:uuid:9c00000c-0002-4000-8000-000000000002 "
     "dosageInstruction[0].doseAndRate[0].doseQuantity (entry 1): dose 120 has no UCUM unit; "
     "give Quantity.system http://unitsofmeasure.org and a code: g, mg, mg/kg, ug"),
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


def test_resources_naming_two_patients_without_a_patient_resource_are_refused():
    def condition(rid: str, patient: str) -> dict:
        return {"resource": {"resourceType": "Condition", "id": rid,
                             "code": {"coding": [{"system": SNOMED, "code": "94222008"}]},
                             "subject": {"reference": f"Patient/{patient}"}}}
    bundle = {"resourceType": "Bundle", "entry": [condition("a", "p1"), condition("b", "p2")]}
    with pytest.raises(InputError, match=r"the resources name 2 patients \(Patient/p1, "
                                         r"Patient/p2\) and no Patient resource is given"):
        import_fhir_json(bundle, "b.json")


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
    assert result.patient == URIRef("urn:uuid:mCODETrialMatchingPatientExample01")
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
    "Condition-mCODEPrimaryCancerConditionExample01.json":
        "Condition code SNOMED CT 254637007 is not in the code map",  # lung cancer
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
    iri = URIRef(f"urn:guidelinekg:fhir:{reference}")
    assert (iri, RDF.type, cls) in result.graph
    assert (iri, GKG[prop], value) in result.graph
    if cls != GKG.Patient:
        assert result.patient == URIRef("urn:guidelinekg:fhir:Patient/mCODEPatientExample01")
        assert (iri, GKG.sourceResource, Literal(reference)) in result.graph


@needs_fixtures
def test_stu1_examples_of_one_patient_imported_together_resolve_their_references():
    paths = [p for p in sorted(STU1.glob("*.json"))
             if p.name != "Patient-mCODEPatientExample02.json"]
    result = import_fhir_files(paths)
    assert (result.patient, GKG.birthDate, date("1951-01-20")) in result.graph
    # The brain metastasis belongs to the lung cancer (related-primary extension): it is not
    # a metastasis of breast cancer.
    assert report_lines(result, "Condition/mCODESecondaryCancerConditionExample01", "ignored") == [
        "a metastasis of Condition/mCODEPrimaryCancerConditionExample01, which is not a breast "
        "cancer in the code map"]
    assert set(result.graph.subjects(RDF.type, GKG.MetastasisCondition)) == set()


@needs_fixtures
def test_all_stu1_examples_together_hold_two_patients():
    with pytest.raises(InputError, match="the input files hold 2 patients: "
                                         "Patient/mCODEPatientExample01, "
                                         "Patient/mCODEPatientExample02; import one patient"):
        import_fhir_files(sorted(STU1.glob("*.json")))


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
    resource = json.loads((ontology_dir() / "fhir" / "CodeSystem-finding.json").read_text())
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


@pytest.mark.skipif(not (shapes_dir() / "patient.ttl").is_file(),
                    reason="shapes/patient.ttl is not written yet")
def test_imported_graphs_conform_to_the_patient_shapes(ontology):
    from guidelinekg.shacl import validate_graph

    graphs = [imported(name).graph for name in OWN_BUNDLES]
    if FIXTURES.is_dir():
        graphs.append(import_fhir_file(TRIAL_MATCHING / "TrialMatching_Patient01.json").graph)
        graphs += [import_fhir_file(p).graph for p in sorted(STU1.glob("*.json"))]
    # One validation of every patient at once: the shapes judge each patient's items alone.
    shapes = merge_graphs(parse_rdf_file(p) for p in sorted(shapes_dir().glob("*.ttl")))
    report = validate_graph(merge_graphs(graphs), shapes, ontology)
    violations = [(str(r.focus), r.message) for r in report.by_severity("Violation")]
    assert violations == []
