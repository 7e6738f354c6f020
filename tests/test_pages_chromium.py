"""The published pages as a browser renders them: headless Chromium against `guidelinekg serve`.

Chromium is the Debian package (`bash scripts/install-system-deps.sh`); without
/usr/bin/chromium these tests are skipped. Every run checks that the page asked for nothing
outside the local server and that the server answered every request with 200.

Set GUIDELINEKG_UPDATE_SCREENSHOTS=1 to write the screenshots into docs/ (the README shows
docs/screenshot-index.png); otherwise they go to a temporary folder.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from linked_data_server import ServerProcess, shared_server, stop_shared_server

CHROMIUM = Path("/usr/bin/chromium")
DOCS = Path(__file__).resolve().parents[1] / "docs"
DISCLAIMER_START = "This information is intended for healthcare professionals."

pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(),
    reason="headless Chromium not installed (/usr/bin/chromium): run "
           "`bash scripts/install-system-deps.sh` (Debian package chromium)",
)


@pytest.fixture(scope="session")
def page_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = shared_server(tmp_path_factory.mktemp("serve"))
    yield running
    code, log = stop_shared_server()
    assert code == 0, f"serve did not stop cleanly:\n{log[-2000:]}"


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("GUIDELINEKG_UPDATE_SCREENSHOTS") == "1":
        return DOCS
    return tmp_path_factory.mktemp("screenshots")


class _Assets(HTMLParser):
    """The URLs a page loads by itself: scripts, stylesheets, icons, images, frames.

    ``required`` are the ones rendering waits for (scripts, stylesheets, images); an icon may
    be fetched after the page is done, or not at all.
    """

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.required: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("script", "img", "iframe", "source", "video", "audio") and values.get("src"):
            self.urls.append(values["src"] or "")
            self.required.append(values["src"] or "")
        if tag == "link" and values.get("href") and values.get("rel") != "alternate":
            self.urls.append(values["href"] or "")
            if values.get("rel") == "stylesheet":
                self.required.append(values["href"] or "")


def render(server: ServerProcess, path: str, profile: Path, screenshot: Path | None = None,
           size: str = "1280,1600", run_scripts: bool = False) -> str:
    """Chromium's DOM of a page after it ran (and a screenshot), with request checks."""
    log_before = len(server.log().splitlines())
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile}", f"--window-size={size}",
        "--hide-scrollbars",
        # Nothing but the local server resolves, so a stray external request cannot leave.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--dump-dom",
    ]
    if run_scripts:
        # Let the page's own fetches finish before the DOM is dumped (the query page).
        command.append("--virtual-time-budget=5000")
    if screenshot is not None:
        command.append(f"--screenshot={screenshot}")
    command.append(server.base + path)
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    time.sleep(0.5)  # the server logs a request once it has answered it
    dom = result.stdout
    parser = _Assets()
    parser.feed(dom)
    external = [url for url in parser.urls if re.match(r"^(https?:)?//", url)
                and not url.startswith(server.base)]
    assert external == [], f"{path} loads resources from elsewhere: {external}"
    requests = [line for line in server.log().splitlines()[log_before:]
                if re.search(r'"(GET|POST|HEAD) ', line)]
    assert requests, "Chromium asked the server for nothing"
    failed = [line for line in requests if not re.search(r'" 200 \d+$', line)]
    assert failed == [], f"requests not answered with 200: {failed}"
    asked = {re.search(r'"(?:GET|POST|HEAD) (\S+)', line)[1] for line in requests}
    for url in parser.required:
        if not url.startswith(("data:", "http")):
            resolved = Path(path).parent.joinpath(url).as_posix() if not url.startswith("/") \
                else url
            assert os.path.normpath(resolved) in asked, (url, asked)
    return dom


def test_index_page_renders_the_guideline(page_server: ServerProcess, tmp_path: Path,
                                          shots: Path) -> None:
    screenshot = shots / "screenshot-index.png"
    dom = render(page_server, "/index.html", tmp_path / "profile", screenshot)
    assert "<h1>Treatment for Stage 4 Breast Cancer with Bone Metastasis</h1>" in dom
    assert "What is the treatment approach for a patient with stage 4 breast cancer" in dom
    assert '<time datetime="2026-02-02">2026-02-02</time>' in dom
    assert "Review status: pending human review." in dom
    assert DISCLAIMER_START in dom
    links = set(re.findall(r'class="key" href="guideline/bcbm/([A-Z0-9]+-\d+)\.html"', dom))
    assert len(links) == 37
    sections = re.findall(r'<section class="section" id="([^"]+)">\s*<h2>([^<]+)</h2>', dom)
    assert sections[0][1] == "Summary"
    assert sections[-1][1] == "Critical Pitfalls to Avoid"
    assert len(sections) == 11
    dataset = json.loads(re.search(r'<script type="application/ld\+json">(.*?)</script>', dom,
                                   re.S)[1])
    assert any("void:Dataset" in node.get("@type", []) for node in dataset["@graph"])
    assert screenshot.stat().st_size > 20_000
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_recommendation_page_renders_criteria_sources_and_rdf(
        page_server: ServerProcess, tmp_path: Path, shots: Path) -> None:
    screenshot = shots / "screenshot-recommendation.png"
    dom = render(page_server, "/guideline/bcbm/HRP-1.html", tmp_path / "profile", screenshot,
                 size="1280,1700")
    assert "Endocrine therapy is first-line unless clinically aggressive disease with visceral " \
           "crisis demands immediate cytoreduction." in dom
    assert ('<p class="criteria-words">all of: HR-positive (any of: ER positive, PR positive); '
            "HER2 negative; no visceral crisis</p>") in dom
    assert "Guideline Directed Topic Overview" in dom
    assert re.search(r'related statement: <a href="AVOID-2\.html">AVOID-2</a>', dom)
    assert DISCLAIMER_START in dom and "pending human review" in dom
    document = json.loads(re.search(r'<script type="application/ld\+json">(.*?)</script>', dom,
                                    re.S)[1])
    node = next(n for n in document["@graph"] if n["@id"] == "bcbm:HRP-1")
    assert node["skos:notation"] == [{"@value": "HRP-1"}]
    assert screenshot.stat().st_size > 20_000


def test_unresolved_citation_page(page_server: ServerProcess, tmp_path: Path) -> None:
    dom = render(page_server, "/guideline/bcbm/HER2-2.html", tmp_path / "profile")
    assert "<strong>unresolved citation REF-4</strong>" in dom
    assert "missing from the guideline's reference list" in dom


def test_query_page_runs_a_query_against_the_endpoint(page_server: ServerProcess,
                                                      tmp_path: Path) -> None:
    dom = render(page_server, "/query.html?example=recommendations&run=1", tmp_path / "profile",
                 run_scripts=True)
    assert re.search(r'<p id="status"[^>]*>37 rows</p>', dom)
    assert "<td>AVOID-6</td>" in dom

