"""Exit codes and messages of the command line (issue 11): 0 done, 1 violations, 2 bad input
or usage, 3 internal error (one line; --debug shows the traceback); a reader that closes
the output early ends the command quietly; library log noise stays off the terminal."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from guidelinekg import cli
from guidelinekg.resources import examples_dir

EXAMPLE = examples_dir() / "patients" / "hr-positive-her2-negative-bone-only.ttl"
# A bug planted in a command: the check command's run raises.
PLANT_BUG = ("import guidelinekg.checks as checks; "
             "checks.run = lambda args: dict()['no such key']; "
             "from guidelinekg.cli import main; raise SystemExit(main({argv!r}))")


def run_with_bug(*argv: str) -> subprocess.CompletedProcess[str]:
    code = PLANT_BUG.format(argv=["check", *argv])
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)


def test_an_internal_error_is_one_line_and_exit_3() -> None:
    done = run_with_bug()
    assert done.returncode == cli.EXIT_INTERNAL_ERROR == 3
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("guidelinekg check: internal error: KeyError")
    assert "--debug" in lines[0]
    assert "Traceback" not in done.stderr


def test_debug_shows_the_traceback() -> None:
    done = run_with_bug("--debug")
    assert done.returncode == 3
    assert "Traceback (most recent call last)" in done.stderr
    assert "KeyError: 'no such key'" in done.stderr


def test_exit_codes_are_in_every_help() -> None:
    for argv in (["--help"], ["validate", "--help"], ["recommend", "--help"]):
        done = subprocess.run([sys.executable, "-m", "guidelinekg.cli", *argv],
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0
        text = " ".join(done.stdout.split())
        assert "exit codes: 0 done" in text and "3 internal error" in text, argv


class ClosedPipe(io.StringIO):
    """Standard output whose reader has gone (`| head`)."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_output_ends_the_command_quietly(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    code = cli.main(["recommend", str(EXAMPLE), "--as-of", "2026-12-01"])
    assert code == cli.EXIT_DONE
    err = capsys.readouterr().err  # the validation report goes to stderr, as always
    assert "Traceback" not in err and "BrokenPipe" not in err and "internal error" not in err


def test_recommend_piped_into_head_has_no_traceback() -> None:
    pipeline = (f"{sys.executable} -m guidelinekg.cli recommend {EXAMPLE} {EXAMPLE} "
                "--as-of 2026-12-01 --format json | head -c 100")
    done = subprocess.run(["bash", "-o", "pipefail", "-c", pipeline], capture_output=True,
                          text=True, timeout=180, check=False)
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr


def test_usage_and_input_errors_are_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "missing.ttl"
    for argv in (["validate", str(missing)], ["no-such-command"]):
        done = subprocess.run([sys.executable, "-m", "guidelinekg.cli", *argv],
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 2, (argv, done.stderr)
        assert "Traceback" not in done.stderr


ILL_TYPED = """\
@prefix gkg: <https://w3id.org/guidelinekg/ontology#> .
@prefix code: <https://w3id.org/guidelinekg/code/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
<http://example.org/p> a gkg:Patient ; gkg:birthDate "1960-01-01"^^xsd:date .
<http://example.org/d> a gkg:Denosumab ; gkg:subject <http://example.org/p> ;
    gkg:status code:completed ; gkg:startDate "-0"^^xsd:date ; gkg:endDate _:when .
<http://example.org/c> a gkg:VisceralCrisisAssessment ; gkg:subject <http://example.org/p> ;
    gkg:valueBoolean "yes"^^xsd:boolean ; gkg:effectiveDate "2026-09-01"^^xsd:date .
"""


@pytest.mark.parametrize("command", [["validate"], ["recommend", "--as-of", "2026-12-01"]])
def test_an_ill_typed_date_is_a_violation_not_a_crash(command: list[str],
                                                      tmp_path: Path) -> None:
    # "-0"^^xsd:date beside an end date once crashed pySHACL's date comparison (exit 1 with a
    # traceback); a blank node where a date belongs too.
    path = tmp_path / "ill-typed.ttl"
    path.write_text(ILL_TYPED, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "guidelinekg.cli", command[0], str(path),
                           *command[1:]], capture_output=True, text=True, timeout=180,
                          check=False)
    assert done.returncode == 1, done.stderr
    report = done.stdout + done.stderr  # validate reports on stdout, recommend on stderr
    assert 'Ill-typed value "-0"^^xsd:date: not a lexical form of xsd:date' in report
    assert "Traceback" not in done.stderr + done.stdout
    assert "Failed to convert Literal" not in done.stderr
    assert "UserWarning" not in done.stderr


@pytest.mark.parametrize("argv", [["publish", "--out", "README.md/site"],
                                  ["export-fhir", "--out", "README.md"]])
def test_an_output_folder_that_is_a_file_is_exit_2(argv: list[str]) -> None:
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-m", "guidelinekg.cli", *argv], cwd=root,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2, done.stderr
    assert "README.md is a file, not a folder" in done.stderr
    assert "Traceback" not in done.stderr


# Red-team finding 11: "1E400"^^xsd:double (infinite) passed validation and gave "found
# Infinity mg"; INF and NaN are lexical forms of a double, but no dose.
INFINITE_DOSE = Path(__file__).parent / "fixtures" / "reading-defects" / "dose-infinite-double.ttl"


@pytest.mark.parametrize(("written", "shown", "datatype"), [
    ("1E400", "1E400", "xsd:double"),
    ('"INF"^^xsd:double', "INF", "xsd:double"),
    ('"-INF"^^xsd:double', "-INF", "xsd:double"),
    ('"NaN"^^xsd:double', "NaN", "xsd:double"),
    ('"1E39"^^xsd:float', "1E39", "xsd:float"),
    ('"NaN"^^xsd:float', "NaN", "xsd:float")])
def test_a_number_that_is_not_finite_is_an_ill_typed_value(capsys, tmp_path: Path,
                                                           written: str, shown: str,
                                                           datatype: str) -> None:
    path = tmp_path / "dose.ttl"
    path.write_text(INFINITE_DOSE.read_text(encoding="utf-8").replace(
        "gkg:doseAmount 1E400", f"gkg:doseAmount {written}"), encoding="utf-8")
    expected = (f'Ill-typed value "{shown}"^^{datatype}: not a finite number (infinite, NaN, '
                f"or beyond the range of {datatype}): correct the value; nothing is compared "
                "with it.")
    assert cli.main(["validate", str(path)]) == 1
    assert expected in capsys.readouterr().out
    assert cli.main(["recommend", str(path), "--as-of", "2026-12-01"]) == 1
    err = capsys.readouterr().err
    assert "the record violates the patient shapes; nothing is derived" in err
    assert expected in err
    assert cli.main(["recommend", str(path), "--format", "jsonl", "--quiet"]) == 1
    (line,) = capsys.readouterr().out.splitlines()
    assert '"refused": true' in line and "not a finite number" in line


def test_a_large_finite_double_is_read() -> None:
    from rdflib import Literal
    from rdflib.namespace import XSD

    from guidelinekg.literal_checks import datatype_problem

    assert datatype_problem(Literal("1.7E308", datatype=XSD.double)) is None
    assert datatype_problem(Literal("3.4E38", datatype=XSD.float)) is None
    assert datatype_problem(Literal("-1E-400", datatype=XSD.double)) is None  # underflow: 0


def test_an_unknown_shacl_engine_setting_is_exit_2_not_a_bug(
        monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("GUIDELINEKG_SHACL_ENGINE", "oxigraph")
    record = examples_dir() / "patients" / "hr-positive-her2-negative-bone-only.ttl"
    assert cli.main(["validate", str(record)]) == 2
    err = capsys.readouterr().err
    assert err == ("guidelinekg validate: error: unknown SHACL engine 'oxigraph': one of fast, "
                   "pyshacl\n")
