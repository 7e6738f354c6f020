"""`guidelinekg query`: the bundled informatician queries, parameters, formats and errors.

Every outcome is checked against the seed guideline's content (ontology/guidelines/bcbm.ttl):
exact statement keys, regimens and facts. Every bundled guideline query is run on both
engines, with and without each of its parameters, and must give the same answer.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.compare import isomorphic

from guidelinekg import cli
from guidelinekg.loading import PREFIXES, guideline_graph
from guidelinekg.namespaces import canonical_literal
from guidelinekg.query_text import QueryError, prepare_query, refuse_remote_access
from guidelinekg.querying import (
    QueryResult,
    format_csv,
    format_json,
    format_table,
    resolve_query,
    run_query,
)
from guidelinekg.sparql import bundled_queries, expand_iri, make_engine

GKG = PREFIXES["gkg"]
BCBM = PREFIXES["bcbm"]
FACT = PREFIXES["fact"]
# Not rdflib's XSD namespace object: pytest warns when it inspects one at module level.
XSD_DECIMAL = URIRef(PREFIXES["xsd"] + "decimal")
XSD_INTEGER = URIRef(PREFIXES["xsd"] + "integer")
XSD_BOOLEAN = URIRef(PREFIXES["xsd"] + "boolean")
XSD_GYEAR = URIRef(PREFIXES["xsd"] + "gYear")
SRC_DIR = Path(__file__).resolve().parents[1] / "src" / "guidelinekg"

# A value for every parameter of the bundled guideline queries, to run each query with it.
SAMPLE_PARAMETERS = {
    "section": "bcbm:section-her2-positive-disease",
    "modality": "gkg:ShouldNot",
    "intervention": "gkg:BoneModifyingAgent",
    "source": "bcbm:REF-4",
    "recommendation": "bcbm:TN-2",
}
GUIDELINE_QUERIES = bundled_queries("guideline")


@pytest.fixture(scope="session")
def graph() -> Graph:
    return guideline_graph()


def rows_of(name: str, graph: Graph, **values: str) -> list[dict]:
    return run_query(resolve_query(name), values, "oxigraph", graph).rows


def keys(rows: list[dict]) -> list[str]:
    return [str(row["key"]) for row in rows]


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ---------------------------------------------------------------------------------------
# The bundled queries give the guideline's content


def test_should_not_recommendations_are_exactly_the_pitfalls(graph):
    rows = rows_of("guideline/recommendations-by-section", graph, modality="gkg:ShouldNot")
    assert keys(rows) == [f"AVOID-{n}" for n in range(1, 7)]
    assert {str(row["modalityNotation"]) for row in rows} == {"should-not"}
    assert {str(row["sectionTitle"]) for row in rows} == {"Critical Pitfalls to Avoid"}


def test_recommendations_come_in_document_order_with_verbatim_text(graph):
    rows = rows_of("recommendations-by-section", graph)
    assert len(rows) == 37
    assert keys(rows)[:3] == ["SUM-1", "BMA-1", "BMA-2"]
    assert keys(rows)[-1] == "AVOID-6"
    bma_1 = rows[1]
    assert bma_1["recommendation"] == URIRef(BCBM + "BMA-1")
    assert str(bma_1["text"]) == ("All patients with bone metastases require bone-modifying "
                                  "agents at diagnosis, even without symptoms.")


def test_section_and_modality_parameters_combine(graph):
    her2 = rows_of("recommendations-by-section", graph,
                   section="bcbm:section-her2-positive-disease")
    assert keys(her2) == ["HER2-1", "HER2-2", "HER2-3"]
    may_in_oligo = rows_of("recommendations-by-section", graph,
                           section="bcbm:section-oligometastatic-disease-considerations",
                           modality="gkg:May")
    assert keys(may_in_oligo) == ["OLIGO-1", "OLIGO-3", "OLIGO-4"]


def test_unresolved_source_is_cited_by_exactly_three_statements(graph):
    rows = rows_of("recommendations-by-source", graph, source="bcbm:REF-4")
    assert keys(rows) == ["HER2-2", "AVOID-4", "AVOID-5"]
    assert {str(row["sourceNotation"]) for row in rows} == {"REF-4"}
    assert {row["unresolved"] for row in rows} == {Literal(True)}
    assert all("sourceTitle" not in row for row in rows)


def test_resolved_source_shows_its_title_and_is_not_unresolved(graph):
    rows = rows_of("recommendations-by-source", graph, source="bcbm:REF-3")
    assert keys(rows) == ["HER2-1", "HER2-3"]
    assert {row["unresolved"] for row in rows} == {Literal(False)}
    assert {str(row["sourceTitle"]) for row in rows} == {
        "Management of Stage 4 Breast Cancer Related Bleeding Breast Wound"}


def test_trastuzumab_shows_its_two_regimens_and_the_statements_for_it(graph):
    rows = rows_of("guideline/intervention", graph, intervention="gkg:Trastuzumab")
    steps = {(row["item"].split("/")[-1], int(row["step"]), str(row["phase"]),
              Decimal(str(row["amount"])), str(row["unit"]), str(row["route"]))
             for row in rows if str(row["aspect"]) == "dose regimen"}
    assert steps == {
        ("regimen-trastuzumab-weekly", 1, "loading", Decimal(4), "mg/kg", "intravenous"),
        ("regimen-trastuzumab-weekly", 2, "maintenance", Decimal(2), "mg/kg", "intravenous"),
        ("regimen-trastuzumab-3-weekly", 1, "loading", Decimal(8), "mg/kg", "intravenous"),
        ("regimen-trastuzumab-3-weekly", 2, "maintenance", Decimal(6), "mg/kg", "intravenous"),
    }
    maintenance = {(row["item"].split("/")[-1], str(row["period"]), str(row["periodUnit"]))
                   for row in rows if str(row.get("phase")) == "maintenance"}
    assert maintenance == {("regimen-trastuzumab-weekly", "1", "wk"),
                           ("regimen-trastuzumab-3-weekly", "3", "wk")}
    recommended = {(str(row["key"]), str(row["match"]))
                   for row in rows if str(row["aspect"]) == "recommended by"}
    assert {key for key, match in recommended if match == "exact"} == {"HER2-1", "HER2-3"}
    # Statements about a broader class concern trastuzumab too, and say so.
    assert {key for key, match in recommended if match == "broader"} == {"HER2-2", "SYS-1"}
    assert not [row for row in rows if str(row["aspect"]) == "forbidden by"]


def test_bone_modifying_agent_includes_its_subclasses_and_the_pitfalls(graph):
    rows = rows_of("intervention", graph, intervention="gkg:BoneModifyingAgent")
    regimen_classes = {row["class"] for row in rows if str(row["aspect"]) == "dose regimen"}
    assert regimen_classes == {URIRef(GKG + "Denosumab"), URIRef(GKG + "ZoledronicAcid")}
    assert {str(row["match"]) for row in rows if str(row["aspect"]) == "dose regimen"} == {
        "narrower"}
    forbidden = {(str(row["key"]), str(row["match"]))
                 for row in rows if str(row["aspect"]) == "forbidden by"}
    assert forbidden == {("AVOID-3", "exact")}
    evidence = [row for row in rows if str(row["aspect"]) == "comparative evidence"]
    found = {(row["class"], row.get("comparedWith"), str(row["conclusion"])) for row in evidence}
    assert found == {
        (URIRef(GKG + "Denosumab"), URIRef(GKG + "ZoledronicAcid"), "superior"),
        (URIRef(GKG + "ZoledronicAcid"), URIRef(GKG + "ZoledronicAcid"), "equivalent"),
    }


def test_zoledronic_acid_is_the_comparator_of_the_denosumab_evidence(graph):
    rows = rows_of("intervention", graph, intervention="gkg:ZoledronicAcid")
    as_comparator = [row for row in rows if str(row["aspect"]) == "comparator in evidence"]
    assert [(row["item"], row["comparedWith"], str(row["key"])) for row in as_comparator] == [
        (URIRef(BCBM + "evidence-denosumab-vs-zoledronic-acid"), URIRef(GKG + "Denosumab"),
         "BMA-2")]


def test_facts_of_tn_2_are_receptor_statuses_and_germline_brca(graph):
    rows = rows_of("recommendation-facts", graph, recommendation="bcbm:TN-2")
    assert {row["fact"] for row in rows} == {
        URIRef(FACT + name) for name in
        ("er-status", "pr-status", "her2-status", "germline-brca1", "germline-brca2")}
    assert {str(row["silence"]) for row in rows} == {"unknown"}
    assert all("valueWhenSilent" not in row for row in rows)


def test_facts_show_silence_means_absent_with_its_value(graph):
    rows = rows_of("recommendation-facts", graph, recommendation="bcbm:AVOID-1")
    facts = {row["fact"].split("/")[-1]: (str(row["silence"]), row.get("valueWhenSilent"))
             for row in rows}
    assert facts == {
        "bone-metastasis": ("unknown", None),
        "bone-modifying-agent-started-or-planned": ("absent", Literal(False)),
    }


def test_statements_for_every_patient_depend_on_no_fact(graph):
    rows = rows_of("recommendation-facts", graph)
    assert {"GOAL-1", "GOAL-2", "GOAL-3", "GOAL-4"}.isdisjoint(keys(rows))
    assert len({str(row["key"]) for row in rows}) == 33


def test_evidence_sources_carry_their_curation_notes(graph):
    rows = {str(row["notation"]): row for row in rows_of("evidence-sources", graph)}
    assert list(rows) == ["REF-1", "REF-2", "REF-3", "REF-4"]
    assert {name: int(row["citedBy"]) for name, row in rows.items()} == {
        "REF-1": 33, "REF-2": 19, "REF-3": 2, "REF-4": 3}
    assert rows["REF-4"]["unresolved"] == Literal(True)
    assert "title" not in rows["REF-4"] and "year" not in rows["REF-4"]
    assert "none is invented" in str(rows["REF-4"]["curationNote"])
    assert "bleeding breast wounds" in str(rows["REF-3"]["curationNote"])
    assert "curationNote" not in rows["REF-1"]
    assert rows["REF-1"]["year"] == Literal("2025", datatype=XSD_GYEAR)


def test_dose_regimens_are_structured_with_explicit_units(graph):
    rows = rows_of("dose-regimens", graph)
    # denosumab's regimen is stated in BMA-2 and SUM-1; RT-1 states three radiotherapy schemes
    assert len(rows) == 11
    by_step = {(row["regimen"].split("/")[-1], str(row["statedIn"]), int(row["step"])): row
               for row in rows}
    zoledronic = by_step[("regimen-zoledronic-acid-4mg-q3-4w", "SUM-1", 1)]
    assert (str(zoledronic["amount"]), str(zoledronic["unit"]), str(zoledronic["route"]),
            str(zoledronic["period"]), str(zoledronic["periodMax"]),
            str(zoledronic["periodUnit"])) == ("4", "mg", "intravenous", "3", "4", "wk")
    loading = by_step[("regimen-trastuzumab-weekly", "HER2-3", 1)]
    assert (str(loading["unit"]), loading["perBodyWeight"], str(loading["infusionDuration"]),
            str(loading["infusionDurationUnit"]), int(loading["count"])) == (
        "mg/kg", Literal(True), "90", "min", 1)
    extended = by_step[("regimen-zoledronic-acid-4mg-q12w", "BMA-3", 1)]
    assert str(extended["condition"]) == (
        "on zoledronic acid, stable disease, 3 or more monthly doses")
    radiotherapy = by_step[("regimen-bone-radiotherapy-8gy-single-fraction", "RT-1", 1)]
    assert (str(radiotherapy["amount"]), str(radiotherapy["unit"]),
            int(radiotherapy["fractions"])) == ("8", "Gy", 1)
    assert "route" not in radiotherapy  # the seed states none for radiotherapy
    multi = by_step[("regimen-bone-radiotherapy-20gy-5-fractions", "RT-1", 1)]
    assert (str(multi["amount"]), int(multi["fractions"])) == ("20", 5)
    for row in rows:  # mg/kg is per body weight, and only mg/kg is
        assert (str(row["unit"]) == "mg/kg") == (row["perBodyWeight"] == Literal(True))


def test_dose_regimens_of_a_class_include_narrower_classes(graph):
    rows = rows_of("dose-regimens", graph, intervention="gkg:Bisphosphonate")
    assert {row["regimen"].split("/")[-1] for row in rows} == {
        "regimen-zoledronic-acid-4mg-q3-4w", "regimen-zoledronic-acid-4mg-q12w"}


# ---------------------------------------------------------------------------------------
# Both engines, every bundled query, with and without parameters


def test_every_parameter_of_the_guideline_queries_has_a_sample_value():
    assert GUIDELINE_QUERIES, "no bundled queries under queries/guideline/"
    declared = {p.name for query in GUIDELINE_QUERIES for p in query.parameters}
    assert declared <= set(SAMPLE_PARAMETERS), declared - set(SAMPLE_PARAMETERS)


def _engine_cases():
    for query in GUIDELINE_QUERIES:
        yield pytest.param(query.name, {}, id=f"{query.name}-all")
        for parameter in query.parameters:
            if parameter.name in SAMPLE_PARAMETERS:
                yield pytest.param(query.name, {parameter.name: SAMPLE_PARAMETERS[parameter.name]},
                                   id=f"{query.name}-{parameter.name}")


@pytest.mark.parametrize(("name", "values"), list(_engine_cases()))
def test_both_engines_give_identical_answers(graph, name, values):
    query = resolve_query(name)
    on_oxigraph = run_query(query, values, "oxigraph", graph)
    on_rdflib = run_query(query, values, "rdflib", graph)
    assert on_oxigraph.variables == on_rdflib.variables
    assert on_oxigraph.rows, "the query found nothing in the seed guideline"
    assert on_oxigraph.rows == on_rdflib.rows  # same rows, same order, same spelling
    if values:
        everything = run_query(query, {}, "oxigraph", graph)
        assert len(on_oxigraph.rows) < len(everything.rows)
        ((parameter, value),) = values.items()
        assert {row[parameter] for row in on_oxigraph.rows} == {expand_iri(value)}


def test_bundled_queries_name_their_parameters_in_comments():
    for query in GUIDELINE_QUERIES:
        assert query.description, query.name
        for parameter in query.parameters:
            assert parameter.kind == "IRI" and parameter.description.startswith("optional:")
            projected = make_engine("oxigraph").select_with_variables(query.text)[0]
            assert parameter.name in projected, f"{query.name}: {parameter.name} not projected"
        code_lines = [line for line in query.text.splitlines() if not line.startswith("#")]
        assert "VALUES" not in "\n".join(code_lines)  # rdflib bug 2332 (VALUES + OPTIONAL)


# ---------------------------------------------------------------------------------------
# Output formats


def _result(graph) -> QueryResult:
    return run_query(resolve_query("recommendations-by-source"), {"source": "bcbm:REF-4"},
                     "oxigraph", graph)


def test_csv_parses_back_to_the_same_rows(graph):
    result = _result(graph)
    text = format_csv(result)
    assert "\r\n" in text
    table = list(csv.reader(io.StringIO(text, newline="")))
    assert table[0] == result.variables
    assert table[1:] == [[str(row.get(name, "")) for name in result.variables]
                         for row in result.rows]
    assert table[1][result.variables.index("recommendation")] == BCBM + "HER2-2"


def _term_from_json(binding: dict) -> URIRef | BNode | Literal:
    if binding["type"] == "uri":
        return URIRef(binding["value"])
    if binding["type"] == "bnode":
        return BNode(binding["value"])
    datatype = binding.get("datatype")
    return Literal(binding["value"], lang=binding.get("xml:lang"),
                   datatype=URIRef(datatype) if datatype else None)


def test_json_is_sparql_results_json_and_parses_back_to_the_same_rows(graph):
    result = _result(graph)
    document = json.loads(format_json(result))
    assert document["head"]["vars"] == result.variables
    rows = [{name: _term_from_json(binding) for name, binding in row.items()}
            for row in document["results"]["bindings"]]
    assert rows == result.rows
    first = document["results"]["bindings"][0]
    assert first["recommendation"] == {"type": "uri", "value": BCBM + "HER2-2"}
    assert first["text"]["xml:lang"] == "en" and "datatype" not in first["text"]
    assert first["unresolved"] == {"type": "literal", "value": "true",
                                   "datatype": str(XSD_BOOLEAN)}
    assert first["sourceNotation"] == {"type": "literal", "value": "REF-4"}
    assert "sourceTitle" not in first  # unbound is left out, not written empty


def test_table_is_aligned_and_shows_curies(graph):
    text = format_table(_result(graph))
    lines = text.splitlines()
    assert lines[0].split() == ["source", "sourceNotation", "unresolved", "sourceTitle",
                                "recommendation", "key", "modality", "text"]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].startswith("bcbm:REF-4  REF-4")
    column = lines[0].index("recommendation")
    assert [line[column:].split()[0] for line in lines[2:5]] == [
        "bcbm:HER2-2", "bcbm:AVOID-4", "bcbm:AVOID-5"]
    assert lines[-1] == "(3 rows)"


def test_numbers_are_printed_in_canonical_form():
    assert canonical_literal(Literal("120.0", datatype=XSD_DECIMAL)) == Literal(
        "120", datatype=XSD_DECIMAL)
    assert canonical_literal(Literal("0.470", datatype=XSD_DECIMAL)) == Literal(
        "0.47", datatype=XSD_DECIMAL)
    assert str(canonical_literal(Literal("007", datatype=XSD_INTEGER))) == "7"
    assert canonical_literal(Literal("mg")) == Literal("mg")


# ---------------------------------------------------------------------------------------
# The command line


def test_cli_runs_a_bundled_query_as_csv(capsys):
    code, out, err = run_cli(["query", "guideline/recommendations-by-section",
                              "--param", "modality=gkg:ShouldNot", "--format", "csv"], capsys)
    assert (code, err) == (0, "")
    table = list(csv.DictReader(io.StringIO(out, newline="")))
    assert [row["key"] for row in table] == [f"AVOID-{n}" for n in range(1, 7)]
    assert table[0]["modality"] == GKG + "ShouldNot"


def test_cli_runs_a_bundled_query_by_its_stem_on_rdflib_as_json(capsys):
    code, out, _ = run_cli(["query", "recommendations-by-source", "--param",
                            "source=https://w3id.org/guidelinekg/guideline/bcbm/REF-4",
                            "--format", "json", "--engine", "rdflib"], capsys)
    assert code == 0
    bindings = json.loads(out)["results"]["bindings"]
    assert [b["key"]["value"] for b in bindings] == ["HER2-2", "AVOID-4", "AVOID-5"]


def test_cli_lists_the_bundled_queries_with_their_parameters(capsys):
    code, out, _ = run_cli(["query", "--list"], capsys)
    assert code == 0
    for query in GUIDELINE_QUERIES:
        assert query.name in out
        for parameter in query.parameters:
            assert f"--param {parameter.name}=<IRI>" in out
    code, out, _ = run_cli(["query", "--list", "guideline"], capsys)
    assert code == 0
    listed = [line for line in out.splitlines() if line and not line.startswith(" ")]
    assert listed == [query.name for query in GUIDELINE_QUERIES]


USER_QUERY = """\
# The statements of one modality, newest first.
# param: modality (IRI) required: the modality, e.g. gkg:May
# param: since (integer) optional: only statements from this position on
PREFIX gkg: <https://w3id.org/guidelinekg/ontology#>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
SELECT ?modality ?since ?key WHERE {
  ?statement gkg:modality ?modality ; skos:notation ?key ; gkg:sectionOrder ?order .
  FILTER(COALESCE(?order >= ?since, true))
}
ORDER BY DESC(?order)
"""


def test_cli_runs_a_user_query_file_with_parameters(tmp_path, capsys):
    path = tmp_path / "mine.rq"
    path.write_text(USER_QUERY, encoding="utf-8")
    code, out, err = run_cli(["query", "--file", str(path), "--param", "modality=gkg:May",
                              "--param", "since=24", "--format", "csv"], capsys)
    assert (code, err) == (0, "")
    assert [row["key"] for row in csv.DictReader(io.StringIO(out, newline=""))] == [
        "OLIGO-4", "OLIGO-3", "OLIGO-1"]
    code, out, _ = run_cli(["query", "--file", str(path), "--param", "modality=gkg:May"],
                           capsys)
    assert code == 0 and out.splitlines()[-1] == "(6 rows)"  # BMA-3, BMA-6, ORTH-3, OLIGO-1, 3, 4


def test_cli_prints_turtle_for_a_construct_query(tmp_path, capsys):
    path = tmp_path / "construct.rq"
    path.write_text(
        "# The modality of each statement of one section.\n"
        "# param: section (IRI) the section\n"
        "PREFIX gkg: <https://w3id.org/guidelinekg/ontology#>\n"
        "CONSTRUCT { ?r gkg:modality ?m } WHERE { ?r gkg:modality ?m ; gkg:inSection ?section }\n",
        encoding="utf-8")
    code, out, _ = run_cli(["query", "--file", str(path), "--param",
                            "section=bcbm:section-her2-positive-disease"], capsys)
    assert code == 0
    expected = Graph()
    for key in ("HER2-1", "HER2-2", "HER2-3"):
        expected.add((URIRef(BCBM + key), URIRef(GKG + "modality"), URIRef(GKG + "Should")))
    assert isomorphic(Graph().parse(data=out, format="turtle"), expected)
    assert "bcbm:HER2-1" in out  # project prefixes


def test_cli_answers_an_ask_query(tmp_path, capsys):
    path = tmp_path / "ask.rq"
    path.write_text("# param: r (IRI) a statement\n"
                    "PREFIX gkg: <https://w3id.org/guidelinekg/ontology#>\n"
                    "ASK { ?r gkg:modality gkg:ShouldNot }\n", encoding="utf-8")
    assert run_cli(["query", "--file", str(path), "--param", "r=bcbm:AVOID-2"],
                   capsys)[1] == "true\n"
    code, out, _ = run_cli(["query", "--file", str(path), "--param", "r=bcbm:BMA-1",
                            "--format", "json"], capsys)
    assert (code, json.loads(out)) == (0, {"head": {}, "boolean": False})


# ---------------------------------------------------------------------------------------
# The project prefixes in a user's query, an unknown prefix, an update

KNOWN_PREFIXES = ("bcbm:, code:, dcterms:, fact:, gkg:, gsh:, owl:, prov:, psh:, rdf:, rdfs:, "
                  "sh:, skos:, unit:, xsd:")


def test_cli_runs_a_user_query_without_prefix_declarations(tmp_path, capsys):
    path = tmp_path / "bare.rq"
    path.write_text("# The pitfalls, as the tables print them.\n"
                    "SELECT ?statement ?key WHERE {\n"
                    "  ?statement gkg:modality gkg:ShouldNot ; skos:notation ?key .\n"
                    "  FILTER(STRSTARTS(STR(?statement), STR(bcbm:)))\n"
                    "}\nORDER BY ?key\n", encoding="utf-8")
    code, out, err = run_cli(["query", "--file", str(path)], capsys)
    assert (code, err) == (0, "")
    assert out.splitlines()[2].split() == ["bcbm:AVOID-1", "AVOID-1"]
    assert out.splitlines()[-1] == "(6 rows)"


def test_an_explicit_prefix_wins_over_the_project_one(tmp_path, capsys):
    path = tmp_path / "own.rq"
    # gkg: declared as another namespace: nothing there; skos: still comes from the project.
    path.write_text("PREFIX gkg: <https://example.org/not-gkg#>\n"
                    "SELECT ?key WHERE { ?s a gkg:Recommendation ; skos:notation ?key }\n",
                    encoding="utf-8")
    assert run_cli(["query", "--file", str(path)], capsys)[1].splitlines()[-1] == "(0 rows)"
    path.write_text("PREFIX g: <https://w3id.org/guidelinekg/ontology#>\n"
                    "SELECT ?key WHERE { ?s a g:Recommendation ; skos:notation ?key }\n",
                    encoding="utf-8")
    assert run_cli(["query", "--file", str(path)], capsys)[1].splitlines()[-1] == "(37 rows)"


def test_only_the_prefixes_used_and_undeclared_are_declared():
    text = ('PREFIX skos: <http://www.w3.org/2004/02/skos/core#>\n'
            'SELECT ?key WHERE { ?s a gkg:Recommendation ; skos:notation ?key ; '
            '<https://example.org/fact:x> "bcbm:KEY" } # rdfs:label in a comment\n')
    assert prepare_query(text) == "PREFIX gkg: <https://w3id.org/guidelinekg/ontology#>\n" + text
    assert prepare_query(text.replace("gkg:", "skos:")) == text.replace("gkg:", "skos:")


def test_cli_names_an_undeclared_prefix(tmp_path, capsys):
    path = tmp_path / "foo.rq"
    path.write_text("SELECT * WHERE { ?s foo:bar ?o }\n", encoding="utf-8")
    code, out, err = run_cli(["query", "--file", str(path)], capsys)
    assert (code, out) == (2, "")
    assert err == (f"guidelinekg query: error: {path}: the prefix foo: is not declared; "
                   f"known prefixes: {KNOWN_PREFIXES}\n")


@pytest.mark.parametrize("update", [
    'INSERT DATA { <urn:x:a> <urn:x:b> "c" }',
    "DELETE WHERE { ?s gkg:modality ?m }",
    "LOAD <http://example.org/data.ttl>",
    "CLEAR ALL",
    "DROP GRAPH <urn:x:g>",
    "PREFIX ex: <urn:x:>\nINSERT { ?s ex:p 1 } WHERE { ?s ?p ?o }",
    "INSERT DATA { <urn:x:a> <urn:x:b> }",  # not even a valid update: still named one
])
def test_cli_refuses_an_update(tmp_path, capsys, update):
    path = tmp_path / "update.rq"
    path.write_text(update + "\n", encoding="utf-8")
    code, out, err = run_cli(["query", "--file", str(path)], capsys)
    assert (code, out) == (2, "")
    assert err == (f"guidelinekg query: error: {path}: updates are refused: the endpoint is "
                   "read-only\n")


ERROR_CASES = {
    "unknown-name": (["query", "recommendations-by-sectoin"],
                     "no bundled query named 'recommendations-by-sectoin'; did you mean "
                     "guideline/recommendations-by-section"),
    "unknown-parameter": (["query", "intervention", "--param", "drug=gkg:Denosumab"],
                          "has no parameter drug (its parameters: intervention)"),
    "not-an-iri": (["query", "intervention", "--param", "intervention=not an iri"],
                   "parameter intervention: 'not an iri' is not an IRI"),
    "iri-not-in-graph": (["query", "intervention", "--param", "intervention=gkg:Trastuzumb"],
                         "does not occur in the guideline graph"),
    "not-name-value": (["query", "intervention", "--param", "gkg:Denosumab"],
                       "expected name=value"),
    "name-and-file": (["query", "intervention", "--file", "x.rq"], "not both"),
    "nothing-to-run": (["query"], "give either a bundled query NAME or --file"),
    "missing-file": (["query", "--file", "{tmp}/absent.rq"], "absent.rq: no such query file"),
    "syntax-error": (["query", "--file", "{tmp}/broken.rq"], "SPARQL syntax error"),
    "bad-integer": (["query", "--file", "{tmp}/mine.rq", "--param", "modality=gkg:May",
                     "--param", "since=soon"], "'soon' is not a valid integer"),
    "required-missing": (["query", "--file", "{tmp}/mine.rq"],
                         "needs --param modality (required: the modality"),
    "remote-service": (["query", "--file", "{tmp}/remote.rq"], "SERVICE is not allowed"),
    "construct-as-csv": (["query", "--file", "{tmp}/construct.rq", "--format", "csv"],
                         "a CONSTRUCT query prints Turtle"),
}


@pytest.fixture
def query_files(tmp_path) -> Path:
    (tmp_path / "broken.rq").write_text("SELECT ?s WHERE { ?s ?p }\n", encoding="utf-8")
    (tmp_path / "mine.rq").write_text(USER_QUERY, encoding="utf-8")
    (tmp_path / "remote.rq").write_text(
        "SELECT * WHERE { SERVICE <http://example.org/sparql> { ?s ?p ?o } }\n",
        encoding="utf-8")
    (tmp_path / "construct.rq").write_text("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }\n",
                                           encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(("argv", "message"), list(ERROR_CASES.values()), ids=list(ERROR_CASES))
def test_cli_errors_exit_2_with_a_message_and_no_traceback(query_files, capsys, argv, message):
    argv = [arg.replace("{tmp}", str(query_files)) for arg in argv]
    code, out, err = run_cli(argv, capsys)
    assert code == 2
    assert out == ""
    assert err.startswith("guidelinekg query: error: ")
    assert message in err
    assert "Traceback" not in err


def test_cli_errors_as_a_process_print_no_traceback(query_files):
    for argv, message in (
        (["query", "nosuch"], "no bundled query named 'nosuch'"),
        (["query", "--file", str(query_files / "mine.rq"), "--param", "modality=gkg:May",
          "--param", "since=soon"], "'soon' is not a valid integer"),
    ):
        done = subprocess.run([sys.executable, "-m", "guidelinekg.cli", *argv],
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 2, done.stderr
        assert message in done.stderr
        assert "Traceback" not in done.stderr


def test_remote_access_is_refused_only_for_real_keywords():
    refuse_remote_access("PREFIX ex: <http://x.org/> "
                         'SELECT ?service ?from WHERE { ?s <http://x.org/FROM> "SERVICE" ; '
                         "ex:from ?o } # FROM a comment")
    for text in ("SELECT * FROM <http://x.org/g> WHERE { ?s ?p ?o }",
                 "select * from named <g> where { }",
                 "SELECT * WHERE { SERVICE SILENT <http://x.org/sparql> { ?s ?p ?o } }"):
        with pytest.raises(QueryError, match="not allowed"):
            refuse_remote_access(text)


# ---------------------------------------------------------------------------------------
# No query text is built by string formatting anywhere in the package

_SPARQL_KEYWORD = re.compile(
    r"\b(SELECT|CONSTRUCT|DESCRIBE|ASK|WHERE|FILTER|OPTIONAL|VALUES|BIND|PREFIX|INSERT|DELETE"
    r"|UNION|MINUS)\b")
_QUERY_SHAPE = re.compile(r"\?[A-Za-z_]\w*|[{}]|\bWHERE\b|\bPREFIX\b")


def _looks_like_sparql(text: str) -> bool:
    return bool(_SPARQL_KEYWORD.search(text) and _QUERY_SHAPE.search(text))


def _is_str(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def query_text_formatting(source: str) -> list[tuple[int, str]]:
    """Places where query-like text is built by f-string, .format, % or + with a variable."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.JoinedStr):
            text = "".join(part.value for part in node.values if _is_str(part))
            if _looks_like_sparql(text):
                found.append((node.lineno, "f-string"))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "format" and _is_str(node.func.value)
              and _looks_like_sparql(node.func.value.value)):
            found.append((node.lineno, "str.format"))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and _is_str(node.left):
            if _looks_like_sparql(node.left.value):
                found.append((node.lineno, "% formatting"))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            sides = (node.left, node.right)
            if (any(_is_str(side) and _looks_like_sparql(side.value) for side in sides)
                    and not all(_is_str(side) for side in sides)):
                found.append((node.lineno, "+ concatenation"))
        elif _is_str(node) and _looks_like_sparql(node.value) and re.search(
                r"%s|%\(\w+\)s|\{\w*\}", node.value):
            found.append((node.lineno, "placeholder in query text"))
    return found


def test_the_formatting_detector_finds_query_building():
    bad = '''
iri = "x"
a = f"SELECT ?s WHERE {{ ?s a <{iri}> }}"
b = "SELECT ?s WHERE { ?s a <%s> }" % iri
c = "SELECT ?s WHERE {{ ?s a <{}> }}".format(iri)
d = "SELECT ?s WHERE { ?s a <" + iri + "> }"
e = "ASK { ?s a <%s> }"
'''
    found = query_text_formatting(bad)
    assert {line for line, _ in found} == {3, 4, 5, 6, 7}  # every assignment a to e
    assert {kind for _, kind in found} == {
        "f-string", "% formatting", "str.format", "+ concatenation", "placeholder in query text"}
    fine = '''
kind = "CONSTRUCT"
a = f"expected a SELECT query, got {kind}"
b = "SELECT ?s WHERE { ?s ?p ?o }"
'''
    assert query_text_formatting(fine) == []


def test_no_module_builds_query_text_by_string_formatting():
    modules = sorted(SRC_DIR.glob("*.py"))
    assert modules
    offences = [f"{path.name}:{line}: {kind}"
                for path in modules
                for line, kind in query_text_formatting(path.read_text(encoding="utf-8"))]
    assert offences == [], "query text must come from queries/*.rq with bound parameters"


# Red-team finding 10: `query` had no time limit; this query never ends.
HEAVY_QUERY = Path(__file__).parent / "fixtures" / "reading-defects" / "heavy-property-path.rq"


def test_a_query_over_the_time_limit_is_stopped_with_exit_2(capsys) -> None:
    import time

    started = time.monotonic()
    code = cli.main(["query", "--file", str(HEAVY_QUERY), "--query-timeout", "1"])
    elapsed = time.monotonic() - started
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err == (f"guidelinekg query: error: {HEAVY_QUERY}: the query was stopped: "
                            "it ran longer than the time limit of 1 s (--query-timeout; give "
                            "a larger one to let it run longer)\n")
    assert elapsed < 15, elapsed  # the worker is killed at the limit, not waited for


def test_a_query_within_the_time_limit_answers_as_without_one(capsys) -> None:
    assert cli.main(["query", "dose-regimens", "--format", "csv", "--engine", "rdflib"]) == 0
    limited = capsys.readouterr().out
    assert limited.count("\r\n") == 12  # the header and the 11 regimens
    query = resolve_query("dose-regimens")
    assert format_csv(run_query(query, engine_name="rdflib")) == limited


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "86401"])
def test_a_query_timeout_out_of_range_is_refused(capsys, value: str) -> None:
    assert cli.main(["query", "dose-regimens", "--query-timeout", value]) == 2
    assert capsys.readouterr().err == (
        "guidelinekg query: error: --query-timeout must be a number of seconds above 0 and at "
        "most 86400 (a day)\n")


def test_the_query_timeout_is_in_the_help(capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main(["query", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--query-timeout SECONDS stop a query still running after SECONDS (default 60;" \
        in help_text
    assert "an error, exit code 2" in help_text


@pytest.mark.parametrize(("kind", "value"), [
    ("decimal", "NaN"), ("decimal", "INF"), ("decimal", "1e5"), ("integer", "1e5"),
    ("date", "2026-01-01T00:00:00"), ("date", "2026-02-30"), ("boolean", "1"),
])
def test_an_ill_typed_parameter_value_is_refused(kind: str, value: str) -> None:
    """A parameter's value is a lexical form of its kind, as a record's must be: rdflib alone
    would bind "NaN"^^xsd:decimal and read a dateTime as a date."""
    from guidelinekg.query_text import QueryError
    from guidelinekg.sparql import QueryParameter, parameter_term

    with pytest.raises(QueryError, match=f"is not a valid {kind}"):
        parameter_term(QueryParameter("x", kind, ""), value)


@pytest.mark.parametrize(("kind", "value"), [
    ("decimal", "4.0"), ("decimal", "-0.5"), ("integer", "12"), ("date", "2026-01-01"),
    ("boolean", "true")])
def test_a_well_typed_parameter_value_is_bound(kind: str, value: str) -> None:
    from guidelinekg.sparql import QueryParameter, parameter_term

    assert str(parameter_term(QueryParameter("x", kind, ""), value)) == value
