"""The outputs of a derivation: the JSON contract, the clinician's text, the PROV-O graph."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import PROV, RDF, XSD

from guidelinekg.derivation import derive
from guidelinekg.loading import PREFIXES, parse_rdf_file
from guidelinekg.recommend_output import to_json, to_rdf, to_text
from guidelinekg.resources import examples_dir
from guidelinekg.results import Derivation
from json_contract import results_of

GKG = PREFIXES["gkg"]
EXAMPLE = examples_dir() / "patients" / "hr-positive-her2-negative-bone-only.ttl"
PATIENT = "http://example.org/patients/hr-pos-bone-only/patient"
AS_OF = date(2026, 12, 1)


@pytest.fixture(scope="module")
def derivation() -> Derivation:
    return derive(parse_rdf_file(EXAMPLE), AS_OF)


def test_json_contract(derivation: Derivation) -> None:
    (document,) = results_of(to_json(derivation))  # always a list, one patient here
    assert next(iter(document)) == "population"
    assert document["population"]["status"] == "in"
    assert document["population"]["missing"] == []
    assert document["patient"] == PATIENT
    assert document["guideline"] == PREFIXES["bcbm"] + "guideline"
    assert document["as_of"] == "2026-12-01"
    assert len(document["recommendations"]) == 37
    keys = [r["key"] for r in document["recommendations"]]
    assert len(set(keys)) == 37 and keys[0] == "SUM-1"
    for recommendation in document["recommendations"]:
        assert recommendation["status"] in {"applies", "does-not-apply", "undetermined"}
        assert recommendation["modality"] in {"should", "should-not", "may", "consider"}
        assert recommendation["text"] and recommendation["sources"]
        assert isinstance(recommendation["because"], list)
        assert isinstance(recommendation["missing"], list)
    by_key = {r["key"]: r for r in document["recommendations"]}
    assert by_key["BMA-1"]["status"] == "applies"
    assert by_key["BMA-1"]["sources"] == ["REF-1", "REF-2"]
    assert by_key["HER2-1"]["status"] == "does-not-apply"
    # Weight-bearing lesion and spinal cord compression: only the first is unrecorded.
    assert by_key["ORTH-1"]["status"] == "undetermined"
    assert by_key["ORTH-1"]["missing"] == ["significant-weight-bearing-lesion"]
    assert document["contraindicated"] == []
    # Moderate bone pain and 3 lesions: radiotherapy applies, and none is in the record.
    # RT-4 applies (3 lesions) but asks nothing of this patient: no care gap (curation note).
    assert [g["key"] for g in document["care_gaps"]] == ["RT-2"]
    assert [(d["key"], d["status"]) for d in document["dose_checks"]] == [("BMA-2", "matches")]
    assert document["dose_checks"][0]["record_item"].endswith("/denosumab")


def test_text_puts_population_and_actions_first(derivation: Derivation) -> None:
    text = to_text(derivation)
    order = [text.index(heading) for heading in (
        "Population (stage 4 breast cancer with bone metastasis): in the guideline's population",
        "Contraindicated actions", "Care gaps", "Dose checks",
        "Undetermined", "Applicable recommendations", "Does not apply")]
    assert order == sorted(order)
    assert "BMA-1 [should] All patients with bone metastases require bone-modifying agents" in text
    assert "missing: significant lesion in a weight-bearing long bone or vertebra" in text


def test_rdf_results_carry_their_provenance(derivation: Derivation) -> None:
    graph = Graph().parse(data=to_rdf(derivation).serialize(format="turtle"), format="turtle")
    def encoded(iri: str) -> str:
        return iri.replace(":", "%3A").replace("/", "%2F")

    result = URIRef(f"urn:guidelinekg:result:{encoded(PATIENT)}:"
                    f"{encoded(PREFIXES['bcbm'] + 'BMA-1')}")
    assert (result, RDF.type, URIRef(GKG + "RecommendationResult")) in graph
    assert (result, URIRef(GKG + "resultStatus"), URIRef(PREFIXES["code"] + "applies")) in graph
    assert (result, URIRef(GKG + "recommendation"), URIRef(PREFIXES["bcbm"] + "BMA-1")) in graph
    run = graph.value(result, PROV.wasGeneratedBy)
    assert (run, URIRef(GKG + "asOf"), Literal("2026-12-01", datatype=XSD.date)) in graph
    used = set(graph.objects(run, PROV.used))
    assert URIRef("https://w3id.org/guidelinekg/guideline/bcbm/0.1.0") in used
    assert URIRef("https://w3id.org/guidelinekg/ontology/0.1.0") in used
    # Result -> fact value -> record item: the chain a clinician follows back.
    fact_values = set(graph.objects(result, PROV.wasDerivedFrom))
    assert fact_values
    sources = {s for fv in fact_values for s in graph.objects(fv, PROV.wasDerivedFrom)}
    assert URIRef("http://example.org/patients/hr-pos-bone-only/bone-metastasis") in sources
    assert (result, URIRef(GKG + "generatedByQuery"),
            Literal("derive/recommendation-status")) in graph


def test_dose_checks_name_their_statement_by_iri(derivation: Derivation) -> None:
    # A dose check links the statement itself, not an IRI made from its key: keys are the
    # guideline's, and another guideline may use the same ones.
    from guidelinekg.loading import guideline_graph

    guideline = guideline_graph()
    recommendation_class = URIRef(PREFIXES["gkg"] + "Recommendation")
    (result,) = derivation.patients
    assert result.dose_checks
    graph = to_rdf(derivation)
    for check in result.dose_checks:
        statement = URIRef(check.recommendation)
        assert (statement, RDF.type, recommendation_class) in guideline
        assert str(guideline.value(statement, URIRef(PREFIXES["skos"] + "notation"))) == check.key
        nodes = [n for n in graph.subjects(URIRef(PREFIXES["gkg"] + "recordItem"),
                                           URIRef(check.record_item))
                 if (n, RDF.type, URIRef(PREFIXES["gkg"] + "DoseCheckResult")) in graph]
        assert [graph.value(n, URIRef(PREFIXES["gkg"] + "recommendation")) for n in nodes] == [
            statement]


# --------------------------------------------------------------------------------------
# The three formats say the same thing
# --------------------------------------------------------------------------------------

# The status notations of the JSON contract and the result-status concepts of the RDF.
RDF_STATUS = {"applies": "applies", "does-not-apply": "does-not-apply",
              "undetermined": "undetermined", "matches": "dose-matches",
              "deviates": "dose-deviates", "cannot-check": "dose-cannot-check",
              "contraindicated": "contraindicated",
              "possibly-contraindicated": "possibly-contraindicated",
              "in": "in-population", "out": "out-of-population",
              "undetermined-population": "population-undetermined"}


def _rdf_results(graph: Graph, kind: str, patient: str) -> set[tuple]:
    """(statement, status, record item or None, missing facts) of one kind of RDF result."""
    found = set()
    for node in graph.subjects(RDF.type, URIRef(GKG + kind)):
        if graph.value(node, URIRef(GKG + "patient")) != URIRef(patient):
            continue
        status = str(graph.value(node, URIRef(GKG + "resultStatus"))).rsplit("/", 1)[1]
        item = graph.value(node, URIRef(GKG + "recordItem"))
        facts = frozenset(str(f).rsplit("/", 1)[1]
                          for predicate in ("missingFact", "toConfirm")
                          for f in graph.objects(node, URIRef(GKG + predicate)))
        found.add((str(graph.value(node, URIRef(GKG + "recommendation"))), status,
                   str(item) if item is not None else None, facts))
    return found


def test_json_rdf_and_text_agree_on_every_result_of_a_cohort() -> None:
    """Every status, flag, care gap and dose check of the JSON is in the RDF with the same
    statement, status, item and missing facts, and nothing more; the text names each."""
    # The vignettes: one cohort of records written to exercise every kind of result.
    cohort = Path(__file__).parent / "vignettes"
    graph_in = Graph()
    for path in sorted(cohort.glob("*.ttl")):
        graph_in += parse_rdf_file(path)
    derivation = derive(graph_in, AS_OF)
    documents = results_of(to_json(derivation))
    graph = Graph().parse(data=to_rdf(derivation).serialize(format="turtle"), format="turtle")
    text = to_text(derivation, verbose=True)  # record items by IRI
    assert len(documents) >= 3
    for document in documents:
        patient = document["patient"]
        assert f"Patient {patient}" in text
        outcomes = {(o["recommendation"], RDF_STATUS[o["status"]], None, frozenset(o["missing"]))
                    for o in document["recommendations"]}
        assert _rdf_results(graph, "RecommendationResult", patient) == outcomes
        flags = {(c["recommendation"], RDF_STATUS[c["status"]], c["record_item"],
                  frozenset(c["to_confirm"])) for c in document["contraindicated"]}
        assert _rdf_results(graph, "ContraindicationResult", patient) == flags
        gaps = {(g["recommendation"], "applies", None, frozenset())
                for g in document["care_gaps"]}
        assert _rdf_results(graph, "CareGapResult", patient) == gaps
        doses = {(d["recommendation"], RDF_STATUS[d["status"]], d["record_item"], frozenset())
                 for d in document["dose_checks"]}
        assert _rdf_results(graph, "DoseCheckResult", patient) == doses
        for flag in document["contraindicated"]:
            assert flag["key"] in text and flag["record_item"] in text
    # The cohort exercises every kind of result.
    for part in ("contraindicated", "care_gaps", "dose_checks"):
        assert any(document[part] for document in documents), part


def test_results_become_json_as_dataclasses_asdict_would_make_them() -> None:
    """to_json converts the flat results itself (asdict's deep recursion was a tenth of a
    cohort run): the same values, for every kind of result."""
    from dataclasses import asdict
    from datetime import date

    from guidelinekg.derivation import derive
    from guidelinekg.patients import load_patient_input
    from guidelinekg.resources import examples_dir
    from guidelinekg.results import _plain

    graph = load_patient_input([examples_dir() / "patients"], quiet=True).graph
    kinds = set()
    for result in derive(graph, date(2026, 12, 1), allow_invalid=True).patients:
        for items in (result.recommendations, result.contraindicated, result.care_gaps,
                      result.dose_checks, [result.population]):
            for item in items:
                assert _plain(item) == asdict(item)
                kinds.add(type(item).__name__)
    assert kinds == {"RecommendationOutcome", "Contraindication", "CareGap", "DoseCheck",
                     "PopulationVerdict"}


def test_text_names_record_items_by_class_and_date_and_folds_summaries(
        derivation: Derivation) -> None:
    """The report a clinician reads names an item as its class and date (--verbose: its
    IRI), and an applicable summary by the statements it summarises, not its text again."""
    text = to_text(derivation)
    verbose = to_text(derivation, verbose=True)
    assert ("because primary breast cancer: yes (primary-breast-cancer = yes; from primary "
            "breast cancer 2026-09-01)") in text
    assert "http://example.org/patients/" not in text.split("Patient ", 2)[1].split("\n", 1)[1]
    assert "http://example.org/patients/" in verbose
    summary = next(line for line in text.splitlines() if line.strip().startswith("SUM-1"))
    assert summary.strip() == "SUM-1 [should] summary of BMA-1, BMA-2, RT-2, SYS-1"
