"""The published pages as a browser renders them: headless Chromium against `guidelinekg serve`.

Chromium is the Debian package (`bash scripts/install-system-deps.sh`); without
/usr/bin/chromium these tests are skipped. Every run records the page's requests (Chromium's
NetLog) and checks that none left the local server, and that the server answered every
request with 200.

The screenshots taken here go to a temporary folder; scripts/screenshots.py takes those the
docs show (docs/screenshots/, at 390 and 1,280 pixels).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest

from counting_listener import CountingListener
from linked_data_server import ServerProcess, shared_server, stop_shared_server

# The widths the pages must read at without scrolling sideways: a phone and a laptop.
PHONE, LAPTOP = (390, 844), (1280, 800)

CHROMIUM = Path("/usr/bin/chromium")
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


def page_requests(netlog: Path) -> list[str]:
    """Every URL the page asked for, from Chromium's NetLog: the navigation, then each request
    with an initiator (the origin of the document that made it: the page, its scripts, a
    frame). The browser's own (updates, clock, accounts, autofill) have none."""
    log = json.loads(netlog.read_text(encoding="utf-8"))
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [event["params"]["url"] for event in log["events"]
            if event["type"] == start and "url" in event.get("params", {})
            and (event["params"].get("request_type") == "main frame"
                 or event["params"].get("initiator", "not an origin") != "not an origin")]


def render(server: ServerProcess, path: str, profile: Path, screenshot: Path | None = None,
           size: str = "1280,1600", run_scripts: bool = False, status: int = 200,
           refused: tuple[str, ...] = ()) -> str:
    """Chromium's DOM of a page after it ran (and a screenshot), with request checks: every
    request answered with 200, the page's own with ``status``, those of ``refused`` (such as
    "POST /sparql") with a 4xx."""
    log_before = len(server.log().splitlines())
    netlog = profile.with_name(profile.name + "-netlog.json")
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile}", f"--window-size={size}",
        "--hide-scrollbars",
        # Nothing but the local server resolves, so a stray external request cannot leave.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--log-net-log={netlog}",
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
    asked_for = page_requests(netlog)
    assert asked_for and asked_for[0] == server.base + path, asked_for
    elsewhere = [url for url in asked_for if not url.startswith(server.base + "/")]
    assert elsewhere == [], f"{path} asked for something outside 127.0.0.1: {elsewhere}"
    requests = [line for line in server.log().splitlines()[log_before:]
                if re.search(r'"(GET|POST|HEAD) ', line)]
    assert requests, "Chromium asked the server for nothing"
    failed = [line for line in requests if not re.search(
        rf'" {status if f" {path} " in line else 200} \d+$', line)
        and not any(f'"{request} ' in line and re.search(r'" 4\d\d \d+$', line)
                    for request in refused)]
    assert failed == [], f"requests not answered as expected: {failed}"
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


def _results_cells(dom: str) -> list[str]:
    """The cells of YASGUI's results table, as HTML."""
    table = re.search(r'<div class="yasr_results"[^>]*>.*?</table>', dom, re.S)
    assert table, "no results table"
    return re.findall(r"<td[^>]*>(.*?)</td>", table[0], re.S)


def test_query_page_runs_an_example_in_yasgui(page_server: ServerProcess, tmp_path: Path,
                                              shots: Path) -> None:
    dom = render(page_server, "/query.html?example=recommendations&run=1", tmp_path / "profile",
                 shots / "screenshot-query.png", run_scripts=True)
    # YASGUI came from the package (render checked that no request left 127.0.0.1) and
    # started: its editor and the example tabs are there, the plain form is put away.
    served = page_server.log()
    for asset in ("yasgui.min.js", "yasgui.min.css"):
        assert f'"GET /static/vendor/yasgui/{asset} HTTP/1.1" 200' in served
    assert 'class="CodeMirror' in dom
    assert re.search(r'<form id="query-form"[^>]* hidden', dom)
    tabs = re.findall(r'<a [^>]*role="tab"[^>]*>.*?<span>([^<]+)</span>', dom, re.S)
    assert tabs == ["Recommendations", "Facts tested", "Dose steps", "Unresolved sources",
                    "Should-not (CONSTRUCT)"]
    assert re.search(r'<p id="status"[^>]*>37 rows</p>', dom)
    cells = _results_cells(dom)
    assert len(cells) == 37 * 4  # the row number, key, modality, text
    texts = [re.sub(r"<[^>]+>", "", cell).strip() for cell in cells]
    assert texts[:3] == ["1", "SUM-1", "should"] and "AVOID-6" in texts
    # The literal's text, not "text"@en: the language stays in an attribute.
    assert not [cell for cell in cells if "@en" in cell or "&quot;" in cell]
    assert sum('<span lang="en" title="language: en">' in cell for cell in cells) == 37


def test_query_page_shows_the_endpoints_message(page_server: ServerProcess,
                                                tmp_path: Path) -> None:
    query = quote("SELECT * WHERE { ?s foo:bar ?o }")
    dom = render(page_server, f"/query.html?query={query}", tmp_path / "profile",
                 run_scripts=True, refused=("POST /sparql",))
    assert re.search(r'<p id="status"[^>]*class="error"[^>]*>the endpoint did not run', dom)
    assert "query: the prefix foo: is not declared; known prefixes: bcbm:," in dom



def test_a_link_cannot_send_the_query_pages_query_elsewhere(
        page_server: ServerProcess, tmp_path: Path, listener: CountingListener) -> None:
    """YASGUI takes the endpoint, method and headers from a link's URL: the page keeps its
    own, so a link's query runs on this server's endpoint and nothing reaches the other."""
    query = quote("ASK { ?s ?p ?o }")
    elsewhere = quote(f"http://127.0.0.1:{listener.port}/sparql", safe="")
    dom = render(page_server, f"/query.html?query={query}&endpoint={elsewhere}"
                              "&requestMethod=GET", tmp_path / "profile", run_scripts=True)
    assert listener.accepted == 0
    assert '"POST /sparql HTTP/1.1" 200' in page_server.log()
    assert 'class="CodeMirror' in dom


# ---------------------------------------------------------------------------------------
# Layout at a phone's and a laptop's width, measured through the DevTools protocol
# ---------------------------------------------------------------------------------------


class DevTools:
    """Headless Chromium driven over --remote-debugging-pipe (the DevTools protocol on file
    descriptors 3 and 4, messages ending in NUL): what --dump-dom cannot tell, the layout."""

    def __init__(self, profile: Path) -> None:
        to_browser, self._write = os.pipe()
        self._read, from_browser = os.pipe()

        def descriptors() -> None:  # in the child: the pipe ends as 3 and 4
            inbound, outbound = os.dup(to_browser), os.dup(from_browser)
            os.dup2(inbound, 3)
            os.dup2(outbound, 4)

        self.process = subprocess.Popen(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", f"--user-data-dir={profile}", "--remote-debugging-pipe",
             "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "about:blank"],
            pass_fds=(3, 4), preexec_fn=descriptors, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._last_id = 0
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget",
                                 {"targetId": target, "flatten": True})["sessionId"]
        self.call("Page.enable", session=self.session)

    def _message(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = os.read(self._read, 1 << 16)
            assert chunk, "Chromium closed the DevTools pipe"
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._last_id += 1
        request: dict = {"id": self._last_id, "method": method, "params": params or {}}
        if session:
            request["sessionId"] = session
        os.write(self._write, json.dumps(request).encode() + b"\0")
        while True:
            message = self._message()
            if message.get("id") == self._last_id:
                assert "error" not in message, message
                return message["result"]

    def open(self, url: str, size: tuple[int, int]) -> None:
        """The page at ``url`` in a window of ``size`` CSS pixels, loaded."""
        width, height = size
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                  self.session)
        self.call("Page.navigate", {"url": url}, self.session)
        while self._message().get("method") != "Page.loadEventFired":
            pass

    def evaluate(self, expression: str) -> object:
        result = self.call("Runtime.evaluate", {"expression": expression,
                                                "returnByValue": True}, self.session)
        return result["result"]["value"]

    def close(self) -> None:
        with contextlib.suppress(OSError, AssertionError):
            self.call("Browser.close")
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        os.close(self._write)
        os.close(self._read)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[DevTools]:
    tools = DevTools(tmp_path / "profile")
    yield tools
    tools.close()


WIDTH = "[document.documentElement.scrollWidth, window.innerWidth]"
LAYOUT_PAGES = ("/index.html", "/guideline/bcbm/BMA-1.html", "/guideline/bcbm/BMA-2.html",
                "/patient-data.html")


@pytest.mark.parametrize("size", [PHONE, LAPTOP], ids=["390px", "1280px"])
def test_pages_do_not_scroll_sideways(page_server: ServerProcess, browser: DevTools,
                                      size: tuple[int, int]) -> None:
    # Wide tables scroll inside their own box; the page itself never does.
    for path in LAYOUT_PAGES:
        browser.open(page_server.base + path, size)
        scroll_width, inner_width = browser.evaluate(WIDTH)  # type: ignore[misc]
        assert inner_width == size[0], path
        assert scroll_width <= inner_width, (path, scroll_width)


def test_patient_data_table_fits_a_laptop_screen(page_server: ServerProcess,
                                                 browser: DevTools) -> None:
    browser.open(page_server.base + "/patient-data.html", LAPTOP)
    box = browser.evaluate("(() => { const t = document.querySelector('table.facts-table');"
                           " const r = t.getBoundingClientRect();"
                           " return [r.right, t.parentElement.clientWidth, t.offsetWidth]; })()")
    right, room, width = box  # type: ignore[misc]
    assert right <= LAPTOP[0] and width <= room


NOTICE = """(() => {
  const box = (selector) => document.querySelector(selector).getBoundingClientRect().bottom;
  const lead = document.querySelector('#notice p.disclaimer');
  return {notice: box('#notice'), summary: box('#notice summary'), h1: box('main h1'),
          lead: lead.textContent, size: parseFloat(getComputedStyle(lead).fontSize),
          open: document.querySelector('#notice details').open, height: window.innerHeight};
})()"""


def test_disclaimer_leads_the_first_screen_of_a_phone(page_server: ServerProcess,
                                                      browser: DevTools) -> None:
    for path in ("/index.html", "/guideline/bcbm/BMA-1.html"):
        browser.open(page_server.base + path, PHONE)
        notice: dict = browser.evaluate(NOTICE)  # type: ignore[assignment]
        # The status and the disclaimer's opening are on the first screen, readable, with the
        # rest one tap away; the page's own heading is on the first screen too.
        assert notice["lead"].startswith("Disclaimer. " + DISCLAIMER_START), notice
        assert notice["size"] >= 13, notice
        assert notice["summary"] <= notice["height"] / 2, notice
        assert not notice["open"]
        assert notice["h1"] <= notice["height"], (path, notice)


def test_an_unknown_path_is_the_404_page(page_server: ServerProcess, tmp_path: Path) -> None:
    path = "/guideline/bcbm/NO-SUCH-STATEMENT.html"
    status, headers, body = page_server.request("GET", path, {"Accept": "text/html"})
    assert status == 404 and headers["content-type"].startswith("text/html")
    status, headers, body = page_server.request("GET", path, {"Accept": "text/turtle"})
    assert status == 404 and headers["content-type"].startswith("text/plain")
    assert body == f"not found: {path}\n".encode()
    dom = render(page_server, path, tmp_path / "profile", status=404)
    assert "<h1>Not found</h1>" in dom and DISCLAIMER_START in dom
    assert '<a href="/index.html">Home: the guideline and its statements</a>' in dom
