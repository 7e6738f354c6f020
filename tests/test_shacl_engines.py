"""The fast SHACL engine (guidelinekg.shacl_fast) against pySHACL, the reference.

Every record the tests validate (vignettes, shape fixtures, FHIR inputs, the example patients,
the second guideline's patients) and synthetic cohorts go through ``validate_patients`` once
per engine: the results (focus, path, value, shape, severity, constraint component and
message) and the W3C report graphs must be the same. Then: asking for pySHACL runs pySHACL;
shapes the fast engine does not support are refused by name when it is asked for, and run
by pySHACL (saying so) when it is only the default; data only pySHACL can judge goes to
pySHACL; and the engine's shortcuts (the parts of the data, pyoxigraph for targets) give
pySHACL's answers where they would be easy to get wrong.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import RDF, SH

import guidelinekg.shacl as shacl
from guidelinekg.loading import InputError
from guidelinekg.patients import load_patient_input
from guidelinekg.shacl import ShaclEngineError, validate_graph
from guidelinekg.synth import SynthOptions, synthesize
from guidelinekg.validation import PatientValidation, validate_patients

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "tests" / "fixtures" / "library"
RECORD_FOLDERS = ["tests/vignettes", "tests/data/patients", "tests/data/fhir",
                  "examples/patients", "tests/fixtures/library/patients"]
SUFFIXES = {".ttl", ".json", ".jsonld", ".nt", ".rdf", ".xml"}


def _records() -> list[Path]:
    """Every record file, and every folder of them (read together, as the CLI reads a
    folder: FHIR files that name one patient are joined)."""
    found = []
    for folder in RECORD_FOLDERS:
        base = ROOT / folder
        found += [p for p in sorted(base.rglob("*")) if p.is_file() and p.suffix in SUFFIXES
                  and "expected" not in p.parts]
        found += [p for p in [base, *sorted(base.rglob("*"))] if p.is_dir()
                  and p.name != "expected" and any(c.suffix in SUFFIXES for c in p.iterdir())]
    return found


RECORDS = _records()


def _results(validation: PatientValidation) -> Counter:
    return Counter((r.focus, r.path, r.value, r.source_shape, r.severity, r.constraint,
                    r.message) for r in validation.report.results)


def _both(graph: Graph, monkeypatch: pytest.MonkeyPatch
          ) -> tuple[PatientValidation, PatientValidation]:
    monkeypatch.setenv(shacl.ENGINE_VARIABLE, "pyshacl")
    reference = validate_patients(graph)
    monkeypatch.setenv(shacl.ENGINE_VARIABLE, "fast")
    fast = validate_patients(graph)
    return reference, fast


def _describe(graph: Graph, node: object, depth: int = 0) -> str:
    """A node with everything under it (blank nodes inlined): two reports whose results
    read the same hold the same triples, however their blank nodes are named."""
    if not isinstance(node, BNode):
        return node.n3()  # type: ignore[attr-defined]
    if depth > 12:
        return "[...]"
    return "[" + "; ".join(sorted(f"{p.n3()} {_describe(graph, o, depth + 1)}"
                                  for p, o in graph.predicate_objects(node))) + "]"


def _report(graph: Graph) -> tuple[Counter, set, int]:
    """The W3C report graph: each result in full, and the report's verdict. (rdflib's
    isomorphism test takes minutes on a report of many alike blank nodes.)"""
    results = Counter(_describe(graph, r) for r in graph.subjects(RDF.type,
                                                                 SH.ValidationResult))
    verdicts = set(graph.objects(None, SH.conforms))
    return results, verdicts, len(graph)


def _explain(reference: Counter, fast: Counter) -> str:
    lines = [f"pySHACL only: {key}" for key in (reference - fast)][:5]
    lines += [f"fast only: {key}" for key in (fast - reference)][:5]
    return "\n".join(lines)


def test_every_test_record_is_found() -> None:
    names = {p.name for p in RECORDS}
    assert len(RECORDS) > 120
    assert {"sparse-record.ttl", "shapes-treatments-and-doses.ttl",
            "her2-positive-trastuzumab-weight-in-pounds.json",
            "smoker-her2-negative-on-trastuzumab.ttl", "identity"} <= names


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: str(p.relative_to(ROOT)))
def test_fast_engine_gives_pyshacls_results_on_every_record(
        path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if LIBRARY in path.parents or path == LIBRARY:
        monkeypatch.setenv("GUIDELINEKG_LIBRARY", str(LIBRARY))
    try:
        graph = load_patient_input([path]).graph
    except InputError:
        # Refused before any validation (not JSON, two patients in one file, ...): only
        # the deliberately invalid FHIR inputs, and a folder that holds them, are.
        assert "invalid" in path.parts or (path / "invalid").is_dir()
        return
    reference, fast = _both(graph, monkeypatch)
    assert reference.report.engine == "pyshacl"
    assert fast.report.engine == "fast", fast.report.fallback
    expected, found = _results(reference), _results(fast)
    assert found == expected, f"{path}: the engines differ\n{_explain(expected, found)}"
    assert fast.report.conforms == reference.report.conforms
    assert _report(fast.report.graph) == _report(reference.report.graph), \
        f"{path}: the W3C report graphs differ"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fast_engine_gives_pyshacls_results_on_synthetic_cohorts(
        seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    graph = Graph()
    for triples in synthesize(SynthOptions(patients=250, seed=seed)):
        for triple in triples:
            graph.add(triple)
    reference, fast = _both(graph, monkeypatch)
    assert fast.report.engine == "fast", fast.report.fallback
    expected, found = _results(reference), _results(fast)
    assert len(expected) > 250  # warnings and notes for many patients, some violations
    assert {r.severity for r in reference.report.results} == {"Violation", "Warning", "Info"}
    assert found == expected, f"synth seed {seed}: the engines differ\n" \
                              f"{_explain(expected, found)}"
    assert fast.patients_with("Violation") == reference.patients_with("Violation")


# ---------------------------------------------------------------------------------------
# Choosing the engine
# ---------------------------------------------------------------------------------------

PREFIXES = """
@prefix ex: <http://example.org/> .
@prefix sh: <http://www.w3.org/ns/shacl#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
"""
DATA = PREFIXES + """
ex:p1 a ex:Patient ; ex:code ex:a ; ex:age 30 ; ex:flag "1"^^xsd:boolean .
ex:p2 a ex:Patient ; ex:code ex:a ; ex:age 200 ; ex:flag true .
ex:p3 a ex:Patient ; ex:code ex:b ; ex:age "40.0"^^xsd:decimal .
"""
# Codes and the class are the ontology's: shared by records, they do not join them.
ONTOLOGY = PREFIXES + "ex:a a ex:Code . ex:b a ex:Code . ex:Patient a ex:Class ."
CORE_SHAPES = PREFIXES + """
ex:AgeShape a sh:PropertyShape ; sh:targetClass ex:Patient ; sh:path ex:age ;
    sh:maxInclusive 150 ; sh:message "age at most 150"@en .
"""


def _graph(text: str) -> Graph:
    return Graph().parse(data=text, format="turtle")


def _keys(report: shacl.ShaclReport) -> Counter:
    return Counter((r.focus, r.path, r.value, r.source_shape, r.severity, r.constraint,
                    r.message) for r in report.results)


def test_asking_for_pyshacl_runs_pyshacl(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = shacl.pyshacl.validate
    monkeypatch.setattr(shacl.pyshacl, "validate",
                        lambda *args, **kwargs: calls.append(1) or real(*args, **kwargs))
    data, shapes = _graph(DATA), _graph(CORE_SHAPES)
    default = validate_graph(data, shapes)
    assert (default.engine, calls) == ("fast", [])
    named = validate_graph(data, shapes, engine="pyshacl")
    assert (named.engine, calls) == ("pyshacl", [1])
    monkeypatch.setenv(shacl.ENGINE_VARIABLE, "pyshacl")
    by_variable = validate_graph(data, shapes)
    assert (by_variable.engine, calls) == ("pyshacl", [1, 1])
    assert _keys(default) == _keys(named) == _keys(by_variable)
    assert [r.value for r in default.results] == [Literal(200)]
    with pytest.raises(ShaclEngineError, match="unknown SHACL engine"):
        validate_graph(data, shapes, engine="jena")


@pytest.mark.parametrize("feature, shapes", [
    ("sh:or", PREFIXES + """ex:S a sh:NodeShape ; sh:targetClass ex:Patient ;
        sh:or ( [ sh:path ex:flag ; sh:minCount 1 ] [ sh:path ex:code ; sh:minCount 2 ] ) ."""),
    ("sh:validator", PREFIXES + """
        ex:MaxAgeComponent a sh:ConstraintComponent ;
            sh:parameter [ sh:path ex:maxAge ] ;
            sh:validator [ a sh:SPARQLAskValidator ; sh:ask "ASK { FILTER ($value <= $maxAge) }" ] .
        ex:S a sh:PropertyShape ; sh:targetClass ex:Patient ; sh:path ex:age ; ex:maxAge 150 ;
            sh:message "too old" ."""),
    ("sh:pattern", PREFIXES + """ex:S a sh:PropertyShape ; sh:targetClass ex:Patient ;
        sh:path ex:code ; sh:pattern "^x" ; sh:message "code" ."""),
])
def test_unsupported_shapes_are_refused_by_name_or_run_by_pyshacl(
        feature: str, shapes: str) -> None:
    data, graph = _graph(DATA), _graph(shapes)
    with pytest.raises(ShaclEngineError, match=feature):
        validate_graph(data, graph, engine="fast")
    report = validate_graph(data, graph)
    assert report.engine == "pyshacl"
    assert report.fallback is not None and feature in report.fallback
    assert _keys(report) == _keys(validate_graph(data, graph, engine="pyshacl"))
    assert report.results  # the constraint was evaluated, not skipped


def test_data_only_pyshacl_can_judge_goes_to_pyshacl() -> None:
    """pySHACL refuses to compare a blank node with sh:lessThan: so does the default."""
    shapes = _graph(PREFIXES + """ex:S a sh:PropertyShape ; sh:targetClass ex:Patient ;
        sh:path ex:start ; sh:lessThan ex:end ; sh:message "start before end" .""")
    data = _graph(PREFIXES + "ex:p1 a ex:Patient ; ex:start [ ex:x 1 ] ; ex:end 3 .")
    for engine in ("pyshacl", None):
        with pytest.raises(Exception, match="BlankNode"):
            validate_graph(data, shapes, engine=engine)


# ---------------------------------------------------------------------------------------
# The engine's shortcuts, where they would be easy to get wrong
# ---------------------------------------------------------------------------------------

SPARQL_SHAPES = PREFIXES + """
<http://example.org/shapes> sh:declare [ sh:prefix "ex" ;
    sh:namespace "http://example.org/"^^xsd:anyURI ] .
ex:SharedCode a sh:NodeShape ; sh:targetClass ex:Patient ; sh:message "{?y} has code {?c}" ;
    sh:sparql [ sh:prefixes <http://example.org/shapes> ; sh:select '''
        SELECT $this ?y ?c WHERE { $this ex:code ?c . ?y ex:code ?c . FILTER (?y != $this) }''' ] .
ex:Others a sh:NodeShape ; sh:targetClass ex:Patient ; sh:severity sh:Info ;
    sh:message "{?n} others" ;
    sh:sparql [ sh:prefixes <http://example.org/shapes> ; sh:select '''
        SELECT $this (COUNT(?o) AS ?n) WHERE { ?o a ex:Patient . FILTER (?o != $this) }
        GROUP BY $this''' ] .
ex:Flagged a sh:NodeShape ; sh:severity sh:Warning ; sh:message "flagged {$this}" ;
    sh:target [ a sh:SPARQLTarget ; sh:prefixes <http://example.org/shapes> ;
                sh:select "SELECT ?this WHERE { ?this ex:flag true }" ] ;
    sh:sparql [ sh:prefixes <http://example.org/shapes> ;
                sh:select "SELECT $this WHERE { $this ex:flag ?f }" ] .
"""


def test_queries_that_reach_other_records_see_them() -> None:
    """Two patients share a code (a hub): a query walking through it, or counting every
    patient, must see the other records, as pySHACL does; "1" and true are two booleans."""
    data, shapes, ontology = _graph(DATA), _graph(SPARQL_SHAPES), _graph(ONTOLOGY)
    reference = validate_graph(data, shapes, ontology, engine="pyshacl")
    fast = validate_graph(data, shapes, ontology, engine="fast")
    assert _keys(fast) == _keys(reference)
    messages = {r.message for r in fast.results}
    assert {"http://example.org/p1 has code http://example.org/a",
            "http://example.org/p2 has code http://example.org/a"} <= messages
    assert "2 others" in messages
    assert [r.focus for r in fast.results if r.severity == "Warning"] == [
        URIRef("http://example.org/p2")]  # "1"^^xsd:boolean is not the term true
    assert _report(fast.graph) == _report(reference.graph)


def test_results_added_before_the_report_graph_is_read_are_in_it() -> None:
    data, shapes = _graph(DATA), _graph(CORE_SHAPES)
    fast = validate_graph(data, shapes, engine="fast")
    reference = validate_graph(data, shapes, engine="pyshacl")
    extra = shacl.ShaclResult(URIRef("http://example.org/p3"), None, None,
                              URIRef("http://example.org/Other"), "Violation",
                              "added", None)
    for report in (fast, reference):
        shacl.add_results(report, [extra])
        assert not report.conforms
    assert _keys(fast) == _keys(reference)
    assert _report(fast.graph) == _report(reference.graph)
