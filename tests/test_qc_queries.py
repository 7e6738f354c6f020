"""The QC queries (queries/qc/*-violation.rq): each fires on its failing data, naming exactly
the offending subjects, and stays silent on its passing data and on the real guideline.

Fixtures: tests/data/qc/<query name>/{pass,fail}.ttl, small self-contained graphs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rdflib import Graph, URIRef

from guidelinekg.checks import qc_queries, run_qc
from guidelinekg.loading import guideline_graph, parse_rdf_file
from guidelinekg.sparql import QueryFile, check_syntax, make_engine

DATA = Path(__file__).parent / "data" / "qc"
EX = "https://example.org/qc/"

# The subjects each failing graph must be reported for, and nothing else.
EXPECTED_SUBJECTS: dict[str, set[str]] = {
    "recommendation-without-citation-violation": {"S-2"},
    "recommendation-without-applicability-violation": {"S-2"},
    "duplicate-recommendation-key-violation": {"S-2", "S-2-copy"},
    "criterion-on-undeclared-fact-violation": {"crit-typo"},
    "criteria-cycle-violation": {"outer", "inner", "self"},
    "dose-without-unit-violation": {"step-2"},
    "mg-per-kg-dose-not-per-body-weight-violation": {"step-false", "step-missing", "step-mg"},
    "action-not-an-intervention-violation": {"S-typo", "S-concept", "evidence"},
    "summary-without-parts-violation": {"SUM-1", "SUM-2"},
    "should-not-without-forbidden-action-violation": {"AVOID-2"},
    "care-gap-without-action-violation": {"S-2"},
    "undeclared-property-violation": {"S-2", "S-3"},
    "undeclared-class-violation": {"item", "NewDrug"},
    "statement-in-a-section-its-guideline-lacks-violation": {"S-2", "S-3"},
}

REQUIRED = {
    "recommendation-without-citation-violation", "recommendation-without-applicability-violation",
    "duplicate-recommendation-key-violation", "criterion-on-undeclared-fact-violation",
    "criteria-cycle-violation", "dose-without-unit-violation",
    "mg-per-kg-dose-not-per-body-weight-violation", "action-not-an-intervention-violation",
    "summary-without-parts-violation", "should-not-without-forbidden-action-violation",
    "care-gap-without-action-violation", "undeclared-property-violation",
    "statement-in-a-section-its-guideline-lacks-violation",
}


def _queries() -> dict[str, QueryFile]:
    return {q.name.rsplit("/", 1)[-1]: q for q in qc_queries()}


def _subjects(query: QueryFile, graph: Graph, engine: str = "oxigraph") -> list[str]:
    rows = make_engine(engine, graph).select(query.text)
    for row in rows:
        assert isinstance(row.get("subject"), URIRef), f"{query.name}: row without ?subject"
    return sorted(str(row["subject"]).removeprefix(EX) for row in rows)


@pytest.fixture(scope="module")
def real_graph() -> Graph:
    return guideline_graph()


def test_required_queries_exist_and_each_has_fixtures() -> None:
    names = set(_queries())
    assert names >= REQUIRED
    assert names == set(EXPECTED_SUBJECTS)
    assert {p.name for p in DATA.iterdir() if p.is_dir()} == names
    for name in names:
        assert (DATA / name / "pass.ttl").is_file() and (DATA / name / "fail.ttl").is_file()


@pytest.mark.parametrize("name", sorted(EXPECTED_SUBJECTS))
def test_query_is_commented_valid_sparql_without_parameters(name: str) -> None:
    query = _queries()[name]
    assert query.path.name.endswith("-violation.rq")
    check_syntax(query.text, query.name)
    header = [line for line in query.text.splitlines() if line.startswith("#")]
    assert len(header) >= 3, "say what the query finds and why it matters"
    assert any("Why it matters" in line for line in header)
    assert query.parameters == ()
    assert "?subject" in query.text.split("WHERE", 1)[0]


@pytest.mark.parametrize("engine", ["oxigraph", "rdflib"])
@pytest.mark.parametrize("name", sorted(EXPECTED_SUBJECTS))
def test_query_fires_on_failing_data_with_the_exact_subjects(name: str, engine: str) -> None:
    graph = parse_rdf_file(DATA / name / "fail.ttl")
    subjects = _subjects(_queries()[name], graph, engine)
    assert set(subjects) == EXPECTED_SUBJECTS[name]


@pytest.mark.parametrize("engine", ["oxigraph", "rdflib"])
@pytest.mark.parametrize("name", sorted(EXPECTED_SUBJECTS))
def test_query_is_silent_on_passing_data(name: str, engine: str) -> None:
    graph = parse_rdf_file(DATA / name / "pass.ttl")
    assert _subjects(_queries()[name], graph, engine) == []


@pytest.mark.parametrize("name", sorted(EXPECTED_SUBJECTS))
def test_query_is_silent_on_the_real_guideline(name: str, real_graph: Graph) -> None:
    assert _subjects(_queries()[name], real_graph) == []


def test_run_qc_reports_rows_with_readable_terms() -> None:
    graph = parse_rdf_file(DATA / "recommendation-without-citation-violation" / "fail.ttl")
    results = {r.name: r for r in run_qc(graph)}
    failing = results["recommendation-without-citation-violation"]
    assert not failing.passed
    assert failing.rows == [{"subject": f"<{EX}S-2>", "key": "S-2"}]
    assert failing.description.startswith("Statements that cite no evidence source.")


def test_run_qc_on_the_real_guideline_passes_every_query(real_graph: Graph) -> None:
    results = run_qc(real_graph)
    assert {r.name for r in results} == set(EXPECTED_SUBJECTS)
    assert [r.name for r in results if not r.passed] == []


def test_a_broken_copy_of_the_guideline_is_caught(real_graph: Graph) -> None:
    """Removing a citation and misspelling a property in the real content is reported."""
    from rdflib.namespace import RDF

    bcbm = "https://w3id.org/guidelinekg/guideline/bcbm/"
    gkg = "https://w3id.org/guidelinekg/ontology#"
    broken = Graph()
    for triple in real_graph:
        broken.add(triple)
    her2_1 = URIRef(bcbm + "HER2-1")
    broken.remove((her2_1, URIRef(gkg + "hasEvidenceSource"), None))
    broken.add((URIRef(bcbm + "BMA-1"), URIRef(gkg + "careGapCheked"), URIRef(gkg + "x")))
    results = {r.name: r for r in run_qc(broken)}
    assert results["recommendation-without-citation-violation"].rows == [
        {"subject": "bcbm:HER2-1", "key": "HER2-1"}]
    assert results["undeclared-property-violation"].rows == [
        {"subject": "bcbm:BMA-1", "property": "gkg:careGapCheked"}]
    assert (her2_1, RDF.type, URIRef(gkg + "Recommendation")) in broken
