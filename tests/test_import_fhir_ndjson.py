"""``guidelinekg import-fhir`` on FHIR Bulk Data exports: read as the cohort run reads them
(the same grouping by patient), the graph and the import report written as for Bundles, so
that a resource the cohort run counts as ignored has a line saying why."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from rdflib import Graph, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import RDF

from guidelinekg import cli
from guidelinekg.namespaces import GKG

SERVER = "https://ehr.example.org/fhir/"
OTHER_SERVER = "https://other.example.org/fhir/"
MRN = "http://hospital.example.org/mrn"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"


def patient(local_id: str, mrn: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": local_id, "gender": "female",
            "birthDate": "1962-03-14", "identifier": [{"system": MRN, "value": mrn}]}


def condition(local_id: str, subject: str) -> dict[str, Any]:
    return {"resourceType": "Condition", "id": local_id,
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "code": "active"}]},
            "verificationStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                "code": "confirmed"}]},
            "code": {"coding": [{"system": SNOMED, "code": "254837009"}]},
            "subject": {"reference": subject}, "onsetDateTime": "2026-09-01"}


def observation(local_id: str, subject: str, code: str, value: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": local_id, "status": "final",
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "subject": {"reference": subject}, "effectiveDateTime": "2026-09-03",
            "valueCodeableConcept": {"coding": [{"system": LOINC, "code": value}]}}


def procedure(local_id: str, subject: str) -> dict[str, Any]:
    return {"resourceType": "Procedure", "id": local_id, "status": "completed",
            "code": {"coding": [{"system": SNOMED, "code": "34043003"}]},
            "subject": {"reference": subject}, "performedDateTime": "2026-09-10"}


def letrozole(local_id: str, subject: str) -> list[dict[str, Any]]:
    """A Medication and an order that references it (an export writes the Medication once,
    naming no patient)."""
    return [{"resourceType": "Medication", "id": f"{local_id}-med", "code": {"coding": [
                {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "72965"}]}},
            {"resourceType": "MedicationRequest", "id": local_id, "status": "active",
             "intent": "order", "subject": {"reference": subject},
             "medicationReference": {"reference": f"Medication/{local_id}-med"},
             "dosageInstruction": [{"timing": {"repeat": {
                 "frequency": 1, "period": 1, "periodUnit": "d",
                 "boundsPeriod": {"start": "2026-09-15"}}}}]}]


def record(local_id: str, mrn: str, er_subject: str | None = None) -> list[dict[str, Any]]:
    """One patient's resources as an export writes them (references relative); the ER
    result names ``er_subject`` when given (a patient of another server)."""
    subject = f"Patient/{local_id}"
    return [patient(local_id, mrn), condition(f"{local_id}-primary", subject),
            observation(f"{local_id}-er", er_subject or subject, "85337-4", "LA6576-8"),
            observation(f"{local_id}-her2", subject, "48676-1", "LA6577-6"),
            procedure(f"{local_id}-dental", subject),
            *letrozole(f"{local_id}-letrozole", subject)]


def write_export(folder: Path, resources: list[dict[str, Any]], server: str | None = SERVER,
                 extra_lines: dict[str, list[str]] | None = None) -> Path:
    """An export: a .ndjson file per resource type, and a manifest naming ``server``."""
    folder.mkdir(parents=True)
    by_type: dict[str, list[str]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(json.dumps(resource))
    for kind, lines in (extra_lines or {}).items():
        by_type.setdefault(kind, []).extend(lines)
    for kind, lines in by_type.items():
        (folder / f"{kind}.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if server is not None:
        (folder / "manifest.json").write_text(json.dumps({
            "transactionTime": "2026-11-30T00:00:00Z", "request": f"{server}Patient/$export",
            "requiresAccessToken": True, "output": [], "error": []}), encoding="utf-8")
    return folder


def write_bundle(path: Path, resources: list[dict[str, Any]], server: str = SERVER) -> Path:
    """The same resources as a collection Bundle of the server (each with its URL there)."""
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": f"{server}{resource['resourceType']}/{resource['id']}",
         "resource": resource} for resource in resources]}), encoding="utf-8")
    return path


def import_fhir(capsys: pytest.CaptureFixture[str], output: Path, *inputs: Path | str
                ) -> tuple[int, str, str]:
    """import-fhir of the inputs, the graph to ``output``: the exit code, the report
    (standard output) and standard error."""
    code = cli.main(["import-fhir", *map(str, inputs), "-o", str(output)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def graph_of(path: Path) -> Graph:
    return Graph().parse(path, format="turtle")


def ignored_line(report: str, resource: str) -> str:
    (line,) = [text.strip() for text in report.splitlines()
               if text.strip().startswith(f"{resource} (") and ": ignored: " in text]
    return line


# --------------------------------------------------------------------------------------


def test_an_exports_resource_of_another_servers_patient_is_said_as_for_a_bundle(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    resources = record("p1", "0001", er_subject=f"{OTHER_SERVER}Patient/p1")
    export = write_export(tmp_path / "export", resources)
    bundle = write_bundle(tmp_path / "bundle.json", resources)

    code, report, err = import_fhir(capsys, tmp_path / "export.ttl", export)
    assert code == 0, err
    assert report.startswith(f"wrote {tmp_path / 'export.ttl'}\n")
    er = f"{SERVER}Observation/p1-er"
    from_export = ignored_line(report, er)
    assert f"its subject {OTHER_SERVER}Patient/p1 is not a patient of this input" in from_export

    code, bundle_report, err = import_fhir(capsys, tmp_path / "bundle.ttl", bundle)
    assert code == 0, err
    # The same words as for the Bundle of the same resources.
    assert from_export == ignored_line(bundle_report, er)
    assert isomorphic(graph_of(tmp_path / "export.ttl"), graph_of(tmp_path / "bundle.ttl"))


def test_the_cohort_runs_summary_names_an_import_fhir_command_that_says_why(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    export = write_export(tmp_path / "export dir",
                          record("p1", "0001", er_subject=f"{OTHER_SERVER}Patient/p1"))
    code = cli.main(["recommend", str(export), "--as-of", "2026-12-01", "--format", "jsonl"])
    err = capsys.readouterr().err
    assert code in (0, 1), err
    found = re.search(r"\(FHIR: \d+ resources or elements imported, (\d+) ignored: "
                      r"guidelinekg (import-fhir .*) says why\)", err)
    assert found, err
    assert found[1] == "1"
    assert found[2] == f"import-fhir '{export}'"  # quoted for the shell
    code, report, _ = import_fhir(capsys, tmp_path / "out.ttl", export)
    assert code == 0
    assert report.count(": ignored: ") == 1


def test_an_export_and_bundles_of_the_same_resources_give_the_same_graph(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = record("p1", "0001"), record("p2", "0002")
    # Two exports of one server, each of one patient; and Bundles of the same resources.
    exports = [write_export(tmp_path / "a" / "export", first),
               write_export(tmp_path / "b" / "export", second)]
    bundles = [write_bundle(tmp_path / "p1.json", first),
               write_bundle(tmp_path / "p2.json", second)]
    code, report, err = import_fhir(capsys, tmp_path / "exports.ttl", *exports)
    assert code == 0, err
    assert ": ignored: " not in report
    code, _, err = import_fhir(capsys, tmp_path / "bundles.ttl", *bundles)
    assert code == 0, err
    from_exports, from_bundles = graph_of(tmp_path / "exports.ttl"), \
        graph_of(tmp_path / "bundles.ttl")
    assert isomorphic(from_exports, from_bundles)
    # Named by their identifiers, whichever way they came.
    assert set(from_exports.subjects(RDF.type, GKG.Patient)) == {
        URIRef(f"urn:guidelinekg:patient:http%3A%2F%2Fhospital.example.org%2Fmrn:{mrn}")
        for mrn in ("0001", "0002")}
    # Every resource has its line, grouped by export.
    for local_id in ("p1", "p1-primary", "p1-er", "p1-her2", "p1-dental", "p1-letrozole",
                     "p2-er"):
        assert re.search(rf"/{local_id} \(\w+\): imported: ", report), local_id
    assert f"  {exports[0]}: patient " in report and f"  {exports[1]}: patient " in report


def test_ndjson_files_given_directly_are_read_as_an_export_not_as_json(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = "".join(json.dumps(resource) + "\n" for resource in record("p1", "0001"))
    single = tmp_path / "everything.ndjson"
    single.write_text(lines, encoding="utf-8")
    code, report, err = import_fhir(capsys, tmp_path / "one.ttl", single)
    assert code == 0, err
    assert "not valid JSON" not in err + report
    graph = graph_of(tmp_path / "one.ttl")
    (person,) = graph.subjects(RDF.type, GKG.Patient)
    # the condition, two results, the procedure, the order
    assert len(set(graph.subjects(GKG.subject, person))) == 5
    assert "Observation/p1-er (Observation): imported: gkg:EstrogenReceptorStatus" in report

    # An export's files given one by one are the export (their folder).
    export = write_export(tmp_path / "export", record("p1", "0001"))
    files = sorted(export.glob("*.ndjson"))
    code, _, err = import_fhir(capsys, tmp_path / "files.ttl", *files, export / "manifest.json")
    assert code == 0, err
    code, _, err = import_fhir(capsys, tmp_path / "folder.ttl", export)
    assert code == 0, err
    assert isomorphic(graph_of(tmp_path / "files.ttl"), graph_of(tmp_path / "folder.ttl"))


def test_lines_given_to_no_patient_each_have_a_line_saying_why(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    orphan = condition("orphan", "Patient/p1")
    del orphan["subject"]
    export = write_export(tmp_path / "export", record("p1", "0001"), extra_lines={
        "Condition": [json.dumps(orphan)], "Observation": ["{not json"]})
    code, report, err = import_fhir(capsys, tmp_path / "out.ttl", export)
    assert code == 0, err
    assert "2 input lines given to no patient:\n" in report
    assert (f"  {export / 'Condition.ndjson'} line 2 (Condition/orphan): not imported: it names "
            "no patient of the export") in report
    assert f"  {export / 'Observation.ndjson'} line 3: not imported: the line is not a FHIR " \
           "resource: " in report

    # --quiet silences the report, not these lines.
    code = cli.main(["import-fhir", str(export), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0
    assert captured.out.startswith("@prefix")
    warnings = [line for line in captured.err.splitlines()
                if line.startswith("guidelinekg import-fhir: warning: ")]
    assert len(warnings) == 2, captured.err
    assert "(Condition/orphan): not imported: it names no patient" in warnings[0]


def test_an_export_on_standard_input_is_read_as_the_same_export(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    resources = record("p1", "0001")
    data = "".join(json.dumps(resource) + "\n" for resource in resources).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, report, err = import_fhir(capsys, tmp_path / "stdin.ttl", "-")
    assert code == 0, err
    assert "Observation/p1-er (Observation): imported: " in report
    (person,) = graph_of(tmp_path / "stdin.ttl").subjects(RDF.type, GKG.Patient)
    assert str(person).startswith("urn:")
    # A Bundle on standard input is read by the Bundle reader, as before.
    bundle = write_bundle(tmp_path / "bundle.json", resources)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(bundle.read_bytes())))
    code, _, err = import_fhir(capsys, tmp_path / "bundle-stdin.ttl", "-")
    assert code == 0, err
    code, _, err = import_fhir(capsys, tmp_path / "bundle-file.ttl", bundle)
    assert code == 0, err
    assert isomorphic(graph_of(tmp_path / "bundle-stdin.ttl"),
                      graph_of(tmp_path / "bundle-file.ttl"))


def test_unreadable_input_beside_an_export_is_exit_code_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    export = write_export(tmp_path / "export", record("p1", "0001"))
    code, out, err = import_fhir(capsys, tmp_path / "out.ttl", export / "Missing.ndjson")
    assert code == 2
    assert f"{export / 'Missing.ndjson'}: no such file or folder" in err
    (export / "broken.json").write_text("{\"resourceType\": ", encoding="utf-8")
    code, out, err = import_fhir(capsys, tmp_path / "out.ttl", export)
    assert code == 2
    assert out == ""
    assert f"guidelinekg import-fhir: error: {export / 'broken.json'}: not valid JSON" in err
    assert not (tmp_path / "out.ttl").exists()


def test_a_line_that_is_not_utf8_stops_the_import_naming_its_patient(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """As a Bundle file that is not UTF-8 does: never read with its bytes replaced, nor left
    out of the patient's record."""
    export = write_export(tmp_path / "export", [*record("p1", "0001"), *record("p2", "0002")])
    dental = json.dumps({**procedure("p2-extraction", "Patient/p2"),
                         "note": [{"text": "révisée"}]}, ensure_ascii=False)
    with (export / "Procedure.ndjson").open("ab") as lines:
        lines.write(dental.encode().replace("é".encode(), b"\xe9") + b"\n")
    code, out, err = import_fhir(capsys, tmp_path / "out.ttl", export)
    assert code == 2
    assert out == ""
    assert not (tmp_path / "out.ttl").exists()
    assert f"error: {export / 'Procedure.ndjson'}, line 3: the line is not UTF-8 text" in err
    assert f"the line names Patient/p2 of the export {export}" in err


def test_help_says_an_export_is_held_whole(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["import-fhir", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "FHIR Bulk Data export" in text
    assert "held whole in memory" in text


def test_a_folder_of_bundles_and_an_export_gives_both_and_a_refused_record_is_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "input"
    write_export(folder, record("p1", "0001"))
    write_bundle(folder / "p2.json", record("p2", "0002"))
    code, report, err = import_fhir(capsys, tmp_path / "out.ttl", folder)
    assert code == 0, err
    assert len(set(graph_of(tmp_path / "out.ttl").subjects(RDF.type, GKG.Patient))) == 2
    assert f"  {folder / 'p2.json'}: patient " in report and f"  {folder}: patient " in report

    # A resource the importer cannot read stops it, as in a Bundle: exit 2, naming it.
    uncoded = observation("p1-uncoded", "Patient/p1", "85337-4", "LA6576-8")
    del uncoded["code"]
    with (folder / "Observation.ndjson").open("a", encoding="utf-8") as stream:
        stream.write(json.dumps(uncoded) + "\n")
    code, out, err = import_fhir(capsys, tmp_path / "refused.ttl", folder)
    assert code == 2
    assert out == ""
    assert "Observation/p1-uncoded" in err and "has no code" in err
    assert not (tmp_path / "refused.ttl").exists()
