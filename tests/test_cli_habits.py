"""Command-line habits (issue 15): suggestions for a mistyped command or option, dates and
ports checked in plain words, ``recommend --patient`` for a patient not in the input,
``| head`` ending quietly, and ``-`` for standard input. Each runs the real command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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
