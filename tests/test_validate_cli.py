"""`guidelinekg validate`: exit codes, the three output formats, and bad input refused with
the file (and line) named and nothing else: no traceback, exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF, SH

from guidelinekg import cli
from guidelinekg.loading import MAX_FILE_BYTES, PREFIXES
from guidelinekg.resources import examples_dir
from json_contract import validation_report

EXAMPLES = examples_dir() / "patients"
VALID = EXAMPLES / "her2-positive-trastuzumab-3-weekly.ttl"
REFERENCE = EXAMPLES / "hr-positive-her2-negative-bone-only.ttl"
NEGATIVE_DOSE = EXAMPLES / "invalid-negative-dose.ttl"
CONTRADICTION = EXAMPLES / "invalid-her2-contradiction.ttl"
GKG = PREFIXES["gkg"]


def run(capsys, *args: str | Path) -> tuple[int, str, str]:
    code = cli.main(["validate", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_valid_record_exits_0_with_a_summary(capsys) -> None:
    code, out, err = run(capsys, VALID)
    assert (code, err) == (0, "")
    assert out == ("Summary: 1 patient, 0 with violations; 0 violations, 0 warnings, 0 notes. "
                   "The input conforms (warnings and notes do not block it).\n")


def test_warnings_do_not_fail_validation(capsys) -> None:
    code, out, _ = run(capsys, REFERENCE)
    assert code == 0
    assert out.startswith("<http://example.org/patients/hr-pos-bone-only/patient>: "
                          "0 violations, 7 warnings, 0 notes\n")
    assert "  WARNING   fact:significant-weight-bearing-lesion\n" \
           "      Significant lesion in a weight-bearing long bone or vertebra is missing: " \
           "ORTH-1 of \"Treatment for Stage 4 Breast Cancer with Bone Metastasis\" cannot be " \
           "decided.\n" in out


def test_violation_exits_1_and_the_text_names_item_path_value_and_shape(capsys) -> None:
    code, out, err = run(capsys, NEGATIVE_DOSE)
    assert (code, err) == (1, "")
    lines = out.splitlines()
    index = lines.index("  VIOLATION <http://example.org/patients/invalid-negative-dose/"
                        "denosumab-dose> (the dose of "
                        "<http://example.org/patients/invalid-negative-dose/denosumab>) "
                        "gkg:doseAmount")
    assert lines[index + 1] == ("      The dose amount is one number above 0: a dose is never "
                                "zero or negative.")
    assert lines[index + 2] == "      value: -120.0; shape: one dose amount, above 0"
    assert lines[-1].startswith("Summary: 1 patient, 1 with violations; 1 violation, ")
    assert lines[-1].endswith("The input does not conform: correct the violations (exit 1).")



def test_a_blank_node_dose_is_named_by_its_treatment(capsys) -> None:
    code, out, _ = run(capsys, EXAMPLES / "invalid-dose-without-unit.ttl")
    assert code == 1
    assert ("  VIOLATION the dose of <http://example.org/patients/invalid-dose-without-unit/"
            "trastuzumab> gkg:doseUnit\n") in out


def test_results_are_grouped_by_patient(capsys) -> None:
    code, out, _ = run(capsys, VALID, CONTRADICTION, NEGATIVE_DOSE)
    assert code == 1
    headings = [line for line in out.splitlines() if line.startswith("<")]
    assert headings == [
        "<http://example.org/patients/invalid-her2-contradiction/patient>: 2 violations, "
        "14 warnings, 0 notes",
        "<http://example.org/patients/invalid-negative-dose/patient>: 1 violation, "
        "15 warnings, 0 notes",
    ]
    assert "Summary: 3 patients, 2 with violations; 3 violations, 29 warnings, 0 notes." in out


def test_a_folder_is_read_recursively(capsys) -> None:
    code, out, _ = run(capsys, EXAMPLES / "demo-cohort")
    assert code == 0
    assert "Summary: 3 patients, 0 with violations;" in out


WORK_UP = Path(__file__).resolve().parent / "data" / "patients" / "her2-work-up"


def test_the_vignettes_and_the_demo_cohort_conform(capsys) -> None:
    code, out, _ = run(capsys, EXAMPLES / "demo-cohort", Path(__file__).parent / "vignettes")
    assert code == 0, out
    assert ", 0 with violations;" in out
    assert "Not read by this guideline" not in out


def typo_record(tmp_path: Path) -> Path:
    """The HER2 work-up record (IHC 2+ and ISH amplified) with the ISH result's property
    misspelt: as written, HER2 would be read as equivocal."""
    source = (WORK_UP / "her2-equivocal-ish-amplified.ttl").read_text(encoding="utf-8")
    path = tmp_path / "her2-value-typo.ttl"
    path.write_text(source.replace(
        "ex:her2-ish a gkg:HER2Status ;\n    gkg:subject ex:patient ; gkg:valueCode ",
        "ex:her2-ish a gkg:HER2Status ;\n    gkg:subject ex:patient ; gkg:valueCodee "),
        encoding="utf-8")
    assert "gkg:valueCodee" in path.read_text(encoding="utf-8")
    return path


def test_a_misspelt_property_is_refused_by_validate_and_recommend(capsys, tmp_path) -> None:
    path = typo_record(tmp_path)
    code, out, _ = run(capsys, path)
    assert code == 1
    assert ("  VIOLATION <http://example.org/her2-work-up/her2-equivocal-ish-amplified/her2-ish> "
            "gkg:valueCodee\n"
            "      Unknown property gkg:valueCodee: a typo, or a fact this guideline does not "
            "read.\n") in out
    document = validation_report(run(capsys, path, "--format", "json")[1])
    assert document["conforms"] is False
    (typo,) = [r for r in document["results"]
               if r["shape"] == "https://w3id.org/guidelinekg/shapes/patient#UnknownTerm"]
    assert (typo["severity"], typo["path"], typo["value"]) == (
        "Violation", "gkg:valueCodee", PREFIXES["code"] + "positive")
    assert typo["patient"] == "http://example.org/her2-work-up/her2-equivocal-ish-amplified/patient"
    refused = subprocess.run(
        [sys.executable, "-m", "guidelinekg.cli", "recommend", str(path), "--as-of", "2026-12-01",
         "--format", "json"], capture_output=True, text=True, timeout=600)
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert "nothing is derived" in refused.stderr
    assert "Unknown property gkg:valueCodee" in refused.stderr


def test_unread_terms_are_a_warning_that_does_not_fail(capsys, tmp_path) -> None:
    path = tmp_path / "allergy.ttl"
    path.write_text((WORK_UP / "her2-equivocal-ish-amplified.ttl").read_text(encoding="utf-8")
                    + "\nex:patient <http://example.org/vocabulary/allergy> gkg:Denosumab ;\n"
                      '    <http://www.w3.org/2000/01/rdf-schema#label> "Patient A" .\n',
                    encoding="utf-8")
    code, out, _ = run(capsys, path)
    assert code == 0
    assert ("  WARNING   the patient\n      Not read by this guideline: "
            "<http://example.org/vocabulary/allergy>, rdfs:label (2 triples).") in out
    assert out.count("Not read by this guideline") == 1


def test_json_output_is_the_documented_document(capsys) -> None:
    code, out, _ = run(capsys, NEGATIVE_DOSE, "--format", "json")
    assert code == 1
    document = validation_report(out)
    assert document["conforms"] is False
    assert document["summary"] == {"patients": 1, "patients_with_violations": 1,
                                   "violations": 1, "warnings": 15, "infos": 0}
    (violation,) = [r for r in document["results"] if r["severity"] == "Violation"]
    assert violation["patient"] == "http://example.org/patients/invalid-negative-dose/patient"
    assert violation["focus"] == "http://example.org/patients/invalid-negative-dose/denosumab-dose"
    assert violation["path"] == "gkg:doseAmount"
    assert violation["value"] == "-120.0"
    assert violation["shape"] == "https://w3id.org/guidelinekg/shapes/patient#DoseAmount"
    assert violation["shape_name"] == "one dose amount, above 0"
    assert violation["constraint"] == str(SH.MinExclusiveConstraintComponent)
    assert violation["fact"] is None
    warning = next(r for r in document["results"] if r["severity"] == "Warning")
    assert warning["fact"].startswith(PREFIXES["fact"])
    assert set(warning) == set(violation)


def test_turtle_output_is_the_w3c_report_with_patients(capsys) -> None:
    code, out, _ = run(capsys, CONTRADICTION, "--format", "turtle")
    assert code == 1
    report = Graph().parse(data=out, format="turtle")
    (node,) = report.subjects(RDF.type, SH.ValidationReport)
    assert report.value(node, SH.conforms) == Literal(False)
    results = list(report.objects(node, SH.result))
    assert len(results) == 16
    patient = URIRef("http://example.org/patients/invalid-her2-contradiction/patient")
    assert {report.value(r, URIRef(GKG + "patient")) for r in results} == {patient}
    contradictions = {report.value(r, SH.focusNode) for r in results
                      if report.value(r, SH.resultSeverity) == SH.Violation}
    assert contradictions == {
        URIRef("http://example.org/patients/invalid-her2-contradiction/her2-ihc"),
        URIRef("http://example.org/patients/invalid-her2-contradiction/her2-ish")}


def test_help_documents_the_formats_and_exit_codes(capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main(["validate", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert ("Exit code 0: conforms (warnings allowed); 1: violations; 2: an input could not "
            "be read") in out
    assert '"results": [{"patient", "severity"' in out
    assert "gkg:patient" in out


# ---------------------------------------------------------------------------------------
# Bad input: a clear message naming the file (and line), exit 2, nothing else
# ---------------------------------------------------------------------------------------


def refused(capsys, path: Path) -> str:
    code, out, err = run(capsys, path)
    assert (code, out) == (2, "")
    assert err.startswith(f"guidelinekg validate: error: {path}")
    assert "Traceback" not in err and err.count("\n") == 1
    return err


def test_truncated_turtle_names_the_line(capsys, tmp_path: Path) -> None:
    path = tmp_path / "truncated.ttl"
    path.write_bytes(REFERENCE.read_bytes()[:600])
    err = refused(capsys, path)
    assert err.startswith(f"guidelinekg validate: error: {path}, line 13, column 37: "
                          "not valid Turtle:")


def test_json_ld_with_a_remote_context_is_refused_not_fetched(capsys, tmp_path: Path) -> None:
    path = tmp_path / "remote.jsonld"
    path.write_text('{"@context": "https://schema.org/", "@id": "http://example.org/p"}')
    err = refused(capsys, path)
    assert "remote @context (https://schema.org/)" in err
    assert "fetches nothing over the network" in err


READING_DEFECTS = Path(__file__).parent / "fixtures" / "reading-defects"


@pytest.mark.parametrize(("name", "iri", "code_point"), [
    ("jsonld-invalid-id-vanishing-patients.jsonld", "http://ex.org/p 2", " "),
    ("jsonld-invalid-coerced-reference.jsonld", "http://ex.org/p{1}", "{")])
def test_json_ld_with_an_invalid_iri_is_refused_not_left_out(capsys, name: str, iri: str,
                                                              code_point: str) -> None:
    # Red-team finding 8: the JSON-LD reader left such a node out without a word, so a
    # patient vanished and the input "conformed"; RDF/XML refuses the same IRI.
    path = READING_DEFECTS / name
    err = refused(capsys, path)
    assert err == (f"guidelinekg validate: error: {path}: not valid JSON-LD: @id or IRI "
                   f"{iri!r} is not a valid IRI (Invalid IRI code point {code_point!r}); the "
                   "JSON-LD reader would leave out what it names without a word, so the file "
                   "is refused\n")
    for argv in (["recommend", str(path)], ["recommend", str(path), "--format", "jsonl"],
                 ["validate", str(path), "--format", "jsonl"]):
        assert cli.main(argv) == 2
        assert f"{iri!r} is not a valid IRI" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "role", "term"), [
    ("jsonld-undefined-key-birth-date.jsonld", "key", "birthDat"),
    ("jsonld-undefined-type.jsonld", "@type or value", "Patient")])
def test_json_ld_with_a_key_its_context_does_not_define_is_refused(
        capsys, name: str, role: str, term: str) -> None:
    # JSON-LD leaves an undefined key out without a word: the misspelt birth date would be
    # dropped and the record read as having none.
    path = READING_DEFECTS / name
    assert refused(capsys, path) == (
        f"guidelinekg validate: error: {path}: not valid JSON-LD here: the {role} {term!r} is "
        "not defined by the @context (a typo, or a term to add to it); the JSON-LD reader "
        "would leave it out without a word, so the file is refused\n")
    assert cli.main(["recommend", str(path), "--format", "jsonl"]) == 2


def test_json_ld_may_leave_out_a_term_its_context_maps_to_null(capsys) -> None:
    path = READING_DEFECTS / "jsonld-term-mapped-to-null.jsonld"
    assert cli.main(["validate", str(path)]) == 0, capsys.readouterr().err


def test_a_png_named_ttl_is_refused(capsys, tmp_path: Path) -> None:
    path = tmp_path / "image.ttl"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01")
    err = refused(capsys, path)
    assert err.startswith(f"guidelinekg validate: error: {path}, line 1, column 1: "
                          "not valid Turtle:")
    assert "UTF-8" in err


def test_turtle_named_jsonld_is_refused(capsys, tmp_path: Path) -> None:
    path = tmp_path / "record.jsonld"
    path.write_bytes(VALID.read_bytes())
    err = refused(capsys, path)
    assert err.startswith(f"guidelinekg validate: error: {path}, line 1, column 1: "
                          "not valid JSON (Expecting value)")


def test_an_empty_file_is_refused(capsys, tmp_path: Path) -> None:
    path = tmp_path / "empty.ttl"
    path.write_text("  \n")
    assert refused(capsys, path) == f"guidelinekg validate: error: {path}: the file is empty\n"


def test_very_deep_blank_nodes_are_refused(capsys, tmp_path: Path) -> None:
    path = tmp_path / "deep.ttl"
    depth = 100_000
    path.write_text(
        "<http://example.org/p> a <https://w3id.org/guidelinekg/ontology#Patient> ;\n"
        "    <http://example.org/x> " + "[ <http://example.org/x> " * depth + '"leaf"'
        + " ]" * depth + " .\n")
    err = refused(capsys, path)
    assert err == (f"guidelinekg validate: error: {path}: blank nodes are nested 100000 levels "
                   "deep (a patient record needs a few; the limit is 50)\n")


def test_very_deep_json_is_refused(capsys, tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    assert refused(capsys, path) == (
        f"guidelinekg validate: error: {path}: the JSON is nested too deeply to read "
        "(over 1,000 levels): not a patient record\n")


def test_a_very_large_file_is_refused_before_it_is_read(capsys, tmp_path: Path) -> None:
    path = tmp_path / "huge.ttl"
    with path.open("wb") as handle:  # sparse: no disk is used
        handle.truncate(MAX_FILE_BYTES + 1)
    err = refused(capsys, path)
    assert f"file is too large ({MAX_FILE_BYTES + 1} bytes; limit {MAX_FILE_BYTES})" in err


def test_a_missing_file_is_refused(capsys, tmp_path: Path) -> None:
    path = tmp_path / "missing.ttl"
    assert refused(capsys, path) == f"guidelinekg validate: error: {path}: no such file or folder\n"


def test_an_unknown_file_type_is_refused(capsys, tmp_path: Path) -> None:
    path = tmp_path / "record.csv"
    path.write_text("patient,her2\n")
    assert "unknown file type" in refused(capsys, path)


def test_input_without_a_patient_is_refused(capsys, tmp_path: Path) -> None:
    path = tmp_path / "no-patient.ttl"
    path.write_text("<http://example.org/a> <http://example.org/b> <http://example.org/c> .\n")
    assert refused(capsys, path) == (
        f"guidelinekg validate: error: {path}: no patient found (nothing is declared "
        "`a gkg:Patient`): nothing to validate\n")


def test_the_command_line_exits_with_the_codes_and_no_traceback(tmp_path: Path) -> None:
    """The installed entry point (a subprocess), not only cli.main."""
    bad = tmp_path / "truncated.ttl"
    bad.write_bytes(REFERENCE.read_bytes()[:600])
    command = [sys.executable, "-m", "guidelinekg.cli", "validate"]
    outcomes = {}
    for path in (VALID, NEGATIVE_DOSE, bad):
        done = subprocess.run([*command, str(path)], capture_output=True, text=True, timeout=300)
        outcomes[path.name] = (done.returncode, "Traceback" in done.stderr)
    assert outcomes == {VALID.name: (0, False), NEGATIVE_DOSE.name: (1, False),
                        "truncated.ttl": (2, False)}


def test_the_w3c_report_conforms_only_without_any_result_as_shacl_defines(capsys) -> None:
    """A record with warnings only: exit 0 and "no violations" in the project's summary, but
    sh:conforms false in the W3C report, as SHACL defines it (any result)."""
    code, out, _ = run(capsys, REFERENCE, "--format", "turtle")
    report = Graph().parse(data=out, format="turtle")
    (node,) = report.subjects(RDF.type, SH.ValidationReport)
    severities = {report.value(r, SH.resultSeverity) for r in report.objects(node, SH.result)}
    assert code == 0 and SH.Violation not in severities and SH.Warning in severities
    assert report.value(node, SH.conforms) == Literal(False)
    code, out, _ = run(capsys, REFERENCE, "--format", "json")
    assert code == 0 and validation_report(out)["conforms"] is True


def test_a_records_control_characters_never_reach_the_terminal(capsys, tmp_path) -> None:
    """A value holding terminal escapes (retitle, colour, clear) and a bidirectional
    override is shown escaped in the text reports of validate and recommend, and in the
    messages on standard error, never written raw."""
    record = tmp_path / "escapes.ttl"
    hostile = "\\u001b]0;PWNED\\u0007\\u001b[2J\\u202e1960"
    record.write_text(
        '@prefix gkg: <https://w3id.org/guidelinekg/ontology#> .\n'
        '@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .\n'
        f'<http://example.org/p> a gkg:Patient ; gkg:birthDate "{hostile}"^^xsd:date .\n',
        encoding="utf-8")
    for command in (["validate", str(record)], ["recommend", str(record)],
                    ["query", "intervention", "--param", "intervention=\x1b[2J"]):
        cli.main(command)
        captured = capsys.readouterr()
        shown = captured.out + captured.err
        assert not any(c in shown for c in "\x1b\x07\u202e"), (command, shown)
    assert "\\x1b]0;PWNED\\x07" in cli_output(["validate", str(record)], capsys)


def cli_output(command: list[str], capsys) -> str:
    cli.main(command)
    captured = capsys.readouterr()
    return captured.out + captured.err
