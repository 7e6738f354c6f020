"""docs/patient-facts.md is generated from ontology/patient-facts.ttl and kept in step with it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from rdflib.namespace import SKOS

from guidelinekg.loading import PREFIXES

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "generate_fact_docs.py"
DOC = REPO / "docs" / "patient-facts.md"


@pytest.fixture(scope="module")
def generator():
    spec = importlib.util.spec_from_file_location("generate_fact_docs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_fact_doc_is_in_step_with_the_ontology(generator):
    assert DOC.read_text(encoding="utf-8") == generator.render(), (
        "docs/patient-facts.md is stale: run python scripts/generate_fact_docs.py")


def test_fact_doc_has_one_row_per_fact_with_its_silence_rule(generator):
    vocabulary = generator.load_vocabulary()
    facts = set(vocabulary.subjects(SKOS.inScheme,
                                    generator.gkg("PatientFactScheme")))
    rows = [line for line in generator.render(vocabulary).splitlines()
            if line.startswith("| `fact:")]
    assert len(rows) == len(facts) > 0
    by_fact = {row.split("`")[1]: row for row in rows}
    assert set(by_fact) == {"fact:" + str(f)[len(PREFIXES["fact"]):] for f in facts}
    assert "| unknown (criteria on it are undetermined) |" in by_fact["fact:her2-status"]
    assert ("Receptor status: `negative`, `positive`; indeterminate, read as unknown: "
            "`equivocal`, `indeterminate`, `pending`") in by_fact["fact:her2-status"]
    assert "settled by HER2 by in situ hybridisation (ISH)" in by_fact["fact:her2-status"]
    assert "the latest `gkg:HER2Status` observation" in by_fact["fact:her2-status"]
    presence = by_fact["fact:bone-modifying-agent-given-or-planned"]
    assert "| absent: the fact is `false` |" in presence
    assert "`gkg:BoneModifyingAgent` (or a narrower class) with status completed, ongoing, " \
           "planned" in presence
    assert "| absent: the fact is `0` |" in by_fact["fact:zoledronic-acid-doses-given"]
    assert "unit `mo` (month (mean Julian))" in by_fact["fact:bone-modifying-agent-duration"]


def test_check_mode_reports_a_stale_doc(generator, tmp_path, monkeypatch):
    stale = tmp_path / "patient-facts.md"
    stale.write_text("old\n", encoding="utf-8")
    monkeypatch.setattr(generator, "DOC_PATH", stale)
    assert generator.main(["--check"]) == 1
    assert generator.main([]) == 0
    assert generator.main(["--check"]) == 0
