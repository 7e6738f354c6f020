"""The patient-fact layer (queries/facts/*.rq through guidelinekg.facts), on both engines.

The fixtures under tests/data/facts/ hold one scenario per patient (the patient's IRI names
it), all loaded into one graph and derived once per engine at 2026-12-01: the patients also
show that nothing leaks from one patient to another. Values are compared after
read_fact_values, which puts literals in canonical form (the engines write decimals
differently).
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path

import pytest
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF

from guidelinekg.facts import (
    FACT,
    FACT_VALUE,
    PATIENT,
    VALUE,
    FactValueView,
    derive_facts,
    fact_query_names,
    fact_query_stages,
    read_fact_values,
)
from guidelinekg.loading import PREFIXES, guideline_graph, parse_rdf_file
from guidelinekg.resources import examples_dir
from guidelinekg.sparql import QueryError, SparqlEngine, bundled_queries, load_query, make_engine
from json_contract import results_of

ENGINES = ("oxigraph", "rdflib")
AS_OF = date(2026, 12, 1)
DATA = Path(__file__).resolve().parent / "data" / "facts"
EXAMPLE = examples_dir() / "patients" / "hr-positive-her2-negative-bone-only.ttl"
EX = "http://example.org/facts/"
REFERENCE = "http://example.org/patients/hr-pos-bone-only/"
GKG = PREFIXES["gkg"]
CODE = PREFIXES["code"]
FACTS = PREFIXES["fact"]
SUBJECT = URIRef(GKG + "subject")
TRUE, FALSE = Literal(True), Literal(False)
# Not rdflib's XSD namespace object: pytest's collection probes module attributes, and the
# namespace warns about every name it does not define.
XSD_DATE = URIRef(PREFIXES["xsd"] + "date")
XSD_DECIMAL = URIRef(PREFIXES["xsd"] + "decimal")


@cache
def fixture_graph() -> Graph:
    graph = guideline_graph()
    for path in [*sorted(DATA.glob("*.ttl")), EXAMPLE]:
        for triple in parse_rdf_file(path):
            graph.add(triple)
    return graph


@cache
def fixture_engine(engine_name: str) -> SparqlEngine:
    """One engine per name over the fixtures, shared: the fact queries only read it."""
    return make_engine(engine_name, fixture_graph())


@cache
def derived(engine_name: str) -> tuple[FactValueView, ...]:
    """Every fact value of every fixture patient, derived once per engine."""
    return tuple(read_fact_values(derive_facts(fixture_engine(engine_name), AS_OF)))


def ex(name: str) -> URIRef:
    """A fixture IRI by its local name (or a full IRI, for the reference record)."""
    return URIRef(name if "://" in name else EX + name)


def code(name: str) -> URIRef:
    return URIRef(CODE + name)


def views_of(engine_name: str, patient: str, fact: str | None = None) -> list[FactValueView]:
    return [view for view in derived(engine_name)
            if view.patient == ex(patient)
            and (fact is None or view.fact == URIRef(FACTS + fact))]


def view_of(engine_name: str, patient: str, fact: str, item: str | None = None) -> FactValueView:
    found = [view for view in views_of(engine_name, patient, fact)
             if item is None or view.record_item == ex(item)]
    assert len(found) == 1, f"{patient} {fact} {item}: {found}"
    return found[0]


def value_of(engine_name: str, patient: str, fact: str, item: str | None = None):
    return view_of(engine_name, patient, fact, item).value


def sources_of(engine_name: str, patient: str, fact: str, item: str | None = None) -> set[str]:
    view = view_of(engine_name, patient, fact, item)
    return {str(source).removeprefix(EX) for source in view.sources}


def facts_of(engine_name: str, patient: str) -> set[str]:
    return {str(view.fact).removeprefix(FACTS) for view in views_of(engine_name, patient)}


def run_query(engine_name: str, name: str, as_of: date) -> list[FactValueView]:
    """One fact query on the fixtures at another evaluation date."""
    return read_fact_values(fixture_engine(engine_name).construct(
        load_query(name).text, {"asOf": Literal(as_of, datatype=XSD_DATE)}))


engines = pytest.mark.parametrize("engine_name", ENGINES)


# --------------------------------------------------------------------------------------
# The queries and their parameters
# --------------------------------------------------------------------------------------


def test_every_fact_query_is_named_by_a_fact_and_takes_the_two_parameters() -> None:
    engine = make_engine("oxigraph", guideline_graph())
    names = fact_query_names(engine)
    on_disk = [query.name for query in bundled_queries("facts")]
    assert names == on_disk
    for name in names:
        parameters = {(p.name, p.kind) for p in load_query(name).parameters}
        assert parameters == {("asOf", "date"), ("patient", "IRI")}, name


def test_a_query_reading_another_facts_values_runs_in_a_later_stage() -> None:
    """The metastatic diagnosis date is derived once, first; the queries whose facts read it
    (gkg:readsFact) run after it, and those reading the surgeries for local control after
    those."""
    stages = fact_query_stages(make_engine("oxigraph", guideline_graph()))
    assert len(stages) == 3
    assert "facts/metastatic-diagnosis" in stages[0]
    assert stages[1] == ["facts/bone-modifying-agent-duration",
                         "facts/decision-context", "facts/line-of-therapy",
                         "facts/local-therapy-items", "facts/metastatic-setting",
                         "facts/response", "facts/zoledronic-acid-current"]
    assert stages[2] == ["facts/local-therapy", "facts/local-therapy-engagement",
                         "facts/local-therapy-response", "facts/local-therapy-timing"]


def test_every_fact_a_query_reads_is_declared_and_derived_in_an_earlier_stage() -> None:
    """A query that reads fact values (gkg:fact fact:X in its pattern, not its template)
    must say so on one of its facts (gkg:readsFact), or it would run before X is derived."""
    graph = guideline_graph()
    engine = make_engine("oxigraph", graph)
    stage_of = {name: number for number, names in enumerate(fact_query_stages(engine))
                for name in names}
    declared: dict[str, set[str]] = {}
    reads_fact = URIRef(GKG + "readsFact")
    for fact, query in graph.subject_objects(URIRef(GKG + "derivedBy")):
        declared.setdefault(str(query), set()).update(
            str(read).removeprefix(FACTS) for read in graph.objects(fact, reads_fact))
    for name, number in stage_of.items():
        pattern = load_query(name).text.split("WHERE", 1)[1]
        read = set(re.findall(r"gkg:fact fact:([a-z0-9-]+)", pattern))
        assert read == declared.get(name, set()), name
        for fact in read:
            (deriving,) = {str(q) for q in graph.objects(URIRef(FACTS + fact),
                                                          URIRef(GKG + "derivedBy"))}
            assert stage_of[deriving] < number, (name, fact)


def test_facts_that_read_each_other_are_refused() -> None:
    graph = guideline_graph()
    graph.add((URIRef(FACTS + "metastatic-diagnosis-date"), URIRef(GKG + "readsFact"),
               URIRef(FACTS + "given-in-metastatic-setting")))
    with pytest.raises(QueryError, match="cycle"):
        fact_query_stages(make_engine("oxigraph", graph))


def test_every_patient_fact_names_a_query() -> None:
    graph = guideline_graph()
    facts = set(graph.subjects(RDF.type, URIRef(GKG + "ObservedFact"))) \
        | set(graph.subjects(RDF.type, URIRef(GKG + "DerivedFact"))) \
        | set(graph.subjects(RDF.type, URIRef(GKG + "ItemPresenceFact")))
    in_scheme = set(graph.subjects(URIRef(PREFIXES["skos"] + "inScheme"),
                                   URIRef(GKG + "PatientFactScheme")))
    assert facts == in_scheme
    assert len(facts) >= 38
    without_query = {fact for fact in facts if graph.value(fact, URIRef(GKG + "derivedBy")) is None}
    assert without_query == set()


@engines
def test_fact_value_iris_are_built_from_patient_fact_and_item(engine_name: str) -> None:
    graph = guideline_graph() + parse_rdf_file(DATA / "dental.ttl")
    engine = make_engine(engine_name, graph)
    triples = derive_facts(engine, AS_OF, ex("dental-evaluation-before-bma"))
    nodes = {s for s, p, o in triples if p == RDF.type and o == FACT_VALUE}
    patient = "http%3A%2F%2Fexample.org%2Ffacts%2Fdental-evaluation-before-bma"
    assert nodes == {URIRef(f"urn:guidelinekg:fact-value:{patient}"
                            ":bma-without-prior-dental-evaluation"
                            ":http%3A%2F%2Fexample.org%2Ffacts%2Fdeb-denosumab"),
                     URIRef(f"urn:guidelinekg:fact-value:{patient}"
                            ":bone-modifying-agent-given-or-planned"),
                     URIRef(f"urn:guidelinekg:fact-value:{patient}"
                            ":bone-modifying-agent-started-or-planned"),
                     URIRef(f"urn:guidelinekg:fact-value:{patient}:bone-modifying-agent-given"),
                     URIRef(f"urn:guidelinekg:fact-value:{patient}"
                            ":bone-modifying-agent-duration"),
                     URIRef(f"urn:guidelinekg:fact-value:{patient}"
                            ":bone-modifying-agent-current"
                            ":http%3A%2F%2Fexample.org%2Ffacts%2Fdeb-denosumab")}


def test_two_values_on_one_fact_value_node_are_refused() -> None:
    from guidelinekg.facts import _check_fact_values

    node = URIRef("urn:guidelinekg:fact-value:p:age")
    with pytest.raises(QueryError, match="more than one value"):
        _check_fact_values("facts/age", [(node, VALUE, Literal(3)), (node, VALUE, Literal(4))])
    # The same value written twice (two lexical forms) is one value.
    _check_fact_values("facts/x", [(node, VALUE, Literal("2.50", datatype=XSD_DECIMAL)),
                                   (node, VALUE, Literal("2.5", datatype=XSD_DECIMAL))])


def test_a_fact_value_node_not_typed_fact_value_is_refused() -> None:
    """The derivation finds fact values by their type (derive/fact-values.rq): a fact query
    that leaves the type out would lose its values from every "because" line."""
    from guidelinekg.facts import _check_fact_values

    node = URIRef("urn:guidelinekg:fact-value:p:age")
    fact = (node, FACT, URIRef("https://w3id.org/guidelinekg/fact/age"))
    with pytest.raises(QueryError, match="without typing it gkg:FactValue"):
        _check_fact_values("facts/age", [fact, (node, VALUE, Literal(3))])
    _check_fact_values("facts/age", [fact, (node, RDF.type, FACT_VALUE)])


@engines
def test_fact_value_problems_are_found_in_each_engines_own_terms(engine_name: str) -> None:
    """The derivation checks fact values in the engine's own terms (add_fact_values, no
    rdflib round trip): two values on one node, and an untyped node, are found there too."""
    from guidelinekg.facts import _fact_value_problem

    engine = make_engine(engine_name)
    terms = tuple(engine.native_term(term) for term in (VALUE, FACT, RDF.type, FACT_VALUE))
    node = engine.native_term(URIRef("urn:guidelinekg:fact-value:p:age"))
    three, four = engine.native_term(Literal(3)), engine.native_term(Literal(4))
    fact = engine.native_term(URIRef("https://w3id.org/guidelinekg/fact/age"))
    assert _fact_value_problem([(node, terms[0], three), (node, terms[0], four)], terms) == \
        (node, {three, four})
    assert _fact_value_problem([(node, terms[1], fact), (node, terms[0], three)], terms) == \
        (node, set())
    assert _fact_value_problem([(node, terms[1], fact), (node, terms[2], terms[3]),
                                (node, terms[0], three)], terms) is None


# --------------------------------------------------------------------------------------
# Both engines, every patient
# --------------------------------------------------------------------------------------


def test_both_engines_give_identical_fact_values_on_all_fixtures() -> None:
    oxigraph, rdflib = set(derived("oxigraph")), set(derived("rdflib"))
    assert len(oxigraph) > 150
    assert oxigraph - rdflib == set()
    assert rdflib - oxigraph == set()


@engines
def test_every_source_and_record_item_belongs_to_the_patient(engine_name: str) -> None:
    graph = fixture_graph()
    for view in derived(engine_name):
        for item in {*view.sources, view.record_item} - {None}:
            assert item == view.patient or (item, SUBJECT, view.patient) in graph, view


@engines
def test_two_patients_in_one_graph_do_not_leak_into_each_other(engine_name: str) -> None:
    graph = guideline_graph()
    graph.parse(format="turtle", data="""
        @prefix gkg: <https://w3id.org/guidelinekg/ontology#> .
        @prefix code: <https://w3id.org/guidelinekg/code/> .
        @prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
        @prefix ex: <http://example.org/facts/> .
        ex:anna a gkg:Patient ; gkg:birthDate "1970-01-01"^^xsd:date .
        ex:anna-her2 a gkg:HER2Status ; gkg:subject ex:anna ; gkg:valueCode code:positive ;
            gkg:effectiveDate "2026-01-01"^^xsd:date .
        ex:anna-bone a gkg:MetastasisCondition ; gkg:subject ex:anna ; gkg:site code:site-bone ;
            gkg:present true .
        ex:anna-denosumab a gkg:Denosumab ; gkg:subject ex:anna ; gkg:status code:ongoing ;
            gkg:startDate "2026-02-01"^^xsd:date .
        ex:anna-extraction a gkg:ToothExtraction ; gkg:subject ex:anna ;
            gkg:status code:planned .
        ex:bella a gkg:Patient ; gkg:birthDate "1980-06-01"^^xsd:date .
        ex:bella-evaluation a gkg:DentalEvaluation ; gkg:subject ex:bella ;
            gkg:status code:completed ; gkg:startDate "2026-01-15"^^xsd:date .
    """)
    views = read_fact_values(derive_facts(make_engine(engine_name, graph), AS_OF))
    bella = [view for view in views if view.patient == ex("bella")]
    # Bella's record says nothing of HER2, metastases or bone-modifying agents: only her age.
    assert [(str(v.fact).removeprefix(FACTS), v.value) for v in bella] == [("age", Literal(46))]
    anna = {(str(v.fact).removeprefix(FACTS), v.value) for v in views
            if v.patient == ex("anna")}
    # Bella's dental evaluation does not count for Anna's denosumab.
    assert ("bma-without-prior-dental-evaluation", TRUE) in anna
    assert ("invasive-dental-procedure-during-bma", TRUE) in anna
    assert ("her2-status", code("positive")) in anna


@engines
@pytest.mark.parametrize("patient", ["za-doses-counted", "extraction-during-denosumab",
                                     "latest-observation-wins"])
def test_one_patient_binding_gives_that_patients_values_only(engine_name: str,
                                                             patient: str) -> None:
    views = read_fact_values(derive_facts(fixture_engine(engine_name), AS_OF, ex(patient)))
    assert views
    assert views == [view for view in derived(engine_name) if view.patient == ex(patient)]


# --------------------------------------------------------------------------------------
# Observed facts, age, body weight
# --------------------------------------------------------------------------------------


@engines
def test_latest_observation_wins(engine_name: str) -> None:
    patient = "latest-observation-wins"
    assert value_of(engine_name, patient, "her2-status") == code("positive")
    assert sources_of(engine_name, patient, "her2-status") == {"latest-her2-new"}
    # A dated observation beats an undated one; with only undated ones, the undated counts.
    assert value_of(engine_name, patient, "er-status") == code("positive")
    assert sources_of(engine_name, patient, "er-status") == {"latest-er-dated"}
    assert value_of(engine_name, patient, "pr-status") == code("negative")
    assert sources_of(engine_name, patient, "pr-status") == {"latest-pr-undated"}
    assert value_of(engine_name, patient, "metastatic-lesion-count") == Literal(4)
    assert value_of(engine_name, patient,
                    "patient-engaged-in-local-therapy-decision") == TRUE


@engines
def test_observation_after_the_evaluation_date_is_ignored(engine_name: str) -> None:
    patient = "latest-observation-wins"
    # The equivocal HER2 result of 2026-12-02 is not used; the BRCA1 result of 2027 leaves
    # the fact silent (no node: the consumer applies silence-unknown).
    assert value_of(engine_name, patient, "her2-status") == code("positive")
    assert "germline-brca1" not in facts_of(engine_name, patient)
    earlier = run_query(engine_name, "facts/observed-facts", date(2027, 1, 2))
    brca1 = [v for v in earlier
             if v.patient == ex(patient) and v.fact == URIRef(FACTS + "germline-brca1")]
    assert [v.value for v in brca1] == [code("variant-present")]


@engines
def test_observations_that_do_not_give_a_value_say_why(engine_name: str) -> None:
    patient = "observations-undetermined"
    her2 = view_of(engine_name, patient, "her2-status")
    assert her2.value is None
    assert her2.undetermined_because == \
        "the latest HER2 status observations (2026-05-01) disagree or lack a value"
    assert her2.sources == {ex("undetermined-her2-a"), ex("undetermined-her2-b")}
    # Two results of one day that agree give that value, from both.
    assert value_of(engine_name, patient, "er-status") == code("positive")
    assert sources_of(engine_name, patient, "er-status") == {"undetermined-er-a",
                                                              "undetermined-er-b"}
    pr = view_of(engine_name, patient, "pr-status")
    assert (pr.value, pr.undetermined_because) == (
        None, "the latest progesterone receptor status observation (2026-05-01) has no value")
    pain = view_of(engine_name, patient, "bone-pain-severity")
    assert (pain.value, pain.undetermined_because) == (
        None, "the latest bone pain severity observation (2026-05-01) has a value that is not "
              "of the fact's value type")


# --------------------------------------------------------------------------------------
# Indeterminate results: HER2 equivocal (IHC 2+), pending (tests/data/facts/indeterminate.ttl)
# --------------------------------------------------------------------------------------

ISH = "HER2 by in situ hybridisation (ISH) would settle it"


@engines
def test_an_indeterminate_result_is_not_a_value(engine_name: str) -> None:
    """IHC 2+ alone: no value (so no criterion is false on it), and the reason names ISH."""
    view = view_of(engine_name, "her2-equivocal-only", "her2-status")
    assert (view.value, view.undetermined_because) == (
        None, f"the latest HER2 status (2026-01-10) is equivocal: {ISH}")
    assert view.sources == {ex("heo-ihc")}
    pending = view_of(engine_name, "results-pending", "her2-status")
    assert (pending.value, pending.undetermined_because) == (
        None, f"the latest HER2 status (2026-11-20) is pending: {ISH}")


@engines
def test_a_definitive_result_of_the_same_date_settles_an_indeterminate_one(
        engine_name: str) -> None:
    """IHC 2+ and a reflex ISH of the same specimen date: the ISH result, no disagreement."""
    assert value_of(engine_name, "her2-equivocal-ish-amplified", "her2-status") == \
        code("positive")
    assert sources_of(engine_name, "her2-equivocal-ish-amplified", "her2-status") == {"hea-ish"}
    assert value_of(engine_name, "her2-equivocal-ish-not-amplified", "her2-status") == \
        code("negative")
    # Both undated: as of one date.
    assert value_of(engine_name, "results-pending", "er-status") == code("positive")
    assert sources_of(engine_name, "results-pending", "er-status") == {"rp-er-positive"}


@engines
def test_the_newest_result_decides_between_definitive_and_indeterminate(engine_name: str) -> None:
    # An equivocal result, then a positive one: positive.
    assert value_of(engine_name, "her2-equivocal-then-positive", "her2-status") == \
        code("positive")
    # A positive result, then a new equivocal one: a new, unsettled test.
    newer = view_of(engine_name, "her2-positive-then-equivocal", "her2-status")
    assert (newer.value, newer.undetermined_because, newer.sources) == (
        None, f"the latest HER2 status (2026-03-01) is equivocal: {ISH}", {ex("hpte-new")})
    # A dated indeterminate ER result supersedes an undated negative one.
    er = view_of(engine_name, "er-dated-indeterminate", "er-status")
    assert (er.value, er.undetermined_because) == (
        None, "the latest estrogen receptor status (2026-05-05) is indeterminate: a repeat ER "
              "test by immunohistochemistry would settle it")


@engines
def test_definitive_results_that_disagree_still_give_no_value(engine_name: str) -> None:
    disputed = view_of(engine_name, "her2-ish-disagree", "her2-status")
    assert (disputed.value, disputed.undetermined_because) == (
        None, "the latest HER2 status observations (2026-04-01) disagree or lack a value")
    # The settled IHC 2+ is not among the disagreeing results.
    assert disputed.sources == {ex("hid-ish-a"), ex("hid-ish-b")}
    # A result without a value settles nothing.
    empty = view_of(engine_name, "er-dated-indeterminate", "her2-status")
    assert (empty.value, empty.sources) == (None, {ex("edi-her2-ihc"), ex("edi-her2-empty")})
    assert empty.undetermined_because == \
        "the latest HER2 status observations (2026-05-05) disagree or lack a value"


@engines
def test_two_indeterminate_results_of_one_date_give_both_reasons(engine_name: str) -> None:
    pr = view_of(engine_name, "results-pending", "pr-status")
    settle = "a repeat PR test by immunohistochemistry would settle it"
    assert (pr.value, pr.undetermined_because) == (
        None, f"the latest progesterone receptor status (2026-11-20) is equivocal: {settle}; "
              f"the latest progesterone receptor status (2026-11-20) is pending: {settle}")


# The HER2 work-up records (tests/data/patients/her2-work-up/): stage IV breast cancer with
# a bone metastasis; IHC 2+ alone, or with a reflex ISH of the same date.
WORK_UP = Path(__file__).resolve().parent / "data" / "patients" / "her2-work-up"
WORK_UP_IRI = "http://example.org/her2-work-up/"


@engines
def test_her2_work_up_records_give_the_her2_status(engine_name: str) -> None:
    graph = guideline_graph()
    for path in sorted(WORK_UP.glob("*.ttl")):
        for triple in parse_rdf_file(path):
            graph.add(triple)
    views = read_fact_values(derive_facts(make_engine(engine_name, graph), AS_OF))
    her2 = {str(v.patient)[len(WORK_UP_IRI):].removesuffix("/patient"):
            (v.value, v.undetermined_because)
            for v in views if v.fact == URIRef(FACTS + "her2-status")}
    unsettled = (None, f"the latest HER2 status (2026-01-10) is equivocal: {ISH}")
    assert her2 == {
        "her2-equivocal": unsettled,
        "her2-equivocal-er-pr-negative": unsettled,
        "her2-equivocal-ish-amplified": (code("positive"), None),
        "her2-equivocal-ish-not-amplified": (code("negative"), None),
    }


def recommend_json(path: Path) -> dict:
    """`guidelinekg recommend --format json` on one record, as a subprocess."""
    done = subprocess.run(
        [sys.executable, "-m", "guidelinekg.cli", "recommend", str(path), "--as-of",
         "2026-12-01", "--format", "json"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    (document,) = results_of(done.stdout)
    return document


HER2_KEYS = ("SYS-1", "HRP-1", "HRP-2", "HRP-3", "HER2-1", "HER2-3", "TN-1")


def her2_statuses(document: dict) -> dict[str, tuple[str, list[str], list[str]]]:
    """Status, missing facts among the receptor statuses, and the reasons given for HER2, of
    the statements that depend on HER2 (other statuses and facts are left to other tests)."""
    found = {}
    for result in document["recommendations"]:
        if result["key"] in HER2_KEYS:
            missing = [f for f in result["missing"] if f.endswith("-status")]
            reasons = [d["reason"] for d in result["missing_details"]
                       if d["fact"] == "her2-status"]
            found[result["key"]] = (result["status"], missing, reasons)
    return found


def test_her2_equivocal_leaves_her2_dependent_statements_undetermined() -> None:
    """ER positive, PR negative, IHC 2+ with no ISH: HER2 is not recorded as a value, so
    SYS-1 (HER2 recorded) and every statement that reads HER2 is undetermined, naming
    her2-status and ISH. TN-1 does not apply: ER positive is a false member of its all-of."""
    reason = f"the latest HER2 status (2026-01-10) is equivocal: {ISH}"
    undetermined = ("undetermined", ["her2-status"], [reason])
    statuses = her2_statuses(recommend_json(WORK_UP / "her2-equivocal.ttl"))
    assert {key: statuses[key] for key in ("SYS-1", "HRP-2", "HRP-3", "HER2-1", "HER2-3")} == \
        dict.fromkeys(("SYS-1", "HRP-2", "HRP-3", "HER2-1", "HER2-3"), undetermined)
    assert statuses["HRP-1"][0] == "undetermined"
    assert statuses["HRP-1"][1:] == (["her2-status"], [reason])
    assert statuses["TN-1"] == ("does-not-apply", [], [])
    # With ER and PR negative too, triple-negative disease is undetermined on HER2 alone.
    negative = her2_statuses(recommend_json(WORK_UP / "her2-equivocal-er-pr-negative.ttl"))
    assert negative["TN-1"] == undetermined
    assert negative["HER2-1"] == undetermined


def test_her2_equivocal_settled_by_ish_on_the_same_date() -> None:
    amplified = her2_statuses(recommend_json(WORK_UP / "her2-equivocal-ish-amplified.ttl"))
    assert amplified["HER2-1"] == ("applies", [], [])
    assert amplified["SYS-1"] == ("applies", [], [])
    assert amplified["HRP-2"][0] == "does-not-apply"
    not_amplified = her2_statuses(
        recommend_json(WORK_UP / "her2-equivocal-ish-not-amplified.ttl"))
    assert not_amplified["HER2-1"] == ("does-not-apply", [], [])
    assert not_amplified["HRP-2"] == ("applies", [], [])


@engines
def test_weight_in_pounds_is_converted_to_kg(engine_name: str) -> None:
    weight = view_of(engine_name, "latest-observation-wins", "body-weight")
    assert weight.value == Literal(Decimal("69.85"))
    assert weight.value.datatype == XSD_DECIMAL
    assert weight.sources == {ex("latest-weight-lb")}
    assert value_of(engine_name, REFERENCE + "patient", "body-weight") == Literal(Decimal("68.5"))


@engines
def test_weight_without_a_body_mass_unit_is_undetermined(engine_name: str) -> None:
    assert view_of(engine_name, "observations-undetermined", "body-weight").undetermined_because \
        == "the latest body weight observation (2026-05-01) has no unit"
    wrong = view_of(engine_name, "weight-wrong-unit", "body-weight")
    assert (wrong.value, wrong.undetermined_because) == (
        None, "the unit of the latest body weight observation (2026-05-01), mg, is not a "
              "body-mass unit of the units table")


@engines
def test_age_at_a_birthday_boundary(engine_name: str) -> None:
    def ages(on: date) -> dict[str, object]:
        return {str(v.patient).removeprefix(EX): v.value
                for v in run_query(engine_name, "facts/age", on)}

    assert ages(date(2026, 12, 1))["latest-observation-wins"] == Literal(66)
    assert ages(date(2026, 11, 30))["latest-observation-wins"] == Literal(65)
    assert ages(date(2026, 2, 28))["born-leap-day"] == Literal(17)
    assert ages(date(2026, 3, 1))["born-leap-day"] == Literal(18)
    after = view_of(engine_name, "born-after-evaluation", "age")
    assert (after.value, after.undetermined_because) == (
        None, "the birth date (2027-01-01) is after the evaluation date")
    assert "age" not in facts_of(engine_name, "weight-wrong-unit")  # no birth date: unknown


# --------------------------------------------------------------------------------------
# Extent of disease
# --------------------------------------------------------------------------------------


@engines
def test_refuted_bone_metastasis_is_false(engine_name: str) -> None:
    bone = view_of(engine_name, "bone-refuted", "bone-metastasis")
    assert (bone.value, bone.record_item, bone.sources) == (
        FALSE, ex("refuted-bone"), frozenset({ex("refuted-bone")}))
    assert value_of(engine_name, "bone-refuted", "bone-predominant-disease") == FALSE
    assert value_of(engine_name, "bone-refuted", "stage-iv") == FALSE
    assert sources_of(engine_name, "bone-refuted", "stage-iv") == {"refuted-primary"}


@engines
def test_present_bone_metastasis_names_its_condition(engine_name: str) -> None:
    bone = view_of(engine_name, "bone-only-stage-iv", "bone-metastasis")
    assert (bone.value, bone.record_item) == (TRUE, ex("bos-bone"))
    assert bone.sources == {ex("bos-bone"), ex("bos-bone-only")}
    assert value_of(engine_name, "bone-only-stage-iv", "visceral-metastasis") == FALSE
    assert value_of(engine_name, "bone-only-stage-iv", "bone-predominant-disease") == TRUE
    assert sources_of(engine_name, "bone-only-stage-iv", "stage-iv") == {"bos-primary", "bos-bone"}


@engines
def test_liver_metastasis_present_makes_bone_only_false(engine_name: str) -> None:
    patient = "bone-and-liver"
    assert value_of(engine_name, patient, "bone-only-metastasis") == FALSE
    assert sources_of(engine_name, patient, "bone-only-metastasis") == {"bl-liver"}
    assert value_of(engine_name, patient, "visceral-metastasis") == TRUE
    # The lung metastasis diagnosed after the evaluation date is not used.
    assert sources_of(engine_name, patient, "visceral-metastasis") == {"bl-liver"}
    assert sources_of(engine_name, patient, "stage-iv") == {"bl-bone", "bl-liver"}
    assert "bone-predominant-disease" not in facts_of(engine_name, patient)


@engines
def test_missing_conditions_leave_extent_of_disease_unknown(engine_name: str) -> None:
    assert facts_of(engine_name, "extent-unknown") == {"er-status"}
    # Bone and lymph nodes: bone-only is false, but visceral disease is not known to be absent.
    assert value_of(engine_name, "bone-and-nodes", "bone-only-metastasis") == FALSE
    assert "visceral-metastasis" not in facts_of(engine_name, "bone-and-nodes")
    assert value_of(engine_name, "bone-and-nodes", "bone-predominant-disease") == TRUE
    assert sources_of(engine_name, "bone-and-nodes", "bone-predominant-disease") == \
        {"bn-predominant"}


@engines
def test_bone_only_assessment_alone(engine_name: str) -> None:
    patient = "bone-only-assessed"
    expected = {"bone-metastasis": TRUE, "bone-only-metastasis": TRUE,
                "visceral-metastasis": FALSE, "bone-predominant-disease": TRUE,
                "stage-iv": TRUE}
    assert {str(v.fact).removeprefix(FACTS): v.value
            for v in views_of(engine_name, patient)} == expected
    for fact in expected:
        # The disagreeing assessments dated after the evaluation date are not used.
        assert sources_of(engine_name, patient, fact) == {"boa-assessment"}
    assert view_of(engine_name, patient, "bone-metastasis").record_item is None
    disputed = view_of(engine_name, "bone-only-disputed", "bone-only-metastasis")
    assert (disputed.value, disputed.undetermined_because) == (
        None, "the latest bone-only assessments (2026-04-01) disagree or lack a value")


# --------------------------------------------------------------------------------------
# Treatments: presence, doses, duration, HER2 progression
# --------------------------------------------------------------------------------------


@engines
def test_item_presence_reads_status_at_the_evaluation_date(engine_name: str) -> None:
    patient = "za-doses-counted"
    # The administration of 2026-12-15 was at most planned on 2026-12-01.
    given = {"zdc-order", "zdc-dose-1", "zdc-dose-2", "zdc-dose-3"}
    assert sources_of(engine_name, patient, "zoledronic-acid-given") == given
    assert sources_of(engine_name, patient, "bone-modifying-agent-given") == given
    assert sources_of(engine_name, patient, "bone-modifying-agent-given-or-planned") == \
        given | {"zdc-dose-later", "zdc-planned"}
    # Stopped denosumab: given (until it stopped), not given or planned now; a planned
    # discussion is not held.
    mixed = facts_of(engine_name, "presence-mixed")
    assert sources_of(engine_name, "presence-mixed", "bone-modifying-agent-given") == \
        {"pm-denosumab"}
    assert "bone-modifying-agent-given-or-planned" not in mixed
    # ... but it was started (AVOID-1 is a pitfall of initiation).
    assert sources_of(engine_name, "presence-mixed", "bone-modifying-agent-started-or-planned") \
        == {"pm-denosumab"}
    assert "multidisciplinary-discussion-documented" not in mixed
    assert value_of(engine_name, "presence-mixed", "stabilization-or-separation-surgery-done") \
        == TRUE
    # Letrozole recorded as ongoing from 2026-12-10 counts as planned.
    assert sources_of(engine_name, "denosumab-ongoing", "systemic-therapy-given-or-planned") == \
        {"do-letrozole-later"}


@engines
def test_zoledronic_acid_doses_are_counted(engine_name: str) -> None:
    # 3 completed administrations by the evaluation date beat the order's count of 2.
    assert value_of(engine_name, "za-doses-counted", "zoledronic-acid-doses-given") == Literal(3)
    assert value_of(engine_name, "za-order-stopped", "zoledronic-acid-doses-given") == Literal(4)
    # Two administrations six months apart: not monthly doses (BMA-3).
    assert value_of(engine_name, "bma-administrations", "zoledronic-acid-doses-given") == \
        Literal(0)
    assert value_of(engine_name, "za-12-weekly", "zoledronic-acid-doses-given") == Literal(0)
    unknown = view_of(engine_name, "za-no-interval", "zoledronic-acid-doses-given")
    assert (unknown.value, unknown.undetermined_because) == (
        None, "a zoledronic acid order gives no dose interval: whether its doses were monthly "
              "is unknown")
    assert value_of(engine_name, "denosumab-ongoing", "zoledronic-acid-doses-given") == Literal(0)
    assert value_of(engine_name, "bma-undated", "zoledronic-acid-doses-given") == Literal(0)
    assert "zoledronic-acid-doses-given" not in facts_of(engine_name, "presence-mixed")
    assert value_of(engine_name, "za-overnight", "zoledronic-acid-doses-given") == Literal(2)
    uncounted = view_of(engine_name, "za-course-uncounted", "zoledronic-acid-doses-given")
    assert (uncounted.value, uncounted.undetermined_because) == (
        None, "a zoledronic acid course that has ended does not record its doses given: how "
              "many were monthly is unknown")
    # Courses (recorded as such) without their end date are not administrations to count.
    courses = view_of(engine_name, "bma-recorded-course", "zoledronic-acid-doses-given")
    assert (courses.value, courses.undetermined_because) == (None, uncounted.undetermined_because)


@engines
def test_bone_modifying_agent_months(engine_name: str) -> None:
    # 2025-11-15 to 2026-03-22 (the stopped course's last dose, covering its month): 4 months
    # across the year.
    assert value_of(engine_name, "za-order-stopped", "bone-modifying-agent-duration") == Literal(4)
    # Ongoing since 2024-12-20: 23 whole months on 2026-12-01.
    assert value_of(engine_name, "denosumab-ongoing", "bone-modifying-agent-duration") == \
        Literal(23)
    # Doses six months apart: the last one covers six months, past the evaluation date.
    assert value_of(engine_name, "bma-administrations", "bone-modifying-agent-duration") == \
        Literal(10)
    # BMA-6: a dose covers its interval. Denosumab every 4 weeks from 2024-12-01, the last dose
    # two days before the evaluation date: 24 months, not the 23 to the last dose.
    assert value_of(engine_name, "bma-every-4-weeks", "bone-modifying-agent-duration") == \
        Literal(24)
    # One dose that records a 12-week interval covers 12 weeks (2025-09-01 to 2025-11-24).
    assert value_of(engine_name, "bma-interval-recorded", "bone-modifying-agent-duration") == \
        Literal(2)
    assert value_of(engine_name, "za-doses-counted", "bone-modifying-agent-duration") == Literal(7)
    undated = view_of(engine_name, "bma-undated", "bone-modifying-agent-duration")
    assert (undated.value, undated.undetermined_because) == (
        None, "a bone-modifying agent that was given has no start date")
    assert undated.sources == {ex("bu-za")}
    # A completed course with its end date, not one administration: 2024-10-01 to the end
    # date plus the 4-week interval.
    assert value_of(engine_name, "bma-completed-course", "bone-modifying-agent-duration") == \
        Literal(25)
    recorded = view_of(engine_name, "bma-recorded-course", "bone-modifying-agent-duration")
    endless = view_of(engine_name, "bma-course-no-end", "bone-modifying-agent-duration")
    assert (recorded.value, recorded.undetermined_because) == (
        None, endless.undetermined_because)
    assert (endless.value, endless.undetermined_because) == (
        None, "every bone-modifying agent has ended, and one that ended has no end date")


@engines
def test_bone_modifying_agent_months_across_a_history(engine_name: str) -> None:
    """Adjuvant zoledronic acid that ended years before the metastatic diagnosis is not
    counted (denosumab since 2026-09-01: 3 months, not 95); an 18-month pause is no
    therapy: undetermined, naming the restart."""
    fact = "bone-modifying-agent-duration"
    assert value_of(engine_name, "bma-after-adjuvant", fact) == Literal(3)
    interrupted = view_of(engine_name, "bma-interrupted", fact)
    assert (interrupted.value, interrupted.undetermined_because) == (
        None, "bone-modifying agents were interrupted: the one started on 2026-06-01 follows "
              "the last dose before it by more than 24 weeks, and the months of the pause are "
              "not therapy")


@engines
def test_a_plan_long_overdue_is_no_current_agent(engine_name: str) -> None:
    """Denosumab planned for March and not recorded as given by December: whether the patient
    is on it is unknown (BMA-1's gap shows); a plan of October is still a plan."""
    fact = "bone-modifying-agent-current"
    overdue = view_of(engine_name, "bma-plans", fact, "bp-denosumab")
    assert (overdue.value, overdue.undetermined_because) == (
        None, "the bone-modifying agent was planned to start on 2026-03-01, more than 12 weeks "
              "before the evaluation date, and is not recorded as given: whether the patient is "
              "on it cannot be told")
    assert value_of(engine_name, "bma-plans", fact, "bp-za") == TRUE


@engines
def test_pathological_fracture(engine_name: str) -> None:
    # RT-1's "uncomplicated": a diagnosis is present unless refuted; silence is unknown.
    assert value_of(engine_name, "fracture-present", "pathological-fracture") == TRUE
    assert view_of(engine_name, "fracture-present", "pathological-fracture").record_item == \
        ex("fp-fracture")
    assert value_of(engine_name, "fracture-refuted", "pathological-fracture") == FALSE
    assert sources_of(engine_name, "fracture-refuted", "pathological-fracture") == \
        {"fr-fracture"}
    assert value_of(engine_name, "fracture-present-and-refuted", "pathological-fracture") == TRUE
    assert sources_of(engine_name, "fracture-present-and-refuted", "pathological-fracture") == \
        {"fpr-present"}
    assert "pathological-fracture" not in facts_of(engine_name, "fracture-later")
    assert "pathological-fracture" not in facts_of(engine_name, "denosumab-ongoing")


@engines
def test_progression_on_her2_therapy(engine_name: str) -> None:
    assert value_of(engine_name, "her2-progression", "progression-on-her2-therapy") == TRUE
    assert sources_of(engine_name, "her2-progression", "progression-on-her2-therapy") == \
        {"hp-trastuzumab", "hp-progression"}
    # The progression of 2026-12-20 is after the evaluation date.
    assert value_of(engine_name, "her2-stable", "progression-on-her2-therapy") == FALSE
    nothing_after = view_of(engine_name, "her2-no-status-after", "progression-on-her2-therapy")
    assert (nothing_after.value, nothing_after.undetermined_because) == (
        None, "no dated disease status follows the start of HER2-targeted therapy")
    assert "progression-on-her2-therapy" not in facts_of(engine_name, "denosumab-ongoing")


# --------------------------------------------------------------------------------------
# Dental safety
# --------------------------------------------------------------------------------------


@engines
def test_dental_evaluation_after_the_bma_start(engine_name: str) -> None:
    view = view_of(engine_name, "dental-evaluation-after-bma",
                   "bma-without-prior-dental-evaluation", "dea-denosumab")
    assert view.value == TRUE
    assert view.sources == {ex("dea-denosumab"), ex("dea-evaluation")}


@engines
def test_dental_evaluation_before_the_bma_start(engine_name: str) -> None:
    view = view_of(engine_name, "dental-evaluation-before-bma",
                   "bma-without-prior-dental-evaluation", "deb-denosumab")
    assert view.value == FALSE
    assert view.sources == {ex("deb-denosumab"), ex("deb-evaluation")}
    assert value_of(engine_name, REFERENCE + "patient", "bma-without-prior-dental-evaluation",
                    REFERENCE + "denosumab") == FALSE


@engines
def test_dental_evaluation_for_undated_or_planned_agents(engine_name: str) -> None:
    fact = "bma-without-prior-dental-evaluation"
    assert value_of(engine_name, "bma-planned-no-evaluation", fact, "bpn-za") == TRUE
    assert value_of(engine_name, "bma-planned-evaluated", fact, "bpe-za") == FALSE
    undated_evaluation = view_of(engine_name, "dental-evaluation-undated", fact, "deu-denosumab")
    assert undated_evaluation.value is None
    assert undated_evaluation.undetermined_because.startswith(
        "a completed dental evaluation has no date")
    no_start = view_of(engine_name, "bma-start-missing", fact, "bsm-denosumab")
    assert (no_start.value, no_start.undetermined_because) == (
        None, "the bone-modifying agent has no start date")


@engines
def test_invasive_dental_procedure_during_denosumab(engine_name: str) -> None:
    fact, patient = "invasive-dental-procedure-during-bma", "extraction-during-denosumab"
    planned = view_of(engine_name, patient, fact, "edd-extraction-planned")
    assert planned.value == TRUE
    assert planned.sources == {ex("edd-extraction-planned"), ex("edd-denosumab")}
    assert value_of(engine_name, patient, fact, "edd-extraction-before") == FALSE
    implant = view_of(engine_name, patient, fact, "edd-implant-undated")
    assert (implant.value, implant.undetermined_because) == (
        None, "the invasive dental procedure has no date")


@engines
def test_a_dental_evaluation_long_before_any_agent_is_to_confirm(engine_name: str) -> None:
    """An evaluation of 2018 is not, as far as the record shows, the one before denosumab of
    2026 (undetermined, naming it); one 10 days before the first of a series of
    administrations counts for every later one."""
    fact = "bma-without-prior-dental-evaluation"
    old = view_of(engine_name, "dental-evaluation-long-before", fact, "delb-denosumab")
    assert (old.value, old.undetermined_because) == (
        None, "the dental evaluation before the bone-modifying agent (2018-02-01) came more "
              "than 6 months before any agent started: confirm it is the evaluation before this "
              "therapy")
    assert value_of(engine_name, "dental-evaluation-before-a-series", fact, "debs-dose-9") == FALSE
    assert value_of(engine_name, "dental-evaluation-before-a-series", fact, "debs-dose-1") == FALSE


@engines
def test_invasive_dental_procedure_and_ended_agents(engine_name: str) -> None:
    fact = "invasive-dental-procedure-during-bma"
    assert value_of(engine_name, "extraction-and-ended-za", fact, "eez-extraction-during") == TRUE
    assert value_of(engine_name, "extraction-and-ended-za", fact, "eez-extraction-after") == FALSE
    # 30 days after a stopped course's last dose: still during treatment (as if completed)
    assert value_of(engine_name, "extraction-and-ended-za", fact,
                    "eez-extraction-soon-after") == TRUE
    assert value_of(engine_name, "extraction-after-single-infusion", fact,
                    "easi-extraction-soon") == TRUE
    single = view_of(engine_name, "extraction-after-single-infusion", fact, "easi-extraction")
    assert single.value is None
    assert single.undetermined_because.startswith("a bone-modifying agent has no start date, "
                                                  "or has ended with no end date")
    # No agent at all: not during one. The stopped extraction is neither planned nor done.
    without = views_of(engine_name, "extraction-without-bma", fact)
    assert [(v.record_item, v.value) for v in without] == [(ex("ewb-extraction"), FALSE)]


# --------------------------------------------------------------------------------------
# Line of therapy, response, local therapy
# --------------------------------------------------------------------------------------


@engines
def test_first_line_chemotherapy(engine_name: str) -> None:
    fact = "first-line-chemotherapy"
    assert value_of(engine_name, "chemo-line-recorded", fact, "clr-paclitaxel") == TRUE
    assert value_of(engine_name, "chemo-line-recorded", fact, "clr-capecitabine") == FALSE
    # No line recorded; letrozole started after the metastatic diagnosis, before the chemo.
    after_letrozole = view_of(engine_name, "chemo-after-letrozole", fact, "cal-capecitabine")
    assert after_letrozole.value == FALSE
    assert after_letrozole.sources == {ex("cal-capecitabine"), ex("cal-bone"),
                                       ex("cal-letrozole")}
    assert value_of(engine_name, "chemo-first-after-diagnosis", fact, "cfd-docetaxel") == TRUE
    assert value_of(engine_name, "chemo-first-after-diagnosis", fact, "cfd-doxorubicin") == FALSE


@engines
def test_first_line_chemotherapy_without_dates(engine_name: str) -> None:
    fact = "first-line-chemotherapy"
    no_dates = view_of(engine_name, "chemo-no-dates", fact, "cnd-paclitaxel")
    assert (no_dates.value, no_dates.undetermined_because) == (
        None, "the chemotherapy has no start date and no line of therapy")
    undated_diagnosis = view_of(engine_name, "chemo-diagnosis-undated", fact, "cdu-gemcitabine")
    assert undated_diagnosis.value is None
    assert undated_diagnosis.undetermined_because.startswith("no dated metastatic diagnosis")
    assert undated_diagnosis.sources == {ex("cdu-gemcitabine"), ex("cdu-anastrozole")}


@engines
def test_response_to_systemic_therapy(engine_name: str) -> None:
    fact = "response-to-systemic-therapy"
    assert value_of(engine_name, "response-assessed", fact) == code("good-response")
    assert sources_of(engine_name, "response-assessed", fact) == {"ra-good"}
    # From the disease status after letrozole started; the baseline before it is not used.
    assert value_of(engine_name, "response-from-status", fact) == code("good-response")
    assert sources_of(engine_name, "response-from-status", fact) == {"rfs-improved",
                                                                     "rfs-letrozole"}
    assert value_of(engine_name, "her2-progression", fact) == code("poor-response")
    stable = view_of(engine_name, "response-stable", fact)
    assert (stable.value, stable.undetermined_because) == (
        None, "the latest disease status after the start of systemic therapy (2026-06-01) is "
              "stable disease")
    assert view_of(engine_name, "response-no-therapy", fact).undetermined_because.startswith(
        "no dated systemic therapy for metastatic disease (started on or after the metastatic "
        "diagnosis) was given")
    before = view_of(engine_name, "response-before-metastatic-therapy", fact)
    assert (before.value, before.undetermined_because, before.sources) == (
        None, "the response assessments are dated on or before the start of systemic therapy "
              "for metastatic disease (2026-11-25): they show no response to it",
        {ex("rbm-good")})
    assert value_of(engine_name, "response-from-status", "tumour-response-documented") == TRUE
    assert sources_of(engine_name, "response-from-status", "tumour-response-documented") == \
        {"rfs-baseline", "rfs-improved"}
    assert "tumour-response-documented" not in facts_of(engine_name, "za-doses-counted")


@engines
def test_given_in_metastatic_setting(engine_name: str) -> None:
    fact = "given-in-metastatic-setting"
    values = {str(v.record_item).removeprefix(EX): v.value
              for v in views_of(engine_name, "metastatic-setting", fact)}
    # adjuvant, ended before the diagnosis (the regional nodes of 2019 do not date it);
    # ongoing since before it (begun for early disease); completed after it; stopped;
    # undated; planned (starts after the evaluation)
    # consultations and discussions: before the diagnosis; after it; planned
    assert values == {"ms-trastuzumab": FALSE, "ms-tamoxifen": FALSE, "ms-letrozole": TRUE,
                      "ms-docetaxel": FALSE, "ms-capecitabine": None, "ms-fulvestrant": TRUE,
                      "ms-goals-early": FALSE, "ms-goals": TRUE,
                      "ms-orthopedics-early": FALSE, "ms-orthopedics": TRUE,
                      "ms-letrozole-first-line": TRUE, "ms-orthopedics-ongoing": FALSE}
    undated = view_of(engine_name, "metastatic-setting", fact, "ms-capecitabine")
    assert undated.undetermined_because == (
        "the item has no date: whether it was given since the metastatic diagnosis cannot "
        "be told")
    # The diagnosis is a source when the value compares dates with it.
    adjuvant = view_of(engine_name, "metastatic-setting", fact, "ms-trastuzumab")
    assert adjuvant.sources == {ex("ms-trastuzumab"), ex("ms-bone")}
    unplaced = view_of(engine_name, "metastatic-setting-undated", fact, "msu-paclitaxel")
    assert (unplaced.value, unplaced.undetermined_because) == (
        None, "no dated metastatic diagnosis (a distant metastasis recorded present, or a "
              "primary staged IV, with its date) places the item before or after it")


@engines
def test_the_metastatic_diagnosis_date_is_not_set_by_a_finding_refuted_later(
        engine_name: str) -> None:
    fact = "metastatic-diagnosis-date"
    dated = view_of(engine_name, "diagnosis-after-refutation", fact)
    assert (dated.value, dated.sources) == (Literal(date(2026, 6, 1)), {ex("dar-bone")})
    primary = view_of(engine_name, "diagnosis-same-day-conflict", fact)
    assert (primary.value, primary.sources) == (Literal(date(2025, 9, 1)), {ex("dsc-primary")})
    assert value_of(engine_name, "metastatic-setting", fact) == Literal(date(2026, 3, 1))


@engines
def test_zoledronic_acid_current_is_being_on_it_now(engine_name: str) -> None:
    """BMA-3 is for a patient on zoledronic acid now: an ongoing order, or a dose within 12
    weeks; not a planned one, one stopped, nor a dose given long ago."""
    fact = "zoledronic-acid-current"
    assert {str(v.record_item).removeprefix(EX): v.value
            for v in views_of(engine_name, "za-doses-counted", fact)} == {
        "zdc-order": TRUE, "zdc-dose-1": FALSE, "zdc-dose-2": FALSE, "zdc-dose-3": FALSE,
        "zdc-dose-later": FALSE, "zdc-planned": FALSE}
    assert value_of(engine_name, "za-order-stopped", fact, "zos-order") == FALSE
    assert value_of(engine_name, "bma-planned-no-evaluation", fact, "bpn-za") == FALSE
    assert value_of(engine_name, "extraction-after-single-infusion", fact, "easi-za") == FALSE


@engines
def test_decision_context_counts_records_since_the_metastatic_diagnosis(
        engine_name: str) -> None:
    engaged, board = "patient-engaged-in-local-therapy-decision", \
        "multidisciplinary-discussion-documented"
    # 2019 records, before the diagnosis: none counts (silence: absent).
    assert {engaged, board}.isdisjoint(facts_of(engine_name, "decision-before-metastasis"))
    assert value_of(engine_name, "decision-after-metastasis", engaged) == TRUE
    assert sources_of(engine_name, "decision-after-metastasis", engaged) == {"dam-engaged"}
    assert value_of(engine_name, "decision-after-metastasis", board) == TRUE
    assert sources_of(engine_name, "decision-after-metastasis", board) == {"dam-board"}
    # The ablation's discussion must come after the diagnosis too (OLIGO-1).
    assert value_of(engine_name, "ablation-after-old-board",
                    "local-ablative-therapy-without-multidisciplinary-discussion",
                    "aob-ablation") == TRUE
    for fact, kind in ((engaged, "the latest engagement record has"),
                       (board, "the multidisciplinary discussion held has")):
        view = view_of(engine_name, "decision-undated", fact)
        assert (view.value, view.undetermined_because) == (
            None, f"{kind} no date: whether it comes after the metastatic diagnosis "
                  "(2026-03-01) cannot be told")


@engines
def test_with_no_dated_metastatic_diagnosis_no_decision_record_is_placed(
        engine_name: str) -> None:
    """A 2019 tumour board does not weigh a 2026 surgery because the metastasis has no
    date: the engagement and the discussion are unknown, the reason saying why."""
    engaged = view_of(engine_name, "decision-diagnosis-undated",
                      "patient-engaged-in-local-therapy-decision")
    assert (engaged.value, engaged.undetermined_because) == (
        None, "no dated metastatic diagnosis (a distant metastasis recorded present, or a "
              "primary staged IV, with its date): whether the engagement record of "
              "2026-09-10 was about the metastatic disease cannot be told")
    discussed = view_of(engine_name, "decision-diagnosis-undated",
                        "local-control-surgery-without-multidisciplinary-discussion",
                        "ddu-surgery")
    assert (discussed.value, discussed.undetermined_because) == (
        None, "no dated metastatic diagnosis (a distant metastasis recorded present, or a "
              "primary staged IV, with its date): whether a multidisciplinary discussion was "
              "about the metastatic disease cannot be told")


TWO_STATUSES = """
@prefix gkg: <https://w3id.org/guidelinekg/ontology#> .
@prefix code: <https://w3id.org/guidelinekg/code/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix ex: <http://example.org/facts/> .
ex:two-statuses a gkg:Patient .
ex:ts-bone a gkg:MetastasisCondition ; gkg:subject ex:two-statuses ; gkg:site code:site-bone ;
    gkg:present true ; gkg:effectiveDate "2026-06-01"^^xsd:date .
ex:ts-board a gkg:MultidisciplinaryDiscussion ; gkg:subject ex:two-statuses ;
    gkg:status code:planned ; gkg:startDate "2026-12-05"^^xsd:date .
ex:ts-surgery a gkg:LocalControlSurgery ; gkg:subject ex:two-statuses ;
    gkg:status code:planned , code:completed ; gkg:startDate "2026-12-10"^^xsd:date .
ex:ts-za a gkg:ZoledronicAcid ; gkg:subject ex:two-statuses ;
    gkg:status code:planned , code:completed ; gkg:startDate "2026-11-10"^^xsd:date .
"""


@engines
def test_an_item_with_two_statuses_still_gets_one_value_a_fact(engine_name: str) -> None:
    """Such a record is refused, but derived with --allow-invalid it must not stop the run:
    the facts that read an item's status read it whole."""
    graph = Graph().parse(data=TWO_STATUSES, format="turtle")
    for triple in guideline_graph():
        graph.add(triple)
    views = read_fact_values(derive_facts(make_engine(engine_name, graph), AS_OF))
    assert view_of_items(views, "zoledronic-acid-current") == {"ts-za": FALSE}
    assert view_of_items(views, "local-control-surgery-without-multidisciplinary-discussion") \
        == {"ts-surgery": FALSE}


def view_of_items(views: list[FactValueView], fact: str) -> dict[str, object]:
    return {str(v.record_item).removeprefix(EX): v.value for v in views
            if v.fact == URIRef(FACTS + fact)}


@engines
def test_local_therapy_items(engine_name: str) -> None:
    views = views_of(engine_name, "local-therapies")
    items = {(str(v.fact).removeprefix(FACTS), str(v.record_item).removeprefix(EX), v.value)
             for v in views}
    assert items == {
        ("local-control-surgery-planned-or-done", "lt-primary-surgery", TRUE),
        ("local-control-surgery-planned-or-done", "lt-surgery-local-control", TRUE),
        ("local-therapy-planned-or-done", "lt-primary-surgery", TRUE),
        ("local-therapy-planned-or-done", "lt-surgery-local-control", TRUE),
        ("local-therapy-planned-or-done", "lt-radiotherapy-local-control", TRUE),
        # No systemic therapy at all: each surgery comes before any (AVOID-5).
        ("local-control-surgery-before-systemic-therapy", "lt-primary-surgery", TRUE),
        ("local-control-surgery-before-systemic-therapy", "lt-surgery-local-control", TRUE),
        # No multidisciplinary discussion at all: neither surgery was weighed first (AVOID-5).
        ("local-control-surgery-without-multidisciplinary-discussion", "lt-primary-surgery",
         TRUE),
        ("local-control-surgery-without-multidisciplinary-discussion",
         "lt-surgery-local-control", TRUE),
        # No engagement recorded at all: the local therapy under way or done came before it
        # (AVOID-6); the planned surgery's decision lies ahead.
        ("local-therapy-before-patient-engagement", "lt-primary-surgery", FALSE),
        ("local-therapy-before-patient-engagement", "lt-surgery-local-control", TRUE),
        ("local-therapy-before-patient-engagement", "lt-radiotherapy-local-control", TRUE),
        # No response documented at all: likewise before a good response.
        ("local-therapy-before-good-response", "lt-primary-surgery", FALSE),
        ("local-therapy-before-good-response", "lt-surgery-local-control", TRUE),
        ("local-therapy-before-good-response", "lt-radiotherapy-local-control", TRUE),
        # Stopped midway: partly done, it counts as done, with every fact about it.
        ("local-control-surgery-planned-or-done", "lt-surgery-stopped", TRUE),
        ("local-therapy-planned-or-done", "lt-surgery-stopped", TRUE),
        ("local-control-surgery-before-systemic-therapy", "lt-surgery-stopped", TRUE),
        ("local-control-surgery-without-multidisciplinary-discussion", "lt-surgery-stopped",
         TRUE),
        ("local-therapy-before-patient-engagement", "lt-surgery-stopped", TRUE),
        ("local-therapy-before-good-response", "lt-surgery-stopped", TRUE),
    }


@engines
def test_local_therapy_of_unknown_purpose(engine_name: str) -> None:
    """A surgery or radiotherapy whose purpose is not recorded may be local therapy: in the
    metastatic setting it is undetermined, naming the purpose; the facts about each surgery
    for local control judge it too. Orthopedic surgery, another purpose, bone radiotherapy
    and a surgery of early disease are left out."""
    views = views_of(engine_name, "unknown-purpose")
    items = {(str(v.fact).removeprefix(FACTS), str(v.record_item).removeprefix(EX), v.value,
              v.undetermined_because) for v in views if v.record_item is not None}
    surgery = "the purpose of the surgery is not recorded: it may be surgery solely for local " \
              "control"
    radiotherapy = "the purpose of the radiotherapy is not recorded and it is not to a bone " \
                   "lesion: it may be radiotherapy for local control"
    assert items == {
        ("local-control-surgery-planned-or-done", "up-surgery-done", None, surgery),
        ("local-control-surgery-planned-or-done", "up-surgery-planned", None, surgery),
        ("local-therapy-planned-or-done", "up-surgery-done", None, surgery),
        ("local-therapy-planned-or-done", "up-surgery-planned", None, surgery),
        ("local-therapy-planned-or-done", "up-radiotherapy", None, radiotherapy),
        # letrozole since 2026-02-01 (after the diagnosis): before the surgery of May
        ("local-control-surgery-before-systemic-therapy", "up-surgery-done", FALSE, None),
        # the planned surgery has no date: which comes first is unknown
        ("local-control-surgery-before-systemic-therapy", "up-surgery-planned", None,
         "the surgery or a systemic therapy has no start date, or no dated metastatic "
         "diagnosis tells whether a therapy before the surgery was for metastatic disease: "
         "which came first is unknown"),
        # no multidisciplinary discussion at all
        ("local-control-surgery-without-multidisciplinary-discussion", "up-surgery-done", TRUE,
         None),
        ("local-control-surgery-without-multidisciplinary-discussion", "up-surgery-planned",
         TRUE, None),
        # no engagement recorded: the surgery and radiotherapy done came before it
        ("local-therapy-before-patient-engagement", "up-surgery-done", TRUE, None),
        ("local-therapy-before-patient-engagement", "up-radiotherapy", TRUE, None),
        ("local-therapy-before-patient-engagement", "up-surgery-planned", FALSE, None),
        ("local-therapy-before-good-response", "up-surgery-done", TRUE, None),
        ("local-therapy-before-good-response", "up-radiotherapy", TRUE, None),
        ("local-therapy-before-good-response", "up-surgery-planned", FALSE, None),
        # the letrozole's line of therapy and setting
        *{(str(v.fact).removeprefix(FACTS), str(v.record_item).removeprefix(EX), v.value,
           v.undetermined_because) for v in views
          if v.record_item == URIRef(EX + "up-letrozole")},
    }


@engines
def test_local_therapy_before_the_patients_engagement(engine_name: str) -> None:
    """Engagement documented only after a surgery was not engagement in that decision
    (AVOID-6); a planned surgery's decision lies ahead; undated items or records cannot be
    placed."""
    fact = "local-therapy-before-patient-engagement"
    values = view_of_items(views_of(engine_name, "engagement-timing", fact), fact)
    assert values == {"et-surgery-after": FALSE, "et-surgery-before": TRUE,
                      "et-surgery-planned": FALSE, "et-surgery-undated": None}
    assert view_of(engine_name, "engagement-timing", fact, "et-surgery-undated") \
        .undetermined_because == ("the local therapy has no date and is under way or done: "
                                  "whether the patient's engagement was documented before it "
                                  "is unknown")
    undated = view_of(engine_name, "engagement-undated", fact, "eu-surgery")
    assert (undated.value, undated.undetermined_because) == (
        None, "a record of the patient's engagement in the decision has no date: it cannot be "
              "placed before the local therapy")


@engines
def test_local_therapy_before_a_good_response(engine_name: str) -> None:
    """A surgery done before any good response was documented was not chosen for a patient
    responding (AVOID-6); a planned one's decision lies ahead; an undated response cannot be
    placed."""
    fact = "local-therapy-before-good-response"
    values = view_of_items(views_of(engine_name, "response-timing", fact), fact)
    assert values == {"rt-surgery-before": TRUE, "rt-surgery-after": FALSE,
                      "rt-surgery-planned": FALSE}
    undated = view_of(engine_name, "response-undated", fact, "ru-surgery")
    assert (undated.value, undated.undetermined_because) == (
        None, "a good response is documented without a date: it cannot be placed before the "
              "local therapy")


@engines
def test_local_control_surgery_discussed_before_it(engine_name: str) -> None:
    """A tumour board held only after the surgery did not weigh it; one planned before the
    planned surgery does, but not one still only planned for a surgery already done; an
    undated one cannot be placed."""
    fact = "local-control-surgery-without-multidisciplinary-discussion"
    assert value_of(engine_name, "discussed-after", fact, "da-surgery") == TRUE
    assert value_of(engine_name, "discussed-first", fact, "df-surgery") == FALSE
    assert value_of(engine_name, "discussed-only-planned", fact, "dop-surgery") == TRUE
    undated = view_of(engine_name, "discussed-undated", fact, "du-surgery")
    assert (undated.value, undated.undetermined_because) == (
        None, "a multidisciplinary discussion has no date: it cannot be placed before or "
              "after the surgery for local control or the metastatic diagnosis")
    # An undated surgery still planned and an undated board held: the board may be one of
    # early disease.
    unplaced = view_of(engine_name, "discussed-undated-plan", fact, "dup-surgery")
    assert (unplaced.value, unplaced.undetermined_because) == (
        None, "a multidisciplinary discussion has no date: it cannot be placed before or "
              "after the surgery for local control or the metastatic diagnosis")


@engines
def test_local_control_surgery_before_systemic_therapy(engine_name: str) -> None:
    fact = "local-control-surgery-before-systemic-therapy"
    assert value_of(engine_name, "timing-systemic-after", fact, "tsa-surgery") == TRUE
    assert value_of(engine_name, "timing-systemic-first", fact, "tsf-surgery") == FALSE
    # adjuvant therapy before the recurrence is no systemic therapy for metastatic disease
    assert value_of(engine_name, "timing-adjuvant-first", fact, "taf-surgery") == TRUE
    unknown = ("the surgery or a systemic therapy has no start date, or no dated metastatic "
               "diagnosis tells whether a therapy before the surgery was for metastatic "
               "disease: which came first is unknown")
    for patient, item in (("timing-undated", "tu-surgery"),
                          ("timing-diagnosis-undated", "tdu-surgery")):
        undated = view_of(engine_name, patient, fact, item)
        assert (undated.value, undated.undetermined_because) == (None, unknown)


@engines
def test_a_later_disease_status_overtakes_a_response_assessment(engine_name: str) -> None:
    """A good response in July and progression in November: poor, from the status; stable in
    November: undetermined (the good response is no longer the latest word); an assessment
    after a status: the assessment."""
    fact = "response-to-systemic-therapy"
    assert value_of(engine_name, "response-then-progression", fact) == code("poor-response")
    assert "rtp-progression" in sources_of(engine_name, "response-then-progression", fact)
    stable = view_of(engine_name, "response-then-stable", fact)
    assert (stable.value, stable.undetermined_because) == (
        None, "the latest disease status after the start of systemic therapy (2026-11-01) is "
              "stable disease")
    assert value_of(engine_name, "status-then-response", fact) == code("poor-response")
    assert sources_of(engine_name, "status-then-response", fact) == {"str-poor"}


@engines
def test_local_ablative_therapy_without_documented_response(engine_name: str) -> None:
    fact = "local-ablative-therapy-without-documented-response"
    documented = view_of(engine_name, "ablation-documented", fact, "ad-ablation")
    # The sources: the ablation, the status and the therapy it is a response to.
    assert (documented.value, documented.sources) == (
        FALSE, {ex("ad-ablation"), ex("ad-status"), ex("ad-letrozole")})
    assert value_of(engine_name, "ablation-undocumented", fact, "au-ablation") == TRUE
    assert value_of(engine_name, "ablation-undated-plan", fact, "aup-ablation") == TRUE
    assert value_of(engine_name, "ablation-undated-plan-documented", fact, "aupd-ablation") == FALSE
    done = view_of(engine_name, "ablation-undated-plan-documented", fact, "aupd-ablation-done")
    assert (done.value, done.undetermined_because) == (
        None, "the local ablative therapy is under way or done and has no date")


@engines
def test_reference_patient_record(engine_name: str) -> None:
    views = views_of(engine_name, REFERENCE + "patient")
    values = {str(v.fact).removeprefix(FACTS): v.value for v in views
              if v.record_item is None or v.fact == URIRef(FACTS + "bone-metastasis")}
    assert values["er-status"] == code("positive")
    assert values["her2-status"] == code("negative")
    assert values["age"] == Literal(64)
    assert values["bone-only-metastasis"] == TRUE
    assert values["stage-iv"] == TRUE
    assert values["bone-modifying-agent-duration"] == Literal(2)
    assert values["bone-pain-severity"] == code("pain-moderate")
    assert values["body-weight"] == Literal(Decimal("68.5"))
    bone = view_of(engine_name, REFERENCE + "patient", "bone-metastasis")
    assert bone.record_item == URIRef(REFERENCE + "bone-metastasis")


def test_fact_value_nodes_carry_patient_and_fact() -> None:
    triples = derive_facts(fixture_engine("oxigraph"), AS_OF, ex("bone-refuted"))
    nodes = {s for s, p, o in triples if p == RDF.type and o == FACT_VALUE}
    assert nodes
    for node in nodes:
        assert sum(1 for s, p, _ in triples if s == node and p == PATIENT) == 1
        assert sum(1 for s, p, _ in triples if s == node and p == FACT) == 1
