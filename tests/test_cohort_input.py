"""Cohorts read as a stream (guidelinekg.cohort_input): files and folders of RDF, FHIR Bundles
and FHIR Bulk Data NDJSON cut into buckets of whole patients on disk. The results are the
whole run's, whatever the partition size, however the files split a patient's record; what
belongs to no patient is said, a line each."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from rdflib import BNode, Graph, URIRef
from rdflib.namespace import RDF

from guidelinekg.bulk_data import ndjson_lines
from guidelinekg.cohort_input import read_cohort
from guidelinekg.cohorts import (
    CohortSettings,
    evaluate_buckets,
    evaluate_cohort,
    problem_line,
    worker_pool,
)
from guidelinekg.loading import PREFIXES, parse_rdf_file
from guidelinekg.patients import load_patient_input
from guidelinekg.resources import examples_dir
from json_contract import validation_line

AS_OF = date(2026, 12, 1)
GKG = PREFIXES["gkg"]
FHIR = Path(__file__).parent / "data" / "fhir"
EXAMPLES = examples_dir() / "patients"


def _normalised(line: str) -> dict:
    """A result line with blank-node focus nodes (named at random by each reader) blanked."""
    document = json.loads(line)
    for violation in document.get("violations", ()):
        if violation["focus"].startswith("_:"):
            violation["focus"] = "_:blank"
    return document


def _key(document: dict) -> tuple[str, str, str]:
    return (document.get("patient") or "", document.get("guideline", ""),
            json.dumps(document, sort_keys=True))


def streamed(paths: list[Path], size: int = 500, workers: int = 1) -> list[dict]:
    with worker_pool(workers) as mapper:
        cohort = read_cohort(paths, size, mapper)
        try:
            lines = [problem_line(problem) for problem in cohort.problems]
            for outcome in evaluate_buckets(cohort.buckets, CohortSettings(AS_OF), size,
                                            mapper):
                lines += outcome.lines
        finally:
            cohort.close()
    return sorted((_normalised(line) for line in lines), key=_key)


def whole(paths: list[Path]) -> list[dict]:
    graph = load_patient_input(paths, quiet=True).graph
    lines = [line for outcome in evaluate_cohort(graph, CohortSettings(AS_OF), 10**6, 1)
             for line in outcome.lines]
    return sorted((_normalised(line) for line in lines), key=_key)


@pytest.fixture(scope="module")
def examples_whole() -> list[dict]:
    return whole([EXAMPLES])


@pytest.mark.parametrize(("size", "workers"), [(1, 1), (3, 1), (500, 1), (2, 2)])
def test_streamed_examples_give_the_whole_runs_results(
        examples_whole: list[dict], size: int, workers: int) -> None:
    assert streamed([EXAMPLES], size, workers) == examples_whole


def _example(name: str) -> Graph:
    return parse_rdf_file(EXAMPLES / name)


def test_a_patient_split_over_two_files_is_evaluated_whole(tmp_path: Path) -> None:
    """The patient's own triples in one file, its record items in another, another patient
    between them: each bucket still holds the whole record."""
    graph = _example("hr-positive-her2-negative-bone-only.ttl")
    patient = next(graph.subjects(RDF.type, URIRef(GKG + "Patient")))
    own, items = Graph(), Graph()
    for triple in graph:
        (own if triple[0] == patient else items).add(triple)
    (tmp_path / "a-patient.nt").write_bytes(own.serialize(format="nt", encoding="utf-8"))
    (tmp_path / "b-other.ttl").write_bytes(
        (EXAMPLES / "triple-negative-brca1.ttl").read_bytes())
    (tmp_path / "c-items.ttl").write_bytes(items.serialize(format="turtle", encoding="utf-8"))
    results = streamed([tmp_path], size=1)
    assert results == whole([tmp_path])
    assert [d["patient"] for d in results] == sorted(
        [str(patient), *(str(p) for p in _example("triple-negative-brca1.ttl").subjects(
            RDF.type, URIRef(GKG + "Patient")))])
    assert not any(d.get("refused") for d in results)


def test_triples_of_no_patient_are_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "patient.ttl").write_bytes(
        (EXAMPLES / "triple-negative-brca1.ttl").read_bytes())
    (tmp_path / "orphan.nt").write_text(
        f"<http://example.org/item/1> <{RDF.type}> <{GKG}HER2Status> .\n"
        f"<http://example.org/item/1> <{GKG}valueCode> <{GKG}Positive> .\n", encoding="utf-8")
    results = streamed([tmp_path], size=1)
    refused = [d for d in results if d.get("refused")]
    assert len(refused) == 1 and refused[0]["patient"] is None
    assert results == whole([tmp_path])


def test_blank_nodes_of_two_files_stay_two(tmp_path: Path) -> None:
    """``_:dose`` in two N-Triples files are two nodes: two patients are not joined by it."""
    for number, name in enumerate(("hr-positive-her2-negative-bone-only.ttl",
                                   "her2-positive-trastuzumab-3-weekly.ttl")):
        graph = _example(name)
        labels = {node: BNode(f"b{index}") for index, node in enumerate(
            {term for triple in graph for term in triple if isinstance(term, BNode)})}
        renamed = Graph()
        for triple in graph:
            renamed.add(tuple(labels.get(term, term) for term in triple))  # type: ignore[arg-type]
        (tmp_path / f"{number}.nt").write_bytes(renamed.serialize(format="nt",
                                                                  encoding="utf-8"))
    cohort = read_cohort([tmp_path], 1)
    try:
        assert len(cohort.buckets) == 2 and cohort.patients == 2
    finally:
        cohort.close()
    assert streamed([tmp_path], size=1) == whole([tmp_path])


def _bundle(name: str) -> dict:
    return json.loads((FHIR / name).read_text(encoding="utf-8"))


def test_bundle_files_that_name_one_patient_are_imported_together(tmp_path: Path) -> None:
    """A Bundle split in two files (the second refers to the first's patient by its
    urn:uuid), with other Bundles: imported together, as a whole import does."""
    bundle = _bundle("hr-positive-bone-only-denosumab.json")
    entries = bundle["entry"]
    first = {**bundle, "entry": entries[:6]}
    second = {**bundle, "entry": entries[6:]}
    (tmp_path / "a.json").write_text(json.dumps(first), encoding="utf-8")
    (tmp_path / "b.json").write_text(
        (FHIR / "triple-negative-germline-brca1.json").read_text(encoding="utf-8"),
        encoding="utf-8")
    (tmp_path / "c.json").write_text(json.dumps(second), encoding="utf-8")
    results = streamed([tmp_path], size=1)
    assert results == whole([tmp_path])
    assert len({d["patient"] for d in results}) == 2


def _write_ndjson(folder: Path, resources: list[dict]) -> None:
    folder.mkdir(parents=True)
    by_type: dict[str, list[dict]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    for kind, items in by_type.items():
        (folder / f"{kind}.ndjson").write_text(
            "".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")


PATIENT_ONE = {"resourceType": "Patient", "id": "1", "birthDate": "1960-01-01",
               "gender": "female"}


def test_ndjson_lines_of_no_patient_are_each_a_refusal_line(tmp_path: Path) -> None:
    export = tmp_path / "export"
    _write_ndjson(export, [
        PATIENT_ONE,
        {"resourceType": "Condition", "id": "c1",
         "code": {"text": "a condition with no subject"}},
        {"resourceType": "Practitioner", "id": "dr"},
    ])
    with (export / "Observation.ndjson").open("w", encoding="utf-8") as stream:
        stream.write("this is not JSON\n")
    cohort = read_cohort([export], 10)
    try:
        # Each named by its file, where its line number points.
        problems = sorted((p.resource, p.source, p.line) for p in cohort.problems)
        assert problems == [("", str(export / "Observation.ndjson"), 1),
                            ("Condition/c1", str(export / "Condition.ndjson"), 1),
                            ("Practitioner/dr", str(export / "Practitioner.ndjson"), 1)]
        assert cohort.patients == 1
    finally:
        cohort.close()
    run = subprocess.run([sys.executable, "-m", "guidelinekg.cli", "recommend", str(export),
                          "--format", "jsonl", "--as-of", AS_OF.isoformat(), "--quiet"],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 1, run.stderr + run.stdout
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    refusals = [line for line in lines if line.get("refused")]
    assert sorted(line["resource"] or "" for line in refusals) == [
        "", "Condition/c1", "Practitioner/dr"]
    assert all(line["patient"] is None and line["because"] for line in refusals)
    assert {line["source"] for line in refusals} == {
        str(export / name) for name in ("Observation.ndjson", "Condition.ndjson",
                                        "Practitioner.ndjson")}
    assert "3 input lines given to no patient" in run.stderr


BOM_EXPORT = Path(__file__).parent / "fixtures" / "fhir-defects" / "ndjson-export-with-bom"


def test_ndjson_files_that_start_with_a_byte_order_mark_lose_no_line() -> None:
    """Each file of the export starts with a UTF-8 BOM (as .json files may): its first line
    is a resource like any other, not a refusal."""
    assert (BOM_EXPORT / "Patient.ndjson").read_bytes().startswith(b"\xef\xbb\xbf")
    (line,) = ndjson_lines(BOM_EXPORT / "Patient.ndjson")
    assert line[:2] == (1, {"resourceType": "Patient", "id": "bom", "birthDate": "1962-03-14",
                            "gender": "female", "identifier": [
                                {"system": "http://hospital.example.org", "value": "bom-1"}]})
    cohort = read_cohort([BOM_EXPORT], 10)
    try:
        assert cohort.problems == []
        assert cohort.patients == 1
    finally:
        cohort.close()
    results = streamed([BOM_EXPORT])
    assert results and not [line for line in results if line.get("refused")]
    # Its identifier is on the first line of Patient.ndjson: the patient is named by it.
    assert {line["patient"] for line in results} == {
        "urn:guidelinekg:patient:http%3A%2F%2Fhospital.example.org:bom-1"}


def test_a_cohort_n_triples_file_may_start_with_a_byte_order_mark(tmp_path: Path) -> None:
    """A cohort run streams N-Triples from disk: a leading BOM is read past there too, and
    the patient's results are those of the same file without it."""
    with_mark = Path(__file__).parent / "fixtures" / "cli-followups" / "bom-patient.nt"
    assert with_mark.read_bytes().startswith(b"\xef\xbb\xbf")
    without = tmp_path / "patient.nt"
    without.write_bytes(with_mark.read_bytes().removeprefix(b"\xef\xbb\xbf"))
    results = streamed([with_mark])
    assert results and not [line for line in results if line.get("refused")]
    assert results == streamed([without])


def test_patient_1_of_two_exports_is_two_patients(tmp_path: Path) -> None:
    for name in ("site-a", "site-b"):
        _write_ndjson(tmp_path / name, [
            PATIENT_ONE,
            {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/1"},
             "code": {"text": "an uncoded condition"}},
        ])
    cohort = read_cohort([tmp_path], 10)
    try:
        assert cohort.patients == 2
    finally:
        cohort.close()
    patients = {d["patient"] for d in streamed([tmp_path])}
    assert patients == {"urn:guidelinekg:fhir:site-a:Patient/1",
                        "urn:guidelinekg:fhir:site-b:Patient/1"}


def test_an_export_and_bundles_of_the_same_patients_give_identical_results(
        tmp_path: Path) -> None:
    """The synthetic cohort written both ways (its export's manifest names the server whose
    URLs are the Bundles' fullUrls): identical lines, and the whole run's."""
    from guidelinekg.synth_fhir import FhirOptions, synthesize_fhir, write_bundles, write_ndjson

    options = FhirOptions(patients=30, seed=5)
    (tmp_path / "bundles").mkdir()
    (tmp_path / "export").mkdir()
    write_bundles(synthesize_fhir(options), tmp_path / "bundles")
    write_ndjson(synthesize_fhir(options), tmp_path / "export")
    from_bundles = streamed([tmp_path / "bundles"], size=7, workers=2)
    assert streamed([tmp_path / "export"], size=7) == from_bundles
    assert from_bundles == whole([tmp_path / "bundles"])
    assert len({d["patient"] for d in from_bundles}) == 30
    assert any(d.get("refused") for d in from_bundles)
    assert any(not d.get("refused") and d["contraindicated"] + d["dose_checks"]
               for d in from_bundles)


def test_the_full_validation_report_goes_to_a_file(tmp_path: Path) -> None:
    report = tmp_path / "report.jsonl"
    run = subprocess.run([sys.executable, "-m", "guidelinekg.cli", "recommend", str(EXAMPLES),
                          "--format", "jsonl", "--as-of", AS_OF.isoformat(), "--quiet",
                          "--partition-size", "4", "--validation-report", str(report)],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 1, run.stderr  # the examples hold invalid records
    results = [validation_line(line) for line in report.read_text(encoding="utf-8").splitlines()]
    refusals = [json.loads(line) for line in run.stdout.splitlines()
                if json.loads(line).get("refused")]
    # Every violation of each refusal line is in the report, with its patient.
    violations = sorted((r["patient"], r["focus"], r["shape_name"]) for r in results
                        if r["severity"] == "Violation")
    assert violations == sorted((d["patient"], v["focus"], v["shape"])
                                for d in refusals for v in d["violations"])
    warnings = [r for r in results if r["severity"] == "Warning"]
    assert f"{len(warnings)} warnings" in run.stderr
    assert f"every validation result is in {report}" in run.stderr


def test_a_bucket_over_the_file_limit_is_refused_not_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import guidelinekg.cohorts as cohorts
    from guidelinekg.cohorts import evaluate_bucket
    from guidelinekg.loading import InputError

    cohort = read_cohort([EXAMPLES / "triple-negative-brca1.ttl"], 10)
    try:
        monkeypatch.setattr(cohorts, "MAX_FILE_BYTES", 100)
        with pytest.raises(InputError, match="exceed 100 bytes"):
            evaluate_bucket((str(cohort.buckets[0]), 10, CohortSettings(AS_OF)))
    finally:
        cohort.close()


def test_export_buckets_over_the_open_file_limit_are_cut_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With tiny buckets and at most 2 files open, an export is bucketed in several levels:
    every patient's lines still in one bucket, and the same results."""
    import guidelinekg.cohort_import as cohort_import
    from guidelinekg.synth_fhir import FhirOptions, synthesize_fhir, write_ndjson

    (tmp_path / "export").mkdir()
    write_ndjson(synthesize_fhir(FhirOptions(patients=12, seed=3)), tmp_path / "export")
    expected = streamed([tmp_path / "export"], size=5)
    monkeypatch.setattr(cohort_import, "NDJSON_BUCKET_BYTES", 2_000)
    monkeypatch.setattr(cohort_import, "MAX_BUCKETS", 2)
    folder = tmp_path / "buckets"
    folder.mkdir()
    problems: list = []
    jobs = cohort_import.ndjson_jobs(sorted((tmp_path / "export").glob("*.ndjson")), folder,
                                     ["Condition", "Observation", "MedicationRequest",
                                      "MedicationAdministration", "Procedure"], problems, {})
    assert len(jobs) > 4  # cut more than once
    owners: dict[str, set[str]] = {}
    for job in jobs:
        for line in Path(job.ndjson_bucket).read_text(encoding="utf-8").splitlines():
            owners.setdefault("\t".join(line.split("\t", 2)[:2]), set()).add(job.ndjson_bucket)
    assert len(owners) == 12 and all(len(buckets) == 1 for buckets in owners.values())
    assert streamed([tmp_path / "export"], size=5) == expected


def test_an_export_joins_patients_sharing_an_identifier_as_a_bundle_does(
        tmp_path: Path) -> None:
    """Two Patient records of one person, sharing only their EMPI number (their other
    identifiers are of other systems, and alone each would name her otherwise): a Bundle of
    them is one patient, and so is the export, so that her denosumab order is on her record
    in both, and the lines are equal."""
    empi = {"system": "http://example.org/empi", "value": "E-77"}
    resources = [
        {"resourceType": "Patient", "id": "a", "birthDate": "1960-01-01", "gender": "female",
         "identifier": [{"system": "http://example.org/mrn", "value": "MRN-1"}, empi]},
        {"resourceType": "Patient", "id": "b", "birthDate": "1960-01-01", "gender": "female",
         "identifier": [empi, {"system": "http://example.org/archive", "value": "A-5"}]},
        {"resourceType": "Condition", "id": "bone", "subject": {"reference": "Patient/a"},
         "code": {"coding": [{"system": "http://snomed.info/sct", "code": "94222008"}]},
         "verificationStatus": {"coding": [{
             "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
             "code": "confirmed"}]},
         "onsetDateTime": "2026-01-10"},
        {"resourceType": "MedicationRequest", "id": "dmab", "status": "active",
         "intent": "order", "subject": {"reference": "Patient/b"},
         "medicationCodeableConcept": {"coding": [{
             "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "993449"}]}},
    ]
    export = tmp_path / "export"
    _write_ndjson(export, resources)
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": f"urn:uuid:{r['resourceType'].lower()}-{r['id']}", "resource": r}
        for r in resources]}).replace('"Patient/a"', '"urn:uuid:patient-a"')
        .replace('"Patient/b"', '"urn:uuid:patient-b"'), encoding="utf-8")
    from_export, from_bundle = streamed([export]), streamed([bundle])
    assert [d["patient"] for d in from_export] == [d["patient"] for d in from_bundle]
    assert len({d["patient"] for d in from_export}) == 1
    assert not [d for d in from_export if d.get("refused")]
    # The same verdicts (the items are named by each form's own IRIs): her denosumab is on
    # her record, so no AVOID-1 and no BMA-1 care gap.
    for found in (from_export, from_bundle):
        assert "AVOID-1" not in [c["key"] for c in found[0]["contraindicated"]]
        assert "BMA-1" not in [gap["key"] for gap in found[0]["care_gaps"]]
    assert [[(r["key"], r["status"]) for r in d["recommendations"]] for d in from_export] == [
        [(r["key"], r["status"]) for r in d["recommendations"]] for d in from_bundle]
