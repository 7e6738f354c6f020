"""`guidelinekg publish` and `export-fhir` with a second guideline from GUIDELINEKG_LIBRARY.

The second guideline is the shared test fixture ``example`` of tests/fixtures/library (see its
README.md; a test fixture, not clinical content). Its statement keys GOAL-1 and AVOID-1 are keys
of the seed guideline too, and its section ``section-critical-pitfalls-to-avoid`` has the local
name of a seed section. Both commands run in a subprocess with GUIDELINEKG_LIBRARY pointing at
the fixture library: each guideline must get its own pages and PlanDefinitions, and every link
must reach the statement of the right guideline.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from urllib.parse import unquote

import pytest

from guidelinekg.loading import BASE

LIBRARY = Path(__file__).resolve().parent / "fixtures" / "library"
EXAMPLE_TITLE = "Example guideline for tests: smoking cessation for patients with cancer"
EXAMPLE_VERSION = "0.0.1"
SMOKE_1 = "Offer smoking cessation support to every patient who smokes."
GOAL_1 = "Every patient who smokes should be helped to stop."
AVOID_1 = "Do not give HER2-targeted therapy when the tumour is HER2-negative."


def run_command(*argv: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "GUIDELINEKG_LIBRARY": str(LIBRARY)}
    result = subprocess.run([sys.executable, "-m", "guidelinekg.cli", *argv],
                            capture_output=True, text=True, env=environment, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("several") / "site"
    run_command("publish", "--out", str(out))
    return out


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("several-fhir")
    run_command("export-fhir", "--out", str(out))
    return json.loads((out / "guidelinekg-cpg-bundle.json").read_text(encoding="utf-8"))


def read(site: Path, path: str) -> str:
    return (site / path).read_text(encoding="utf-8")


def links(markup: str) -> list[str]:
    return re.findall(r'href="([^"]+)"', markup)


def resolve(site: Path, page: str, href: str) -> tuple[Path, str]:
    """A relative link of a page as the file it reaches and its #fragment."""
    target, _, fragment = href.partition("#")
    path = (site / page).parent / unquote(target) if target else site / page
    return path.resolve(), fragment


def row(markup: str, row_id: str) -> str:
    """The table row with this id."""
    found = markup[markup.index(f'<tr id="{row_id}">'):]
    return found[:found.index("</tr>")]


# ---------------------------------------------------------------------------------------
# The site
# ---------------------------------------------------------------------------------------


def test_each_guideline_has_its_own_statement_pages(site: Path) -> None:
    for guideline, key, words in (
            ("bcbm", "GOAL-1", "The primary goal is palliation"),
            ("example", "GOAL-1", GOAL_1),
            ("bcbm", "AVOID-1", "Do not withhold bone-modifying agents until symptoms"),
            ("example", "AVOID-1", AVOID_1),
            ("example", "SMOKE-1", SMOKE_1)):
        content = read(site, f"guideline/{guideline}/{key}.html")
        assert 'class="recommendation"' in content and words in content, (guideline, key)
        assert (site / f"guideline/{guideline}/{key}.ttl").is_file()
    assert GOAL_1 not in read(site, "guideline/bcbm/GOAL-1.html")
    assert AVOID_1 not in read(site, "guideline/bcbm/AVOID-1.html")
    # Its links stay in its own guideline: the related statement, the breadcrumb.
    smoke = read(site, "guideline/example/SMOKE-1.html")
    assert 'related statement: <a href="GOAL-1.html">GOAL-1</a>' in smoke
    assert f'<a href="guideline.html">{EXAMPLE_TITLE}</a>' in smoke
    assert '<a href="guideline.html#section-stopping-smoking">Stopping Smoking</a>' in smoke
    avoid = read(site, "guideline/example/AVOID-1.html")
    assert f'<a href="guideline.html">{EXAMPLE_TITLE}</a>' in avoid
    assert ('<a href="guideline.html#section-critical-pitfalls-to-avoid">'
            "Critical Pitfalls to Avoid</a>") in avoid
    # The forbidden domain action and the guideline's own intervention keep their homes.
    assert '<a href="../../ontology.html#HER2TargetedTherapy"' in avoid
    assert 'href="SmokingCessationSupport.html"' in smoke
    assert (site / "guideline/example/SmokingCessationSupport.html").is_file()
    guideline_page = read(site, "guideline/example/guideline.html")
    for key in ("SMOKE-1", "GOAL-1", "AVOID-1"):
        assert f'<a class="key" href="{key}.html">{key}</a>' in guideline_page
    assert 'id="section-stopping-smoking"' in guideline_page
    assert 'id="section-critical-pitfalls-to-avoid"' in guideline_page


def test_the_index_shows_both_guidelines_with_distinct_ids(site: Path) -> None:
    index = read(site, "index.html")
    assert "Treatment for Stage 4 Breast Cancer with Bone Metastasis" in index
    assert EXAMPLE_TITLE in index
    for key in ("GOAL-1", "AVOID-1"):
        guidelines = re.findall(rf'class="key" href="guideline/(\w+)/{key}\.html"', index)
        assert sorted(guidelines) == ["bcbm", "example"], key
    ids = Counter(re.findall(r'\bid="([^"]+)"', index))
    assert [name for name, count in ids.items() if count > 1] == []
    # The section both guidelines call section-critical-pitfalls-to-avoid: one id each.
    assert {"bcbm-section-critical-pitfalls-to-avoid",
            "example-section-critical-pitfalls-to-avoid"} <= set(ids)
    for href in links(index):
        if href.startswith("#"):
            assert href[1:] in ids, href


def test_statement_links_name_the_guideline(site: Path) -> None:
    data = read(site, "patient-data.html")
    her2 = row(data, "her2-status")  # a domain fact both guidelines use
    assert '<a href="guideline/example/AVOID-1.html">example:AVOID-1</a>' in her2
    assert '<a href="guideline/bcbm/HER2-1.html">bcbm:HER2-1</a>' in her2
    assert "bcbm:AVOID-1" not in her2
    smoker = row(data, "current-smoker")  # the example guideline's own fact
    assert '<a href="guideline/example/SMOKE-1.html">example:SMOKE-1</a>' in smoker
    assert "bcbm:" not in smoker
    criterion = read(site, "guideline/example/crit-her2-negative.html")
    assert 'Applicability of: <a href="AVOID-1.html">example:AVOID-1</a>' in criterion
    criterion = read(site, "guideline/example/crit-current-smoker.html")
    assert 'Applicability of: <a href="SMOKE-1.html">example:SMOKE-1</a>' in criterion


def test_every_link_of_the_example_pages_resolves(site: Path) -> None:
    anchors: dict[Path, set[str]] = {}
    pages = sorted((site / "guideline/example").rglob("*.html"))
    assert len(pages) >= 12
    for page in pages:
        name = page.relative_to(site).as_posix()
        for href in links(read(site, name)):
            if re.match(r"^[a-z]+:", href):
                continue
            path, fragment = resolve(site, name, href)
            assert path.is_file(), (name, href)
            if fragment and path.suffix == ".html":
                if path not in anchors:
                    anchors[path] = set(re.findall(r'\bid="([^"]+)"', path.read_text()))
                assert fragment in anchors[path], (name, href)


def test_the_example_statements_are_compacted_with_its_prefix(site: Path) -> None:
    context = json.loads(read(site, "context.jsonld"))["@context"]
    assert context["example"] == BASE + "guideline/example/"
    assert context["bcbm"] == BASE + "guideline/bcbm/"
    document = json.loads(read(site, "guideline/example/GOAL-1.jsonld"))
    assert document["@context"] == context
    assert any(node["@id"] == "example:GOAL-1" for node in document["@graph"])
    manifest = json.loads(read(site, ".guidelinekg-site.json"))
    assert EXAMPLE_VERSION in manifest["versions"]["guideline/example"]
    assert f"guideline/example/{EXAMPLE_VERSION}/example.ttl" in manifest["files"]
    assert "guideline/example/vocabulary" in manifest["versions"]
    assert "guideline/example/facts" in manifest["versions"]


# ---------------------------------------------------------------------------------------
# The FHIR export
# ---------------------------------------------------------------------------------------


def test_export_has_the_plan_definitions_of_both_guidelines(bundle: dict) -> None:
    resources = [entry["resource"] for entry in bundle["entry"]]
    ids = Counter((r["resourceType"], r["id"]) for r in resources)
    assert [key for key, count in ids.items() if count > 1] == []
    by_url = {r["url"]: r for r in resources}
    assert len(by_url) == len(resources)
    protocols = {r["identifier"][0]["value"]: r for r in resources
                 if r["resourceType"] == "PlanDefinition"
                 and r["type"]["coding"][0]["code"] == "clinical-protocol"}
    assert set(protocols) == {"bcbm", "example"}
    example_rules = [r for r in resources if r["resourceType"] == "PlanDefinition"
                     and r["type"]["coding"][0]["code"] == "eca-rule"
                     and r["identifier"][0]["system"] == BASE + "guideline/example"]
    assert {r["identifier"][0]["value"] for r in example_rules} == {"SMOKE-1", "GOAL-1",
                                                                    "AVOID-1"}
    for key in ("GOAL-1", "AVOID-1"):
        same_key = [r for r in resources if r["resourceType"] == "PlanDefinition"
                    and r.get("identifier", [{}])[0].get("value") == key]
        assert sorted(r["url"] for r in same_key) == [BASE + f"guideline/bcbm/{key}",
                                                      BASE + f"guideline/example/{key}"]
        assert sorted(r["id"] for r in same_key) == [f"bcbm-{key}", f"example-{key}"]
    rules = {r["identifier"][0]["value"]: r for r in example_rules}
    assert {r["version"] for r in rules.values()} == {EXAMPLE_VERSION}
    assert rules["GOAL-1"]["description"] == GOAL_1
    assert rules["AVOID-1"]["description"] == AVOID_1
    # The protocol of each guideline lists its own statements, section by section.
    sections = [(section["title"], [action["definitionCanonical"]
                                    for action in section["action"]])
                for section in protocols["example"]["action"]]
    assert sections == [
        ("Stopping Smoking", [BASE + "guideline/example/SMOKE-1",
                              BASE + "guideline/example/GOAL-1"]),
        ("Critical Pitfalls to Avoid", [BASE + "guideline/example/AVOID-1"])]
    # The forbidden domain action: an activity not to perform.
    activity = by_url[rules["AVOID-1"]["action"][0]["definitionCanonical"]]
    assert (activity["kind"], activity["doNotPerform"]) == ("MedicationRequest", True)
    assert activity["id"] == "do-not-HER2TargetedTherapy"
    # The guideline's own intervention (a consultation) for SMOKE-1 and GOAL-1: named with
    # the guideline's prefix, so another guideline's term of the same local name never meets it.
    for key in ("SMOKE-1", "GOAL-1"):
        activity = by_url[rules[key]["action"][0]["definitionCanonical"]]
        assert activity["id"] == "example-SmokingCessationSupport", key
        assert activity["kind"] == "ServiceRequest", key
        assert not activity.get("doNotPerform"), key
