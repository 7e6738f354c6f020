"""The guideline shapes (shapes/guideline.ttl) on the real guideline and on fixtures.

Each fixture under tests/data/guideline-shapes/ is pySHACL-style: the data and the expected
report in one file. The data is added to the core ontology (the vocabulary, units and
patient facts the shapes refer to); the expected report lists every result the data must
add, by focus node, source shape and severity (and message where it matters).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rdflib import BNode, Graph, URIRef
from rdflib.namespace import RDF, SH

from guidelinekg.loading import guideline_graph, merge_graphs, parse_rdf_file, vocabulary_files
from guidelinekg.resources import shapes_dir
from guidelinekg.shacl import ShaclReport, validate_graph

FIXTURES = Path(__file__).parent / "data" / "guideline-shapes"
GSH = "https://w3id.org/guidelinekg/shapes/guideline#"
BCBM = "https://w3id.org/guidelinekg/guideline/bcbm/"

Expected = tuple[URIRef, URIRef, str]


@pytest.fixture(scope="module")
def shapes() -> Graph:
    return parse_rdf_file(shapes_dir() / "guideline.ttl")


@pytest.fixture(scope="module")
def core() -> Graph:
    return merge_graphs(parse_rdf_file(p) for p in vocabulary_files())


@pytest.fixture(scope="module")
def core_results(core: Graph, shapes: Graph) -> set[Expected]:
    return _result_keys(validate_graph(core, shapes))


def _result_keys(report: ShaclReport) -> set[Expected]:
    return {(r.focus, r.source_shape, r.severity) for r in report.results}


def _split_expected(graph: Graph) -> tuple[Graph, bool, set[Expected], dict[Expected, str]]:
    """The data, and the expected report (conforms, results, messages) the file states."""
    report = graph.value(predicate=RDF.type, object=SH.ValidationReport)
    assert report is not None, "fixture has no expected sh:ValidationReport"
    conforms = graph.value(report, SH.conforms).toPython()
    results = list(graph.objects(report, SH.result))
    expected: set[Expected] = set()
    messages: dict[Expected, str] = {}
    for result in results:
        key = (graph.value(result, SH.focusNode), graph.value(result, SH.sourceShape),
               str(graph.value(result, SH.resultSeverity)).rsplit("#", 1)[-1])
        expected.add(key)
        message = graph.value(result, SH.resultMessage)
        if message is not None:
            messages[key] = str(message)
    data = Graph()
    for triple in graph:
        if triple[0] == report or triple[0] in results:
            continue
        data.add(triple)
    return data, conforms, expected, messages


def test_real_guideline_conforms_with_two_warnings(shapes: Graph) -> None:
    report = validate_graph(guideline_graph(), shapes)
    assert report.conforms
    assert not report.has_violations
    warnings = {(str(r.focus), str(r.source_shape)): r.message for r in report.results}
    assert set(warnings) == {
        (BCBM + "REF-3", GSH + "CurationNoteWarningShape"),
        (BCBM + "REF-4", GSH + "UnresolvedCitationWarningShape"),
    }
    assert all(r.severity == "Warning" for r in report.results)
    assert warnings[(BCBM + "REF-4", GSH + "UnresolvedCitationWarningShape")].startswith(
        "REF-4 is cited by HER2-2, AVOID-4, AVOID-5 but unresolved")
    assert "bleeding breast wounds" in warnings[(BCBM + "REF-3", GSH + "CurationNoteWarningShape")]


@pytest.mark.parametrize("fixture", sorted(FIXTURES.glob("*.ttl")), ids=lambda p: p.stem)
def test_fixture_gives_exactly_the_expected_report(fixture: Path, core: Graph, shapes: Graph,
                                                   core_results: set[Expected]) -> None:
    data, conforms, expected, messages = _split_expected(parse_rdf_file(fixture))
    report = validate_graph(merge_graphs([core, data]), shapes)
    added = _result_keys(report) - core_results
    assert added == expected
    assert report.conforms is conforms
    by_key = {(r.focus, r.source_shape, r.severity): r.message for r in report.results}
    for key, message in messages.items():
        assert by_key[key] == message


def test_fixture_names_say_what_they_expect() -> None:
    for fixture in FIXTURES.glob("*.ttl"):
        _, conforms, expected, _ = _split_expected(parse_rdf_file(fixture))
        severities = {severity for _, _, severity in expected}
        if fixture.stem.startswith("valid-"):
            assert conforms and not expected, fixture.name
        elif fixture.stem.startswith("warning-"):
            assert conforms and severities == {"Warning"}, fixture.name
        else:
            assert fixture.stem.startswith("invalid-") and not conforms, fixture.name
            assert "Violation" in severities, fixture.name


def _constraint_shapes(shapes: Graph) -> set[URIRef]:
    """Named shapes that report results themselves (they carry a message)."""
    return {s for s in shapes.subjects(SH.message) if isinstance(s, URIRef)}


def test_every_shape_has_a_name_and_every_reporting_shape_a_message(shapes: Graph) -> None:
    shape_nodes = {s for s in shapes.subjects(RDF.type, SH.NodeShape)} | {
        s for s in shapes.subjects(RDF.type, SH.PropertyShape)}
    assert shape_nodes
    for shape in shape_nodes:
        assert shapes.value(shape, SH.name) is not None, shape
    for shape in shape_nodes:
        has_target = any(shapes.objects(shape, p) for p in (
            SH.targetClass, SH.target, SH.targetSubjectsOf, SH.targetNode))
        constraints = set(shapes.predicates(shape)) - {
            RDF.type, SH.name, SH.property, SH.targetClass, SH.target, SH.targetSubjectsOf,
            SH.message, SH.severity}
        is_property_shape = (shape, RDF.type, SH.PropertyShape) in shapes
        if (has_target and constraints) or is_property_shape:
            assert shapes.value(shape, SH.message) is not None, shape
    # Node shapes that are only used through sh:node report through their users.
    assert not [s for s in shapes.subjects(SH.message) if isinstance(s, BNode)]


def test_every_reporting_shape_is_exercised_by_a_fixture(shapes: Graph) -> None:
    exercised = set()
    for fixture in FIXTURES.glob("*.ttl"):
        _, _, expected, _ = _split_expected(parse_rdf_file(fixture))
        exercised |= {shape for _, shape, _ in expected}
    assert _constraint_shapes(shapes) - exercised == set()


def test_warnings_do_not_make_the_graph_fail(core: Graph, shapes: Graph) -> None:
    data, _, _, _ = _split_expected(parse_rdf_file(FIXTURES /
                                                   "warning-unresolved-and-noted-sources.ttl"))
    report = validate_graph(merge_graphs([core, data]), shapes)
    assert report.conforms
    assert {r.severity for r in report.results} == {"Warning"}
