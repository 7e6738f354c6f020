"""The Python API: the README's example and the tour under examples/ run, and each entry
gives what the command line gives."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from rdflib import Graph
from rdflib.compare import isomorphic

import guidelinekg
from guidelinekg.loading import parse_rdf_file
from guidelinekg.resources import examples_dir
from json_contract import results_of, validation_report

ROOT = Path(__file__).resolve().parents[1]
AS_OF = date(2026, 12, 1)
COHORT = examples_dir() / "patients" / "demo-cohort"


def test_the_readme_python_example_runs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## The Python API"):]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None
    run = subprocess.run([sys.executable, "-c", code.group(1)], capture_output=True, text=True,
                         cwd=ROOT, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[0] == "True 9"
    assert run.stdout.count("in [") == 3


def test_the_api_tour_runs() -> None:
    run = subprocess.run([sys.executable, str(ROOT / "examples" / "python" / "api_tour.py")],
                         capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "conforms: True - 9 warnings and notes"
    assert "refused: the record violates the patient shapes (1 violation)" in lines
    assert "from FHIR: in 37 statements" in lines


def test_recommend_gives_the_command_lines_json() -> None:
    cli = subprocess.run([sys.executable, "-m", "guidelinekg.cli", "recommend", str(COHORT),
                          "--as-of", AS_OF.isoformat(), "--format", "json"],
                         capture_output=True, text=True, timeout=300, check=True)
    assert guidelinekg.recommend([COHORT], as_of=AS_OF).to_json() == results_of(cli.stdout)


def test_patients_from_a_graph_and_from_fhir_documents() -> None:
    graph = Graph()
    for path in sorted(COHORT.glob("*.ttl")):
        graph += parse_rdf_file(path)
    from_graph = guidelinekg.recommend(graph, as_of=AS_OF)
    assert [r.to_json() for r in from_graph] == guidelinekg.recommend(
        [COHORT], as_of=AS_OF).to_json()
    fhir_file = examples_dir() / "fhir" / "hr-positive-bone-only-denosumab.json"
    document = json.loads(fhir_file.read_text(encoding="utf-8"))
    assert isomorphic(guidelinekg.read_patients([document]).graph,
                      guidelinekg.read_patients([fhir_file]).graph)
    with pytest.raises(ValueError, match="not both"):
        guidelinekg.read_patients([fhir_file, document])


def test_an_invalid_record_is_refused_unless_asked_for_research() -> None:
    invalid = examples_dir() / "patients" / "invalid-mg-for-weight.ttl"
    report = guidelinekg.validate(invalid)
    assert not report.conforms
    assert validation_report(report.to_json())["summary"]["violations"] == 1
    assert "violation" in report.text()
    with pytest.raises(guidelinekg.InvalidRecordError):
        guidelinekg.recommend(invalid, as_of=AS_OF)
    (result,) = guidelinekg.recommend(invalid, as_of=AS_OF, allow_invalid=True)
    assert result.derived_from_invalid_record


def test_the_package_exports_the_api_lazily() -> None:
    run = subprocess.run([sys.executable, "-c",
                          "import sys, guidelinekg; "
                          "print('guidelinekg.derivation' in sys.modules); "
                          "print(callable(guidelinekg.recommend))"],
                         capture_output=True, text=True, timeout=120, check=True)
    assert run.stdout.split() == ["False", "True"]
    assert set(guidelinekg.__all__) >= {"read_patients", "validate", "recommend",
                                        "load_guideline", "InvalidRecordError"}
    assert len(guidelinekg.load_guideline()) > 1000
