"""Dose checks compare every part a regimen step states, for every regimen of the guideline.

For each step, an order that states every part as the step does matches it; the same order
without one of the parts (route, interval, fractions, infusion duration) never "matches":
the verdict names the part as not recorded. Records are built from the guideline graph, so
a new regimen is covered without a new test.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF, RDFS, XSD

from guidelinekg.derivation import derive
from guidelinekg.loading import PREFIXES, guideline_graph
from guidelinekg.results import DoseCheck

GKG, CODE = PREFIXES["gkg"], PREFIXES["code"]
EX = "http://example.org/dose-check/"
AS_OF = date(2026, 12, 1)
# The dose parts an order may lack, with the words a verdict uses for them.
PARTS = {"route": ("route",), "period": ("interval",), "fractions": ("number of fractions",),
         "infusionDuration": ("infusion duration",)}


def _g(name: str) -> URIRef:
    return URIRef(GKG + name)


def _steps() -> list[tuple[URIRef, URIRef, URIRef]]:
    graph = guideline_graph()
    found = []
    for regimen in graph.subjects(RDF.type, _g("DoseRegimen")):
        for step in graph.objects(regimen, _g("hasStep")):
            found.append((regimen, step, graph.value(regimen, _g("regimenFor"))))
    return sorted(found)


STEPS = _steps()


# Findings under which the regimens' statements apply (HER2-3: HER2-positive; RT-1: a
# painful bone metastasis that is uncomplicated); a regimen is a standard only where its
# statement applies.
FINDINGS = (("her2", "HER2Status", "valueCode", URIRef(CODE + "positive")),
            ("pain", "BonePainAssessment", "valueCode", URIRef(CODE + "pain-severe")),
            ("risk", "FractureRiskAssessment", "valueCode", URIRef(CODE + "risk-low")),
            ("cord", "SpinalCordCompressionAssessment", "valueBoolean", Literal(False)),
            ("neuro", "NeurologicalComplicationAssessment", "valueBoolean", Literal(False)),
            ("fracture", "PathologicalFracture", "present", Literal(False)))


def _record(step: URIRef, drug_class: URIRef, without: str | None,
            findings: tuple = FINDINGS) -> Graph:
    """A patient in the population with one order of drug_class dosed as the step says."""
    guideline = guideline_graph()
    record = Graph()
    patient, item, dose = URIRef(EX + "patient"), URIRef(EX + "order"), URIRef(EX + "dose")
    add = record.add
    for name, kind, prop, value in findings:
        node = URIRef(EX + name)
        add((node, RDF.type, _g(kind)))
        add((node, _g("subject"), patient))
        add((node, _g(prop), value))
        add((node, _g("effectiveDate"), Literal("2026-11-01", datatype=XSD.date)))
    add((patient, RDF.type, _g("Patient")))
    add((patient, _g("birthDate"), Literal("1960-01-01", datatype=XSD.date)))
    for name, kind, extra in (("primary", "PrimaryBreastCancer", (_g("stageGroup"),
                                                                  URIRef(CODE + "stage-iv"))),
                              ("bone", "MetastasisCondition", (_g("site"),
                                                               URIRef(CODE + "site-bone")))):
        node = URIRef(EX + name)
        add((node, RDF.type, _g(kind)))
        add((node, _g("subject"), patient))
        add((node, extra[0], extra[1]))
        add((node, _g("effectiveDate"), Literal("2026-06-01", datatype=XSD.date)))
    add((URIRef(EX + "bone"), _g("present"), Literal(True)))
    weight = URIRef(EX + "weight")
    add((weight, RDF.type, _g("BodyWeight")))
    add((weight, _g("subject"), patient))
    add((weight, _g("valueDecimal"), Literal(Decimal("70.0"))))
    add((weight, _g("unitCode"), Literal("kg")))
    add((weight, _g("effectiveDate"), Literal("2026-11-01", datatype=XSD.date)))
    add((item, RDF.type, drug_class))
    add((item, _g("subject"), patient))
    add((item, _g("status"), URIRef(CODE + "ongoing")))
    add((item, _g("startDate"), Literal("2026-11-15", datatype=XSD.date)))
    add((item, _g("hasDose"), dose))
    add((dose, RDF.type, _g("DoseSpecification")))
    copied = {"doseAmount", "doseUnit", "route", "frequency", "period", "periodUnit", "count",
              "fractions", "infusionDuration", "infusionDurationUnit"}
    dropped = {without, f"{without}Unit"} if without else set()
    if without == "period":
        dropped |= {"frequency"}
    for name in sorted(copied - dropped):
        value = guideline.value(step, _g(name))
        if value is not None:
            add((dose, _g(name), value))
    return record


def _check(record: Graph):
    (result,) = derive(record, AS_OF).patients
    (check,) = [c for c in result.dose_checks if c.record_item == EX + "order"]
    return check


def test_every_regimen_step_is_covered() -> None:
    assert len(STEPS) >= 8


@pytest.mark.parametrize(("regimen", "step", "drug"), STEPS,
                         ids=[str(s).rsplit("/", 1)[-1] for _, s, _ in STEPS])
def test_a_stated_part_missing_is_never_a_match(regimen: URIRef, step: URIRef,
                                                drug: URIRef) -> None:
    guideline = guideline_graph()
    conditional = guideline.value(regimen, _g("regimenCondition")) is not None
    whole = _check(_record(step, drug, None))
    if not conditional:
        assert whole.status == "matches", (whole.expected, whole.because)
    stated = [part for part in PARTS if guideline.value(step, _g(part)) is not None]
    assert stated, f"{step} states no dose part besides the amount"
    for part in stated:
        check = _check(_record(step, drug, part))
        assert check.status != "matches", (part, check.because)
        if check.status == "cannot-check" and not conditional:
            words = PARTS[part][0]
            assert any(f"{words} not recorded" in line for line in check.because), \
                (part, check.because)


def test_an_infusion_over_30_minutes_does_not_match_90() -> None:
    step = URIRef(PREFIXES["bcbm"] + "regimen-trastuzumab-weekly-step-1")
    record = _record(step, _g("Trastuzumab"), None)
    dose = URIRef(EX + "dose")
    record.set((dose, _g("infusionDuration"), Literal(Decimal("30"))))
    check = _check(record)
    assert check.status == "deviates"
    assert any("infused over 30 min where the regimen gives 90 min" in line
               for line in check.because), check.because


def test_the_verdict_names_what_matched_and_what_was_not_recorded() -> None:
    step = URIRef(PREFIXES["bcbm"] + "regimen-trastuzumab-weekly-step-1")
    check = _check(_record(step, _g("Trastuzumab"), "infusionDuration"))
    assert check.status == "cannot-check"
    assert any(line.endswith("matches in dose, route and a single dose; infusion duration "
                             "not recorded") for line in check.because), check.because


def test_an_order_allowing_a_longer_interval_than_the_regimen_deviates() -> None:
    """FHIR timing.repeat.periodMax: an order "every 1 to 3 weeks" allows intervals the
    weekly regimen does not; with the bound equal to the period it is the regimen's."""
    step = URIRef(PREFIXES["bcbm"] + "regimen-trastuzumab-weekly-step-2")
    record = _record(step, _g("Trastuzumab"), None)
    dose = URIRef(EX + "dose")
    period = record.value(dose, _g("period"))
    record.add((dose, _g("periodMax"), Literal(Decimal(str(period)) * 3)))
    check = _check(record)
    assert check.status == "deviates"
    assert any(line.endswith("interval 7-21 days differs from 7-7 days")
               for line in check.because), check.because
    assert "every 1-3 wk" in check.found
    record.set((dose, _g("periodMax"), period))
    assert _check(record).status == "matches"


def test_a_dose_twice_every_4_weeks_deviates_and_says_twice() -> None:
    """Denosumab 120 mg twice every 4 weeks is a dose every 2 weeks: the verdict says so, and
    the dose found says "2 times", not what reads as the regimen."""
    step = URIRef(PREFIXES["bcbm"] + "regimen-denosumab-120mg-q4w-step-1")
    record = _record(step, _g("Denosumab"), None)
    record.set((URIRef(EX + "dose"), _g("frequency"), Literal(2)))
    check = _check(record)
    assert check.status == "deviates"
    assert "2 times every 4 wk" in check.found, check.found


@pytest.mark.parametrize("unit", ["mg/m2", "mg/kg"])
def test_a_flat_dose_given_per_body_size_deviates(unit: str) -> None:
    """Denosumab is 120 mg whatever the patient's size: 120 mg/m2 (body surface area) or
    120 mg/kg is another dimension, a deviation, never a dose that cannot be checked."""
    step = URIRef(PREFIXES["bcbm"] + "regimen-denosumab-120mg-q4w-step-1")
    record = _record(step, _g("Denosumab"), None)
    record.set((URIRef(EX + "dose"), _g("doseUnit"), Literal(unit)))
    check = _check(record)
    assert check.status == "deviates"
    assert any(f"unit {unit} is of another dimension than the regimen's mg" in line
               for line in check.because), check.because


def test_a_dose_check_carries_its_statements_text_and_sources() -> None:
    """Like every other result, a dose check can be checked against its statement."""
    step = URIRef(PREFIXES["bcbm"] + "regimen-trastuzumab-weekly-step-1")
    check = _check(_record(step, _g("Trastuzumab"), None))
    guideline = guideline_graph()
    statement = URIRef(check.recommendation)
    assert check.text == str(guideline.value(statement, _g("verbatimText")))
    assert check.text.strip()
    assert check.sources and all(source.startswith("REF-") for source in check.sources)


def test_no_dose_verdict_while_membership_of_the_population_is_undetermined() -> None:
    """Without the bone metastasis condition the patient may be outside the population
    (denosumab 60 mg is an osteoporosis dose): the regimen is no standard yet, so the check
    cannot be made, and says what the comparison alone gave."""
    step = URIRef(PREFIXES["bcbm"] + "regimen-trastuzumab-weekly-step-1")
    record = _record(step, _g("Trastuzumab"), None)
    record.remove((URIRef(EX + "bone"), None, None))
    (result,) = derive(record, AS_OF).patients
    assert result.population.status == "undetermined"
    (check,) = [c for c in result.dose_checks if c.record_item == EX + "order"]
    assert check.status == "cannot-check"
    assert check.because[:2] == [
        "membership of the guideline's population (stage 4 breast cancer with bone "
        "metastasis) is undetermined (missing: bone-metastasis): its regimens are a "
        "standard only within it",
        "compared with the regimen alone: matches"]


def test_labels_exist_for_every_regimen() -> None:
    guideline = guideline_graph()
    for regimen, _step, _drug in STEPS:
        assert guideline.value(regimen, RDFS.label) is not None


# --------------------------------------------------------------------------------------
# Radiotherapy (RT-1): "single-fraction 8 Gy radiation is as effective as multi-fraction
# schemes"
# --------------------------------------------------------------------------------------


def _radiotherapy(amount: str, unit: str, fractions: int | None) -> Graph:
    """A patient with a bone radiotherapy course as a FHIR course records it: a total dose and
    a number of fractions, no route."""
    step = URIRef(PREFIXES["bcbm"] + "regimen-bone-radiotherapy-8gy-single-fraction-step-1")
    record = _record(step, _g("BoneRadiotherapy"), "fractions")
    dose = URIRef(EX + "dose")
    for part in ("count", "route"):
        record.remove((dose, _g(part), None))
    record.set((dose, _g("doseAmount"), Literal(Decimal(amount))))
    record.set((dose, _g("doseUnit"), Literal(unit)))
    if fractions is not None:
        record.set((dose, _g("fractions"), Literal(fractions)))
    return record


@pytest.mark.parametrize(("amount", "unit", "fractions", "scheme"), [
    ("8", "Gy", 1, "bone radiotherapy 8 Gy in a single fraction"),
    ("800", "cGy", 1, "bone radiotherapy 8 Gy in a single fraction"),
    ("20", "Gy", 5, "an accepted multi-fraction scheme: 20 Gy in 5 fractions"),
    ("3000", "cGy", 10, "an accepted multi-fraction scheme: 30 Gy in 10 fractions"),
])
def test_single_and_multi_fraction_schemes_match_and_are_named(
        amount: str, unit: str, fractions: int, scheme: str) -> None:
    check = _check(_radiotherapy(amount, unit, fractions))
    assert check.status == "matches", check.because
    assert check.key == "RT-1"
    assert scheme in check.expected
    assert check.because[0].startswith(f"matches {check.expected}")


def test_a_scheme_the_guideline_does_not_name_deviates_from_each() -> None:
    check = _check(_radiotherapy("24", "Gy", 6))
    assert check.status == "deviates"
    # Every scheme is named with what differs from it.
    for scheme in ("8 Gy in a single fraction", "20 Gy in 5 fractions", "30 Gy in 10 fractions"):
        assert any(scheme in line and "differs" in line for line in check.because), scheme
    assert any("6 fractions where the regimen gives 1" in line for line in check.because)


def test_a_course_without_its_fractions_cannot_be_checked() -> None:
    check = _check(_radiotherapy("8", "Gy", None))
    assert check.status == "cannot-check"
    assert any("matches in dose; number of fractions not recorded" in line
               for line in check.because), check.because


def test_a_fhir_radiotherapy_course_in_cgy_is_checked() -> None:
    # mCODE: Procedure with dose delivered to volume (2000 cGy, 5 fractions), no route.
    from guidelinekg.fhir_import import import_fhir_file

    data = Path(__file__).resolve().parent / "data" / "fhir"
    result = import_fhir_file(data / "orders-and-procedures-statuses.json")
    (patient,) = derive(result.graph, AS_OF).patients
    course = "urn:uuid:8e000008-0009-4000-8000-000000000009"
    (check,) = [c for c in patient.dose_checks if c.record_item == course]
    # The record does not say whether the metastasis is uncomplicated, so whether RT-1
    # applies is undetermined: the course cannot be checked, and says what it matched.
    assert (check.key, check.status) == ("RT-1", "cannot-check"), check.because
    assert "compared with the regimen alone: matches" in " ".join(check.because)
    assert "20 Gy in 5 fractions" in check.expected
    assert check.found == "2000 cGy in 5 fraction(s)"


# --------------------------------------------------------------------------------------
# A regimen is the guideline's dose for a treatment, not its indication
# --------------------------------------------------------------------------------------


def _trastuzumab_record(her2: URIRef | None) -> Graph:
    step = URIRef(PREFIXES["bcbm"] + "regimen-trastuzumab-3-weekly-step-2")
    findings = tuple(f for f in FINDINGS if f[0] != "her2")
    if her2 is not None:
        findings += (("her2", "HER2Status", "valueCode", her2),)
    return _record(step, _g("Trastuzumab"), None, findings)


def test_a_dose_following_the_regimen_of_a_statement_that_does_not_apply_says_so() -> None:
    """Trastuzumab for a HER2-negative patient, dosed as HER2-3's regimen: the dose matches
    the regimen, and the check says that HER2-3 does not apply, so that it never reads as
    the guideline endorsing the order."""
    check = _check(_trastuzumab_record(URIRef(CODE + "negative")))
    assert (check.key, check.status) == ("HER2-3", "matches")
    assert check.because[1] == ("HER2-3 does not apply to this patient: the dose is compared "
                                "with its regimen, which is no recommendation for them")


def test_no_dose_verdict_while_the_regimens_statement_is_undetermined() -> None:
    """HER2 status unknown: whether trastuzumab's regimen is the patient's standard is
    undetermined, so the dose cannot be checked; the check names the missing fact and what
    the comparison alone gave."""
    check = _check(_trastuzumab_record(None))
    assert (check.key, check.status) == ("HER2-3", "cannot-check")
    assert check.because == [
        "trastuzumab 8 mg/kg loading dose, then 6 mg/kg every 3 weeks (step 2: followed by "
        "6 mg/kg every 3 weeks): compared with the regimen alone: matches",
        "trastuzumab 8 mg/kg loading dose, then 6 mg/kg every 3 weeks (step 2: followed by "
        "6 mg/kg every 3 weeks): whether HER2-3 applies to this patient is undetermined "
        "(missing: her2-status): its regimen is a standard only where it applies"]


# Trastuzumab orders on the record of tests/vignettes/her2-positive-trastuzumab-3-weekly.ttl
# (70 kg), each item a dict of its doses: (mg/kg, schedule).
LOADING_3_WEEKLY = "gkg:doseAmount 8.0 ; gkg:count 1 ; gkg:dosePhase code:loading-dose"
LOADING_WEEKLY = ("gkg:doseAmount 4.0 ; gkg:count 1 ; gkg:dosePhase code:loading-dose ; "
                  'gkg:infusionDuration 90 ; gkg:infusionDurationUnit "min"')
WEEKLY = ('gkg:doseAmount 2.0 ; gkg:frequency 1 ; gkg:period 1 ; gkg:periodUnit "wk" ; '
          "gkg:dosePhase code:maintenance-dose")
EVERY_3_WEEKS = ('gkg:doseAmount 6.0 ; gkg:frequency 1 ; gkg:period 3 ; gkg:periodUnit "wk" ; '
                 "gkg:dosePhase code:maintenance-dose")


def _trastuzumab_checks(items: dict[str, tuple[str, list[str]]]) -> dict[tuple[str, str], str]:
    """(item, found) -> status of each trastuzumab dose check, for the vignette's patient
    with its trastuzumab replaced by ``items`` (name -> start date, doses)."""
    return {found: check.status for found, check in _trastuzumab_dose_checks(items).items()}


def _trastuzumab_dose_checks(items: dict[str, tuple[str, list[str]]], weighed: bool = True
                             ) -> dict[tuple[str, str], DoseCheck]:
    """(item, found) -> each trastuzumab dose check, as :func:`_trastuzumab_checks` (doses in
    mg/kg unless they give their unit; ``weighed=False``: the body weight left out)."""
    vignette = Path(__file__).parent / "vignettes" / "her2-positive-trastuzumab-3-weekly.ttl"
    record = Graph().parse(vignette, format="turtle")
    base = "http://example.org/vignettes/her2-positive-trastuzumab-3-weekly/"
    if not weighed:
        for weight in list(record.subjects(RDF.type, _g("BodyWeight"))):
            record.remove((weight, None, None))
    for old in [s for s in record.subjects(RDF.type, _g("Trastuzumab"))]:
        for dose in list(record.objects(old, _g("hasDose"))):
            record.remove((dose, None, None))
        record.remove((old, None, None))
    lines = ["@prefix gkg: <https://w3id.org/guidelinekg/ontology#> .",
             "@prefix code: <https://w3id.org/guidelinekg/code/> .",
             "@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .", f"@prefix ex: <{base}> ."]
    for name, (start, doses) in items.items():
        names = " , ".join(f"ex:{name}-dose-{n}" for n in range(len(doses)))
        lines.append(f"ex:{name} a gkg:Trastuzumab ; gkg:subject ex:patient ; "
                     f'gkg:status code:ongoing ; gkg:startDate "{start}"^^xsd:date ; '
                     f"gkg:hasDose {names} .")
        lines += [f"ex:{name}-dose-{n} a gkg:DoseSpecification ; "
                  + ("" if "gkg:doseUnit" in dose else 'gkg:doseUnit "mg/kg" ; ')
                  + f"gkg:route code:intravenous ; {dose} ." for n, dose in enumerate(doses)]
    record.parse(data="\n".join(lines), format="turtle")
    result = derive(record, AS_OF).patients[0]
    return {(check.record_item.removeprefix(base), check.found): check
            for check in result.dose_checks if check.key == "HER2-3"}


def test_a_loading_dose_before_the_maintenance_of_the_other_regimen_deviates() -> None:
    """Each dose matches a step of some regimen, but 8 mg/kg then 2 mg/kg weekly is
    neither: in one order or in two, the loading dose deviates."""
    one_order = _trastuzumab_checks({"t": ("2026-06-15", [LOADING_3_WEEKLY, WEEKLY])})
    assert sorted(one_order.values()) == ["deviates", "matches"]
    assert one_order[("t", "8 mg/kg intravenous once")] == "deviates"
    two_orders = _trastuzumab_checks({"load": ("2026-06-15", [LOADING_3_WEEKLY]),
                                      "keep": ("2026-06-22", [WEEKLY])})
    assert two_orders == {("load", "8 mg/kg intravenous once"): "deviates",
                          ("keep", "2 mg/kg intravenous every 1 wk"): "matches"}


def test_a_switch_to_the_other_schedule_after_its_own_loading_dose_is_not_flagged() -> None:
    """Weekly with its 4 mg/kg loading dose, then 6 mg/kg every 3 weeks: every dose follows
    a regimen it is part of, and none is flagged for the switch."""
    checks = _trastuzumab_checks({"weekly": ("2026-06-15", [LOADING_WEEKLY, WEEKLY]),
                                  "later": ("2026-09-07", [EVERY_3_WEEKS])})
    assert sorted(checks.values()) == ["matches", "matches", "matches"]


def test_a_course_of_years_before_does_not_make_a_mixed_loading_one_regimen() -> None:
    """Adjuvant trastuzumab of 2019, 8 mg/kg then 6 mg/kg every 3 weeks, does not follow the
    8 mg/kg loading dose of 2026 kept up at 2 mg/kg weekly: the 2026 loading dose deviates
    as it would alone; the 2019 course matches."""
    checks = _trastuzumab_checks({"adjuvant": ("2019-01-10", [LOADING_3_WEEKLY, EVERY_3_WEEKS]),
                                  "load": ("2026-06-15", [LOADING_3_WEEKLY]),
                                  "keep": ("2026-06-22", [WEEKLY])})
    assert checks == {("adjuvant", "8 mg/kg intravenous once"): "matches",
                      ("adjuvant", "6 mg/kg intravenous every 3 wk"): "matches",
                      ("load", "8 mg/kg intravenous once"): "deviates",
                      ("keep", "2 mg/kg intravenous every 1 wk"): "matches"}


CONFIRM_LOADING = ("no dose matching the loading dose of trastuzumab 8 mg/kg loading dose, then "
                   "6 mg/kg every 3 weeks is recorded on or before it: confirm that the loading "
                   "dose was given")


def test_a_maintenance_dose_without_its_loading_dose_says_to_confirm_it() -> None:
    """6 mg/kg every 3 weeks matches its step, but no 8 mg/kg loading dose is on record
    before it (one given later is no loading dose): the check names the loading dose to
    confirm. With its loading dose on record, it does not."""
    alone = _trastuzumab_dose_checks({"t": ("2026-06-15", [EVERY_3_WEEKS])})
    check = alone[("t", "6 mg/kg intravenous every 3 wk")]
    assert (check.status, check.because[-1]) == ("matches", CONFIRM_LOADING)
    later = _trastuzumab_dose_checks({"keep": ("2026-06-15", [EVERY_3_WEEKS]),
                                      "load": ("2026-07-06", [LOADING_3_WEEKLY])})
    assert later[("keep", "6 mg/kg intravenous every 3 wk")].because[-1] == CONFIRM_LOADING
    loaded = _trastuzumab_dose_checks({"t": ("2026-06-15", [LOADING_3_WEEKLY, EVERY_3_WEEKS])})
    assert all(CONFIRM_LOADING not in check.because for check in loaded.values())
    assert [check.status for check in loaded.values()] == ["matches", "matches"]



IN_MG_EVERY_3_WEEKS = ('gkg:doseAmount 420.0 ; gkg:doseUnit "mg" ; gkg:frequency 1 ; '
                       'gkg:period 3 ; gkg:periodUnit "wk" ; gkg:dosePhase code:maintenance-dose')


def test_a_dose_in_mg_shows_the_weight_and_when_it_was_taken() -> None:
    """420 mg for the record's 70 kg is 6 mg/kg: the check says which weight, of which date,
    so that a dose computed from a weight of years before can be seen as such."""
    checks = _trastuzumab_dose_checks({"t": ("2026-06-15", [LOADING_3_WEEKLY,
                                                             IN_MG_EVERY_3_WEEKS])})
    check = checks[("t", "420 mg intravenous every 3 wk")]
    assert check.status == "matches"
    assert "420 mg for 70 kg (weighed 2026-06-10) = 6.00 mg/kg" in check.because


def test_a_dose_in_mg_per_kg_needs_no_body_weight() -> None:
    """An order written per kg compares with a per-kg step directly: without any body weight
    on record it still matches; only a dose in mg needs the weight."""
    checks = _trastuzumab_dose_checks({"t": ("2026-06-15", [LOADING_3_WEEKLY, EVERY_3_WEEKS,
                                                             IN_MG_EVERY_3_WEEKS])},
                                      weighed=False)
    assert {found: check.status for (_item, found), check in checks.items()} == {
        "8 mg/kg intravenous once": "matches", "6 mg/kg intravenous every 3 wk": "matches",
        "420 mg intravenous every 3 wk": "cannot-check"}
