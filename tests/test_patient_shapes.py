"""The patient shapes: each shape fails where it should (focus, path, source shape,
severity) and is silent elsewhere; the shapes agree with the ontology; the core's shapes
name only core terms and each shape lives in one file; each guideline's generated
completeness shapes are in step with its criteria and the facts' record evidence; a
1,000-patient cohort is validated as one graph with every result attributed to the right
patient.

Fixtures (tests/data/patients/) hold the data and, below it, the expected report
(sh:ValidationReport with one sh:result per expected result), pySHACL-style. A report with
test:checks compares only the results of the shapes it names; otherwise the results of
the psh: shapes (shapes-*.ttl: the core's and the domains' patient.ttl) or of the
warnings (completeness-*.ttl) are compared exactly.
"""

from __future__ import annotations

import datetime
import importlib.util
import re
import sys
import time
from pathlib import Path

import pytest
from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.collection import Collection
from rdflib.namespace import DCTERMS, OWL, RDF, SH, SKOS

from guidelinekg.derivation import InvalidRecordError, derive
from guidelinekg.loading import PREFIXES, parse_rdf_file
from guidelinekg.patient_records import shape_files
from guidelinekg.resources import (
    examples_dir,
    guideline_module,
    guideline_modules,
    modules,
    ontology_dir,
    resource_root,
    shapes_dir,
)
from guidelinekg.validation import (
    PatientValidation,
    annotated_report_graph,
    core_ontology,
    json_report,
    path_text,
    patient_shapes,
    patients_of,
    record_vocabulary,
    record_vocabulary_results,
    text_report,
    undeclared_shape_paths,
    validate_patients,
)
from json_contract import validation_report

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "data" / "patients"
EXAMPLES = examples_dir() / "patients"
GKG = Namespace(PREFIXES["gkg"])
CODE = Namespace(PREFIXES["code"])
PSH = Namespace("https://w3id.org/guidelinekg/shapes/patient#")
BCBM = guideline_module("bcbm")
COMPLETENESS = resource_root() / "guidelines" / "bcbm" / "shapes" / "completeness.ttl"
PCS = Namespace("https://w3id.org/guidelinekg/guideline/bcbm/shapes/completeness#")
TEST = Namespace("urn:guidelinekg:test#")
# Not rdflib's XSD namespace object: pytest's collection probes module attributes, and that
# namespace warns about every name it does not define.
XSD_DATE = URIRef(PREFIXES["xsd"] + "date")
RDFS_COMMENT = URIRef(PREFIXES["rdfs"] + "comment")
RDFS_LABEL = URIRef(PREFIXES["rdfs"] + "label")
XSD_DECIMAL = URIRef(PREFIXES["xsd"] + "decimal")

Expected = tuple[object, str, URIRef, str]  # focus, path (SPARQL syntax), shape, severity


# ---------------------------------------------------------------------------------------
# Fixtures with their expected reports
# ---------------------------------------------------------------------------------------


def _report_triples(graph: Graph, node: BNode, found: set) -> set:
    """The triples of an expected report: its results and their paths (not the data the
    results point at)."""
    for predicate, obj in graph.predicate_objects(node):
        found.add((node, predicate, obj))
        if isinstance(obj, BNode) and predicate in (SH.result, SH.resultPath, RDF.first,
                                                    RDF.rest, SH.inversePath):
            _report_triples(graph, obj, found)
    return found


def split_fixture(path: Path) -> tuple[Graph, set[Expected], set[URIRef] | None]:
    graph = parse_rdf_file(path)
    (report,) = graph.subjects(RDF.type, SH.ValidationReport)
    expected = {
        (graph.value(result, SH.focusNode), path_text(graph, graph.value(result, SH.resultPath)),
         graph.value(result, SH.sourceShape),
         str(graph.value(result, SH.resultSeverity)).rsplit("#", 1)[-1])
        for result in graph.objects(report, SH.result)
    }
    checks = set(graph.objects(report, TEST.checks)) or None
    for triple in _report_triples(graph, report, set()):
        graph.remove(triple)
    return graph, expected, checks


def reported(validation: PatientValidation) -> set[Expected]:
    graph = validation.report.graph
    return {(r.result.focus, path_text(graph, r.result.path), r.result.source_shape,
             r.result.severity) for r in validation.results}


def _in_scope(fixture: str, checks: set[URIRef] | None, item: Expected) -> bool:
    if checks is not None:
        return item[2] in checks
    if fixture.startswith("completeness-"):
        return item[3] == "Warning"
    return str(item[2]).startswith(str(PSH))


FIXTURE_FILES = sorted(path.name for path in FIXTURES.glob("*.ttl"))


@pytest.fixture(scope="session")
def fixture_runs() -> dict[str, tuple[set[Expected], set[Expected], set[URIRef] | None]]:
    runs = {}
    for name in FIXTURE_FILES:
        data, expected, checks = split_fixture(FIXTURES / name)
        actual = {item for item in reported(validate_patients(data))
                  if _in_scope(name, checks, item)}
        runs[name] = (expected, actual, checks)
    return runs


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_fixture_gives_exactly_its_expected_report(name: str, fixture_runs) -> None:
    expected, actual, _ = fixture_runs[name]
    assert expected, "a fixture states its expected results"
    assert actual - expected == set(), "unexpected results"
    assert expected - actual == set(), "expected results that did not come"


def test_every_reporting_shape_fails_in_some_fixture(fixture_runs) -> None:
    shapes = patient_shapes()
    reporting = {shape for shape in shapes.subjects(SH.message, None) if isinstance(shape, URIRef)}
    exercised = {item[2] for expected, _, _ in fixture_runs.values() for item in expected}
    assert reporting - exercised == set()


def test_severities_are_as_the_files_say() -> None:
    shapes = patient_shapes()
    warnings = {shape for module in guideline_modules()
                for shape in parse_rdf_file(module.folder / "shapes" / "completeness.ttl")
                .subjects(SH.message, None)}
    assert PCS["her2-status"] in warnings
    for shape in shapes.subjects(SH.message, None):
        severity = shapes.value(shape, SH.severity, default=SH.Violation)
        if shape in warnings or shape == PSH.UnreadTerms:
            assert severity == SH.Warning, shape
        else:
            assert severity in (SH.Violation, SH.Info), shape


def test_a_shape_on_a_superclass_reaches_a_subclass_item() -> None:
    """psh:InterventionStatusRequired targets gkg:Intervention; the item is a gkg:Denosumab."""
    data = Graph().parse(format="turtle", data="""
        @prefix gkg: <https://w3id.org/guidelinekg/ontology#> .
        <urn:p> a gkg:Patient .
        <urn:d> a gkg:Denosumab ; gkg:subject <urn:p> .""")
    results = reported(validate_patients(data))
    assert (URIRef("urn:d"), "gkg:status", PSH.InterventionStatusRequired, "Violation") in results


# ---------------------------------------------------------------------------------------
# Examples: valid ones are silent where they should be, invalid ones are refused
# ---------------------------------------------------------------------------------------

COMPLETE_EXAMPLES = ["her2-positive-trastuzumab-3-weekly.ttl", "triple-negative-brca1.ttl"]
INVALID_EXAMPLES = {
    "invalid-negative-dose.ttl": ("denosumab-dose", PSH.DoseAmount),
    "invalid-mg-for-weight.ttl": ("weight", PSH.BodyWeightUnit),
    "invalid-weight-in-lbs.ttl": ("weight", PSH.BodyWeightUnit),
    "invalid-her2-contradiction.ttl": ("her2-ihc", PSH.ContradictoryFindings),
    "invalid-end-before-start.ttl": ("letrozole", PSH.StartNotAfterEnd),
    "invalid-birth-date-in-future.ttl": ("patient", PSH.BirthDateNotInFuture),
    "invalid-planned-and-completed.ttl": ("zoledronic-acid", PSH.Status),
    "invalid-finding-before-birth.ttl": ("er", PSH.EffectiveDateNotBeforeBirth),
    "invalid-blank-node-item.ttl": (None, PSH.SubjectHolderIsRecordItem),
    "invalid-dose-without-unit.ttl": (None, PSH.DoseAmountHasUnit),
}


@pytest.mark.parametrize("name", COMPLETE_EXAMPLES)
def test_complete_examples_give_no_result_at_all(name: str) -> None:
    validation = validate_patients(parse_rdf_file(EXAMPLES / name))
    assert validation.report.conforms
    assert [(r.result.severity, r.shape_name) for r in validation.results] == []


def test_reference_example_is_valid_and_names_what_it_lacks() -> None:
    reference = EXAMPLES / "hr-positive-her2-negative-bone-only.ttl"
    validation = validate_patients(parse_rdf_file(reference))
    assert not validation.has_violations
    assert {r.result.severity for r in validation.results} == {"Warning"}
    assert sorted(str(r.fact).rsplit("/", 1)[-1] for r in validation.results) == [
        "disease-status", "germline-brca1", "germline-brca2",
        "impending-neurological-complication", "pathological-fracture",
        "response-to-systemic-therapy", "significant-weight-bearing-lesion"]


def test_incomplete_examples_are_valid_with_warnings() -> None:
    her2 = validate_patients(parse_rdf_file(EXAMPLES / "incomplete-her2-unknown.ttl"))
    assert [(r.result.severity, r.result.source_shape) for r in her2.results] == [
        ("Warning", PCS["her2-status"])]
    assert her2.results[0].result.message == (
        "HER2 status is missing: SUM-1, SYS-1, HRP-1, HRP-2, HRP-3, HER2-1, HER2-2, HER2-3, "
        'TN-1, TN-2, ORTH-3, AVOID-2 of "Treatment for Stage 4 Breast Cancer with Bone '
        'Metastasis" cannot be decided.')
    bone = validate_patients(parse_rdf_file(EXAMPLES / "incomplete-bone-findings-unrecorded.ttl"))
    assert not bone.has_violations
    assert {str(r.fact).rsplit("/", 1)[-1] for r in bone.results if r.fact} >= {
        "bone-pain-severity", "fracture-risk", "visceral-crisis", "spinal-cord-compression"}
    assert [r.result.source_shape for r in bone.results if r.result.severity == "Info"] == [
        PSH.WeightInPoundsInfo]


def test_outside_guideline_example_gets_both_scope_notes() -> None:
    validation = validate_patients(
        parse_rdf_file(EXAMPLES / "outside-guideline-stage-i-iii-no-metastasis.ttl"))
    assert not validation.has_violations
    notes = {r.result.source_shape for r in validation.results if r.result.severity == "Info"}
    assert notes == {PSH.NoBoneMetastasisInfo, PSH.NotStageIVInfo, PSH.HER2EquivocalInfo}


@pytest.mark.parametrize("name", sorted(INVALID_EXAMPLES))
def test_invalid_examples_are_refused_for_their_reason(name: str) -> None:
    data = parse_rdf_file(EXAMPLES / name)
    validation = validate_patients(data)
    assert validation.has_violations
    local, shape = INVALID_EXAMPLES[name]
    patient = next(iter(data.subjects(RDF.type, GKG.Patient)))
    violations = [r for r in validation.results if r.result.severity == "Violation"]
    matching = [r for r in violations if r.result.source_shape == shape]
    assert matching, [r.result.source_shape for r in violations]
    assert all(r.patient == patient for r in violations)
    if local is not None:
        assert str(matching[0].result.focus).endswith("/" + local)


def test_demo_cohort_is_valid() -> None:
    from guidelinekg.patients import load_patient_graph

    graph = load_patient_graph([EXAMPLES / "demo-cohort"])
    validation = validate_patients(graph)
    assert len(validation.patients) == 3
    assert not validation.has_violations


# ---------------------------------------------------------------------------------------
# The record vocabulary: every term of a record is read, or it is reported
# ---------------------------------------------------------------------------------------

VOCABULARY = "http://example.org/fixtures/vocabulary/"
VOCABULARY_SHAPES = {PSH.UnknownTerm, PSH.PropertyNotReadHere, PSH.GuidelineTermInRecord,
                     PSH.UnreadTerms}


@pytest.fixture(scope="module")
def vocabulary_validation() -> tuple[PatientValidation, Graph]:
    data, _, _ = split_fixture(FIXTURES / "shapes-record-vocabulary.ttl")
    return validate_patients(data), data


def _vocabulary_result(validation: PatientValidation, focus: str, shape: URIRef):
    (found,) = [r for r in validation.results
                if r.result.focus == URIRef(VOCABULARY + focus) and r.result.source_shape == shape]
    return found


def test_a_misspelt_property_is_a_violation_naming_it(vocabulary_validation) -> None:
    validation, _ = vocabulary_validation
    result = _vocabulary_result(validation, "her2-typo", PSH.UnknownTerm)
    assert result.patient == URIRef(VOCABULARY + "p")
    assert result.result.severity == "Violation"
    assert result.result.message == (
        "Unknown property gkg:valueCodee: a typo, or a fact this guideline does not read.")
    assert result.result.value == CODE.positive
    assert result.shape_name == "term of the guideline's namespaces that the ontology declares"
    concept = _vocabulary_result(validation, "er-typo", PSH.UnknownTerm)
    assert concept.result.message.startswith("Unknown concept code:positve: a typo")


def test_a_property_is_not_read_on_an_item_outside_its_domain(vocabulary_validation) -> None:
    """gkg:present (a refuted status) is read on conditions: on a HER2 result it would change
    nothing, so the record is refused rather than read as if HER2 were negative."""
    validation, _ = vocabulary_validation
    result = _vocabulary_result(validation, "her2-refuted", PSH.PropertyNotReadHere)
    assert result.result.severity == "Violation"
    assert result.result.message.startswith(
        "gkg:present is not read on a HER2 status: it is read on a condition (gkg:Condition).")
    assert result.result.value == Literal(False)


def test_unread_terms_are_listed_in_one_warning_per_patient(vocabulary_validation) -> None:
    validation, _ = vocabulary_validation
    unread = [r for r in validation.results if r.result.source_shape == PSH.UnreadTerms]
    by_patient = {r.patient: r.result.message for r in unread}
    assert by_patient == {
        URIRef(VOCABULARY + "p"):
            f"Not read by this guideline: <{VOCABULARY}allergy>, <{VOCABULARY}note>, "
            f"<{VOCABULARY}prescriber>, prov:wasAttributedTo, rdfs:comment, rdfs:label "
            "(6 triples). No criterion reads them and no result shows them: if they matter, "
            "record them with the guideline's vocabulary.",
        None:
            f"Not read by this guideline (on items that name no patient): <{VOCABULARY}note> "
            "(1 triple). No criterion reads them and no result shows them: if they matter, "
            "record them with the guideline's vocabulary.",
    }
    assert {r.result.severity for r in unread} == {"Warning"}


def test_the_record_cannot_change_the_guidelines_vocabulary(vocabulary_validation) -> None:
    validation, _ = vocabulary_validation
    changed = {(r.result.focus, r.result.path) for r in validation.results
               if r.result.source_shape == PSH.GuidelineTermInRecord}
    assert changed == {(CODE.equivocal, GKG.indeterminate),
                       (URIRef(VOCABULARY + "my-drug"), URIRef(PREFIXES["rdfs"] + "subClassOf"))}


def test_a_forged_fact_value_or_statement_is_refused_before_any_derivation() -> None:
    """Read with the guideline, a forged HER2-positive fact value made HER2-1 apply to a
    HER2-negative patient: the record is refused instead, and without the forged triples the
    same record derives."""
    data, _, _ = split_fixture(FIXTURES / "shapes-forged-guideline-and-results.ttl")
    with pytest.raises(InvalidRecordError):
        derive(data, datetime.date(2026, 12, 1))
    forged = {URIRef("http://example.org/fixtures/forged/forged-her2"),
              URIRef("http://example.org/fixtures/forged/forged-statement")}
    for subject in [s for s in data.subjects(unique=True)
                    if s in forged or isinstance(s, BNode)]:
        data.remove((subject, None, None))
    data.remove((None, GKG.undeterminedBecause, None))
    assert not validate_patients(data).has_violations
    derive(data, datetime.date(2026, 12, 1))


def test_vocabulary_results_are_in_every_output(vocabulary_validation) -> None:
    validation, data = vocabulary_validation
    assert validation.has_violations and not validation.report.conforms
    report = annotated_report_graph(validation, data)
    (node,) = report.subjects(RDF.type, SH.ValidationReport)
    assert report.value(node, SH.conforms) == Literal(False)
    (typo,) = [r for r in report.objects(node, SH.result)
               if report.value(r, SH.sourceShape) == PSH.UnknownTerm
               and report.value(r, SH.resultPath) == GKG.valueCodee]
    assert (typo, RDF.type, SH.ValidationResult) in report
    assert report.value(typo, SH.focusNode) == URIRef(VOCABULARY + "her2-typo")
    assert report.value(typo, SH.resultSeverity) == SH.Violation
    assert report.value(typo, SH.sourceConstraintComponent) == \
        PSH.RecordVocabularyConstraintComponent
    assert "gkg:valueCodee" in str(report.value(typo, SH.resultMessage))
    assert report.value(typo, GKG.patient) == URIRef(VOCABULARY + "p")
    text = text_report(validation, data=data)
    assert (f"  VIOLATION <{VOCABULARY}her2-typo> gkg:valueCodee\n"
            "      Unknown property gkg:valueCodee: a typo, or a fact this guideline does not "
            "read.\n") in text
    assert "  WARNING   the patient\n      Not read by this guideline: " in text
    assert "https://w3id.org/guidelinekg/shapes/patient#UnreadTerms" in {
        r["shape"] for r in validation_report(json_report(validation))["results"]}


def test_the_records_vocabulary_check_reads_what_the_queries_read() -> None:
    vocabulary = record_vocabulary()
    assert {GKG.valueCode, GKG.subject, GKG.effectiveDate, GKG.present, GKG.site,
            GKG.hasDose, GKG.doseAmount, GKG.sourceResource} <= vocabulary.read
    assert GKG.curationNote not in vocabulary.read
    assert GKG.Condition in vocabulary.superclasses[GKG.MetastasisCondition]


VALID_RECORDS = sorted([
    *(path for path in EXAMPLES.rglob("*.ttl") if not path.name.startswith("invalid-")),
    *(ROOT / "tests" / "vignettes").glob("*.ttl"),
    *(FIXTURES / "her2-work-up").glob("*.ttl"),
])


@pytest.mark.parametrize("path", VALID_RECORDS, ids=lambda path: path.name)
def test_examples_and_vignettes_use_only_terms_the_guideline_reads(path: Path) -> None:
    assert record_vocabulary_results(parse_rdf_file(path)) == []


def test_a_value_the_ontology_does_not_have_is_named_as_unknown() -> None:
    """The invalid example's "3+" (an IHC score) is outside the value set and unknown."""
    data = parse_rdf_file(EXAMPLES / "invalid-blank-node-item.ttl")
    assert [(r.source_shape, r.value, r.message.split(":")[0])
            for r in record_vocabulary_results(data)] == [
        (PSH.UnknownTerm, CODE["ihc-3-plus"], "Unknown concept code")]


def test_a_blank_node_inside_an_item_belongs_to_its_patient() -> None:
    data = Graph().parse(format="turtle", data="""
        @prefix gkg: <https://w3id.org/guidelinekg/ontology#> .
        <urn:p> a gkg:Patient .
        <urn:item> gkg:subject <urn:p> ; <urn:note> [ <urn:author> [ <urn:name> "x" ] ] .""")
    note = data.value(URIRef("urn:item"), URIRef("urn:note"))
    author = data.value(note, URIRef("urn:author"))
    assert patients_of(author, data) == [URIRef("urn:p")]


# ---------------------------------------------------------------------------------------
# The shapes agree with the ontology
# ---------------------------------------------------------------------------------------


def test_every_shape_path_is_declared_in_the_ontology() -> None:
    assert undeclared_shape_paths(patient_shapes(), core_ontology()) == []


def test_an_undeclared_path_is_found() -> None:
    shapes = Graph().parse(format="turtle", data="""
        @prefix sh: <http://www.w3.org/ns/shacl#> .
        @prefix gkg: <https://w3id.org/guidelinekg/ontology#> .
        <urn:s1> sh:path ( gkg:subject gkg:birthDat ) .
        <urn:s2> sh:path [ sh:inversePath gkg:hasDos ] .
        <urn:s3> sh:path gkg:valueCode .""")
    assert undeclared_shape_paths(shapes, core_ontology()) == [
        (URIRef("urn:s1"), GKG.birthDat), (URIRef("urn:s2"), GKG.hasDos)]


def test_sparql_of_the_shapes_uses_declared_terms() -> None:
    ontology = core_ontology()
    known = set(ontology.subjects())
    for text in patient_shapes().objects(None, SH.select):
        for prefix, local in re.findall(r"\b(gkg|code):([A-Za-z][\w-]*)", str(text)):
            assert URIRef(PREFIXES[prefix] + local) in known, f"{prefix}:{local}"


def test_every_shape_is_named_and_explained() -> None:
    shapes = patient_shapes()
    for kind in (SH.NodeShape, SH.PropertyShape):
        for shape in shapes.subjects(RDF.type, kind):
            targeted = any(shapes.objects(shape, p) for p in (
                SH.targetClass, SH.targetSubjectsOf, SH.targetObjectsOf, SH.target))
            if not targeted:
                continue
            assert isinstance(shape, URIRef)
            assert shapes.value(shape, SH.name) is not None, shape
            assert shapes.value(shape, SH.message) is not None, shape


def test_value_set_lists_are_the_ontology_schemes() -> None:
    shapes, ontology = patient_shapes(), core_ontology()
    checked = 0
    for shape, scheme in shapes.subject_objects(PSH.valueSet):
        listed = set(Collection(shapes, shapes.value(shape, SH["in"])))
        assert listed == set(ontology.subjects(SKOS.inScheme, scheme)), shape
        checked += 1
    assert checked >= 10


def test_unit_lists_are_the_ontology_units_of_their_dimensions() -> None:
    shapes, ontology = patient_shapes(), core_ontology()
    shapes_with_units = set(shapes.subjects(PSH.unitDimension, None))
    assert {PSH.DoseUnit, PSH.BodyWeightUnit, PSH.DosePeriodUnit,
            PSH.DoseInfusionDurationUnit} <= shapes_with_units
    for shape in shapes_with_units:
        dimensions = set(shapes.objects(shape, PSH.unitDimension))
        codes = {str(ontology.value(unit, GKG.ucumCode)) for dimension in dimensions
                 for unit in ontology.subjects(GKG.dimension, dimension)}
        listed = {str(term) for term in Collection(shapes, shapes.value(shape, SH["in"]))}
        assert listed == codes, shape
    assert "mg/kg" not in {str(t) for t in Collection(shapes, shapes.value(PSH.BodyWeightUnit,
                                                                           SH["in"]))}


def test_every_observation_class_has_its_value_checked() -> None:
    """Each observation class a fact is recorded as has a shape requiring its value, from
    the fact's value set when the fact's values are concepts."""
    shapes, ontology = patient_shapes(), core_ontology()
    for fact, observation_class in ontology.subject_objects(GKG.recordedAs):
        value_type = ontology.value(fact, GKG.valueType)
        value_shapes = [s for s in shapes.subjects(SH.targetClass, observation_class)
                        if shapes.value(s, SH.minCount) == Literal(1)]
        assert value_shapes, observation_class
        if (value_type, RDF.type, SKOS.ConceptScheme) in ontology:
            assert any(shapes.value(s, PSH.valueSet) == value_type for s in value_shapes), fact


# ---------------------------------------------------------------------------------------
# Where the shapes live: the core's name only core terms, each shape is in one file
# ---------------------------------------------------------------------------------------

_TERM = re.compile(r"\b(gkg|code):([A-Za-z][\w-]*)")


def _core_terms() -> set[URIRef]:
    core = next(module for module in modules() if module.kind == "core")
    ontology = Graph()
    for path in core.ontology_files():
        ontology += parse_rdf_file(path)
    return set(ontology.subjects())


def test_the_core_shapes_name_only_core_terms() -> None:
    """Shapes about a domain's classes, properties and value sets live in the domain's
    folder: a guideline of another field reuses the core's file as it is. Messages may name
    a domain term as an example; the constraints may not."""
    shapes = parse_rdf_file(shapes_dir() / "patient.ttl")
    known = _core_terms()
    prose = {SH.message, SH.name, SH.description, RDFS_COMMENT, RDFS_LABEL,
             DCTERMS.title, DCTERMS.description}
    foreign = set()
    for _, predicate, obj in shapes:
        if isinstance(obj, URIRef) and obj.startswith(PREFIXES["gkg"]) | \
                obj.startswith(PREFIXES["code"]) and obj not in known:
            foreign.add(obj)
        if isinstance(obj, Literal) and predicate not in prose:
            foreign |= {URIRef(PREFIXES[prefix] + local)
                        for prefix, local in _TERM.findall(str(obj))} - known
    assert foreign == set()


def test_the_domain_shapes_are_in_the_domains_folder() -> None:
    domain = next(module for module in modules() if module.name == "oncology")
    (path,) = domain.shape_files()
    assert path == domain.folder / "shapes" / "patient.ttl"
    assert path in shape_files()
    shapes = parse_rdf_file(path)
    assert {PSH.HER2EquivocalInfo, PSH.ReceptorStatusValue, PSH.StageGroup,
            PSH.MetastasisSite} <= set(shapes.subjects(SH.message, None))
    (ontology,) = shapes.subjects(RDF.type, OWL.Ontology)
    assert ontology == URIRef("https://w3id.org/guidelinekg/domain/oncology/shapes/patient")
    # Its SPARQL constraints use its own prefix declarations.
    assert set(shapes.objects(None, SH.prefixes)) == {ontology}


def test_each_shape_lives_in_one_file() -> None:
    files: dict[URIRef, list[str]] = {}
    for path in shape_files():
        for shape in parse_rdf_file(path).subjects(SH.message, None):
            if isinstance(shape, URIRef):
                files.setdefault(shape, []).append(str(path))
    assert {shape: found for shape, found in files.items() if len(found) > 1} == {}
    assert shape_files()[0] == shapes_dir() / "patient.ttl"
    assert COMPLETENESS in shape_files()


# ---------------------------------------------------------------------------------------
# Completeness shapes: generated per guideline from its criteria and the facts' record
# evidence (gkg:decidableWhen, gkg:undecidableWhen), in step with them
# ---------------------------------------------------------------------------------------


def _generator():
    path = ROOT / "scripts" / "generate_completeness_shapes.py"
    name = "generate_completeness_shapes"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # its dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.mark.parametrize("module", guideline_modules(), ids=lambda module: module.name)
def test_completeness_shapes_file_is_in_step_with_the_guideline(module) -> None:
    committed = module.folder / "shapes" / "completeness.ttl"
    assert committed.read_text(encoding="utf-8") == \
        _generator().completeness_shapes_text(module), \
        "run .venv/bin/python scripts/generate_completeness_shapes.py"


def test_the_check_mode_fails_on_a_stale_file(tmp_path: Path, monkeypatch) -> None:
    generator = _generator()
    monkeypatch.setattr(generator, "output_path",
                        lambda module: tmp_path / module.name / "completeness.ttl")
    assert generator.main(["--check"]) == 1  # not written yet
    assert generator.main([]) == 0
    assert generator.main(["--check"]) == 0
    stale = tmp_path / "bcbm" / "completeness.ttl"
    stale.write_text(stale.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert generator.main(["--check"]) == 1


def test_the_shapes_are_named_under_their_guideline() -> None:
    shapes = parse_rdf_file(COMPLETENESS)
    (ontology,) = shapes.subjects(RDF.type, OWL.Ontology)
    assert ontology == URIRef(PREFIXES["bcbm"] + "shapes/completeness")
    warnings = set(shapes.subjects(SH.severity, SH.Warning))
    assert warnings and all(str(shape).startswith(str(PCS)) for shape in warnings)
    assert set(shapes.objects(None, SH.prefixes)) == {ontology}


def test_the_script_names_no_guideline_fact_or_domain_term() -> None:
    """What a fact needs is data (the facts' annotations), as is every guideline: the
    script is held to the rule tests/test_no_guideline_in_code.py holds src/ to."""
    text = (ROOT / "scripts" / "generate_completeness_shapes.py").read_text(encoding="utf-8")
    assert "bcbm" not in text.lower()
    core = _core_terms()
    named = {URIRef(PREFIXES[prefix] + local) for prefix, local in _TERM.findall(text)}
    assert named - core == set()
    assert not re.search(r"\bfact:[a-z]", text.replace("fact:{", "")), "names a fact"


NEEDED_BY = """
PREFIX gkg: <https://w3id.org/guidelinekg/ontology#>
PREFIX code: <https://w3id.org/guidelinekg/code/>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
SELECT DISTINCT ?fact ?key ?order WHERE {
  ?recommendation a gkg:Recommendation ; skos:notation ?key ; gkg:sectionOrder ?order ;
                  gkg:applicability/gkg:hasMember*/gkg:onFact ?fact .
  ?fact gkg:whenSilent code:silence-unknown .
}"""


POPULATION_FACTS = """
PREFIX gkg: <https://w3id.org/guidelinekg/ontology#>
PREFIX code: <https://w3id.org/guidelinekg/code/>
SELECT DISTINCT ?fact ?silenceUnknown WHERE {
  ?guideline gkg:population/gkg:hasMember*/gkg:onFact ?fact .
  BIND(EXISTS { ?fact gkg:whenSilent code:silence-unknown } AS ?silenceUnknown)
}"""


TITLE = '"Treatment for Stage 4 Breast Cancer with Bone Metastasis"'


def test_each_warning_names_its_fact_and_exactly_the_undecidable_keys() -> None:
    guideline = _generator().guideline_knowledge(BCBM)
    expected: dict[URIRef, list[tuple[int, str]]] = {}
    for row in guideline.query(NEEDED_BY):
        expected.setdefault(row.fact, []).append((int(row.order), str(row.key)))
    shapes = parse_rdf_file(COMPLETENESS)
    warned = {shapes.value(shape, DCTERMS.subject): shape
              for shape in shapes.subjects(SH.severity, SH.Warning)}
    rows = list(guideline.query(POPULATION_FACTS))
    assert {str(row.fact).rsplit("/", 1)[-1] for row in rows} == {
        "primary-breast-cancer", "stage-iv", "bone-metastasis", "deceased"}
    # A fact whose silence has a value (deceased: no death recorded, living) is never
    # missing, so it is never warned of.
    population_facts = {row.fact for row in rows if row.silenceUnknown.toPython()}
    for fact in population_facts:
        # The population gates every statement: its facts are named once, for all of them.
        expected[fact] = [(0, "every statement (the guideline's population: stage 4 breast "
                              "cancer with bone metastasis)")]
    assert set(warned) == set(expected)
    for fact, shape in warned.items():
        keys = [key for _, key in sorted(expected[fact])]
        needed_by = sorted(str(r).rsplit("/", 1)[-1] for r in shapes.objects(shape, PSH.neededBy))
        assert needed_by == (["guideline"] if fact in population_facts else sorted(keys)), fact
        message = str(shapes.value(shape, SH.message))
        # Keys are the guideline's own: its title follows them (another has an AVOID-1 too).
        named = ", ".join(keys) + ("" if fact in population_facts else f" of {TITLE}")
        assert message.endswith(f" is missing: {named} cannot be decided."), message
    assert str(shapes.value(warned[URIRef(PREFIXES["fact"] + "germline-brca1")], SH.message)) == \
        f"Germline BRCA1 pathogenic variant is missing: TN-2 of {TITLE} cannot be decided."


def test_no_warning_for_a_fact_whose_silence_means_absent() -> None:
    shapes = parse_rdf_file(COMPLETENESS)
    facts = set(shapes.objects(None, DCTERMS.subject))
    silent_absent = set(core_ontology().subjects(GKG.whenSilent, CODE["silence-absent"]))
    assert facts and not facts & silent_absent
    assert URIRef(PREFIXES["fact"] + "patient-engaged-in-local-therapy-decision") not in facts


def test_the_warnings_of_derived_facts_come_from_their_annotations() -> None:
    """Each derived fact a warning is about says what decides it; the warning's name and
    what it says is missing are the annotation's sh:name and sh:description."""
    vocabulary = core_ontology()
    shapes = parse_rdf_file(COMPLETENESS)
    derived = 0
    for shape, fact in shapes.subject_objects(DCTERMS.subject):
        if (fact, RDF.type, GKG.ObservedFact) in vocabulary:
            assert not any(vocabulary.objects(fact, GKG.decidableWhen)), fact
            continue
        (evidence,) = [*vocabulary.objects(fact, GKG.decidableWhen),
                       *vocabulary.objects(fact, GKG.undecidableWhen)]
        assert shapes.value(shape, SH.name) == vocabulary.value(evidence, SH.name)
        assert str(shapes.value(shape, SH.message)).startswith(
            str(vocabulary.value(evidence, SH.description)) + " is missing: ")
        derived += 1
    assert derived >= 9
    for prop in (GKG.decidableWhen, GKG.undecidableWhen, GKG.alongWith):
        assert (prop, RDF.type, OWL.AnnotationProperty) in vocabulary
        assert vocabulary.value(prop, SKOS.definition) is not None
    core_facts = parse_rdf_file(ontology_dir() / "patient-facts.ttl")
    assert (GKG.decidableWhen, RDF.type, OWL.AnnotationProperty) in core_facts


def _guideline_with(fact_triples: str) -> Graph:
    """The guideline's knowledge with one more recommendation on fact:new-derived-fact."""
    guideline = _generator().guideline_knowledge(BCBM)
    guideline.parse(format="turtle", data=f"""
        @prefix gkg: <https://w3id.org/guidelinekg/ontology#> .
        @prefix fact: <https://w3id.org/guidelinekg/fact/> .
        @prefix code: <https://w3id.org/guidelinekg/code/> .
        @prefix sh: <http://www.w3.org/ns/shacl#> .
        @prefix skos: <http://www.w3.org/2004/02/skos/core#> .
        fact:new-derived-fact a gkg:DerivedFact ; skos:notation "new-derived-fact" ;
            skos:prefLabel "a new derived fact" ; gkg:whenSilent code:silence-unknown .
        {fact_triples}
        <urn:criterion> a gkg:FactCriterion ; gkg:onFact fact:new-derived-fact .
        <{PREFIXES["bcbm"]}NEW-1> a gkg:Recommendation ; skos:notation "NEW-1" ;
            gkg:applicability <urn:criterion> .""")
    return guideline


def test_generator_refuses_a_derived_fact_it_does_not_know() -> None:
    with pytest.raises(SystemExit, match=r"fact:new-derived-fact .* gkg:decidableWhen"):
        _generator().completeness_shapes_text(BCBM, _guideline_with(""))


def test_generator_refuses_a_shape_it_cannot_read() -> None:
    guideline = _guideline_with("""fact:new-derived-fact gkg:decidableWhen [
        sh:class gkg:Observation ; sh:property [ sh:path gkg:valueCode ; sh:minCount 2 ] ] .""")
    with pytest.raises(SystemExit, match=r"fact:new-derived-fact: the sh:property shape on "
                                         r"gkg:valueCode is not one the script reads"):
        _generator().completeness_shapes_text(BCBM, guideline)


def test_a_new_fact_gets_its_warning_from_its_annotation() -> None:
    guideline = _guideline_with("""fact:new-derived-fact gkg:decidableWhen [
        sh:name "new fact recorded" ; sh:description "The new finding"@en ;
        sh:or ( [ sh:class gkg:Observation ;
                  sh:property [ sh:path gkg:valueCode ; sh:minCount 1 ;
                                sh:not [ sh:hasValue code:pending ] ] ]
                [ sh:class gkg:Intervention ; gkg:alongWith
                    [ sh:property [ sh:path gkg:startDate ; sh:maxCount 0 ] ] ] ) ] .""")
    text = _generator().completeness_shapes_text(BCBM, guideline)
    shapes = Graph().parse(data=text, format="turtle")
    shape = PCS["new-derived-fact"]
    assert shapes.value(shape, SH.name) == Literal("new fact recorded")
    assert str(shapes.value(shape, SH.message)) == \
        "The new finding is missing: NEW-1 cannot be decided."
    target = str(shapes.value(shapes.value(shape, SH.target), SH.select))
    assert "HAVING (MAX(?r0_0) = 0 && (MAX(?r1_0) = 0 || MAX(?r1_1) = 0))" in target
    data = Graph().parse(format="turtle", data="""
        @prefix gkg: <https://w3id.org/guidelinekg/ontology#> .
        @prefix code: <https://w3id.org/guidelinekg/code/> .
        <urn:silent> a gkg:Patient .
        <urn:pending> a gkg:Patient .
        <urn:p1> a gkg:Observation ; gkg:subject <urn:pending> ; gkg:valueCode code:pending .
        <urn:known> a gkg:Patient .
        <urn:k1> a gkg:Observation ; gkg:subject <urn:known> ; gkg:valueCode code:positive .
        <urn:pair> a gkg:Patient .
        <urn:t1> a gkg:Surgery ; gkg:subject <urn:pair> .
        <urn:t2> a gkg:Observation ; gkg:subject <urn:pair> .""")
    from guidelinekg.shacl import validate_graph

    report = validate_graph(data, shapes, core_ontology())
    assert {r.focus for r in report.results if r.source_shape == shape} == {
        URIRef("urn:silent"), URIRef("urn:pending")}


# ---------------------------------------------------------------------------------------
# Attribution, and a cohort of 1,000 patients in one graph
# ---------------------------------------------------------------------------------------


def test_results_are_attributed_to_their_patient() -> None:
    data = Graph().parse(format="turtle", data="""
        @prefix gkg: <https://w3id.org/guidelinekg/ontology#> .
        <urn:p> a gkg:Patient .
        <urn:item> gkg:subject <urn:p> ; gkg:hasDose _:dose .""")
    dose = data.value(URIRef("urn:item"), GKG.hasDose)
    assert patients_of(URIRef("urn:p"), data) == [URIRef("urn:p")]
    assert patients_of(URIRef("urn:item"), data) == [URIRef("urn:p")]
    assert patients_of(dose, data) == [URIRef("urn:p")]
    assert patients_of(URIRef("urn:nothing"), data) == []


COHORT_SIZE = 1000
TEMPLATE = EXAMPLES / "her2-positive-trastuzumab-3-weekly.ttl"
TEMPLATE_BASE = "http://example.org/patients/her2-pos-3-weekly/"
# position -> (what is wrong, the item (local name) and shape expected to report it)
BAD_PATIENTS = {
    17: ("negative-dose", "trastuzumab-dose", PSH.DoseAmount),
    256: ("her2-contradiction", "her2", PSH.ContradictoryFindings),
    511: ("her2-missing", "patient", PCS["her2-status"]),
    777: ("weight-in-lbs", "weight", PSH.BodyWeightUnit),
    998: ("end-before-start", "trastuzumab-loading", PSH.StartNotAfterEnd),
}


def _cohort_patient_base(index: int) -> str:
    return f"http://example.org/cohort/p{index:04d}/"


def build_cohort() -> Graph:
    """1,000 copies of a complete record, each with its own IRIs and its dates shifted by
    its position (as real records are spread over time), with bad ones at known places."""
    template = list(parse_rdf_file(TEMPLATE))
    cohort = Graph()
    add = cohort.add
    for index in range(COHORT_SIZE):
        base = _cohort_patient_base(index)
        shift = datetime.timedelta(days=index)
        blank: dict[BNode, BNode] = {}
        problem = BAD_PATIENTS.get(index, ("",))[0]

        def term(node, base=base, shift=shift, blank=blank):
            if isinstance(node, URIRef) and str(node).startswith(TEMPLATE_BASE):
                return URIRef(base + str(node)[len(TEMPLATE_BASE):])
            if isinstance(node, BNode):
                return blank.setdefault(node, BNode())
            if isinstance(node, Literal) and node.datatype == XSD_DATE:
                return Literal(node.toPython() - shift, datatype=XSD_DATE)
            return node

        for s, p, o in template:
            s, o = term(s), term(o)
            if problem == "negative-dose" and p == GKG.doseAmount and str(s).endswith(
                    "/trastuzumab-dose"):
                o = Literal("-6.0", datatype=XSD_DECIMAL)
            if problem == "her2-missing" and str(s).endswith("/her2"):
                continue
            if problem == "weight-in-lbs" and p == GKG.unitCode:
                o = Literal("lbs")
            if problem == "end-before-start" and p == GKG.endDate and str(s).endswith(
                    "/trastuzumab-loading"):
                o = Literal(o.toPython() - datetime.timedelta(days=30), datatype=XSD_DATE)
            add((s, p, o))
        if problem == "her2-contradiction":
            her2 = URIRef(base + "her2-second-opinion")
            add((her2, RDF.type, GKG.HER2Status))
            add((her2, GKG.subject, URIRef(base + "patient")))
            add((her2, GKG.valueCode, CODE.negative))
            add((her2, GKG.effectiveDate, cohort.value(URIRef(base + "her2"), GKG.effectiveDate)))
    return cohort


@pytest.fixture(scope="session")
def cohort_validation() -> tuple[PatientValidation, Graph, float]:
    cohort = build_cohort()
    started = time.perf_counter()
    validation = validate_patients(cohort, inplace=True)
    return validation, cohort, time.perf_counter() - started


def test_cohort_results_are_attributed_to_the_right_patients(cohort_validation) -> None:
    validation, cohort, elapsed = cohort_validation
    assert len(validation.patients) == COHORT_SIZE
    found = {(r.patient, r.result.focus, r.result.source_shape) for r in validation.results}
    expected = set()
    for index, (_, local, shape) in BAD_PATIENTS.items():
        base = _cohort_patient_base(index)
        focus = URIRef(base + local)
        if local.endswith("-dose"):  # a dose specification: reported on itself
            focus = cohort.value(URIRef(base + "trastuzumab"), GKG.hasDose)
        expected.add((URIRef(base + "patient"), focus, shape))
    contradicting = URIRef(_cohort_patient_base(256) + "her2-second-opinion")
    expected.add((URIRef(_cohort_patient_base(256) + "patient"), contradicting,
                  PSH.ContradictoryFindings))
    assert found == expected
    # Nothing leaks: every item a result is about belongs to the patient it is reported for.
    for result in validation.results:
        assert patients_of(result.result.focus, cohort) == [result.patient]
    assert validation.patients_with("Violation") == {
        URIRef(_cohort_patient_base(i) + "patient") for i in (17, 256, 777, 998)}
    print(f"\n{COHORT_SIZE} patients validated as one graph in {elapsed:.1f} s")
    assert elapsed < 60


def test_cohort_template_is_the_complete_example() -> None:
    """The cohort's clean patients give no result because the template is complete."""
    assert TEMPLATE.name in COMPLETE_EXAMPLES
