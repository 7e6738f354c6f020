"""Clinical vignettes for ``guidelinekg recommend``.

Each ``tests/vignettes/<name>.ttl`` is one patient record in the project's record form,
opening with a comment that describes the clinical situation and the statements it
exercises; ``tests/vignettes/expected/<name>.json`` is its expected outcome at the
evaluation date ``as_of``. The expectations were written from the statements' text and
criteria (ontology/guidelines/bcbm.ttl) and from the facts' documented silence rules
(ontology/patient-facts.ttl), not from the program's output: when they disagree, read the
statement and the fact's rule before touching an expectation.

Expected file format:
  as_of, patient       the evaluation date and the patient's IRI;
  statuses             all 37 statement keys -> applies / does-not-apply / undetermined;
  missing              undetermined key -> the facts that could change it (exact, sorted);
  population           {status: in / out / undetermined, missing: [facts]}: the population
                       verdict (the guideline's gkg:population);
  contraindicated      [{key, record_item, and status when possibly-contraindicated}]
                       (exact set);
  care_gaps            [key] (exact set);
  dose_checks          [{key, record_item, status, and optionally expected_contains,
                       found_contains, because_contains: substrings}] (exact multiset);
  facts                the reading of the record the expectations rest on (documentation;
                       shown next to the derived fact values when a vignette fails).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import date
from functools import cache
from pathlib import Path

import pytest
from rdflib import Graph, URIRef
from rdflib.namespace import RDF, SKOS

from guidelinekg.loading import PREFIXES, guideline_graph, merge_graphs, parse_rdf_file
from json_contract import results_of

VIGNETTE_DIR = Path(__file__).resolve().parent / "vignettes"
EXPECTED_DIR = VIGNETTE_DIR / "expected"
VIGNETTES = sorted(path.stem for path in VIGNETTE_DIR.glob("*.ttl"))
STATUSES = ("applies", "does-not-apply", "undetermined")

# The statuses each statement can take within the guideline's population, read from its own
# criteria and the silence rules of the facts they test (outside the population every
# statement does not apply; with membership unknown none applies):
# - GOAL-1..4: an all-of with no member (every patient): only applies.
# - SYS-1: "HR and HER2 status known" is built from "is recorded" criteria, which are unknown
#   (never false) without a value, so it is true or unknown: never does-not-apply.
# - SUM-1, BMA-1, BMA-2, BMA-4: bone metastasis is part of the population (and a member of
#   their criteria), so within it they apply.
# - AVOID-1: bone metastasis (population) and no bone-modifying agent (silence means absent).
# - RT-3: only silence-absent facts (orders, procedures, documentation) without an
#   "unknown when a date is missing" clause: never undetermined.
# - BMA-5: on a bone-modifying agent now (bone-modifying-agent-current), which is unknown
#   when a completed agent's last dose cannot be placed: all three.
# - every other statement: all three.
ALL_THREE = set(STATUSES)
STATUSES_IT_CAN_TAKE: dict[str, set[str]] = {
    "SUM-1": {"applies"},
    "BMA-1": {"applies"}, "BMA-2": {"applies"}, "BMA-3": ALL_THREE, "BMA-4": {"applies"},
    "BMA-5": ALL_THREE, "BMA-6": ALL_THREE,
    "SYS-1": {"applies", "undetermined"},
    "HRP-1": ALL_THREE, "HRP-2": ALL_THREE, "HRP-3": ALL_THREE,
    "HER2-1": ALL_THREE, "HER2-2": ALL_THREE, "HER2-3": ALL_THREE,
    "TN-1": ALL_THREE, "TN-2": ALL_THREE,
    "RT-1": ALL_THREE, "RT-2": ALL_THREE, "RT-3": {"applies", "does-not-apply"},
    "RT-4": ALL_THREE,
    "ORTH-1": ALL_THREE, "ORTH-2": ALL_THREE, "ORTH-3": ALL_THREE,
    "OLIGO-1": ALL_THREE, "OLIGO-2": ALL_THREE, "OLIGO-3": ALL_THREE,
    "OLIGO-4": ALL_THREE,
    "GOAL-1": {"applies"}, "GOAL-2": {"applies"}, "GOAL-3": {"applies"}, "GOAL-4": {"applies"},
    "AVOID-1": {"applies", "does-not-apply"}, "AVOID-2": ALL_THREE, "AVOID-3": ALL_THREE,
    "AVOID-4": ALL_THREE,
    "AVOID-5": ALL_THREE, "AVOID-6": ALL_THREE,
}
# Statements that flag a record (should-not, precondition): each must be seen triggered
# (naming its record item) and untriggered.
FLAG_KEYS = ("AVOID-1", "AVOID-2", "AVOID-3", "AVOID-4", "AVOID-5", "AVOID-6", "OLIGO-2")
# Statements with a precondition check on an action they recommend (gkg:hasPreconditionCheck):
# flagged under their key whatever their own status; each must be seen flagged and not.
PRECONDITION_KEYS = ("OLIGO-1",)
# Care gaps the suite must show: every gkg:careGapChecked statement except HER2-2, whose
# criteria need a given HER2-targeted therapy, which is itself the action that fills the gap.
# RT-4 and ORTH-2 are not care gaps (their curation notes: no order for this patient).
CARE_GAPS_SHOWN = ("BMA-1", "BMA-4", "BMA-5", "SYS-1", "HRP-1", "HER2-1", "TN-1", "RT-2",
                   "RT-3", "ORTH-1", "GOAL-2")
NEVER_CARE_GAPS = ("RT-4", "ORTH-2")


# --------------------------------------------------------------------------------------
# Reading vignettes and results
# --------------------------------------------------------------------------------------


@cache
def expected_of(name: str) -> dict:
    return json.loads((EXPECTED_DIR / f"{name}.json").read_text(encoding="utf-8"))


@cache
def record_of(name: str) -> Graph:
    return parse_rdf_file(VIGNETTE_DIR / f"{name}.ttl")


@cache
def guideline_keys() -> frozenset[str]:
    graph = guideline_graph()
    recommendation = URIRef(PREFIXES["gkg"] + "Recommendation")
    return frozenset(str(graph.value(s, SKOS.notation))
                     for s in graph.subjects(RDF.type, recommendation))


def _derivation_module():
    from guidelinekg import derivation

    return derivation


def summary(result) -> dict:
    """What a vignette asserts, from one PatientResult, in comparable form."""
    return {
        "statuses": {o.key: o.status for o in result.recommendations},
        "missing": {o.key: sorted(o.missing) for o in result.recommendations
                    if o.status == "undetermined"},
        "contraindicated": sorted((c.key, c.record_item, c.status)
                                  for c in result.contraindicated),
        "population": {"status": result.population.status,
                       "missing": sorted(result.population.missing)},
        "care_gaps": sorted(g.key for g in result.care_gaps),
        "dose_checks": sorted((d.key, d.record_item, d.status, d.expected, d.found)
                              for d in result.dose_checks),
    }


@cache
def single_derivation(name: str):
    derivation = _derivation_module()
    expected = expected_of(name)
    return derivation.derive(record_of(name), date.fromisoformat(expected["as_of"]),
                             "oxigraph")


def derived_fact_values(run, patient: str) -> list[str]:
    rows = run.engine.select(
        "PREFIX gkg: <https://w3id.org/guidelinekg/ontology#>\n"
        "SELECT ?patient ?fact ?value ?item ?reason WHERE {"
        " ?fv a gkg:FactValue ; gkg:patient ?patient ; gkg:fact ?fact ."
        " OPTIONAL { ?fv gkg:factValue ?value } OPTIONAL { ?fv gkg:recordItem ?item }"
        " OPTIONAL { ?fv gkg:undeterminedBecause ?reason } }",
        {"patient": URIRef(patient)})
    lines = []
    for row in rows:
        fact = str(row["fact"]).rsplit("/", 1)[-1]
        value = row.get("value")
        text = "unknown" if value is None else value.n3()
        if row.get("item") is not None:
            text += f" [{row['item']}]"
        if row.get("reason") is not None:
            text += f" ({row['reason']})"
        lines.append(f"{fact} = {text}")
    return sorted(lines)


def compare(name: str, expected: dict, got: dict, dose_checks) -> list[str]:
    """Every difference between the expectation and a result, one line each."""
    problems = []
    for key in sorted(set(expected["statuses"]) | set(got["statuses"])):
        want, have = expected["statuses"].get(key), got["statuses"].get(key)
        if want != have:
            problems.append(f"{key}: expected {want}, got {have}")
    for key in sorted(set(expected["missing"]) | set(got["missing"])):
        want, have = expected["missing"].get(key), got["missing"].get(key)
        if want != have and expected["statuses"].get(key) == got["statuses"].get(key):
            problems.append(f"{key} missing: expected {want}, got {have}")
    if expected["population"] != got["population"]:
        problems.append(f"population: expected {expected['population']}, "
                        f"got {got['population']}")
    want_flags = sorted((c["key"], c["record_item"], c.get("status", "contraindicated"))
                        for c in expected["contraindicated"])
    if want_flags != got["contraindicated"]:
        problems.append(f"contraindicated: expected {want_flags}, got {got['contraindicated']}")
    if sorted(expected["care_gaps"]) != got["care_gaps"]:
        problems.append(f"care gaps: expected {sorted(expected['care_gaps'])}, "
                        f"got {got['care_gaps']}")
    want_doses = Counter((d["key"], d["record_item"], d["status"])
                         for d in expected["dose_checks"])
    have_doses = Counter((d.key, d.record_item, d.status) for d in dose_checks)
    if want_doses != have_doses:
        shown = [f"{d.key} {d.status} {d.record_item} (expected: {d.expected}; "
                 f"found: {d.found}; because: {d.because})" for d in dose_checks]
        problems.append(f"dose checks: expected {sorted(want_doses.elements())}, got {shown}")
    for check in expected["dose_checks"]:
        same = [d for d in dose_checks if (d.key, d.record_item, d.status) ==
                (check["key"], check["record_item"], check["status"])]
        for field, attribute in (("expected_contains", "expected"), ("found_contains", "found"),
                                 ("because_contains", "because")):
            for text in check.get(field, []):
                if same and not any(text in str(getattr(d, attribute)) for d in same):
                    problems.append(f"dose check {check['key']} {check['record_item']}: "
                                    f"{attribute} does not mention {text!r}: "
                                    f"{[getattr(d, attribute) for d in same]}")
    return problems


# --------------------------------------------------------------------------------------
# The suite itself (no derivation needed)
# --------------------------------------------------------------------------------------


def test_every_vignette_has_an_expectation_and_a_description() -> None:
    assert len(VIGNETTES) >= 28
    assert sorted(p.stem for p in EXPECTED_DIR.glob("*.json")) == VIGNETTES
    for name in VIGNETTES:
        first = (VIGNETTE_DIR / f"{name}.ttl").read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# Vignette: "), name


@pytest.mark.parametrize("name", VIGNETTES)
def test_expectation_is_consistent(name: str) -> None:
    expected = expected_of(name)
    statuses = expected["statuses"]
    assert set(statuses) == guideline_keys(), "an expectation names all 37 statements"
    assert set(statuses.values()) <= set(STATUSES)
    assert set(expected["missing"]) == {k for k, s in statuses.items() if s == "undetermined"}
    assert all(expected["missing"].values()), "an undetermined statement names what is missing"
    assert all(statuses[key] == "applies" for key in expected["care_gaps"])
    flagged = {c["key"] for c in expected["contraindicated"] if "status" not in c}
    assert flagged - set(PRECONDITION_KEYS) == {k for k in FLAG_KEYS if statuses[k] == "applies"}
    possibly = [c for c in expected["contraindicated"]
                if "status" in c and c["key"] not in PRECONDITION_KEYS]
    assert all(c["status"] == "possibly-contraindicated" for c in possibly)
    # Possibly: the statement is undetermined, or it applies through another item while this
    # item's own fact is undetermined (a surgery of unknown purpose beside a known one).
    assert all(statuses[c["key"]] == "undetermined"
               or (statuses[c["key"]] == "applies" and c["key"] in flagged) for c in possibly)
    population = expected["population"]
    assert population["status"] in {"in", "out", "undetermined"}
    assert bool(population["missing"]) == (population["status"] == "undetermined")
    if population["status"] == "out":
        assert set(statuses.values()) == {"does-not-apply"}
        assert expected["care_gaps"] == expected["contraindicated"] == []
        assert expected["dose_checks"] == []
    if population["status"] == "undetermined":
        assert "applies" not in statuses.values()
    items = {str(s) for s in record_of(name).subjects()}
    for entry in expected["contraindicated"] + expected["dose_checks"]:
        assert entry["record_item"] in items, entry
    assert expected["patient"] in items


def test_suite_covers_every_status_every_flag_and_the_care_gaps() -> None:
    assert set(STATUSES_IT_CAN_TAKE) == guideline_keys()
    reached: dict[str, set[str]] = defaultdict(set)
    triggered, untriggered, gaps, dose_statuses = set(), set(), set(), set()
    populations = set()
    for name in VIGNETTES:
        expected = expected_of(name)
        populations.add(expected["population"]["status"])
        if expected["population"]["status"] != "in":
            continue  # checked by test_expectation_is_consistent
        for key, status in expected["statuses"].items():
            reached[key].add(status)
        triggered |= {c["key"] for c in expected["contraindicated"] if "status" not in c}
        untriggered |= {k for k in FLAG_KEYS if expected["statuses"][k] != "applies"}
        untriggered |= set(PRECONDITION_KEYS) - {c["key"] for c in expected["contraindicated"]}
        gaps |= set(expected["care_gaps"])
        dose_statuses |= {(d["key"], d["status"]) for d in expected["dose_checks"]}
    not_reached = {key: sorted(can - reached[key]) for key, can in STATUSES_IT_CAN_TAKE.items()
                   if can - reached[key]}
    assert not_reached == {}
    impossible = {key: sorted(reached[key] - can) for key, can in STATUSES_IT_CAN_TAKE.items()
                  if reached[key] - can}
    assert impossible == {}
    assert populations == {"in", "out", "undetermined"}
    assert triggered == set(FLAG_KEYS) | set(PRECONDITION_KEYS)
    assert untriggered == set(FLAG_KEYS) | set(PRECONDITION_KEYS)
    assert set(CARE_GAPS_SHOWN) <= gaps
    assert not set(NEVER_CARE_GAPS) & gaps
    assert {("BMA-2", "matches"), ("BMA-2", "deviates"), ("SUM-1", "matches"),
            ("BMA-3", "matches"), ("BMA-3", "deviates"), ("BMA-3", "cannot-check"),
            ("HER2-3", "matches"), ("HER2-3", "cannot-check"), ("RT-1", "matches"),
            ("RT-1", "deviates")} <= dose_statuses


def test_vignettes_conform_to_the_patient_shapes() -> None:
    from guidelinekg.patient_records import shape_files
    from guidelinekg.shacl import validate_graph

    shapes = merge_graphs(parse_rdf_file(path) for path in shape_files())
    # One validation of all records together: each patient's items name only that patient,
    # so a result's focus node tells the vignette.
    records = merge_graphs(record_of(name) for name in VIGNETTES)
    report = validate_graph(records, shapes, guideline_graph())
    violations = [f"{r.focus} {r.path}: {r.message}" for r in report.results
                  if r.severity == "Violation"]
    assert violations == []
    assert report.conforms


# --------------------------------------------------------------------------------------
# The derivation on each vignette, on the cohort, and through the command line
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", VIGNETTES)
def test_vignette(name: str) -> None:
    expected = expected_of(name)
    run = single_derivation(name)
    assert [p.patient for p in run.patients] == [expected["patient"]]
    result = run.patients[0]
    assert result.as_of == expected["as_of"]
    keys = [o.key for o in result.recommendations]
    assert sorted(keys) == sorted(guideline_keys()), "all 37 statements, once each"
    problems = compare(name, expected, summary(result), result.dose_checks)
    if problems:
        reading = "\n  ".join(f"{k} = {v}" for k, v in expected["facts"].items())
        derived = "\n  ".join(derived_fact_values(run, expected["patient"]))
        pytest.fail(f"{name}:\n  " + "\n  ".join(problems)
                    + f"\nreading of the record (expected facts):\n  {reading}"
                    + f"\nderived fact values:\n  {derived}")


def test_a_criterion_under_a_none_of_group_is_named_where_it_decides() -> None:
    """AVOID-6 applies on a documented poor response through "no good response" (a none-of
    group): the because lines and the facts used name the response, false there being what
    holds, as a clinician checking the flag needs it."""
    (result,) = single_derivation("local-control-surgery-poor-response").patients
    (avoid,) = [o for o in result.recommendations if o.key == "AVOID-6"]
    assert avoid.status == "applies"
    assert "response-to-systemic-therapy" in avoid.basis_facts
    assert any(line.startswith("good response to initial systemic therapy: no "
                               "(response-to-systemic-therapy = poor") for line in avoid.because)
    (flag,) = [c for c in result.contraindicated if c.key == "AVOID-6"]
    assert any("response-to-systemic-therapy = poor" in line for line in flag.because)


@pytest.mark.parametrize("name", VIGNETTES)
def test_every_decided_status_says_why(name: str) -> None:
    """A clinician checks each status against its basis: none is given without a line, not
    even a statement for every patient (GOAL-1 to GOAL-4 name the population)."""
    (result,) = single_derivation(name).patients
    silent = [o.key for o in result.recommendations
              if o.status in ("applies", "does-not-apply") and not o.because]
    assert silent == []


def test_criterion_polarities_flip_under_each_none_of_group() -> None:
    from guidelinekg.basis import criterion_polarities

    members = {"all": ["a", "none"], "none": ["b", "inner"], "inner": ["c"]}
    found = criterion_polarities([("s", "all")], members, none_of={"none", "inner"})
    assert found == {"s": {("a", False), ("b", True), ("c", False)}}


@cache
def cohort_summaries(engine: str, names: tuple[str, ...]) -> dict[str, dict]:
    """Per-patient summaries of one derivation over the named vignettes as one graph."""
    derivation = _derivation_module()
    (as_of,) = {expected_of(name)["as_of"] for name in names}
    cohort = merge_graphs(record_of(name) for name in names)
    run = derivation.derive(cohort, date.fromisoformat(as_of), engine)
    return {p.patient: summary(p) for p in run.patients}


def single_summaries(names: tuple[str, ...]) -> dict[str, dict]:
    summaries = {}
    for name in names:
        (result,) = single_derivation(name).patients
        summaries[result.patient] = summary(result)
    return summaries


def test_cohort_gives_each_patient_its_own_results() -> None:
    patients = [expected_of(name)["patient"] for name in VIGNETTES]
    assert len(set(patients)) == len(patients), "patients have distinct IRIs"
    assert len({expected_of(name)["as_of"] for name in VIGNETTES}) == 1, \
        "one evaluation date, so that the suite is one cohort"
    cohort = cohort_summaries("oxigraph", tuple(VIGNETTES))
    single = single_summaries(tuple(VIGNETTES))
    assert set(cohort) == set(single)
    leaking = sorted(p for p in single if cohort[p] != single[p])
    assert leaking == [], "cohort results differ from single-patient results"


@pytest.mark.slow
def test_cohort_gives_the_same_results_on_both_engines() -> None:
    # The whole suite as one cohort on each engine: rdflib is the independent reference
    # for Oxigraph (slower, about a minute here, so it runs once).
    names = tuple(VIGNETTES)
    rdflib_results = cohort_summaries("rdflib", names)
    oxigraph_results = cohort_summaries("oxigraph", names)
    assert set(rdflib_results) == set(oxigraph_results)
    differing = sorted(p for p in oxigraph_results if rdflib_results[p] != oxigraph_results[p])
    assert differing == []


CLI_VIGNETTE = "tooth-extraction-planned-on-denosumab"


def test_cli_recommend_json_contract() -> None:
    _derivation_module()
    script = Path(sys.executable).with_name("guidelinekg")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "guidelinekg.cli"]
    expected = expected_of(CLI_VIGNETTE)
    completed = subprocess.run(
        [*command, "recommend", str(VIGNETTE_DIR / f"{CLI_VIGNETTE}.ttl"),
         "--as-of", expected["as_of"], "--format", "json"],
        capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr
    (document,) = results_of(completed.stdout)  # always a list: one patient here
    assert next(iter(document)) == "population", "the population verdict comes first"
    assert set(document) == {"population", "patient", "guideline", "as_of", "recommendations",
                             "contraindicated", "care_gaps", "dose_checks"}
    assert document["population"]["status"] == expected["population"]["status"]
    assert document["patient"] == expected["patient"]
    assert document["as_of"] == expected["as_of"]
    assert document["guideline"]
    recommendations = document["recommendations"]
    assert len(recommendations) == 37
    for entry in recommendations:
        assert {"key", "status", "modality", "text", "sources", "because", "missing"} <= set(entry)
        assert entry["text"] and entry["sources"] and entry["modality"]
    assert {r["key"]: r["status"] for r in recommendations} == expected["statuses"]
    assert [(c["key"], c["record_item"]) for c in document["contraindicated"]] == [
        (c["key"], c["record_item"]) for c in expected["contraindicated"]]
    assert sorted(g["key"] for g in document["care_gaps"]) == expected["care_gaps"]
    assert sorted((d["key"], d["record_item"], d["status"]) for d in document["dose_checks"]) \
        == sorted((d["key"], d["record_item"], d["status"]) for d in expected["dose_checks"])
