"""`guidelinekg synth`: a synthetic cohort made from template records, varied within the
vocabulary, reproducible by its seed, with the share of invalid records asked for; as
N-Triples, as FHIR Bundles, and as a FHIR Bulk Data export of the same patients."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from rdflib import BNode, Graph, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import RDF

from guidelinekg.bulk_data import (
    export_label,
    export_server,
    group_by_patient,
    import_groups,
    ndjson_lines,
    patient_documents,
    read_directory,
)
from guidelinekg.cli import main
from guidelinekg.derivation import derive
from guidelinekg.fhir_identity import file_labels, identifier_iri
from guidelinekg.fhir_import.importer import HANDLERS
from guidelinekg.loading import PREFIXES, parse_rdf_file
from guidelinekg.namespaces import GKG
from guidelinekg.patients import load_patient_input
from guidelinekg.resources import examples_dir
from guidelinekg.synth import SynthOptions, synthesize, templates_from, write_ntriples
from guidelinekg.synth_fhir import (
    IDENTIFIER_SYSTEM,
    SERVER_BASE,
    FhirOptions,
    bundle_file_name,
    bundle_to_export_resources,
    default_fhir_templates,
    fhir_templates_from,
    synthesize_fhir,
    write_bundles,
    write_ndjson,
)
from guidelinekg.synth_values import CodeChoices
from guidelinekg.validation import validate_patients
from json_contract import validation_report

PATIENT = URIRef(PREFIXES["gkg"] + "Patient")
TEMPLATE = examples_dir() / "patients" / "hr-positive-her2-negative-bone-only.ttl"


def _cohort(tmp_path: Path, *args: str) -> Path:
    out = tmp_path / "cohort.nt"
    result = subprocess.run([sys.executable, "-m", "guidelinekg.cli", "synth", *args,
                             "-o", str(out)], capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stderr
    return out


def test_the_same_seed_gives_the_same_cohort_byte_for_byte(tmp_path: Path) -> None:
    first = _cohort(tmp_path / "a", "--patients", "30", "--seed", "7", "--from", str(TEMPLATE))
    second = _cohort(tmp_path / "b", "--patients", "30", "--seed", "7", "--from", str(TEMPLATE))
    other = _cohort(tmp_path / "c", "--patients", "30", "--seed", "8", "--from", str(TEMPLATE))
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()


def test_blank_nodes_keep_the_same_labels_for_the_same_seed(tmp_path: Path) -> None:
    # The bundled templates hold blank dose specifications, labelled anew by every parse.
    first = _cohort(tmp_path / "a", "--patients", "20", "--seed", "3")
    second = _cohort(tmp_path / "b", "--patients", "20", "--seed", "3")
    assert b"_:" in first.read_bytes()
    assert first.read_bytes() == second.read_bytes()
    blank = parse_rdf_file(first)
    dose_nodes = {s for s, o in blank.subject_objects(GKG.hasDose) if isinstance(o, BNode)}
    owners = [set(blank.subjects(GKG.hasDose, o)) for o in set(blank.objects(None, GKG.hasDose))
              if isinstance(o, BNode)]
    assert dose_nodes and all(len(found) == 1 for found in owners)  # no patient shares one


def test_patients_are_distinct_and_keep_the_template_shape(tmp_path: Path) -> None:
    graph = parse_rdf_file(_cohort(tmp_path, "--patients", "25", "--from", str(TEMPLATE),
                                   "--invalid", "0", "--incomplete", "0"))
    patients = set(graph.subjects(RDF.type, PATIENT))
    assert len(patients) == 25
    template = parse_rdf_file(TEMPLATE)
    # Every patient has the template's items, none shared with another patient.
    subject = URIRef(PREFIXES["gkg"] + "subject")
    items = {p: set(graph.subjects(subject, p)) for p in patients}
    assert {len(found) for found in items.values()} == {
        len(set(template.subjects(subject, None)))}
    assert len(set().union(*items.values())) == sum(len(found) for found in items.values())
    validation = validate_patients(graph)
    assert not validation.has_violations


def test_the_invalid_share_is_refused_by_the_shapes() -> None:
    template = templates_from(parse_rdf_file(TEMPLATE))
    options = SynthOptions(patients=200, seed=3, invalid_rate=0.25, incomplete_rate=0.0)
    graph = Graph()
    for triples in synthesize(options, template):
        for triple in triples:
            graph.add(triple)
    refused = validate_patients(graph).patients_with("Violation") - {None}
    # 25 % asked for: the shapes refuse those and only those (binomial, seed fixed).
    assert 30 <= len(refused) <= 70
    assert len(set(graph.subjects(RDF.type, PATIENT))) == 200


def test_values_vary_within_their_value_sets() -> None:
    template = templates_from(parse_rdf_file(TEMPLATE))
    options = SynthOptions(patients=60, seed=5, invalid_rate=0.0, incomplete_rate=0.0,
                           recode_rate=1.0)
    value_code = URIRef(PREFIXES["gkg"] + "valueCode")
    codes = {o for triples in synthesize(options, template)
             for _, p, o in triples if p == value_code}
    in_template = set(parse_rdf_file(TEMPLATE).objects(None, value_code))
    assert len(codes) > len(in_template)
    assert all(str(code).startswith(PREFIXES["code"]) for code in codes)


def test_write_ntriples_streams_patient_by_patient(tmp_path: Path) -> None:
    template = templates_from(parse_rdf_file(TEMPLATE))
    path = tmp_path / "out.nt"
    with path.open("w", encoding="utf-8") as out:
        count = write_ntriples(synthesize(SynthOptions(patients=5), template), out)
    assert count == 5
    assert len(set(parse_rdf_file(path).subjects(RDF.type, PATIENT))) == 5


# --------------------------------------------------------------------------------------
# FHIR forms: one Bundle per patient, and a Bulk Data export of the same patients
# --------------------------------------------------------------------------------------

FHIR_EXAMPLES = examples_dir() / "fhir"
AS_OF = date(2027, 1, 1)  # after every (shifted) event of the templates


def _synth_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "guidelinekg.cli", "synth", *args],
                          capture_output=True, text=True, timeout=300, check=False)


def _folder_bytes(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def _import_export(folder: Path) -> Graph:
    """An NDJSON export imported patient by patient (guidelinekg.bulk_data)."""
    files = sorted(folder.glob("*.ndjson"))
    directory = read_directory(files)
    lines = [(export_label(path), number, text)
             for path in files for number, _resource, text in ndjson_lines(path)]
    groups, problems = group_by_patient(lines, directory, HANDLERS)
    assert problems == []
    labels = file_labels(export_label(path) for path in files)
    source = export_label(files[0])
    server = export_server(json.loads((folder / "manifest.json").read_text(encoding="utf-8")))
    assert server == SERVER_BASE
    return import_groups([patient_documents(resources, directory, {source: server})
                          for resources in groups.values()], labels).graph


def _medication_template(tmp_path: Path) -> Path:
    """The HR-positive example with a Medication entry (medicationReference by urn:uuid) and
    a contained Medication (medicationReference #id)."""
    bundle = json.loads((FHIR_EXAMPLES / "hr-positive-bone-only-denosumab.json").read_text())
    medication = "urn:uuid:1b000001-0099-4000-8000-000000000099"
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource.get("id") == "letrozole":
            del resource["medicationCodeableConcept"]
            resource["medicationReference"] = {"reference": medication}
        elif resource.get("id") == "denosumab":
            resource["contained"] = [{"resourceType": "Medication", "id": "xgeva",
                                      "code": resource.pop("medicationCodeableConcept")}]
            resource["medicationReference"] = {"reference": "#xgeva"}
    bundle["entry"].append({"fullUrl": medication, "resource": {
        "resourceType": "Medication", "id": "letrozole-tablet", "code": {"coding": [{
            "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "72965",
            "display": "Letrozole"}]}}})
    path = tmp_path / "templates" / "with-medication.json"
    path.parent.mkdir()
    path.write_text(json.dumps(bundle), encoding="utf-8")
    return path


def _dates(value: object) -> list[str]:
    """The full dates of a resource or Bundle, in document order."""
    if isinstance(value, list):
        return [found for item in value for found in _dates(item)]
    if not isinstance(value, dict):
        return []
    found = []
    for key, item in value.items():
        if isinstance(item, str) and re.match(r"^\d{4}-\d{2}-\d{2}", item) \
                and key not in ("id", "fullUrl", "reference", "code", "value"):
            found.append(item[:10])
        else:
            found += _dates(item)
    return found


def test_the_bundled_fhir_templates_import_cleanly_and_conform() -> None:
    loaded = load_patient_input([FHIR_EXAMPLES], quiet=True)
    assert loaded.fhir is not None
    assert len(loaded.fhir.patients) == len(list(FHIR_EXAMPLES.glob("*.json"))) >= 5
    assert not validate_patients(loaded.graph).has_violations
    assert len(default_fhir_templates()) == len(loaded.fhir.patients)


def test_fhir_forms_give_the_same_bytes_for_the_same_seed(tmp_path: Path) -> None:
    for form in ("fhir", "ndjson"):
        runs = {}
        for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
            folder = tmp_path / form / name
            result = _synth_cli("--patients", "20", "--seed", seed, "--format", form,
                                "--output", str(folder))
            assert result.returncode == 0, result.stderr
            assert "20 patients" in result.stderr
            runs[name] = _folder_bytes(folder)
        assert runs["a"] == runs["b"]
        assert runs["a"] != runs["c"]
    bundles = sorted((tmp_path / "fhir" / "a").iterdir())
    assert [path.name for path in bundles][:2] == ["patient-7-000001.json",
                                                   "patient-7-000002.json"]
    assert len(bundles) == 20
    export = tmp_path / "ndjson" / "a"
    names = {path.name for path in export.iterdir()}
    assert {"Patient.ndjson", "Condition.ndjson", "Observation.ndjson",
            "MedicationRequest.ndjson"} <= names
    assert all(name.endswith(".ndjson") for name in names - {"manifest.json"})
    manifest = json.loads((export / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["request"] == SERVER_BASE + "$export"
    assert sorted(item["url"] for item in manifest["output"]) == sorted(names - {"manifest.json"})
    patients = [json.loads(line) for line in
                (export / "Patient.ndjson").read_text(encoding="utf-8").splitlines()]
    assert [p["identifier"][0] for p in patients] == [
        {"system": IDENTIFIER_SYSTEM, "value": f"7-{n}"} for n in range(1, 21)]


def test_bundles_use_server_urls_and_exports_relative_references(tmp_path: Path) -> None:
    template = fhir_templates_from([_medication_template(tmp_path)])
    cohort = list(synthesize_fhir(FhirOptions(patients=4, seed=2, incomplete_rate=0.0),
                                  template))
    for patient in cohort:
        entries = patient.bundle["entry"]
        assert patient.bundle["type"] == "collection"
        assert all(e["fullUrl"] == f"{SERVER_BASE}{e['resource']['resourceType']}/"
                   f"{e['resource']['id']}" for e in entries)
        local = {e["fullUrl"].removeprefix(SERVER_BASE) for e in entries}
        text = json.dumps(patient.bundle)
        references = set(re.findall(r'"reference": "([^"]+)"', text))
        assert references - {"#xgeva"} <= local
        exported = bundle_to_export_resources(patient.bundle)
        assert [r["id"] for r in exported] == [e["resource"]["id"] for e in entries]
        patient_id = exported[0]["id"]
        for resource in exported[1:]:
            subject = resource.get("subject", {}).get("reference")
            assert subject in (None, f"Patient/{patient_id}")
        request = next(r for r in exported if r.get("contained"))
        assert request["medicationReference"] == {"reference": "#xgeva"}
        assert request["contained"][0]["id"] == "xgeva"
        medication = next(r for r in exported if r["resourceType"] == "Medication")
        assert {"reference": f"Medication/{medication['id']}"} in [
            r.get("medicationReference") for r in exported]
        assert "urn:uuid:" not in json.dumps(exported)
        assert SERVER_BASE not in json.dumps(exported)
        assert json.dumps(patient.bundle) == text  # the Bundle is left as it was
    # Ids are fresh for every patient; a resource without an id takes its fullUrl's UUID.
    ids = [e["resource"]["id"] for p in cohort for e in p.bundle["entry"]]
    assert len(ids) == len(set(ids))
    bare = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:0f0f0f0f-0000-4000-8000-000000000001",
         "resource": {"resourceType": "Patient"}},
        {"fullUrl": "urn:uuid:0f0f0f0f-0000-4000-8000-000000000002",
         "resource": {"resourceType": "Condition", "subject": {
             "reference": "urn:uuid:0f0f0f0f-0000-4000-8000-000000000001"}}}]}
    assert bundle_to_export_resources(bare) == [
        {"resourceType": "Patient", "id": "0f0f0f0f-0000-4000-8000-000000000001"},
        {"resourceType": "Condition", "id": "0f0f0f0f-0000-4000-8000-000000000002",
         "subject": {"reference": "Patient/0f0f0f0f-0000-4000-8000-000000000001"}}]


def test_the_shares_asked_for_are_made_and_are_what_they_say() -> None:
    templates = {t.name: t for t in default_fhir_templates()}
    choices = CodeChoices()
    cohort = list(synthesize_fhir(FhirOptions(patients=200, seed=3), list(templates.values())))
    incomplete = [p for p in cohort if p.incomplete]
    invalid = [p for p in cohort if p.invalid]
    outside = [p for p in cohort if p.outside]
    # 20 %, 5 % and 10 % asked for (binomial on 200, seed fixed).
    assert 24 <= len(incomplete) <= 56
    assert 3 <= len(invalid) <= 18
    assert 8 <= len(outside) <= 33
    assert len({p.template for p in cohort}) == len(templates)
    for patient in cohort:
        size = len(templates[patient.template].resources)
        assert len(patient.bundle["entry"]) == size - patient.incomplete
        resources = [e["resource"] for e in patient.bundle["entry"]]
        born = resources[0]["birthDate"]
        events = _dates(resources[1:])
        assert (born > max(events)) is patient.invalid
        primaries = [r for r in resources if r["resourceType"] == "Condition"
                     and choices.read(r["code"], choices.primary_roles)]
        others = [r for r in resources if r["resourceType"] == "Condition"
                  and choices.read(r["code"], ("primary-cancer-other-site",))]
        if patient.outside:
            assert (len(others), len(primaries)) == (1, 0)
        else:  # an incomplete record may have lost its primary cancer
            assert (len(others), len(primaries)) in ([(0, 1), (0, 0)] if patient.incomplete
                                                     else [(0, 1)])


def test_values_vary_within_the_code_maps_and_dates_keep_their_order() -> None:
    templates = {t.name: t for t in default_fhir_templates()}
    choices = CodeChoices()
    exact = {(row.system, row.code) for row in choices.map.rows if not row.code.endswith("*")}
    options = FhirOptions(patients=80, seed=5, incomplete_rate=0.0, invalid_rate=0.0,
                          outside_rate=0.0, recode_rate=1.0)
    codes_in_templates = {(c["system"], c["code"]) for t in templates.values()
                          for c in _codings(list(t.resources))}
    stage_roles = tuple(choices.kept_value_roles)
    results, stages = set(), set()
    for patient in synthesize_fhir(options, list(templates.values())):
        resources = [e["resource"] for e in patient.bundle["entry"]]
        # Every code written is a template's or an exact code of the code maps.
        assert {(c["system"], c["code"]) for c in _codings(resources)} <= \
            codes_in_templates | exact
        for resource in resources:
            if resource["resourceType"] == "Observation" and "valueCodeableConcept" in resource:
                results.add(json.dumps(resource["valueCodeableConcept"]))
            for stage in [*resource.get("stage", []), resource.get("valueCodeableConcept")]:
                found = choices.read((stage or {}).get("summary", stage), stage_roles)
                if found is not None:
                    stages.add(str(found.term))
        # One offset for every date of the record.
        template = _dates(list(templates[patient.template].resources))
        shifts = {(date.fromisoformat(t) - date.fromisoformat(d)).days
                  for t, d in zip(template, _dates(resources), strict=True)}
        assert len(shifts) == 1
        assert 0 <= shifts.pop() <= options.max_shift_days
    in_templates = {json.dumps(r.get("valueCodeableConcept")) for t in templates.values()
                    for r in t.resources if r["resourceType"] == "Observation"}
    assert len(results - in_templates) >= 5
    assert stages == {PREFIXES["code"] + "stage-iv"}  # the templates' stage is kept


def _codings(value: object) -> list[dict]:
    if isinstance(value, list):
        return [found for item in value for found in _codings(item)]
    if not isinstance(value, dict):
        return []
    found = [value] if isinstance(value.get("system"), str) and "code" in value \
        and "value" not in value else []
    for item in value.values():
        found += _codings(item)
    return found


def test_bundles_and_their_export_import_to_the_same_graph(tmp_path: Path) -> None:
    for name, templates, count in (("examples", None, 30),
                                   ("medication", _medication_template(tmp_path), 8)):
        chosen = None if templates is None else fhir_templates_from([templates])
        options = FhirOptions(patients=count, seed=9)
        if templates is None:  # every bundled template is in the cohort
            assert {p.template for p in synthesize_fhir(options)} == {
                path.stem for path in FHIR_EXAMPLES.glob("*.json")}
        bundles, export = tmp_path / name / "bundles", tmp_path / name / "export"
        bundles.mkdir(parents=True)
        export.mkdir()
        assert write_bundles(synthesize_fhir(options, chosen), bundles) == count
        assert write_ndjson(synthesize_fhir(options, chosen), export) == count
        from_bundles = load_patient_input([bundles], quiet=True)
        from_export = _import_export(export)
        expected = {identifier_iri(IDENTIFIER_SYSTEM, f"9-{n}") for n in range(1, count + 1)}
        assert set(from_bundles.graph.subjects(RDF.type, PATIENT)) == expected
        assert set(from_export.subjects(RDF.type, PATIENT)) == expected
        assert len(from_bundles.graph) == len(from_export) > 20 * count
        # The manifest names the server whose URLs are the Bundles' fullUrls: one graph.
        assert isomorphic(from_bundles.graph, from_export)
        if templates is not None:
            lines = (export / "Medication.ndjson").read_text(encoding="utf-8").splitlines()
            assert len(lines) == count  # each patient's Medication once, contained ones not


def test_invalid_patients_are_refused_valid_ones_conform_and_outside_ones_are_out(
        tmp_path: Path) -> None:
    options = FhirOptions(patients=40, seed=12, invalid_rate=0.25, outside_rate=0.25)
    cohort = list(synthesize_fhir(options))
    folder = tmp_path / "all"
    folder.mkdir()
    write_bundles(cohort, folder)
    iri = {p.number: identifier_iri(*p.identifier) for p in cohort}
    invalid = {iri[p.number] for p in cohort if p.invalid}
    outside = {iri[p.number] for p in cohort if p.outside and not p.invalid}
    assert invalid and outside
    loaded = load_patient_input([folder], quiet=True)
    assert validate_patients(loaded.graph).patients_with("Violation") == invalid
    # guidelinekg validate: exit 1 for the invalid ones, every one refused; 0 for the others.
    for kind, wanted in (("invalid", True), ("valid", False)):
        (tmp_path / kind).mkdir()
        for patient in cohort:
            if patient.invalid is wanted:
                name = bundle_file_name(patient)
                (tmp_path / kind / name).write_bytes((folder / name).read_bytes())
        result = subprocess.run([sys.executable, "-m", "guidelinekg.cli", "validate",
                                 "--format", "json", str(tmp_path / kind)],
                                capture_output=True, text=True, timeout=300, check=False)
        assert result.returncode == (1 if wanted else 0), result.stderr
        report = validation_report(result.stdout)
        refused = {URIRef(r["patient"]) for r in report["results"]
                   if r["severity"] == "Violation"}
        assert refused == (invalid if wanted else set())
        if wanted:
            assert all("birth date" in r["message"] for r in report["results"]
                       if r["severity"] == "Violation")
    valid = load_patient_input([tmp_path / "valid"], quiet=True).graph
    # The patients recoded outside the population are the ones the guideline says are out.
    derivation = derive(valid, AS_OF)
    out = {URIRef(r.patient) for r in derivation.patients if r.population.status == "out"}
    assert out == outside


def test_fhir_command_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synth", "--patients", "2", "--format", "fhir"]) == 2
    assert "--output" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "old.json").write_text("{}", encoding="utf-8")
    assert main(["synth", "--patients", "2", "--format", "ndjson",
                 "--output", str(tmp_path / "full")]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["synth", "--patients", "2", "--outside", "0.5"]) == 2
    assert "--outside" in capsys.readouterr().err
    assert main(["synth", "--patients", "2", "--format", "fhir", "--outside", "1.5",
                 "--output", str(tmp_path / "new")]) == 2
    templates = tmp_path / "not-bundles"
    templates.mkdir()
    (templates / "p.json").write_text(json.dumps({"resourceType": "Patient"}), "utf-8")
    assert main(["synth", "--patients", "2", "--format", "fhir", "--from", str(templates),
                 "--output", str(tmp_path / "new")]) == 2
    assert "Bundle" in capsys.readouterr().err
    # --from a folder of Bundles: only those templates are used.
    assert main(["synth", "--patients", "3", "--format", "fhir", "--from",
                 str(_medication_template(tmp_path)), "--output", str(tmp_path / "out")]) == 0
    for path in (tmp_path / "out").iterdir():
        kinds = [e["resource"]["resourceType"] for e in json.loads(path.read_text())["entry"]]
        assert "Medication" in kinds
