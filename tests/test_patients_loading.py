"""Loading patient inputs: files and folders, every RDF syntax, FHIR JSON, several patients
in one graph without anything shared between files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import RDF

from guidelinekg import cli
from guidelinekg.loading import (
    PREFIXES,
    RDF_FORMATS,
    InputError,
    parse_rdf_bytes,
    parse_rdf_file,
)
from guidelinekg.patients import (
    MAX_BLANK_NODE_DEPTH,
    blank_node_depth,
    input_files,
    load_patient_graph,
    load_patient_input,
)
from guidelinekg.resources import examples_dir
from guidelinekg.validation import validate_patients

EXAMPLES = examples_dir() / "patients"
REFERENCE = EXAMPLES / "hr-positive-her2-negative-bone-only.ttl"
SHARED = Path(__file__).resolve().parents[2] / "shared"
FHIR_BUNDLE = SHARED / "fixtures" / "fhir" / "trial-matching" / "TrialMatching_Patient01.json"
GKG = PREFIXES["gkg"]
PATIENT = URIRef(GKG + "Patient")
XSD_DATE = URIRef(PREFIXES["xsd"] + "date")
HAS_DOSE = URIRef(GKG + "hasDose")

ONE_DOSE = """
@prefix gkg: <https://w3id.org/guidelinekg/ontology#> .
@prefix code: <https://w3id.org/guidelinekg/code/> .
<http://example.org/{name}/patient> a gkg:Patient .
<http://example.org/{name}/denosumab> a gkg:Denosumab ;
    gkg:subject <http://example.org/{name}/patient> ; gkg:status code:ongoing ;
    gkg:hasDose _:dose .
_:dose gkg:doseAmount {amount} ; gkg:doseUnit "mg" .
"""


def test_folders_are_read_recursively_in_order_skipping_hidden_and_other_files(
        tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / ".hidden").mkdir()
    for relative in ("z.ttl", "a.nt", "b/c.jsonld", "b/d.rdf", ".hidden/e.ttl", "notes.md",
                     "b/.f.ttl"):
        (tmp_path / relative).write_text("x")
    assert input_files([tmp_path]) == [tmp_path / "a.nt", tmp_path / "b" / "c.jsonld",
                                       tmp_path / "b" / "d.rdf", tmp_path / "z.ttl"]
    explicit = tmp_path / "notes.md"
    assert input_files([explicit, tmp_path / "z.ttl"]) == [explicit, tmp_path / "z.ttl"]


def test_a_folder_without_rdf_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("nothing here")
    with pytest.raises(InputError, match="the folder holds no RDF or JSON file"):
        input_files([tmp_path])


def test_every_rdf_syntax_gives_the_same_patient_graph(tmp_path: Path) -> None:
    reference = parse_rdf_file(REFERENCE)
    for suffix, rdflib_format in ((".nt", "nt"), (".rdf", "xml"), (".jsonld", "json-ld")):
        path = tmp_path / f"record{suffix}"
        options = {"auto_compact": True} if rdflib_format == "json-ld" else {}
        path.write_text(reference.serialize(format=rdflib_format, **options))
        assert isomorphic(load_patient_graph([path]), reference), suffix


def test_several_files_merge_into_one_cohort_graph() -> None:
    files = sorted((EXAMPLES / "demo-cohort").glob("*.ttl"))
    graph = load_patient_graph(files)
    assert len(set(graph.subjects(RDF.type, PATIENT))) == 3
    assert len(graph) == sum(len(parse_rdf_file(path)) for path in files)


def test_blank_nodes_of_two_files_stay_apart(tmp_path: Path) -> None:
    """Both files call their dose _:dose; merged, each patient keeps its own dose."""
    for name, amount in (("first", "120.0"), ("second", "-5.0")):
        (tmp_path / f"{name}.ttl").write_text(ONE_DOSE.format(name=name, amount=amount))
    graph = load_patient_graph([tmp_path])
    doses = {graph.value(URIRef(f"http://example.org/{name}/denosumab"), HAS_DOSE)
             for name in ("first", "second")}
    assert len(doses) == 2 and all(isinstance(dose, BNode) for dose in doses)
    validation = validate_patients(graph)
    bad = {r.patient for r in validation.results if r.result.severity == "Violation"}
    assert bad == {URIRef("http://example.org/second/patient")}


def test_json_ld_patient_file(tmp_path: Path) -> None:
    document = {
        "@context": {"gkg": GKG, "code": PREFIXES["code"],
                     "xsd": "http://www.w3.org/2001/XMLSchema#"},
        "@graph": [
            {"@id": "http://example.org/j/patient", "@type": "gkg:Patient",
             "gkg:birthDate": {"@value": "1960-01-01", "@type": "xsd:date"}},
            {"@id": "http://example.org/j/her2", "@type": "gkg:HER2Status",
             "gkg:subject": {"@id": "http://example.org/j/patient"},
             "gkg:valueCode": {"@id": "code:positive"}},
        ],
    }
    path = tmp_path / "patient.jsonld"
    path.write_text(json.dumps(document))
    graph = load_patient_graph([path])
    assert (URIRef("http://example.org/j/her2"), URIRef(GKG + "valueCode"),
            URIRef(PREFIXES["code"] + "positive")) in graph
    assert Literal("1960-01-01", datatype=URIRef("http://www.w3.org/2001/XMLSchema#date")) in set(
        graph.objects())


def test_blank_node_depth_is_measured_without_recursion() -> None:
    graph = Graph()
    previous = URIRef("urn:root")
    for _ in range(20_000):
        node = BNode()
        graph.add((previous, URIRef("urn:p"), node))
        previous = node
    assert blank_node_depth(graph) == 20_000
    cycle = Graph()
    a, b = BNode(), BNode()
    cycle.add((a, URIRef("urn:p"), b))
    cycle.add((b, URIRef("urn:p"), a))
    assert blank_node_depth(cycle) == 2
    assert blank_node_depth(parse_rdf_file(REFERENCE)) == 0


def test_nesting_just_within_the_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "nested.ttl"
    depth = MAX_BLANK_NODE_DEPTH
    path.write_text("<urn:s> <urn:p> " + "[ <urn:p> " * depth + '"leaf"' + " ]" * depth + " .\n")
    assert blank_node_depth(load_patient_graph([path])) == depth
    path.write_text("<urn:s> <urn:p> " + "[ <urn:p> " * (depth + 1) + '"leaf"'
                    + " ]" * (depth + 1) + " .\n")
    with pytest.raises(InputError, match=f"nested {depth + 1} levels deep"):
        load_patient_graph([path])


def test_json_that_is_not_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "resourceType": "Bundle",\n  "entry": [\n')
    with pytest.raises(InputError) as error:
        load_patient_graph([path])
    assert (error.value.path, error.value.line) == (str(path), 4)


@pytest.mark.skipif(not FHIR_BUNDLE.exists(),
                    reason=f"shared FHIR fixtures not found at {FHIR_BUNDLE.parent}")
def test_fhir_json_goes_through_the_fhir_importer_and_validates() -> None:
    source = load_patient_input([FHIR_BUNDLE])
    patients = set(source.graph.subjects(RDF.type, PATIENT))
    # Named by its identifier (http://hospital.example.org a123), not its fullUrl.
    patient = URIRef("urn:guidelinekg:patient:http%3A%2F%2Fhospital.example.org:a123")
    assert patients == {patient}
    assert source.fhir_summaries[FHIR_BUNDLE].startswith(f"patient {patient}: 12 record items")
    assert source.patient_files == {patient: [FHIR_BUNDLE]}
    validation = validate_patients(source.graph)
    assert not validation.has_violations
    assert validation.count("Warning") > 0  # mCODE has no pain, fracture risk, ... elements


@pytest.mark.skipif(not FHIR_BUNDLE.exists(),
                    reason=f"shared FHIR fixtures not found at {FHIR_BUNDLE.parent}")
def test_fhir_and_rdf_inputs_merge(tmp_path: Path) -> None:
    graph = load_patient_graph([FHIR_BUNDLE, REFERENCE])
    assert len(set(graph.subjects(RDF.type, PATIENT))) == 2


# ---------------------------------------------------------------------------------------
# Which files make each patient: identity across files, and one loader for every command
# ---------------------------------------------------------------------------------------

FHIR_DATA = Path(__file__).resolve().parent / "data" / "fhir"
IDENTITY = FHIR_DATA / "identity"
INVALID_FHIR = FHIR_DATA / "invalid"
SUBJECT = URIRef(GKG + "subject")
BIRTH_DATE = URIRef(GKG + "birthDate")
MRN_0042 = URIRef("urn:guidelinekg:patient:http%3A%2F%2Fhospital.example.org%2Fmrn:MRN-0042")
ABSOLUTE = URIRef("urn:uuid:a8000008-0001-4000-8000-000000000001")


def local(file: str, reference: str) -> URIRef:
    return URIRef(f"urn:guidelinekg:fhir:{file}:{reference}")


def item_files(source) -> dict[URIRef, set[str]]:
    """patient -> the names of the files its record items come from (FHIR and RDF)."""
    found: dict[URIRef, set[str]] = {}
    if source.fhir is not None:
        for file, patient in source.fhir.item_origins.values():
            found.setdefault(patient, set()).add(Path(file).name)
    return found


def test_no_record_item_reaches_a_patient_of_another_file_unless_the_files_say_so() -> None:
    """Every identity fixture at once: the two bundles without identifier whose patient is
    Patient/p in both stay two patients, each with its own items; the two that share the
    identifier MRN-0042 are one; the results that name another file's Patient by its
    absolute fullUrl are that patient's."""
    source = load_patient_input([IDENTITY], quiet=True)
    first = local("no-identifier-first.json", "Patient/p")
    second = local("no-identifier-second.json", "Patient/p")
    assert set(source.graph.subjects(RDF.type, PATIENT)) == {first, second, MRN_0042, ABSOLUTE}
    assert item_files(source) == {
        first: {"no-identifier-first.json"},
        second: {"no-identifier-second.json"},
        MRN_0042: {"same-identifier-conditions.json", "same-identifier-results.json"},
        ABSOLUTE: {"absolute-reference-patient.json", "absolute-reference-results.json"},
    }
    graph = source.graph
    assert (first, BIRTH_DATE, Literal("1960-01-01", datatype=XSD_DATE)) in graph
    assert (second, BIRTH_DATE, Literal("1970-01-01", datatype=XSD_DATE)) in graph
    assert graph.value(local("no-identifier-first.json", "Observation/her2"), SUBJECT) == first
    assert graph.value(local("no-identifier-second.json", "Observation/her2"), SUBJECT) == second
    assert source.patient_files == {
        first: [IDENTITY / "no-identifier-first.json"],
        second: [IDENTITY / "no-identifier-second.json"],
        MRN_0042: [IDENTITY / "same-identifier-conditions.json",
                   IDENTITY / "same-identifier-results.json"],
        ABSOLUTE: [IDENTITY / "absolute-reference-patient.json",
                   IDENTITY / "absolute-reference-results.json"],
    }
    assert source.cross_file == [
        f"{IDENTITY / 'absolute-reference-results.json'} adds 2 record items to patient "
        f"<{ABSOLUTE}> of {IDENTITY / 'absolute-reference-patient.json'}"]
    assert not validate_patients(graph).has_violations


def test_the_same_identifier_with_other_birth_dates_is_refused(capsys) -> None:
    a = INVALID_FHIR / "same-identifier-other-birth-date-a.json"
    b = INVALID_FHIR / "same-identifier-other-birth-date-b.json"
    message = (f"{a}, {b}: Patient/a ({a}) and Patient/b ({b}) have the same identifier "
               "http://hospital.example.org/mrn MRN-0099 but their birth dates differ "
               "(1960-01-01, 1961-01-01): they cannot be one patient; correct the identifier "
               "or the record")
    with pytest.raises(InputError) as raised:
        load_patient_input([a, b])
    assert str(raised.value) == message
    for command in ("validate", "import-fhir"):
        assert cli.main([command, str(a), str(b)]) == 2
        assert capsys.readouterr().err == f"guidelinekg {command}: error: {message}\n"


def test_the_same_identifier_with_other_sexes_in_one_bundle_is_refused(tmp_path: Path) -> None:
    mrn = [{"system": "http://hospital.example.org/mrn", "value": "7"}]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "a", "identifier": mrn,
                      "gender": "female"}},
        {"resource": {"resourceType": "Patient", "id": "b", "identifier": mrn,
                      "gender": "male"}}]}
    path = tmp_path / "sexes.json"
    path.write_text(json.dumps(bundle))
    with pytest.raises(InputError) as raised:
        load_patient_input([path])
    assert str(raised.value) == (
        f"{path}: Patient/a ({path}) and Patient/b ({path}) have the same identifier "
        "http://hospital.example.org/mrn 7 but their sexes differ (female, male): they cannot "
        "be one patient; correct the identifier or the record")


CROSS_A = """
@prefix gkg: <https://w3id.org/guidelinekg/ontology#> .
@prefix code: <https://w3id.org/guidelinekg/code/> .
<http://example.org/cross/patient> a gkg:Patient .
<http://example.org/cross/bone> a gkg:MetastasisCondition ;
    gkg:subject <http://example.org/cross/patient> ; gkg:site code:site-bone ; gkg:present true .
"""
CROSS_B = """
@prefix gkg: <https://w3id.org/guidelinekg/ontology#> .
@prefix code: <https://w3id.org/guidelinekg/code/> .
<http://example.org/cross/her2> a gkg:HER2Status ; gkg:subject <http://example.org/cross/patient> ;
    gkg:valueCode code:negative .
<http://example.org/cross/liver> a gkg:MetastasisCondition ;
    gkg:subject <http://example.org/cross/patient> ; gkg:site code:site-liver ; gkg:present true .
"""


def test_rdf_items_of_one_file_naming_another_files_patient_are_reported(tmp_path: Path,
                                                                         capsys) -> None:
    """RDF IRIs are global: b.ttl may add items to the patient a.ttl declares. Not refused,
    but said, on standard error, by validate and recommend."""
    a, b = tmp_path / "a.ttl", tmp_path / "b.ttl"
    a.write_text(CROSS_A)
    b.write_text(CROSS_B)
    patient = URIRef("http://example.org/cross/patient")
    source = load_patient_input([a, b], quiet=True)
    assert source.patient_files == {patient: [a, b]}
    assert source.cross_file == [f"{b} adds 2 record items to patient <{patient}> of {a}"]
    expected = f"patient <{patient}>: from {a}, {b}\n{b} adds 2 record items to patient " \
               f"<{patient}> of {a}\n"
    assert cli.main(["validate", str(a), str(b)]) == 0
    assert capsys.readouterr().err == expected
    assert cli.main(["recommend", str(a), str(b), "--as-of", "2026-11-30"]) == 0
    assert capsys.readouterr().err.startswith(expected)
    # One file alone: nothing to say about other files.
    assert cli.main(["validate", str(a)]) == 0
    assert capsys.readouterr().err == ""


def test_validate_names_the_files_of_each_fhir_patient(capsys) -> None:
    files = [IDENTITY / "same-identifier-conditions.json",
             IDENTITY / "same-identifier-results.json"]
    assert cli.main(["validate", *map(str, files)]) == 0
    captured = capsys.readouterr()
    assert captured.err == f"patient <{MRN_0042}>: from {files[0]}, {files[1]}\n"
    assert (f"FHIR {files[1]}: patient {MRN_0042}: 1 record items; 0 resources or elements "
            "ignored\n") in captured.out


def test_validate_shows_why_each_fhir_resource_or_element_was_ignored(capsys) -> None:
    path = Path(__file__).parent / "data" / "fhir" / "conditions-and-observations-statuses.json"
    cli.main(["validate", str(path)])
    out = capsys.readouterr().out
    assert ("\n  urn:uuid:7c000007-0002-4000-8000-000000000002 (Condition): ignored: "
            "verificationStatus entered-in-error\n") in out


def test_import_fhir_and_validate_read_the_same_files_into_the_same_graph(
        tmp_path: Path, capsys) -> None:
    """import-fhir, validate and recommend share one loader: the same files (a folder
    included) give the same record."""
    inputs = [IDENTITY, FHIR_DATA / "triple-negative-germline-brca1.json",
              FHIR_DATA / "hr-positive-bone-only-denosumab.json"]
    output = tmp_path / "cohort.ttl"
    assert cli.main(["import-fhir", *map(str, inputs), "-o", str(output)]) == 0
    report = capsys.readouterr().out
    assert report.startswith(f"wrote {output}\n")
    assert f"patient <{MRN_0042}>: from " in report
    loaded = load_patient_input(inputs, quiet=True)
    assert isomorphic(parse_rdf_file(output), loaded.graph)
    assert len(set(loaded.graph.subjects(RDF.type, PATIENT))) == 6


# Red-team finding 6: a folder's NDJSON file was skipped without a word by the whole-input
# reading, read by the cohort run: the same folder gave another clinical answer by format.
READING_DEFECTS = Path(__file__).parent / "fixtures" / "reading-defects"
NDJSON_FOLDER = READING_DEFECTS / "folder-bundle-and-ndjson-retest"
COHORT_ONLY = ("FHIR Bulk Data NDJSON (a resource a line) is read by a cohort run only "
               "(recommend --format jsonl or csv, validate --format jsonl)")


# import-fhir reads an export as the cohort run does (tests/test_import_fhir_ndjson.py).
@pytest.mark.parametrize("argv", [["validate"], ["recommend", "--format", "json"],
                                  ["recommend"]])
def test_a_folders_ndjson_file_is_refused_by_the_whole_input_reading(capsys, argv) -> None:
    code = cli.main([*argv, str(NDJSON_FOLDER)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert (f"guidelinekg {argv[0]}: error: {NDJSON_FOLDER / 'Observation.ndjson'}: "
            f"{COHORT_ONLY}") in captured.err


def test_the_cohort_run_reads_the_folders_ndjson_retest(capsys) -> None:
    code = cli.main(["recommend", str(NDJSON_FOLDER), "--format", "jsonl",
                     "--as-of", "2026-12-01", "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    (line,) = [json.loads(text) for text in captured.out.splitlines()]
    statuses = {item["key"]: item["status"] for item in line["recommendations"]}
    # The 2026-11-01 HER2-positive retest of the NDJSON file is read: HER2-positive care.
    assert statuses["HER2-1"] == "applies"
    assert statuses["HRP-1"] != "applies"


def test_an_explicit_ndjson_file_is_refused_by_the_whole_input_reading(capsys) -> None:
    code = cli.main(["validate", str(NDJSON_FOLDER / "Observation.ndjson")])
    assert code == 2
    assert COHORT_ONLY in capsys.readouterr().err


def test_an_export_folder_is_said_to_be_one_not_a_manifest_without_patients(capsys) -> None:
    export = READING_DEFECTS / "export-only"
    code = cli.main(["validate", str(export)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{export / 'Condition.ndjson'}: {COHORT_ONLY}" in err
    assert "no patient found" not in err
    code = cli.main(["validate", str(export / "manifest.json")])
    err = capsys.readouterr().err
    assert code == 2
    assert (f"{export / 'manifest.json'}: the manifest of a FHIR Bulk Data export: the export "
            "(its NDJSON files) is read by a cohort run only") in err
    # The cohort run reads the same folder.
    assert cli.main(["validate", str(export), "--format", "jsonl", "--quiet"]) in (0, 1)
    assert capsys.readouterr().out.strip()


@pytest.mark.parametrize("cohort", [False, True])
def test_files_of_unknown_kinds_in_a_folder_are_named_in_a_warning_in_both_modes(
        capsys, cohort: bool) -> None:
    folder = READING_DEFECTS / "folder-with-unknown-files"
    code = cli.main(["validate", str(folder), "--quiet",
                     *(["--format", "jsonl"] if cohort else ["--format", "json"])])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    for name, suffix in (("notes.txt", ".txt"), ("other-record.n3", ".n3")):
        # Said even with --quiet: a file left unread is never silent.
        assert (f"guidelinekg validate: warning: {folder / name}: not read: a {suffix} file is "
                "not a kind read here (.ttl, ") in captured.err
    if cohort:
        patients = {json.loads(line)["patient"] for line in captured.out.splitlines()}
    else:
        patients = {result["patient"] for result in json.loads(captured.out)["results"]}
    assert patients == {"http://example.org/patients/hr-pos-bone-only/patient"}


CLI_FOLLOWUPS = Path(__file__).resolve().parent / "fixtures" / "cli-followups"
BOM = b"\xef\xbb\xbf"


@pytest.mark.parametrize("suffix", [".ttl", ".nt", ".jsonld", ".rdf"])
def test_a_file_starting_with_a_byte_order_mark_is_read(capsys, suffix: str) -> None:
    path = CLI_FOLLOWUPS / f"bom-patient{suffix}"
    assert path.read_bytes().startswith(BOM)  # the fixture is what the test is about
    assert isomorphic(parse_rdf_file(path), parse_rdf_file(REFERENCE))
    assert cli.main(["validate", str(path), "--quiet", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["conforms"] is True


@pytest.mark.parametrize("suffix", [".nq", ".trig"])
def test_a_byte_order_mark_is_dropped_in_the_other_rdf_syntaxes(suffix: str) -> None:
    reference = parse_rdf_file(REFERENCE)
    lines = reference.serialize(format="nt", encoding="utf-8").splitlines()
    graph = b"<http://example.org/graph>"
    data = BOM + (b"".join(line[:-1] + graph + b" .\n" for line in lines if line)
                  if suffix == ".nq" else graph + b" {\n" + b"\n".join(lines) + b"\n}\n")
    parsed = parse_rdf_bytes(data, Path(f"record{suffix}"), RDF_FORMATS[suffix])
    assert isomorphic(parsed, reference)


@pytest.mark.parametrize("suffix", [".ttl", ".nt"])
def test_a_byte_order_mark_on_standard_input_is_read(suffix: str) -> None:
    done = subprocess.run([sys.executable, "-m", "guidelinekg.cli", "validate", "-", "--quiet",
                           "--format", "json"],
                          input=(CLI_FOLLOWUPS / f"bom-patient{suffix}").read_bytes(),
                          capture_output=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["conforms"] is True


def test_a_byte_order_mark_is_dropped_once_only(tmp_path: Path) -> None:
    # A second mark is a character of the text, refused as it was: only the first is the
    # encoding's.
    path = tmp_path / "two-marks.ttl"
    path.write_bytes(BOM + BOM + REFERENCE.read_bytes())
    with pytest.raises(InputError, match=r"two-marks\.ttl, line 1, column 1: not valid Turtle"):
        parse_rdf_file(path)


def test_a_pipe_in_a_folder_is_named_and_not_read(tmp_path, capsys) -> None:
    """Reading a FIFO nobody writes to never ends: a folder's pipe is skipped with a
    warning, as a file of another kind is (given by name, it is read: a shell's <(...))."""
    import os
    import shutil

    from guidelinekg.cli import main
    from guidelinekg.resources import examples_dir

    folder = tmp_path / "records"
    folder.mkdir()
    shutil.copy(examples_dir() / "patients" / "hr-positive-her2-negative-bone-only.ttl", folder)
    os.mkfifo(folder / "pipe.ttl")
    assert main(["validate", str(folder)]) == 0
    assert f"{folder / 'pipe.ttl'}: not read: not a regular file" in capsys.readouterr().err
