"""Command-line habits (issue 15): suggestions for a mistyped command or option, dates and
ports checked in plain words, ``recommend --patient`` for a patient not in the input,
``| head`` ending quietly, and ``-`` for standard input. Each runs the real command."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from rdflib import Graph
from rdflib.compare import isomorphic

from guidelinekg.resources import examples_dir

EXAMPLE = examples_dir() / "patients" / "hr-positive-her2-negative-bone-only.ttl"
EXAMPLE_PATIENT = "http://example.org/patients/hr-pos-bone-only/patient"
FHIR_EXAMPLE = examples_dir() / "fhir" / "triple-negative-germline-brca1.json"


def command(*argv: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "guidelinekg.cli", *argv], input=stdin,
                          capture_output=True, timeout=180, check=False)
    return subprocess.CompletedProcess(done.args, done.returncode,
                                       done.stdout.decode(), done.stderr.decode())


def test_a_mistyped_command_gets_a_suggestion_and_the_top_level_usage() -> None:
    done = command("recomend", str(EXAMPLE))
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert lines[0].startswith("usage: guidelinekg [-h]")
    assert lines[-1] == "guidelinekg: unknown command 'recomend'; did you mean 'recommend'?"


def test_a_command_far_from_any_gets_the_list() -> None:
    done = command("xyzzy")
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        "guidelinekg: unknown command 'xyzzy' (commands: check, query, validate, recommend, "
        "import-fhir, publish, serve, export-fhir, synth, load)")


@pytest.mark.parametrize(("argv", "message"), [
    (["recommend", str(EXAMPLE), "--as_of", "2026-12-01"],
     "guidelinekg recommend: unknown option --as_of; did you mean --as-of?"),
    (["validate", "--formt=json", str(EXAMPLE)],
     "guidelinekg validate: unknown option --formt; did you mean --format?"),
    (["--debug", "query", "--lst"],
     "guidelinekg query: unknown option --lst; did you mean --list?"),
])
def test_a_mistyped_option_gets_a_suggestion_and_the_command_usage(argv: list[str],
                                                                   message: str) -> None:
    done = command(*argv)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    name = message.split(":")[0]
    assert lines[0].startswith(f"usage: {name} [-h]"), done.stderr
    assert lines[-1] == message
    assert "Traceback" not in done.stderr and done.stdout == ""


@pytest.mark.parametrize("value", ["2026-13-01", "20261201", "next week"])
def test_a_date_that_is_not_one_is_said_plainly(value: str) -> None:
    done = command("recommend", str(EXAMPLE), "--as-of", value)
    assert done.returncode == 2
    assert done.stderr == (f"guidelinekg recommend: --as-of: {value} is not a date "
                           "(YYYY-MM-DD, e.g. 2026-12-01)\n")


@pytest.mark.parametrize("value", ["99999", "-1", "http"])
def test_a_port_that_is_not_one_is_said_plainly(value: str) -> None:
    done = command("serve", "--port", value)
    assert done.returncode == 2
    assert done.stderr == (f"guidelinekg serve: --port: {value} is not a port (an integer "
                           "from 1 to 65535, or 0 for a free one)\n")


def test_a_patient_not_in_the_input_is_named_before_any_validation() -> None:
    done = command("recommend", str(EXAMPLE), "--as-of", "2026-12-01",
                   "--patient", "http://example.org/nobody")
    assert done.returncode == 2
    assert done.stderr == ("guidelinekg recommend: no patient <http://example.org/nobody> in "
                           f"the input (patients: <{EXAMPLE_PATIENT}>)\n")
    assert done.stdout == ""


@pytest.mark.parametrize("argv", [["query", "--list"], ["query", "--file", "ALL"]])
def test_a_reader_that_closes_early_ends_the_command_quietly(argv: list[str],
                                                             tmp_path: Path) -> None:
    # Every triple of the guideline (megabytes): more than a pipe holds, so the command
    # certainly writes after the reader has gone.
    every_triple = tmp_path / "all.rq"
    every_triple.write_text("SELECT * WHERE { ?s ?p ?o }\n", encoding="utf-8")
    argv = [str(every_triple) if arg == "ALL" else arg for arg in argv]
    process = subprocess.Popen([sys.executable, "-m", "guidelinekg.cli", *argv],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()  # `| head -1`
    stderr = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(timeout=180) == 0
    assert first.strip()
    assert stderr == ""


def test_validate_reads_turtle_on_standard_input_as_from_the_file() -> None:
    from_file = command("validate", "--format", "json", str(EXAMPLE))
    from_stdin = command("validate", "--format", "json", "-", stdin=EXAMPLE.read_bytes())
    assert from_file.returncode == from_stdin.returncode == 0, from_stdin.stderr
    assert from_stdin.stdout == from_file.stdout
    assert from_stdin.stderr == ""


def test_standard_input_is_recognised_by_content() -> None:
    from rdflib import Graph

    triples = Graph().parse(EXAMPLE).serialize(format="nt", encoding="utf-8")
    as_turtle = command("validate", "--format", "json", str(EXAMPLE))
    as_ntriples = command("validate", "--format", "json", "-", stdin=triples)
    assert as_ntriples.returncode == 0 and as_ntriples.stdout == as_turtle.stdout
    fhir = command("validate", "-", stdin=FHIR_EXAMPLE.read_bytes())
    assert fhir.returncode == 0, fhir.stderr
    assert fhir.stdout.startswith("FHIR standard input: patient ")


def test_recommend_reads_standard_input() -> None:
    from_file = command("recommend", str(EXAMPLE), "--as-of", "2026-12-01", "--format", "json")
    from_stdin = command("recommend", "-", "--as-of", "2026-12-01", "--format", "json",
                         stdin=EXAMPLE.read_bytes())
    assert from_stdin.returncode == from_file.returncode == 0, from_stdin.stderr
    assert from_stdin.stdout == from_file.stdout


@pytest.mark.parametrize(("stdin", "message"), [
    (b"", "guidelinekg validate: error: standard input: empty (nothing was piped in)\n"),
    (b"garbage ;;\n", "guidelinekg validate: error: standard input, line 1, column 1: not "
                      "valid Turtle: Parser error at line 1 between columns 1 and 8: garbage is "
                      "not a valid subject or graph name\n"),
])
def test_bad_standard_input_is_named_standard_input(stdin: bytes, message: str) -> None:
    done = command("validate", "-", stdin=stdin)
    assert done.returncode == 2
    assert done.stderr == message


def test_standard_input_is_read_once() -> None:
    done = command("validate", "-", "-", stdin=EXAMPLE.read_bytes())
    assert done.returncode == 2
    assert done.stderr == "guidelinekg validate: error: standard input: given twice (as -)\n"


# ---------------------------------------------------------------------------------------
# `-` for standard output wherever a file is written


AS_OF = "2026-12-01"
INVALID_EXAMPLE = examples_dir() / "patients" / "invalid-negative-dose.ttl"
SECOND_EXAMPLE = examples_dir() / "patients" / "triple-negative-brca1.ttl"


def test_import_fhir_writes_the_graph_to_standard_output_as_to_the_file(tmp_path: Path) -> None:
    written = tmp_path / "patient.ttl"
    to_file = command("import-fhir", str(FHIR_EXAMPLE), "-o", str(written))
    to_stdout = command("import-fhir", str(FHIR_EXAMPLE), "-o", "-")
    assert to_file.returncode == to_stdout.returncode == 0, to_stdout.stderr
    assert to_file.stdout.startswith(f"wrote {written}\n")
    assert isomorphic(Graph().parse(data=to_stdout.stdout, format="turtle"),
                      Graph().parse(written, format="turtle"))
    # The import report: on standard error when standard output holds the graph.
    assert to_stdout.stderr == to_file.stdout.removeprefix(f"wrote {written}\n")
    assert command("import-fhir", str(FHIR_EXAMPLE)).stdout == to_stdout.stdout


def test_synth_writes_n_triples_to_standard_output_as_to_the_file(tmp_path: Path) -> None:
    written = tmp_path / "cohort.nt"
    to_file = command("synth", "--patients", "3", "--seed", "7", "-o", str(written))
    to_stdout = command("synth", "--patients", "3", "--seed", "7", "--output", "-")
    assert to_file.returncode == to_stdout.returncode == 0, to_stdout.stderr
    assert isomorphic(Graph().parse(data=to_stdout.stdout, format="nt"),
                      Graph().parse(written, format="nt"))
    assert to_stdout.stderr == to_file.stderr == "guidelinekg synth: 3 patients (seed 7)\n"


def test_export_fhir_writes_its_one_bundle_to_standard_output(tmp_path: Path) -> None:
    from guidelinekg.fhir_export import BUNDLE_FILE

    to_folder = command("export-fhir", "--out", str(tmp_path))
    to_stdout = command("export-fhir", "--out", "-")
    assert to_folder.returncode == to_stdout.returncode == 0, to_stdout.stderr
    assert to_stdout.stdout == (tmp_path / BUNDLE_FILE).read_text(encoding="utf-8")
    # The summary line moves to standard error, naming standard output.
    summary = to_folder.stdout.replace(f"wrote {tmp_path / BUNDLE_FILE}:",
                                       "wrote standard output:")
    assert to_stdout.stderr == summary + to_folder.stderr
    quiet = command("export-fhir", "--out", "-", "--quiet")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, to_stdout.stdout, "")


@pytest.mark.parametrize(("argv", "message"), [
    (["publish", "--out", "-"],
     "guidelinekg publish: error: --out: the site is a folder of files, which cannot be "
     "standard output (-): give a folder\n"),
    (["synth", "--patients", "2", "--format", "fhir", "-o", "-"],
     "guidelinekg synth: error: --output: --format fhir is a folder of files, which cannot be "
     "standard output (-): give a folder\n"),
    (["synth", "--patients", "2", "--format", "ndjson", "--out", "-"],
     "guidelinekg synth: error: --output: --format ndjson is a folder of files, which cannot "
     "be standard output (-): give a folder\n"),
    (["recommend", str(EXAMPLE), "--spark", "local[2]", "--spark-output", "-"],
     "guidelinekg recommend: error: --spark-output: the Spark run's output is a folder of "
     "files, which cannot be standard output (-): give a folder\n"),
    (["recommend", str(EXAMPLE), "--format", "jsonl", "--validation-report", "-"],
     "guidelinekg recommend: error: --validation-report: the validation report and the "
     "results would both go to standard output; give the results a file with -o FILE, or "
     "the report a file\n"),
    (["recommend", str(EXAMPLE), "--format", "jsonl", "--validation-report", "-", "-o", "-"],
     "guidelinekg recommend: error: --validation-report: the validation report and the "
     "results would both go to standard output; give the results a file with -o FILE, or "
     "the report a file\n"),
    (["recommend", str(EXAMPLE), "--spark", "local[2]", "--spark-output", "out", "-o", "x"],
     "guidelinekg recommend: error: --output: not with --spark: the results go to "
     "--spark-output DIR\n"),
    (["recommend", "-", "--spark", "local[2]", "--spark-output", "out"],
     "guidelinekg recommend: error: standard input: cannot be read by Spark, whose executors "
     "read files: give files or folders\n"),
])
def test_standard_output_where_it_cannot_be_is_refused(argv: list[str], message: str,
                                                       tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "guidelinekg.cli", *argv], cwd=tmp_path,
                          capture_output=True, text=True, timeout=180, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", message)
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a folder named "-"


def test_recommend_writes_its_results_to_a_file_with_o(tmp_path: Path) -> None:
    written = tmp_path / "results.json"
    to_stdout = command("recommend", str(EXAMPLE), "--as-of", AS_OF, "--format", "json")
    to_file = command("recommend", str(EXAMPLE), "--as-of", AS_OF, "--format", "json",
                      "-o", str(written))
    assert to_file.returncode == to_stdout.returncode == 0, to_file.stderr
    assert to_file.stdout == ""
    assert written.read_text(encoding="utf-8") == to_stdout.stdout
    dash = command("recommend", str(EXAMPLE), "--as-of", AS_OF, "--format", "json", "-o", "-")
    assert dash.stdout == to_stdout.stdout


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twelve synthetic patients (one of them invalid) as N-Triples."""
    path = tmp_path_factory.mktemp("cohort") / "cohort.nt"
    done = command("synth", "--patients", "12", "--seed", "3", "-o", str(path))
    assert done.returncode == 0, done.stderr
    return path


def test_the_validation_report_goes_to_standard_output_with_the_results_in_a_file(
        cohort: Path, tmp_path: Path) -> None:
    report, results = tmp_path / "report.jsonl", tmp_path / "results.jsonl"
    files = command("recommend", str(cohort), "--as-of", AS_OF, "--format", "jsonl",
                    "--quiet", "--validation-report", str(report))
    swapped = command("recommend", str(cohort), "--as-of", AS_OF, "--format", "jsonl",
                      "--quiet", "--validation-report", "-", "-o", str(results))
    assert files.returncode == swapped.returncode == 1  # the invalid patient is refused
    assert results.read_text(encoding="utf-8") == files.stdout
    assert swapped.stdout == report.read_text(encoding="utf-8")
    assert swapped.stdout
    # Where the report went is part of the closing summary, which --quiet keeps.
    assert f"guidelinekg recommend: every validation result is in {report}\n" in files.stderr
    assert "every validation result is in" not in swapped.stderr


# ---------------------------------------------------------------------------------------
# `-` for standard input: cohort runs, load, query, check, synth


def test_a_jsonl_cohort_from_standard_input_gives_the_lines_of_the_file(cohort: Path) -> None:
    flags = ["--as-of", AS_OF, "--format", "jsonl", "--quiet"]
    from_file = command("recommend", str(cohort), *flags)
    from_stdin = command("recommend", "-", *flags, stdin=cohort.read_bytes())
    assert from_file.returncode == from_stdin.returncode == 1, from_stdin.stderr
    assert len(from_stdin.stdout.splitlines()) == 12
    assert from_stdin.stdout == from_file.stdout
    assert from_stdin.stderr == from_file.stderr


def test_a_csv_cohort_from_standard_input_gives_the_rows_of_the_file(cohort: Path) -> None:
    flags = ["--as-of", AS_OF, "--format", "csv", "--quiet", "--workers", "2"]
    from_file = command("recommend", str(cohort), *flags)
    from_stdin = command("recommend", *flags, "-", stdin=cohort.read_bytes())
    assert from_file.returncode == from_stdin.returncode == 1, from_stdin.stderr
    assert from_stdin.stdout == from_file.stdout
    assert from_stdin.stdout.startswith("patient,")


def test_validate_jsonl_reads_a_cohort_from_standard_input(cohort: Path) -> None:
    from_file = command("validate", "--format", "jsonl", str(cohort))
    from_stdin = command("validate", "--format", "jsonl", "-", stdin=cohort.read_bytes())
    assert from_file.returncode == from_stdin.returncode == 1, from_stdin.stderr
    # The same lines in the same order: each run is its own process, with its own hashing
    # of strings, and blank nodes (the shapes' sequence paths) labelled anew.
    assert from_stdin.stdout == from_file.stdout
    summary = [line for line in from_file.stderr.splitlines() if "/12 patients" not in line]
    assert [line for line in from_stdin.stderr.splitlines()
            if "/12 patients" not in line] == summary
    assert "guidelinekg validate: 12 patients, 1 with violations" in from_stdin.stderr


def test_a_fhir_bundle_on_standard_input_is_one_patient_in_a_cohort_run() -> None:
    import json

    whole = command("recommend", "-", "--as-of", AS_OF, "--format", "json",
                    stdin=FHIR_EXAMPLE.read_bytes())
    cohort_run = command("recommend", "-", "--as-of", AS_OF, "--format", "jsonl", "--quiet",
                         stdin=FHIR_EXAMPLE.read_bytes())
    assert whole.returncode == cohort_run.returncode == 0, cohort_run.stderr
    # The same local IRIs: standard input is named "standard input" either way.
    assert [json.loads(line) for line in cohort_run.stdout.splitlines()] == \
        json.loads(whole.stdout)
    assert "urn:guidelinekg:fhir:standard%20input:Condition/" in cohort_run.stdout


def test_a_bulk_data_export_on_standard_input_is_read_as_one_export(tmp_path: Path) -> None:
    import json

    export = tmp_path / "export"
    done = command("synth", "--patients", "4", "--seed", "2", "--format", "ndjson", "-o",
                   str(export))
    assert done.returncode == 0, done.stderr
    (export / "manifest.json").unlink()  # no server to name: local IRIs either way
    lines = b"".join(path.read_bytes() for path in sorted(export.glob("*.ndjson")))
    flags = ["--as-of", AS_OF, "--format", "jsonl", "--quiet"]
    from_folder = command("recommend", str(export), *flags)
    from_stdin = command("recommend", "-", *flags, stdin=lines)
    assert from_folder.returncode == from_stdin.returncode, from_stdin.stderr
    # One export either way; its record items are named by its label (the folder's name,
    # or "standard input").
    assert from_stdin.stdout == from_folder.stdout.replace(
        "urn:guidelinekg:fhir:export:", "urn:guidelinekg:fhir:standard%20input:")
    assert len([json.loads(line) for line in from_stdin.stdout.splitlines()]) == 4
    one_record = command("validate", "-", stdin=lines)
    assert (one_record.returncode, one_record.stderr) == (
        2, "guidelinekg validate: error: standard input: FHIR Bulk Data NDJSON (a resource a "
           "line) is read by a cohort run (recommend or validate --format jsonl -)\n")


@pytest.mark.parametrize(("argv", "stdin", "message"), [
    (["recommend", "--format", "jsonl", "-", "-"], EXAMPLE.read_bytes(),
     "guidelinekg recommend: error: standard input: given twice (as -)\n"),
    (["validate", "--format", "jsonl", "-"], b"",
     "guidelinekg validate: error: standard input: empty (nothing was piped in)\n"),
    (["recommend", "--format", "jsonl", "-"], b"garbage ;;\n",
     "guidelinekg recommend: error: standard input, line 1, column 1: not valid Turtle: "
     "Parser error at line 1 between columns 1 and 8: garbage is not a valid subject or "
     "graph name\n"),
    (["recommend", "--format", "jsonl", "-"],
     b'<http://example.org/a> <http://example.org/p> "x" .\n<http://example.org/b> '
     b'<http://example.org/p> .\n',
     "guidelinekg recommend: error: standard input, line 2, column 47: not valid Turtle: "
     "Parser error at line 2 column 47: . is not a valid RDF object\n"),
])
def test_bad_standard_input_of_a_cohort_run_is_named_standard_input(
        argv: list[str], stdin: bytes, message: str) -> None:
    done = command(*argv, "--quiet", stdin=stdin)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", message)


def test_n_triples_on_standard_input_are_streamed_and_their_errors_named(cohort: Path
                                                                        ) -> None:
    # Over the mebibyte the format is told from: read as N-Triples, line by line.
    lines = cohort.read_bytes() * 8
    assert len(lines) > 1024 * 1024
    bad = lines + b'<http://example.org/b> <p> "x" .\n'
    done = command("recommend", "--format", "jsonl", "-", "--quiet", stdin=bad)
    number = lines.count(b"\n") + 1
    assert (done.returncode, done.stdout, done.stderr) == (
        2, "", f"guidelinekg recommend: error: standard input, line {number}: not valid "
               f"N-Triples: Parser error at line {number} between columns 24 and 27: No scheme "
               "found in an absolute IRI\n")


def test_the_copy_of_standard_input_is_removed(cohort: Path, tmp_path: Path) -> None:
    import os

    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "guidelinekg.cli", "validate", "--format",
                           "jsonl", "--quiet", "-"], input=cohort.read_bytes(),
                          capture_output=True, env=env, timeout=180, check=False)
    assert done.returncode == 1, done.stderr
    assert list(tmp_path.iterdir()) == []


def test_query_reads_the_query_text_from_standard_input(tmp_path: Path) -> None:
    text = "SELECT ?key WHERE { ?s a gkg:Recommendation ; skos:notation ?key } ORDER BY ?key\n"
    query_file = tmp_path / "keys.rq"
    query_file.write_text(text, encoding="utf-8")
    from_file = command("query", "--file", str(query_file), "--format", "csv")
    from_stdin = command("query", "--file", "-", "--format", "csv", stdin=text.encode())
    assert from_file.returncode == from_stdin.returncode == 0, from_stdin.stderr
    assert from_stdin.stdout == from_file.stdout
    assert from_stdin.stdout.startswith("key\r\n")
    bad = command("query", "--file", "-", stdin=b"\xff\xfe SELECT")
    assert (bad.returncode, bad.stderr) == (
        2, "guidelinekg query: error: standard input: not UTF-8 text (invalid start byte)\n")


def test_check_reads_a_spec_from_standard_input() -> None:
    from guidelinekg.resources import guideline_module

    statements = guideline_module("bcbm").statements_file
    done = command("check", "--guideline", "bcbm", "--statements", "-",
                   stdin=Path(statements).read_bytes())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Coverage (bcbm: standard input, " in done.stdout
    assert "37/37 statements covered, text verbatim" in done.stdout
    broken = command("check", "--guideline", "bcbm", "--references", "-", stdin=b"key\n")
    assert (broken.returncode, broken.stderr) == (
        2, "guidelinekg check: error: standard input: missing column(s) seed_line, type, "
           "title, publisher, year\n")
    twice = command("check", "--guideline", "bcbm", "--statements", "-", "--content", "-")
    assert (twice.returncode, twice.stderr) == (
        2, "guidelinekg check: error: standard input: given twice (as - to --statements and "
           "--content); it can be read only once\n")


def test_synth_reads_its_templates_from_standard_input(tmp_path: Path) -> None:
    flags = ["synth", "--patients", "3", "--seed", "4"]
    from_file = command(*flags, "--from", str(EXAMPLE))
    from_stdin = command(*flags, "--from", "-", stdin=EXAMPLE.read_bytes())
    assert from_file.returncode == from_stdin.returncode == 0, from_stdin.stderr
    assert from_stdin.stdout == from_file.stdout
    export = tmp_path / "bundles"
    fhir = command(*flags, "--format", "fhir", "--from", "-", "-o", str(export),
                   stdin=FHIR_EXAMPLE.read_bytes())
    assert fhir.returncode == 0, fhir.stderr
    assert len(list(export.glob("*.json"))) == 3


def test_load_needs_a_graph_for_standard_input() -> None:
    for argv in (["--patients", "-"], ["-"]):
        done = command("load", "--endpoint", "http://127.0.0.1:9", *argv,
                       stdin=EXAMPLE.read_bytes())
        assert (done.returncode, done.stdout, done.stderr) == (
            2, "", "guidelinekg load: error: standard input: has no file: URL to name its "
                   "graph by: give --graph IRI\n")


def test_load_writes_patient_records_from_standard_input(tmp_path: Path) -> None:
    from guidelinekg.load_command import canonical_graph
    from guidelinekg.patients import load_patient_graph
    from guidelinekg.store_commands import read_patient_graph
    from test_store import start_oxigraph

    store = start_oxigraph(tmp_path)
    try:
        graph = "urn:example:from-standard-input"
        done = command("load", "--endpoint", store.base, "--patients", "-", "--graph", graph,
                       "--verbose", stdin=EXAMPLE.read_bytes())
        assert done.returncode == 0, done.stderr
        size = len(load_patient_graph([EXAMPLE]))
        assert done.stdout.splitlines()[0] == (
            f"appended {size} triples to <{graph}> (it held 0, now {size}) from standard input")
        assert done.stderr.startswith("guidelinekg load: read 1 file (standard input) in ")
        stored = read_patient_graph(store.client().endpoint, [graph])
        assert isomorphic(stored, canonical_graph(load_patient_graph([EXAMPLE])))
        rdf = command("load", "--endpoint", store.base, "-", "--graph", "urn:example:rdf",
                      stdin=b"<urn:s> <urn:p> 1, 2 .\n")
        assert rdf.returncode == 0, rdf.stderr
        assert rdf.stdout == ("appended 2 triples to <urn:example:rdf> (it held 0, now 2) from "
                              "standard input\n")
    finally:
        store.stop()


# ---------------------------------------------------------------------------------------
# --quiet and --verbose on every command


def _commands() -> list[str]:
    from guidelinekg.cli import COMMANDS

    return list(COMMANDS)


@pytest.mark.parametrize("name", _commands())
def test_quiet_and_verbose_together_are_a_usage_error(name: str) -> None:
    done = command(name, "--quiet", "--verbose")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"guidelinekg {name}: --verbose: not allowed with argument --quiet\n"


@pytest.mark.parametrize("name", _commands())
def test_every_command_documents_quiet_and_verbose(name: str) -> None:
    from guidelinekg.cli import CHATTER, build_parser

    text = " ".join(build_parser(name).commands[name].format_help().split())
    quiet, verbose = CHATTER[name]
    assert "[--quiet | --verbose]" in text
    assert ("--quiet no notes, progress or summaries on standard error: " + quiet) in text
    assert "errors, refusals and violations are never silenced" in text
    assert f"--verbose more detail on standard error: {verbose}" in text


def test_validate_quiet_drops_the_files_of_each_patient_and_verbose_names_what_it_read(
) -> None:
    plain = command("validate", str(EXAMPLE), str(SECOND_EXAMPLE))
    quiet = command("validate", str(EXAMPLE), str(SECOND_EXAMPLE), "--quiet")
    verbose = command("validate", str(EXAMPLE), str(SECOND_EXAMPLE), "--verbose")
    assert plain.returncode == quiet.returncode == verbose.returncode == 0, plain.stderr
    assert plain.stdout == quiet.stdout == verbose.stdout
    assert plain.stderr == (f"patient <{EXAMPLE_PATIENT}>: from {EXAMPLE}\n"
                            "patient <http://example.org/patients/triple-negative-brca1/"
                            "patient>: from "
                            f"{SECOND_EXAMPLE}\n")
    assert quiet.stderr == ""
    details = verbose.stderr.splitlines()
    assert details[:2] == plain.stderr.splitlines()
    assert details[2].startswith(f"guidelinekg validate: read 2 files ({EXAMPLE}, "
                                 f"{SECOND_EXAMPLE}) in ")
    assert details[2].endswith(" s: 2 patients, "
                               f"{len(_graph(EXAMPLE)) + len(_graph(SECOND_EXAMPLE)):,} triples")
    assert details[3].startswith("guidelinekg validate: validated in ")
    assert details[3].endswith(" s: 0 violations, 7 warnings, 0 notes")
    assert len(details) == 4


def _graph(path: Path) -> Graph:
    from guidelinekg.patients import load_patient_graph

    return load_patient_graph([path])


def test_recommend_quiet_keeps_the_results_and_refusals_and_drops_the_notes() -> None:
    flags = ["--as-of", AS_OF, "--format", "json"]
    plain = command("recommend", str(EXAMPLE), *flags)
    quiet = command("recommend", str(EXAMPLE), *flags, "--quiet")
    assert plain.returncode == quiet.returncode == 0
    assert quiet.stdout == plain.stdout
    assert "WARNING" in plain.stderr  # what the record lacks, as a note
    assert quiet.stderr == ""
    refused = command("recommend", str(INVALID_EXAMPLE), *flags, "--quiet")
    assert refused.returncode == 1
    assert refused.stderr.startswith("guidelinekg recommend: the record violates the patient "
                                     "shapes; nothing is derived. Validation report:\n")
    assert "1 with violations; 1 violation, 15 warnings, 0 notes" in refused.stderr


def test_recommend_verbose_names_items_by_iri_and_says_each_step() -> None:
    plain = command("recommend", str(EXAMPLE), "--as-of", AS_OF)
    verbose = command("recommend", str(EXAMPLE), "--as-of", AS_OF, "--verbose")
    assert plain.returncode == verbose.returncode == 0
    assert "http://example.org/patients/hr-pos-bone-only/" in verbose.stdout
    assert verbose.stdout != plain.stdout
    details = [line for line in verbose.stderr.splitlines()
               if line.startswith("guidelinekg recommend: ")]
    assert [line.split(" in ")[0] for line in details] == [
        f"guidelinekg recommend: read 1 file ({EXAMPLE})",
        "guidelinekg recommend: validated",
        "guidelinekg recommend: derived 1 result (a patient and guideline each)"]
    # The notes are said as without --verbose.
    assert [line for line in verbose.stderr.splitlines() if line not in details] == \
        plain.stderr.splitlines()


def test_a_quiet_cohort_run_keeps_only_its_closing_summary(cohort: Path) -> None:
    flags = ["--as-of", AS_OF, "--format", "jsonl"]
    plain = command("recommend", str(cohort), *flags)
    quiet = command("recommend", str(cohort), *flags, "--quiet")
    verbose = command("recommend", str(cohort), *flags, "--verbose")
    assert plain.returncode == quiet.returncode == verbose.returncode == 1
    assert plain.stdout == quiet.stdout == verbose.stdout
    assert quiet.stderr.startswith("guidelinekg recommend: 12 patients, 1 refused (their "
                                   "records violate the patient shapes")
    assert plain.stderr.endswith(quiet.stderr)
    assert "guidelinekg recommend: read 12 patients in " in plain.stderr
    assert verbose.stderr.startswith("guidelinekg recommend: 1 RDF file, cut into 1 bucket of "
                                     "whole patients, 500 patients a partition, 1 worker\n")
    spooled = command("validate", "-", *flags[2:], "--verbose", stdin=cohort.read_bytes())
    size = cohort.stat().st_size
    assert spooled.stderr.startswith(
        "guidelinekg validate: 1 RDF file (standard input spooled to a temporary file, "
        f"{size:,} bytes, read as N-Triples), cut into 1 bucket of whole patients")


def test_import_fhir_quiet_drops_the_report_from_standard_error(tmp_path: Path) -> None:
    plain = command("import-fhir", str(FHIR_EXAMPLE))
    quiet = command("import-fhir", str(FHIR_EXAMPLE), "--quiet")
    verbose = command("import-fhir", str(FHIR_EXAMPLE), "--verbose")
    assert plain.stdout == quiet.stdout == verbose.stdout
    assert plain.stderr and quiet.stderr == ""
    assert verbose.stderr.startswith(f"guidelinekg import-fhir: read 1 file ({FHIR_EXAMPLE}) "
                                     "in ")
    assert verbose.stderr.splitlines()[0].endswith(
        f" s: 1 patient, {len(_graph(FHIR_EXAMPLE)):,} triples")
    assert verbose.stderr.endswith(plain.stderr)
    # With -o FILE the report is the output, on standard output: --quiet keeps it.
    written = tmp_path / "patient.ttl"
    to_file = command("import-fhir", str(FHIR_EXAMPLE), "-o", str(written), "--quiet")
    assert to_file.stdout == f"wrote {written}\n" + plain.stderr
    assert to_file.stderr == ""


def test_synth_quiet_and_verbose(tmp_path: Path) -> None:
    flags = ["synth", "--patients", "2", "--seed", "9"]
    quiet = command(*flags, "--quiet")
    verbose = command(*flags, "--verbose", "-o", str(tmp_path / "c.nt"))
    assert quiet.returncode == verbose.returncode == 0
    assert quiet.stderr == ""
    assert isomorphic(Graph().parse(data=quiet.stdout, format="nt"),
                      Graph().parse(tmp_path / "c.nt", format="nt"))
    lines = verbose.stderr.splitlines()
    assert re.fullmatch(r"guidelinekg synth: \d+ template records from the bundled example "
                        "patients", lines[0]), lines[0]
    assert lines[1].startswith("guidelinekg synth: made and wrote 2 patients in ")
    assert lines[1].endswith(f" s to {tmp_path / 'c.nt'}")
    assert lines[2:] == ["guidelinekg synth: 2 patients (seed 9)"]


def test_query_and_check_verbose_say_what_they_did() -> None:
    query = command("query", "guideline/dose-regimens", "--verbose", "--format", "csv")
    assert query.returncode == 0, query.stderr
    lines = query.stderr.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("guidelinekg query: query guideline/dose-regimens (")
    assert lines[0].endswith("dose-regimens.rq), on the guideline graph with oxigraph")
    rows = len(query.stdout.splitlines()) - 1
    assert lines[1].startswith("guidelinekg query: SELECT answered in ")
    assert lines[1].endswith(f" s: {rows} rows")
    assert command("query", "guideline/dose-regimens", "--quiet", "--format", "csv").stdout \
        == query.stdout
    check = command("check", "--guideline", "bcbm", "--verbose")
    assert check.returncode == 0, check.stdout
    seconds = r"\d+\.\d\d s"
    patterns = [rf"read the guideline graph \(bcbm\) in {seconds}: [\d,]+ triples",
                f"the reasoner: {seconds}", f"the shapes: {seconds}",
                rf"\d+ QC queries: {seconds}", f"coverage: {seconds}"]
    lines = check.stderr.splitlines()
    assert len(lines) == len(patterns), check.stderr
    for line, pattern in zip(lines, patterns, strict=True):
        assert re.fullmatch(f"guidelinekg check: {pattern}", line), line


def test_publish_verbose_and_serve_quiet(tmp_path: Path) -> None:
    import signal
    import urllib.request

    published = command("publish", "--out", str(tmp_path / "site"), "--verbose")
    assert published.returncode == 0, published.stderr
    assert published.stderr.startswith("guidelinekg publish: built the site in ")
    assert published.stdout.startswith("wrote ")
    process = subprocess.Popen([sys.executable, "-m", "guidelinekg.cli", "serve", "--port", "0",
                                "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    assert process.stderr is not None and process.stdout is not None
    try:
        first = process.stderr.readline()
        assert first.startswith("serving http://127.0.0.1:"), first
        with urllib.request.urlopen(first.split()[1], timeout=30) as answer:
            assert answer.status == 200
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    assert process.stderr.read() == ""  # no access log line, no "stopped"
    assert process.stdout.read() == ""


# ---------------------------------------------------------------------------------------
# A failed run leaves no output file behind (-o, --validation-report), or an existing one as
# it was: results are written under a temporary name and moved into place on success.

CLI_FOLLOWUPS = Path(__file__).parent / "fixtures" / "cli-followups"
UNREADABLE = CLI_FOLLOWUPS / "unreadable.ttl"
NO_PATIENT = Path(__file__).parent / "fixtures" / "reading-defects" / "no-patient.ttl"
EARLIER = b"the results of an earlier run\n"


def _files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir()}


@pytest.mark.parametrize(("inputs", "flags", "code"), [
    ([UNREADABLE], [], 2),
    ([INVALID_EXAMPLE], [], 1),
    ([NO_PATIENT], [], 2),
    ([UNREADABLE], ["--format", "jsonl"], 2),
    ([EXAMPLE, UNREADABLE], ["--format", "jsonl", "--validation-report", "report.jsonl"], 2),
    ([NO_PATIENT], ["--format", "csv", "--validation-report", "report.jsonl"], 2),
], ids=["unreadable", "violations", "no-patient", "cohort-unreadable",
        "cohort-unreadable-with-report", "cohort-no-patient-with-report"])
@pytest.mark.parametrize("existing", [False, True], ids=["new", "existing"])
def test_a_refused_recommend_leaves_no_output_file_and_an_existing_one_as_it_was(
        tmp_path: Path, inputs: list[Path], flags: list[str], code: int,
        existing: bool) -> None:
    before = {name: EARLIER for name in ("results.txt", "report.jsonl")} if existing else {}
    for name, content in before.items():
        (tmp_path / name).write_bytes(content)
    done = subprocess.run([sys.executable, "-m", "guidelinekg.cli", "recommend",
                           *map(str, inputs), *flags, "--as-of", AS_OF, "-o", "results.txt"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=180,
                          check=False)
    assert done.returncode == code, done.stderr
    assert done.stdout == ""
    if inputs == [UNREADABLE]:
        assert done.stderr == (
            f"guidelinekg recommend: error: {UNREADABLE}, line 1, column 26: not valid Turtle: "
            "Parser error between line 1 column 26 and line 2 column 1: Unexpected end of "
            "file\n")
    assert _files(tmp_path) == before  # no temporary file left either


def test_a_successful_recommend_replaces_the_file_keeping_its_permissions(
        tmp_path: Path) -> None:
    written = tmp_path / "results.json"
    written.write_bytes(EARLIER)
    written.chmod(0o640)
    done = command("recommend", str(EXAMPLE), "--as-of", AS_OF, "--format", "json",
                   "-o", str(written))
    assert (done.returncode, done.stdout) == (0, ""), done.stderr
    assert written.read_text(encoding="utf-8").startswith("[\n  {\n    \"population\"")
    assert written.stat().st_mode & 0o777 == 0o640
    assert [path.name for path in tmp_path.iterdir()] == ["results.json"]


def test_recommend_writes_into_a_fifo_in_place(tmp_path: Path) -> None:
    import os
    import stat
    import threading

    fifo = tmp_path / "results.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    done = command("recommend", str(EXAMPLE), "--as-of", AS_OF, "--format", "json",
                   "-o", str(fifo))
    reader.join(timeout=60)
    assert done.returncode == 0, done.stderr
    assert received and received[0].startswith(b"[\n")
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # not replaced by a regular file
    assert [path.name for path in tmp_path.iterdir()] == ["results.fifo"]


def test_an_output_broken_off_by_an_error_is_not_left_half_written(tmp_path: Path) -> None:
    from guidelinekg.stdio import command_output, output_stream

    fresh, existing = tmp_path / "fresh.txt", tmp_path / "existing.txt"
    existing.write_bytes(EARLIER)
    for target in (fresh, existing):
        with pytest.raises(RuntimeError), command_output(target):
            print("the first partition's lines")
            raise RuntimeError("the second partition could not be read")
        with pytest.raises(RuntimeError), output_stream(target) as stream:
            stream.write("half a cohort\n")
            raise RuntimeError("stopped")
    with command_output(tmp_path / "report-only.txt") as outputs:
        with output_stream(tmp_path / "report.txt") as stream:
            stream.write("a report line\n")
        outputs.keep = False  # the command failed with an exit code: nothing is kept
    assert _files(tmp_path) == {"existing.txt": EARLIER}
