"""One safe path to results, whatever the entry point, and results that put safety first.

- ``derive`` (the Python API) validates first and refuses every invalid example exactly as
  ``guidelinekg recommend`` does; ``allow_invalid`` derives for research and marks it.
- The population verdict comes first in JSON, text and RDF.
- A forbidden action in the record is never left among the undetermined statements: it is
  listed with the contraindications as possibly contraindicated, with the facts to confirm.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from rdflib import URIRef
from rdflib.namespace import RDF

from guidelinekg import cli
from guidelinekg.derivation import InvalidRecordError, derive
from guidelinekg.loading import PREFIXES, parse_rdf_file
from guidelinekg.recommend_output import to_json, to_rdf, to_text
from guidelinekg.resources import examples_dir
from json_contract import results_of

AS_OF = date(2026, 12, 1)
INVALID_EXAMPLES = sorted((examples_dir() / "patients").glob("invalid-*.ttl"))
VIGNETTES = Path(__file__).resolve().parent / "vignettes"
GKG, CODE = PREFIXES["gkg"], PREFIXES["code"]


def test_there_are_invalid_examples() -> None:
    assert len(INVALID_EXAMPLES) >= 10


@pytest.mark.parametrize("path", INVALID_EXAMPLES, ids=lambda p: p.stem)
def test_the_api_refuses_an_invalid_record_as_the_cli_does(path: Path, capsys) -> None:
    with pytest.raises(InvalidRecordError) as raised:
        derive(parse_rdf_file(path), AS_OF)
    assert raised.value.validation.has_violations
    assert "violates the patient shapes" in str(raised.value)
    assert cli.main(["recommend", str(path), "--as-of", "2026-12-01", "--format", "json"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "the record violates the patient shapes; nothing is derived" in captured.err


def test_deriving_an_invalid_record_for_research_marks_every_result(capsys) -> None:
    path = examples_dir() / "patients" / "invalid-her2-contradiction.ttl"
    derivation = derive(parse_rdf_file(path), AS_OF, allow_invalid=True)
    assert derivation.derived_from_invalid_record
    (document,) = results_of(to_json(derivation))
    assert document["derived_from_invalid_record"] is True
    assert "DERIVED FROM A RECORD THAT VIOLATES THE SHAPES" in to_text(derivation)
    assert cli.main(["recommend", str(path), "--as-of", "2026-12-01", "--format", "json",
                     "--allow-invalid"]) == 0
    captured = capsys.readouterr()
    assert results_of(captured.out)[0]["derived_from_invalid_record"] is True
    assert "every result below is derived from an invalid record" in captured.err


def _vignette(name: str):
    (result,) = derive(parse_rdf_file(VIGNETTES / f"{name}.ttl"), AS_OF).patients
    return result


def test_an_outside_patient_is_told_so_first_in_every_format() -> None:
    derivation = derive(parse_rdf_file(VIGNETTES / "population-lung-cancer-bone-metastasis.ttl"),
                        AS_OF)
    (document,) = results_of(to_json(derivation))
    assert next(iter(document)) == "population"
    assert document["population"]["status"] == "out"
    assert document["population"]["population"] == "stage 4 breast cancer with bone metastasis"
    assert document["population"]["because"] == [
        "primary breast cancer: no (primary-breast-cancer = no; from "
        "http://example.org/vignettes/population-lung-cancer-bone-metastasis/lung-cancer)"]
    assert {r["status"] for r in document["recommendations"]} == {"does-not-apply"}
    bma_1 = next(r for r in document["recommendations"] if r["key"] == "BMA-1")
    assert bma_1["because"][0].startswith("outside the guideline's population")
    assert document["care_gaps"] == document["contraindicated"] == document["dose_checks"] == []
    lines = to_text(derivation).splitlines()
    assert lines[1] == ("  Population (stage 4 breast cancer with bone metastasis): OUTSIDE the "
                        "guideline's population: no statement applies")
    graph = to_rdf(derivation)
    (verdict,) = graph.subjects(RDF.type, URIRef(GKG + "PopulationResult"))
    assert graph.value(verdict, URIRef(GKG + "resultStatus")) == URIRef(CODE + "out-of-population")
    assert graph.value(verdict, URIRef(GKG + "guideline")) == URIRef(PREFIXES["bcbm"] + "guideline")


def test_unknown_membership_names_the_missing_facts_first() -> None:
    result = _vignette("population-birth-date-only")
    assert result.population.status == "undetermined"
    assert result.population.missing == ["bone-metastasis", "primary-breast-cancer", "stage-iv"]
    assert not [o.key for o in result.recommendations if o.status == "applies"]
    goal = next(o for o in result.recommendations if o.key == "GOAL-1")
    assert goal.status == "undetermined"
    assert goal.missing == ["bone-metastasis", "primary-breast-cancer", "stage-iv"]


def test_a_possibly_contraindicated_order_stands_with_the_contraindications() -> None:
    derivation = derive(parse_rdf_file(
        VIGNETTES / "first-line-paclitaxel-bone-predominance-unknown.ttl"), AS_OF)
    (document,) = results_of(to_json(derivation))
    (flag,) = document["contraindicated"]
    assert flag["key"] == "AVOID-2"
    assert flag["status"] == "possibly-contraindicated"
    assert flag["to_confirm"] == ["bone-predominant-disease"]
    assert flag["record_item"].endswith("/paclitaxel")
    text = to_text(derivation)
    assert text.index("POSSIBLY CONTRAINDICATED AVOID-2") < text.index("Undetermined (")
    assert "to confirm: bone-predominant disease [bone-predominant-disease]" in text
    # Listed once: not again among the undetermined statements.
    undetermined = text[text.index("Undetermined ("):text.index("Applicable recommendations")]
    assert "AVOID-2" not in undetermined
    graph = to_rdf(derivation)
    (node,) = graph.subjects(RDF.type, URIRef(GKG + "ContraindicationResult"))
    assert graph.value(node, URIRef(GKG + "resultStatus")) == \
        URIRef(CODE + "possibly-contraindicated")
    assert graph.value(node, URIRef(GKG + "toConfirm")) == \
        URIRef(PREFIXES["fact"] + "bone-predominant-disease")


def test_an_undated_extraction_is_never_buried() -> None:
    planned = _vignette("tooth-extraction-undated-denosumab-planned")
    (flag,) = planned.contraindicated
    assert (flag.key, flag.status, flag.to_confirm) == (
        "AVOID-4", "possibly-contraindicated", ["invasive-dental-procedure-during-bma"])
    assert flag.to_confirm_details[0]["reason"] == "the invasive dental procedure has no date"
    ongoing = _vignette("tooth-extraction-undated-on-denosumab")
    (flag,) = ongoing.contraindicated
    assert (flag.key, flag.status, flag.to_confirm) == ("AVOID-4", "contraindicated", [])


def test_a_surgery_of_unknown_purpose_is_never_buried() -> None:
    """A surgery whose purpose is not recorded may be one solely for local control (AVOID-5):
    alone, it is possibly contraindicated with the purpose to confirm; beside a planned
    surgery for local control that makes AVOID-5 apply, it is still only possibly
    contraindicated, naming its own purpose, not the statement's missing facts."""
    alone = _vignette("surgery-of-unknown-purpose-after-metastatic-diagnosis")
    (flag,) = alone.contraindicated
    assert (flag.key, flag.status, flag.to_confirm) == (
        "AVOID-5", "possibly-contraindicated", ["local-control-surgery-planned-or-done"])
    assert flag.to_confirm_details[0]["reason"] == (
        "the purpose of the surgery is not recorded: it may be surgery solely for local control")
    beside = _vignette("local-control-surgery-planned-and-a-surgery-of-unknown-purpose")
    flags = {flag.record_item.rsplit("/", 1)[1]: flag for flag in beside.contraindicated}
    assert (flags["planned-mastectomy"].status, flags["planned-mastectomy"].to_confirm) == (
        "contraindicated", [])
    other = flags["other-surgery"]
    assert (other.status, other.to_confirm) == (
        "possibly-contraindicated", ["local-control-surgery-planned-or-done"])
    assert other.to_confirm_details[0]["reason"] == flag.to_confirm_details[0]["reason"]


@pytest.mark.parametrize("engine_name", ["oxigraph", "rdflib"])
def test_a_care_gap_names_the_items_that_did_not_fill_it(engine_name: str) -> None:
    """Adjuvant tamoxifen of years before is in the record but is no therapy for the metastatic
    disease: the SYS-1 and HRP-1 gaps name it, so the clinician sees why it did not count."""
    record = parse_rdf_file(VIGNETTES / "adjuvant-tamoxifen-before-metastatic-recurrence.ttl")
    (result,) = derive(record, AS_OF, engine_name).patients
    gaps = {gap.key: gap.because[-1] for gap in result.care_gaps}
    base = "http://example.org/vignettes/adjuvant-tamoxifen-before-metastatic-recurrence/"
    assert gaps["HRP-1"] == (
        "no endocrine therapy in the record that counts (given, ongoing or planned, and true "
        "for fact given-in-metastatic-setting, item by item); in the record but not counted "
        f"(fact given-in-metastatic-setting false or unknown): {base}tam")


def test_the_readme_python_example_runs(capsys, monkeypatch) -> None:
    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text(encoding="utf-8")
    start = readme.index("```python\n", readme.index("## The Python API")) + len("```python\n")
    code = readme[start:readme.index("```", start)]
    monkeypatch.chdir(root)
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert out.count("in ") >= 3  # three demo patients, each in the population
    assert "Population (stage 4 breast cancer with bone metastasis): in the guideline's" in out
