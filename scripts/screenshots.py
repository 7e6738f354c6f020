"""Screenshots of the published pages at a phone's and a laptop's width, for docs/screenshots/.

Starts ``guidelinekg serve`` on a free port of 127.0.0.1 (or uses ``--url``), then has headless
Chromium (the Debian package, ``bash scripts/install-system-deps.sh``) take the index, a
statement page and the query page at 390 x 844 and 1280 x 800 CSS pixels: the first screen
only (the viewport), as PNG. Nothing outside the local server resolves.

    .venv/bin/python scripts/screenshots.py                  # into docs/screenshots/
    .venv/bin/python scripts/screenshots.py --out /tmp/shots --url http://127.0.0.1:8000

Rerun it after a change to the pages; the tests (tests/test_pages_chromium.py) check the
layout itself.
"""

from __future__ import annotations

import argparse
import http.client
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
PAGES = {
    "index": "/index.html",
    "statement": "/guideline/bcbm/BMA-1.html",
    "query": "/query.html",
}
SIZES = ((390, 844), (1280, 800))
# The query page's script asks the endpoint for its examples: time for it to finish.
SCRIPT_BUDGET_MS = 3000


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def start_server(log: Path) -> tuple[subprocess.Popen, str]:
    """``guidelinekg serve`` on a free port, once it answers."""
    port = free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "guidelinekg.cli", "serve", "--host", "127.0.0.1",
             "--port", str(port)], stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"guidelinekg serve exited:\n{log.read_text()[-2000:]}")
        if answers(port):
            return process, f"http://127.0.0.1:{port}"
        time.sleep(0.5)
    process.kill()
    raise SystemExit("guidelinekg serve did not answer within 300 s")


def screenshot(url: str, size: tuple[int, int], target: Path, profile: Path) -> None:
    width, height = size
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--hide-scrollbars", f"--user-data-dir={profile}", f"--window-size={width},{height}",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--virtual-time-budget={SCRIPT_BUDGET_MS}", f"--screenshot={target}", url,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    if result.returncode != 0 or not target.is_file():
        raise SystemExit(f"Chromium failed on {url}:\n{result.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots",
                        help="folder for the PNG files (default: docs/screenshots)")
    parser.add_argument("--url", help="a running `guidelinekg serve` (default: start one)")
    args = parser.parse_args(argv)
    if not CHROMIUM.is_file():
        print(f"no {CHROMIUM}: run `bash scripts/install-system-deps.sh`", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="guidelinekg-shots-") as folder:
        process, base = (None, args.url.rstrip("/")) if args.url \
            else start_server(Path(folder) / "serve.log")
        try:
            for name, path in PAGES.items():
                for size in SIZES:
                    target = args.out / f"{name}-{size[0]}.png"
                    # A fresh profile each time: no cached stylesheet from an earlier run.
                    screenshot(base + path, size, target,
                               Path(folder) / f"profile-{name}-{size[0]}")
                    print(f"{target} ({target.stat().st_size // 1024} KiB)")
        finally:
            if process is not None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
