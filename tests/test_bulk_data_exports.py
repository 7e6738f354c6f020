"""FHIR Bulk Data input of several exports (guidelinekg.bulk_data): a resource id means
something only in its export (the folder of its file), Patients of any exports that share a
current identifier are one patient, a logical reference goes to the holder of its identifier
in any export; and a line the JSON reader refuses is said with the reader's reason. Each
case is read on one machine (guidelinekg.cohort_input, in worker processes too) and as the
distributed run reads it (guidelinekg.distributed_cohorts, without Spark): the same patients,
the same record items, the same lines."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rdflib import Graph, URIRef
from rdflib.namespace import RDF

from guidelinekg.bulk_data import PatientDirectory
from guidelinekg.cohort_input import read_cohort
from guidelinekg.cohorts import CohortSettings, evaluate_buckets, problem_line, worker_pool
from guidelinekg.distributed_cohorts import (
    Group,
    build_directory,
    distributed_inputs,
    evaluate_groups,
    file_chunks,
    import_batch,
    key_lines,
    newlines_before,
    patient_group,
    problem_groups,
    scan_chunk,
    source_export,
)
from guidelinekg.fhir_identity import file_labels
from guidelinekg.fhir_import.datatypes import read_json_file
from guidelinekg.fhir_import.importer import HANDLERS
from guidelinekg.loading import PREFIXES, InputError
from guidelinekg.namespaces import GKG

AS_OF = date(2026, 12, 1)
SETTINGS = CohortSettings(AS_OF)
MRN = "http://example.org/mrn"
X = {"system": MRN, "value": "X-1"}  # Ann Ames's number, in both exports
Y = {"system": MRN, "value": "Y-1"}  # Beth Berg's, export b only
PATIENT = "urn:guidelinekg:patient:http%3A%2F%2Fexample.org%2Fmrn:"
ANN, BETH = f"{PATIENT}X-1", f"{PATIENT}Y-1"
FHIR_ITEM = "urn:guidelinekg:fhir:"
CHUNK = 300  # small chunks: each file is read by several tasks on the distributed path
DENOSUMAB_ITEM = URIRef(f"{PREFIXES['gkg']}Denosumab")


def _patient(local_id: str, family: str, identifiers: list[dict[str, str]],
             born: str = "1960-01-01") -> dict[str, Any]:
    return {"resourceType": "Patient", "id": local_id, "birthDate": born, "gender": "female",
            "name": [{"family": family}], "identifier": identifiers}


def _bone_metastasis(local_id: str, subject: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Condition", "id": local_id, "subject": subject,
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "94222008"}]},
            "verificationStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                "code": "confirmed"}]},
            "onsetDateTime": "2026-01-10"}


def _breast_cancer(local_id: str, subject: dict[str, Any]) -> dict[str, Any]:
    return {**_bone_metastasis(local_id, subject),
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "254837009"}]}}


DENOSUMAB = {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                         "code": "993449"}]}


def _denosumab(local_id: str, subject: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "id": local_id, "status": "active",
            "intent": "order", "subject": subject, "medicationCodeableConcept": DENOSUMAB}


def _to(local_id: str) -> dict[str, str]:
    return {"reference": f"Patient/{local_id}"}


def _write_ndjson(folder: Path, resources: Iterable[dict[str, Any]]) -> None:
    folder.mkdir(parents=True)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    for kind, items in by_type.items():
        (folder / f"{kind}.ndjson").write_text(
            "".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")


@dataclass
class Run:
    """What a run gives: its result lines (each parsed) and the imported graph."""

    lines: list[dict[str, Any]]
    graph: Graph

    def patients(self) -> set[str]:
        return {str(patient) for patient in self.graph.subjects(RDF.type, GKG.Patient)}

    def items(self) -> dict[str, set[str]]:
        """Each patient's record items (the resources whose subject it is)."""
        found: dict[str, set[str]] = {patient: set() for patient in self.patients()}
        for item, patient in self.graph.subject_objects(GKG.subject):
            found.setdefault(str(patient), set()).add(str(item))
        return found

    def line_of(self, patient: str) -> dict[str, Any]:
        """The patient's one line (one guideline here; two lines would be two patients)."""
        (line,) = [line for line in self.lines if line["patient"] == patient]
        return line

    def refusals(self) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["patient"] is None]


def _sorted(lines: Iterable[str]) -> list[dict[str, Any]]:
    return sorted(map(json.loads, lines), key=lambda line: json.dumps(line, sort_keys=True))


def single_machine(paths: list[Path], workers: int = 1) -> Run:
    """guidelinekg.cohort_input: buckets of whole patients, imported in worker processes."""
    with worker_pool(workers) as mapper:
        cohort = read_cohort(paths, 2, mapper)
        try:
            graph = Graph()
            for bucket in cohort.buckets:
                graph.parse(bucket, format="nt")
            lines = [problem_line(problem) for problem in cohort.problems]
            for outcome in evaluate_buckets(cohort.buckets, SETTINGS, 2, mapper):
                lines += outcome.lines
        finally:
            cohort.close()
    return Run(_sorted(lines), graph)


def distributed(paths: list[Path]) -> Run:
    """The distributed run's work (guidelinekg.spark_cohorts' NDJSON steps, without Spark):
    the directory from a first pass over chunks, the lines keyed, grouped by key, imported
    and evaluated by group."""
    inputs = distributed_inputs(paths)
    sources, locations = inputs.sources, inputs.locations
    chunks = file_chunks(locations, CHUNK)
    scans = [scan_chunk(chunk, locations[chunk.index]) for chunk in chunks]
    directory = build_directory(scans, sources)
    before = newlines_before(scans)
    keyed: dict[tuple[str, str], list[tuple[int, int, str, bool]]] = {}
    for chunk in chunks:
        for key, line in key_lines(chunk, before[chunk], sources[chunk.index],
                                   locations[chunk.index], directory, frozenset(HANDLERS)):
            keyed.setdefault(key, []).append(line)
    labels = file_labels(dict.fromkeys(source_export(source) for source in sources))
    broadcast = SimpleNamespace(value=directory)
    groups: list[Group] = [patient_group(key, lines, sources, labels, broadcast,
                                         inputs.servers) for key, lines in keyed.items()]
    groups += problem_groups(inputs.problems)
    # A group a batch: each group must hold its patients whole (on a cluster, two groups of
    # one person would be evaluated on two machines).
    lines = [record[4] for record in evaluate_groups(groups, SETTINGS, 1)
             if record[0] == "row"]
    graph = Graph()
    for group in groups:
        imported, _, _ = import_batch([group])
        if imported is not None:
            graph += imported
    return Run(_sorted(lines), graph)


def both_paths(paths: list[Path], unlike: tuple[str, ...] = ()) -> Run:
    """The run on one machine, after checking that worker processes and the distributed
    run give the same patients, items and lines (but for the ``unlike`` fields of refusal
    lines)."""
    run = single_machine(paths)
    for other in (single_machine(paths, workers=2), distributed(paths)):
        assert other.items() == run.items()
        assert _without(other.lines, unlike) == _without(run.lines, unlike)
    return run


def _without(lines: list[dict[str, Any]], fields: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{key: value for key, value in line.items()
             if line["patient"] is not None or key not in fields} for line in lines]


def _care_gaps(line: dict[str, Any]) -> set[str]:
    return {gap["key"] for gap in line["care_gaps"]}


def _contraindicated(line: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(found["key"], found["status"], found["record_item"])
            for found in line["contraindicated"]}


# --------------------------------------------------------------------------------------
# Local ids are scoped by export; identifiers join across exports
# --------------------------------------------------------------------------------------


def _three_people_two_patients(root: Path) -> list[Path]:
    """Export a: Ann (Patient/1, MRN X-1), her breast cancer and bone metastasis. Export b:
    Beth (Patient/1, MRN Y-1), hers; Ann again (Patient/2, MRN X-1), her denosumab order."""
    _write_ndjson(root / "a", [_patient("1", "Ames", [X]), _breast_cancer("p1", _to("1")),
                               _bone_metastasis("c1", _to("1"))])
    _write_ndjson(root / "b", [_patient("1", "Berg", [Y]), _patient("2", "Ames", [X]),
                               _breast_cancer("p1", _to("1")), _bone_metastasis("c1", _to("1")),
                               _denosumab("m1", _to("2"))])
    return [root / "a", root / "b"]


def test_patients_of_two_exports_are_joined_by_identifier_not_by_local_id(
        tmp_path: Path) -> None:
    """Three Patient resources, two people, as the identifiers say: Ann's records of both
    exports are one patient (her denosumab order of b is on the record of her cancer of a:
    no bone-modifying-agent care gap, and the order is checked for its dental evaluation),
    Beth is another (b's Patient/1 is not Ann, though a's Patient/1 is): her care gap and
    her contraindication stay hers."""
    run = both_paths(_three_people_two_patients(tmp_path))
    assert run.patients() == {ANN, BETH}
    assert run.items() == {
        ANN: {f"{FHIR_ITEM}a:Condition/p1", f"{FHIR_ITEM}a:Condition/c1",
              f"{FHIR_ITEM}b:MedicationRequest/m1"},
        BETH: {f"{FHIR_ITEM}b:Condition/p1", f"{FHIR_ITEM}b:Condition/c1"}}
    assert not run.refusals()
    ann, beth = run.line_of(ANN), run.line_of(BETH)
    assert ann["population"]["status"] == beth["population"]["status"] == "in"
    assert "BMA-1" not in _care_gaps(ann)
    assert _contraindicated(ann) == {
        ("AVOID-3", "contraindicated", f"{FHIR_ITEM}b:MedicationRequest/m1")}
    assert "BMA-1" in _care_gaps(beth)
    assert _contraindicated(beth) == {("AVOID-1", "contraindicated",
                                       f"{FHIR_ITEM}b:Condition/c1")}


def test_patients_of_two_exports_with_one_identifier_are_checked_as_one_bundle_is(
        tmp_path: Path) -> None:
    """Ann's two records, one per export, share her number but not her birth date: they
    are imported together, so the importer says they cannot be one patient (as it says of
    a Bundle of both), rather than one patient with two birth dates."""
    _write_ndjson(tmp_path / "a", [_patient("1", "Ames", [X]),
                                   _bone_metastasis("c1", _to("1"))])
    _write_ndjson(tmp_path / "b", [_patient("2", "Ames", [X], born="1971-05-05"),
                                   _denosumab("m1", _to("2"))])
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": _patient("1", "Ames", [X])},
        {"resource": _patient("2", "Ames", [X], born="1971-05-05")}]}), encoding="utf-8")
    from guidelinekg.bulk_data import import_groups

    with pytest.raises(InputError, match="cannot be one patient") as from_bundle:
        import_groups([[(str(bundle), read_json_file(bundle))]], {str(bundle): "bundle"})
    # A group the importer refuses: one machine says line 0 and no resource, the distributed
    # run no line and the group's Patient (as for Bundle files; not in question here).
    run = both_paths([tmp_path / "a", tmp_path / "b"], unlike=("line", "resource"))
    assert run.patients() == set()
    (refusal,) = run.refusals()
    assert refusal["because"].startswith("the input cannot be imported: ")
    assert "cannot be one patient" in refusal["because"]
    said = from_bundle.value.detail.split(") have ", 1)[1]
    assert said.startswith("the same identifier http://example.org/mrn X-1 but their birth")
    assert refusal["because"].endswith(said)


def test_a_logical_reference_goes_to_the_holder_of_its_identifier_in_another_export(
        tmp_path: Path) -> None:
    """Export a names Ann only by her number (no Patient of a holds it; a's Patient/2 is
    someone else); export b holds her as Patient/2: a's condition is on b's Ann."""
    zoe = {"system": MRN, "value": "Z-1"}
    _write_ndjson(tmp_path / "a", [_patient("2", "Zorn", [zoe]),
                                   _breast_cancer("p1", {"identifier": X}),
                                   _bone_metastasis("c1", {"identifier": X})])
    _write_ndjson(tmp_path / "b", [_patient("2", "Ames", [X]), _denosumab("m1", _to("2"))])
    run = both_paths([tmp_path / "a", tmp_path / "b"])
    assert run.items() == {
        ANN: {f"{FHIR_ITEM}a:Condition/p1", f"{FHIR_ITEM}a:Condition/c1",
              f"{FHIR_ITEM}b:MedicationRequest/m1"},
        f"{PATIENT}Z-1": set()}
    ann = run.line_of(ANN)
    assert ann["population"]["status"] == "in"
    assert "BMA-1" not in _care_gaps(ann)
    assert run.line_of(f"{PATIENT}Z-1")["population"]["status"] != "in"
    assert not run.refusals()


def test_a_logical_reference_to_a_retired_identifier_of_another_export_is_no_ones(
        tmp_path: Path) -> None:
    """Export b's Patient holds X-1 only as an old number; export a's condition names X-1:
    whose record it is now is not known (as in a Bundle), so it makes no patient of its own
    and is on no one's record."""
    _write_ndjson(tmp_path / "a", [_bone_metastasis("c1", {"identifier": X})])
    _write_ndjson(tmp_path / "b", [_patient("2", "Ames", [Y, {**X, "use": "old"}])])
    run = both_paths([tmp_path / "a", tmp_path / "b"])
    assert run.items() == {BETH: set()}


def test_a_patient_two_exports_name_only_by_one_identifier_is_one_patient(
        tmp_path: Path) -> None:
    """No Patient resource holds X-1; export a's cancer and export b's bone metastasis name
    it: one patient of its own (as in a Bundle of both), with both."""
    _write_ndjson(tmp_path / "a", [_breast_cancer("p1", {"identifier": X})])
    _write_ndjson(tmp_path / "b", [_bone_metastasis("c1", {"identifier": X})])
    run = both_paths([tmp_path / "a", tmp_path / "b"])
    assert run.items() == {ANN: {f"{FHIR_ITEM}a:Condition/p1", f"{FHIR_ITEM}b:Condition/c1"}}
    assert len([line for line in run.lines if line["patient"] == ANN]) == 1


def test_patient_1_of_two_exports_without_identifiers_is_two_patients(tmp_path: Path) -> None:
    """Nothing says a's Patient/1 (her cancer) and b's (a denosumab order) are one person:
    two patients, the first with her care gap, the order of the second not hers."""
    _write_ndjson(tmp_path / "a", [_patient("1", "Ames", []), _breast_cancer("p1", _to("1")),
                                   _bone_metastasis("c1", _to("1"))])
    _write_ndjson(tmp_path / "b", [_patient("1", "Berg", []), _denosumab("m1", _to("1"))])
    run = both_paths([tmp_path / "a", tmp_path / "b"])
    first, second = f"{FHIR_ITEM}a:Patient/1", f"{FHIR_ITEM}b:Patient/1"
    assert run.items() == {first: {f"{FHIR_ITEM}a:Condition/p1", f"{FHIR_ITEM}a:Condition/c1"},
                           second: {f"{FHIR_ITEM}b:MedicationRequest/m1"}}
    assert run.line_of(first)["population"]["status"] == "in"
    assert "BMA-1" in _care_gaps(run.line_of(first))
    assert run.line_of(second)["population"]["status"] != "in"
    assert not run.refusals()


def test_a_medication_of_another_export_is_not_given_to_an_order(tmp_path: Path) -> None:
    """Export a's order references Medication/med1, which only export b holds (another
    server's med1): it is not read as b's denosumab."""
    order = _denosumab("m1", _to("1"))
    del order["medicationCodeableConcept"]
    order["medicationReference"] = {"reference": "Medication/med1"}
    _write_ndjson(tmp_path / "a", [_patient("1", "Ames", [X]), _breast_cancer("p1", _to("1")),
                                   _bone_metastasis("c1", _to("1")), order])
    _write_ndjson(tmp_path / "b", [{"resourceType": "Medication", "id": "med1",
                                    "code": DENOSUMAB}])
    run = both_paths([tmp_path / "a", tmp_path / "b"])
    assert not list(run.graph.subjects(RDF.type, DENOSUMAB_ITEM))
    assert "BMA-1" in _care_gaps(run.line_of(ANN))


@pytest.mark.parametrize("reference", ["Medication/med1/_history/3",
                                       "https://ehr.example.org/fhir/Medication/med1"])
def test_a_versioned_or_absolute_medication_reference_is_read_as_in_a_bundle(
        tmp_path: Path, reference: str) -> None:
    """The importer reads Medication/med1/_history/3 in a Bundle; an export must hand it the
    Medication too, or the order is dropped and the patient told "do not withhold bone-
    modifying agents"."""
    order = _denosumab("m1", _to("1"))
    del order["medicationCodeableConcept"]
    order["medicationReference"] = {"reference": reference, "display": "Xgeva 120 mg"}
    _write_ndjson(tmp_path / "a", [_patient("1", "Ames", [X]), _breast_cancer("p1", _to("1")),
                                   _bone_metastasis("c1", _to("1")), order,
                                   {"resourceType": "Medication", "id": "med1",
                                    "code": DENOSUMAB}])
    run = both_paths([tmp_path / "a"])
    assert len(list(run.graph.subjects(RDF.type, DENOSUMAB_ITEM))) == 1
    assert "BMA-1" not in _care_gaps(run.line_of(ANN))
    assert not {key for key, _, _ in _contraindicated(run.line_of(ANN))} & {"AVOID-1"}


def test_the_directories_of_both_paths_are_equal(tmp_path: Path) -> None:
    from guidelinekg.bulk_data import read_directory

    paths = _three_people_two_patients(tmp_path)
    files = sorted(str(path) for folder in paths for path in folder.glob("*.ndjson"))
    scans = [scan_chunk(chunk, files[chunk.index]) for chunk in file_chunks(files, CHUNK)]
    directory: PatientDirectory = build_directory(scans, files)
    assert directory == read_directory([Path(file) for file in files])
    assert directory.patient_of(str(tmp_path / "b"), "2") == (str(tmp_path / "a"),
                                                              "Patient/1")
    assert directory.patient_of(str(tmp_path / "b"), "1") == (str(tmp_path / "b"),
                                                              "Patient/1")


# --------------------------------------------------------------------------------------
# A line the JSON reader refuses is said with its reason
# --------------------------------------------------------------------------------------

UNREADABLE = {
    "huge number": '{"resourceType": "Observation", "id": "o1", "status": "final", '
                   '"subject": {"reference": "Patient/1"}, "valueQuantity": {"value": 1e999999}}',
    "lone surrogate": '{"resourceType": "Observation", "id": "\\ud800", "status": "final", '
                      '"subject": {"reference": "Patient/1"}}',
    "broken JSON": '{"resourceType": "Observation", "id": "o2",',
}


def _bundle_path_reason(tmp_path: Path, name: str, text: str) -> str:
    """What the Bundle path says of a file of the same text."""
    path = tmp_path / f"{name.replace(' ', '-')}.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as refused:
        read_json_file(path)
    return refused.value.detail


def test_a_line_the_json_reader_refuses_says_why(tmp_path: Path) -> None:
    export = tmp_path / "export"
    _write_ndjson(export, [_patient("1", "Ames", [X]), _patient("2", "Berg", [Y]),
                           _bone_metastasis("c2", _to("2"))])
    (export / "Observation.ndjson").write_text(
        "".join(text + "\n" for text in UNREADABLE.values()), encoding="utf-8")
    reasons = [_bundle_path_reason(tmp_path, name, text) for name, text in UNREADABLE.items()]
    assert "out of range" in reasons[0] and "lone surrogate" in reasons[1]
    assert reasons[2].startswith("not valid JSON (")
    run = both_paths([export])
    observations = str(export / "Observation.ndjson")
    unread = sorted((line for line in run.refusals() if "cannot be imported" not in
                     line["because"]), key=lambda line: line["line"])
    assert [(line["source"], line["line"], line["resource"]) for line in unread] == [
        (observations, number, None) for number in (1, 2, 3)]
    assert [line["because"] for line in unread] == [
        f"the line is not a FHIR resource: {reason}" for reason in reasons]
    # The first two name Patient/1: its record would be incomplete, so it is refused (for
    # the first); the third names no one. Beth is derived.
    (refused,) = [line for line in run.refusals() if "cannot be imported" in line["because"]]
    assert (refused["source"], refused["line"]) == (observations, 1)
    assert refused["because"] == (
        f"the input cannot be imported: the line is not a FHIR resource: {reasons[0]}; the "
        f"line names Patient/1 of the export {export}, whose record is incomplete without "
        "it: that patient is refused")
    assert run.patients() == {BETH}


def _not_utf8(resource: dict[str, Any]) -> bytes:
    """A resource's line with its text's 'é' written in Latin-1 (a byte that is not UTF-8)."""
    return json.dumps(resource, ensure_ascii=False).encode("utf-8").replace(
        "é".encode(), "é".encode("latin-1")) + b"\n"


def _first_latin1(line: bytes) -> int:
    """The position (from 1) of the line's first 'é' in Latin-1."""
    return line.index("é".encode("latin-1")) + 1


def _refusal_rows(run: Run) -> list[tuple[str, int | None, str, str]]:
    """The refusal lines as (source, line, resource, because), sorted."""
    return sorted((line["source"], line["line"], line["resource"] or "", line["because"])
                  for line in run.refusals())


def _line_and_patient_1_refused(source: str, number: int, why: str, export: Path
                                ) -> list[tuple[str, int | None, str, str]]:
    """The two refusal lines of a line that names Patient/1 of ``export``: the line's own,
    and Patient/1's."""
    return [(source, number, "", why),
            (source, number, "Patient/1", f"the input cannot be imported: {why}; the line "
             f"names Patient/1 of the export {export}, whose record is incomplete without "
             "it: that patient is refused")]


def test_a_line_that_is_not_utf8_refuses_the_patient_it_names(tmp_path: Path) -> None:
    """As a Bundle file that is not UTF-8 is refused: the resource is not read with its
    bytes replaced, nor dropped from a record that would then be derived without it."""
    export = tmp_path / "export"
    _write_ndjson(export, [_patient("1", "Ames", [X]), _patient("2", "Berg", [Y]),
                           _bone_metastasis("c2", _to("2"))])
    dental = {"resourceType": "Procedure", "id": "x1", "status": "completed",
              "subject": _to("1"), "performedDateTime": "2026-11-20",
              "code": {"text": "extraction dentaire (molaire), révisée"}}
    (export / "Procedure.ndjson").write_bytes(_not_utf8(dental))
    run = both_paths([export])
    procedures = str(export / "Procedure.ndjson")
    why = (f"the line is not UTF-8 text (from byte {_first_latin1(_not_utf8(dental))}), so "
           "not a FHIR resource")
    assert _refusal_rows(run) == _line_and_patient_1_refused(procedures, 1, why, export)
    assert run.patients() == {BETH}


def test_a_patient_line_that_is_not_utf8_refuses_that_patient(tmp_path: Path) -> None:
    """Its other lines go to it (not to "no patient of the export"), and it is refused."""
    export = tmp_path / "export"
    _write_ndjson(export, [_patient("2", "Berg", [Y]), _bone_metastasis("c1", _to("1")),
                           _bone_metastasis("c2", _to("2"))])
    with (export / "Patient.ndjson").open("ab") as patients:
        patients.write(_not_utf8(_patient("1", "Amés", [X])))
    run = both_paths([export])
    becauses = sorted(line["because"] for line in run.refusals())
    assert len(becauses) == 2 and "names no patient" not in str(becauses)
    assert becauses[0].startswith("the input cannot be imported: the line is not UTF-8 text")
    assert becauses[0].endswith(f"names Patient/1 of the export {export}, whose record is "
                                "incomplete without it: that patient is refused")
    assert run.patients() == {BETH}


def test_an_order_of_a_medication_whose_line_is_not_utf8_is_refused(tmp_path: Path) -> None:
    """Not read as an order that names no medicine (AVOID-1 would then say to start one)."""
    export = tmp_path / "export"
    order = {**_denosumab("r1", _to("1")), "medicationReference": {"reference": "Medication/m1"}}
    del order["medicationCodeableConcept"]
    _write_ndjson(export, [_patient("1", "Ames", [X]), _patient("2", "Berg", [Y]), order,
                           _bone_metastasis("c2", _to("2"))])
    medication = _not_utf8(
        {"resourceType": "Medication", "id": "m1", "code": {**DENOSUMAB, "text": "dénosumab"}})
    (export / "Medication.ndjson").write_bytes(medication)
    run = both_paths([export])
    why = (f"the line is not UTF-8 text (from byte {_first_latin1(medication)}), so not a "
           "FHIR resource")
    assert sorted((line["resource"] or "", line["line"], line["because"])
                  for line in run.refusals()) == [
        ("", 1, why),
        ("Patient/1", None, "the input cannot be imported: MedicationRequest/r1 references "
         f"Medication/m1, whose line cannot be read ({why}): which medicine it orders is not "
         "known")]
    assert run.patients() == {BETH}


# --------------------------------------------------------------------------------------
# An export's own report of errors
# --------------------------------------------------------------------------------------


def _outcome(severity: str, diagnostics: str) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": "processing", "diagnostics": diagnostics}]}


def test_an_export_error_that_names_a_patient_refuses_that_patient(tmp_path: Path) -> None:
    """The server could not export part of Patient/1's record (the file its manifest lists
    under "error"): derived without it, its denosumab order missing would read as no
    bone-modifying agent. It is refused, the line said; an error naming no patient and a
    warning are lines given to no patient; Patient/2 is derived."""
    export = tmp_path / "export"
    _write_ndjson(export, [_patient("1", "Ames", [X]), _breast_cancer("p1", _to("1")),
                           _bone_metastasis("c1", _to("1")), _patient("2", "Berg", [Y]),
                           _bone_metastasis("c2", _to("2")),
                           _outcome("error", "MedicationRequest for Patient/1 not exported"),
                           _outcome("fatal", "the export was cut short"),
                           _outcome("warning", "Observation filtered by _typeFilter")])
    run = both_paths([export])
    errors = str(export / "OperationOutcome.ndjson")
    named = ("the export reports an error here (OperationOutcome: MedicationRequest for "
             "Patient/1 not exported): what it concerns is missing from the export")
    assert _refusal_rows(run) == [
        *_line_and_patient_1_refused(errors, 1, named, export),
        (errors, 2, "", "the export reports an error here (OperationOutcome: the export was "
         "cut short): what it concerns is missing from the export"),
        (errors, 3, "OperationOutcome/?",
         "it names no patient and no patient fact is read from this type")]
    assert run.patients() == {BETH}


def test_error_files_a_manifest_lists_but_the_input_lacks_are_said(tmp_path: Path) -> None:
    """The manifest lists two error files; one is given (its error refuses Patient/1), the
    other is not: what it says cannot be read, so a line says any record of the export may
    be incomplete. The patients are still derived (the run says so, it does not guess)."""
    export = tmp_path / "export"
    _write_ndjson(export, [_patient("1", "Ames", [X]), _patient("2", "Berg", [Y]),
                           _bone_metastasis("c2", _to("2")),
                           _outcome("error", "Procedure of Patient/1 not exported")])
    (export / "manifest.json").write_text(json.dumps({
        "transactionTime": "2026-12-01T00:00:00Z",
        "request": "https://ehr.example/fhir/Patient/$export",
        "output": [{"type": "Patient", "url": "https://ehr.example/files/Patient.ndjson"}],
        "error": [{"type": "OperationOutcome",
                   "url": "https://ehr.example/files/OperationOutcome.ndjson"},
                  {"type": "OperationOutcome",
                   "url": "https://ehr.example/files/errors-2.ndjson?part=2"}]}),
        encoding="utf-8")
    run = both_paths([export])
    unread = [line for line in run.refusals() if line["line"] is None]
    assert unread == [{
        "patient": None, "refused": True, "source": str(export / "manifest.json"),
        "line": None, "resource": None,
        "because": "the export's manifest lists 'errors-2.ndjson' under error (the server's "
                   "report of what it could not export), and it is not in the input: any of "
                   "the export's records may be incomplete; give the file with the export"}]
    assert run.patients() == {BETH}
