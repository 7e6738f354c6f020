"""`guidelinekg export-fhir`: the guideline as CPG-on-FHIR artefacts in one R4 Bundle.

The Bundle is written by the command, read back with the fhir.resources R4B models, and its
content is checked against the guideline graph: every recommendation, its verbatim text, its
criterion, strength and direction, citations, actions and doses.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rdflib.namespace import RDF, SKOS

from guidelinekg.cli import main
from guidelinekg.fhir_export import BUNDLE_FILE, build_bundle, read_bundle
from guidelinekg.loading import BASE, guideline_graph
from guidelinekg.namespaces import GKG

STRENGTH = "http://hl7.org/fhir/StructureDefinition/cqf-strengthOfRecommendation"
DIRECTION = "http://hl7.org/fhir/uv/cpg/StructureDefinition/cpg-directionOfRecommendation"


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
    assert len(read.entry) == len(bundle["entry"])
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
    assert action["condition"][0]["expression"]["expression"] == \
        "all of: HR-positive (any of: ER positive, PR positive); HER2 negative; no visceral crisis"
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
    assert loading["route"]["coding"] == [{"system": "http://snomed.info/sct",
                                           "code": "47625008"}]
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
