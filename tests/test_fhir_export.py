"""`guidelinekg export-fhir`: the guideline as CPG-on-FHIR artefacts in one R4 Bundle.

The Bundle is written by the command, read back with the fhir.resources R4B models, and its
content is checked against the guideline graph: every recommendation, its verbatim text, its
criterion, strength and direction, citations, actions and doses; the CPG profiles, narratives,
code displays and the applicability conditions' criterion IRIs.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from html import escape
from pathlib import Path

import pytest
from fhir.resources.R4B.domainresource import DomainResource
from rdflib import URIRef
from rdflib.namespace import RDF, RDFS, SKOS

from guidelinekg.cli import main
from guidelinekg.fhir_export import (
    BUNDLE_FILE,
    CRITERION_LANGUAGE,
    RXNORM,
    build_bundle,
    read_bundle,
)
from guidelinekg.fhir_narrative import CodeDisplays
from guidelinekg.loading import BASE, guideline_graph
from guidelinekg.namespaces import GKG

STRENGTH = "http://hl7.org/fhir/StructureDefinition/cqf-strengthOfRecommendation"
DIRECTION = "http://hl7.org/fhir/uv/cpg/StructureDefinition/cpg-directionOfRecommendation"
CPG = "http://hl7.org/fhir/uv/cpg/StructureDefinition/"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fhir")
    assert main(["export-fhir", "--out", str(out), "--fhir-version", "R4"]) == 0
    return out / BUNDLE_FILE


@pytest.fixture(scope="module")
def bundle(exported: Path) -> dict:
    return json.loads(exported.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def resources(bundle: dict) -> dict[str, dict]:
    return {entry["resource"]["url"]: entry["resource"] for entry in bundle["entry"]}


def plans(bundle: dict, kind: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"]
            if e["resource"]["resourceType"] == "PlanDefinition"
            and e["resource"]["type"]["coding"][0]["code"] == kind]


def rule(bundle: dict, key: str) -> dict:
    [found] = [p for p in plans(bundle, "eca-rule") if p["identifier"][0]["value"] == key]
    return found


def extension(action: dict, url: str) -> str:
    [found] = [e for e in action["extension"] if e["url"] == url]
    return found["valueCodeableConcept"]["coding"][0]["code"]


def test_bundle_reads_back_and_validates(exported: Path, bundle: dict) -> None:
    read = read_bundle(exported)  # fhir.resources R4B models: raises when not valid
    assert read.type == "collection"
    assert read.entry is not None and len(read.entry) == len(bundle["entry"])
    for entry in read.entry:  # profiles, narratives and expressions survive the models
        resource = entry.resource
        assert isinstance(resource, DomainResource)
        assert resource.meta is not None and resource.meta.profile
        assert resource.text is not None and resource.text.status == "generated"
    assert bundle["meta"]["tag"][0] == {"system": "http://hl7.org/fhir/FHIR-version",
                                        "code": "4.0.1", "display": "FHIR R4 4.0.1"}


def test_bundle_names_all_37_recommendations(bundle: dict) -> None:
    graph = guideline_graph()
    statements = {str(graph.value(s, SKOS.notation)): s
                  for s in graph.subjects(RDF.type, GKG.Recommendation)}
    rules = plans(bundle, "eca-rule")
    assert len(rules) == 37
    assert {p["identifier"][0]["value"] for p in rules} == set(statements)
    for plan in rules:
        key = plan["identifier"][0]["value"]
        verbatim = str(graph.value(statements[key], GKG.verbatimText))
        assert plan["url"] == str(statements[key])
        assert plan["description"] == verbatim
        assert plan["action"][0]["description"] == verbatim
        [condition] = plan["action"][0]["condition"]
        assert condition["kind"] == "applicability"
        assert condition["expression"]["description"]


def test_criteria_strength_and_direction(bundle: dict) -> None:
    action = rule(bundle, "HRP-1")["action"][0]
    assert action["condition"][0]["expression"] == {
        "description": "all of: HR-positive (any of: ER positive, PR positive); HER2 negative; "
                       "no visceral crisis",
        "language": "application/x-guidelinekg-criterion",
        "expression": BASE + "guideline/bcbm/hr-positive-her2-negative-no-visceral-crisis"}
    assert (extension(action, STRENGTH), extension(action, DIRECTION)) == ("strong", "for")
    for key, expected in (("ORTH-3", ("weak", "for")), ("TN-2", ("weak", "for")),
                          ("AVOID-2", ("strong", "against"))):
        action = rule(bundle, key)["action"][0]
        assert (extension(action, STRENGTH), extension(action, DIRECTION)) == expected, key


def test_should_not_statements_point_at_do_not_perform_activities(
        bundle: dict, resources: dict[str, dict]) -> None:
    for key in ("AVOID-1", "AVOID-2", "AVOID-3", "AVOID-4", "AVOID-5", "AVOID-6", "OLIGO-2"):
        activity = resources[rule(bundle, key)["action"][0]["definitionCanonical"]]
        assert activity["resourceType"] == "ActivityDefinition"
        assert activity["doNotPerform"] is True, key
    recommended = resources[rule(bundle, "BMA-1")["action"][0]["definitionCanonical"]]
    assert "doNotPerform" not in recommended
    assert recommended["kind"] == "MedicationRequest"


def test_citations(bundle: dict) -> None:
    for key in ("HER2-2", "AVOID-4", "AVOID-5"):
        citations = [a for a in rule(bundle, key)["relatedArtifact"] if a["type"] == "citation"]
        assert {"type": "citation", "label": "REF-4",
                "display": "unresolved citation REF-4"} in citations, key
    [ref_3] = [a for a in rule(bundle, "HER2-1")["relatedArtifact"] if a["type"] == "citation"]
    assert ref_3["display"] == "Management of Stage 4 Breast Cancer Related Bleeding Breast Wound"
    assert "Curation note on REF-3" in rule(bundle, "HER2-1")["usage"]


def test_doses_as_fhir_dosage(bundle: dict, resources: dict[str, dict]) -> None:
    action = rule(bundle, "HER2-3")["action"][0]
    assert action["selectionBehavior"] == "exactly-one"
    weekly = resources[action["action"][0]["definitionCanonical"]]
    loading, maintenance = weekly["dosage"]
    assert loading["doseAndRate"][0]["doseQuantity"] == {
        "value": 4, "unit": "mg/kg", "system": "http://unitsofmeasure.org", "code": "mg/kg"}
    assert loading["timing"]["repeat"] == {"count": 1, "duration": 90, "durationUnit": "min"}
    assert maintenance["timing"]["repeat"] == {"frequency": 1, "period": 1, "periodUnit": "wk"}
    assert loading["route"]["coding"] == [{"system": "http://snomed.info/sct", "code": "47625008",
                                           "display": "Intravenous route (qualifier value)"}]
    denosumab = resources[rule(bundle, "BMA-2")["action"][0]["definitionCanonical"]]
    [step] = denosumab["dosage"]
    assert step["doseAndRate"][0]["doseQuantity"]["code"] == "mg"
    assert step["route"]["coding"][0]["code"] == "34206005"
    assert step["timing"]["repeat"] == {"frequency": 1, "period": 4, "periodUnit": "wk"}
    assert {c["code"] for c in denosumab["productCodeableConcept"]["coding"]} == \
        {"993449", "1046399", "1046402"}
    zoledronic = resources[BASE + "fhir/ActivityDefinition/"
                           "ZoledronicAcid-bcbm-regimen-zoledronic-acid-4mg-q3-4w"]
    assert zoledronic["dosage"][0]["timing"]["repeat"] == {
        "frequency": 1, "period": 3, "periodMax": 4, "periodUnit": "wk"}


def test_every_canonical_reference_resolves_in_the_bundle(bundle: dict,
                                                          resources: dict[str, dict]) -> None:
    def canonicals(actions: list[dict]) -> list[str]:
        found = []
        for action in actions:
            if "definitionCanonical" in action:
                found.append(action["definitionCanonical"])
            found += canonicals(action.get("action", []))
        return found

    for plan in (e["resource"] for e in bundle["entry"]
                 if e["resource"]["resourceType"] == "PlanDefinition"):
        for url in canonicals(plan["action"]):
            assert url in resources, url
    [protocol] = plans(bundle, "clinical-protocol")
    assert protocol["url"] == BASE + "guideline/bcbm/guideline"
    assert len(protocol["action"]) == 11
    assert sum(len(section["action"]) for section in protocol["action"]) == 37
    assert "pending human review" in protocol["usage"]


def test_export_is_deterministic(bundle: dict) -> None:
    assert build_bundle() == bundle


def test_only_r4_is_offered(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        main(["export-fhir", "--out", str(tmp_path), "--fhir-version", "R5"])
    assert refused.value.code == 2
    assert "invalid choice: 'R5'" in capsys.readouterr().err


def test_reading_back_refuses_a_broken_bundle(tmp_path: Path, bundle: dict) -> None:
    broken = json.loads(json.dumps(bundle))
    broken["entry"][1]["resource"]["action"][0]["condition"] = "applicability"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(ValueError):
        read_bundle(path)


def codings(value: object) -> Iterator[dict]:
    """Every Coding in a JSON tree (an object with system and code, not a Quantity)."""
    if isinstance(value, dict):
        if "system" in value and "code" in value and "value" not in value:
            yield value
        for item in value.values():
            yield from codings(item)
    elif isinstance(value, list):
        for item in value:
            yield from codings(item)


def test_cpg_profiles(bundle: dict) -> None:
    for entry in bundle["entry"]:
        resource = entry["resource"]
        expected = {"PlanDefinition": CPG + "cpg-computableplandefinition",
                    "ActivityDefinition": CPG + "cpg-computableactivity"}[resource["resourceType"]]
        assert resource["meta"]["profile"] == [expected], resource["id"]


def test_every_coding_has_the_display_the_repository_gives_it(
        bundle: dict, resources: dict[str, dict]) -> None:
    found = list(codings(bundle))
    assert len(found) > 50
    names = CodeDisplays().displays
    for coding in found:
        assert coding.get("display", "").strip(), coding
        if (coding["system"], coding["code"]) in names:
            assert coding["display"] == names[(coding["system"], coding["code"])]
    denosumab = resources[rule(bundle, "BMA-2")["action"][0]["definitionCanonical"]]
    assert {c["code"]: c["display"] for c in denosumab["productCodeableConcept"]["coding"]
            if c["system"] == RXNORM}["1046399"] == "Xgeva"


def test_a_code_without_a_name_gets_no_display_and_is_noted() -> None:
    displays = CodeDisplays({})
    bundle = build_bundle(displays=displays)
    rxnorm = [c for c in codings(bundle) if c["system"] == RXNORM]
    assert rxnorm and all("display" not in c for c in rxnorm)
    assert (RXNORM, "1046399") in displays.missing


def _statement_keys(resource: dict, bundle: dict) -> set[str]:
    """The statements a resource's narrative must show: its own, its sections', or those
    whose actions point at it."""
    if resource["resourceType"] == "ActivityDefinition":
        def points_at(actions: list[dict]) -> bool:
            return any(a.get("definitionCanonical") == resource["url"]
                       or points_at(a.get("action", [])) for a in actions)
        return {p["identifier"][0]["value"] for p in plans(bundle, "eca-rule")
                if points_at(p["action"])}
    if resource["type"]["coding"][0]["code"] == "clinical-protocol":
        return {a["title"] for section in resource["action"] for a in section["action"]}
    return {resource["identifier"][0]["value"]}


def test_every_resource_has_a_generated_narrative(bundle: dict) -> None:
    verbatim = {p["identifier"][0]["value"]: p["description"] for p in plans(bundle, "eca-rule")}
    for entry in bundle["entry"]:
        resource = entry["resource"]
        assert resource["text"]["status"] == "generated"
        div = resource["text"]["div"]
        root = ET.fromstring(div)  # well-formed XHTML
        assert root.tag == "{http://www.w3.org/1999/xhtml}div"
        keys = _statement_keys(resource, bundle)
        assert keys, resource["id"]
        for key in keys:
            assert f"<b>{key}</b>: {escape(verbatim[key])}" in div, (resource["id"], key)
    sum_1 = rule(bundle, "SUM-1")["text"]["div"]
    assert "strength strong, direction for" in sum_1
    assert "Sources: Guideline Directed Topic Overview" in sum_1
    avoid = rule(bundle, "AVOID-6")["text"]["div"]
    assert "direction against" in avoid
    # ORTH-3's verbatim text says "patients <55 years": escaped, the div stays XHTML
    assert "patients &lt;55 years" in rule(bundle, "ORTH-3")["text"]["div"]


def test_applicability_conditions_reference_criteria_in_the_graph(bundle: dict) -> None:
    graph = guideline_graph()
    # gkg:Criterion is not among the closed namespace's terms: spelt out
    criterion_class = URIRef(BASE + "ontology#Criterion")
    criteria = set(graph.transitive_subjects(RDFS.subClassOf, criterion_class))
    assert len(criteria) > 1
    for plan in plans(bundle, "eca-rule"):
        [condition] = plan["action"][0]["condition"]
        expression = condition["expression"]
        assert condition["kind"] == "applicability"
        assert expression["language"] == CRITERION_LANGUAGE
        assert expression["description"]  # the criterion in words stays beside the IRI
        criterion = URIRef(expression["expression"])
        assert graph.value(URIRef(plan["url"]), GKG.applicability) == criterion
        assert set(graph.objects(criterion, RDF.type)) & criteria, criterion
