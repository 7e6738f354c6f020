"""A bounded load test of ``guidelinekg serve`` on 127.0.0.1: answers, latency and memory.

Starts ``guidelinekg serve`` on a free port (or uses ``--url``), then runs ``--clients`` client
threads for ``--seconds``. ``--heavy-clients`` of them send heavy SPARQL back to back (a cross
join counted until the time limit stops it, and a sort of a cross join that runs into the memory
cap); the others mix dereferencing (GET of statement IRIs with different Accept headers, then
the document it redirects to), a trivial ASK and ordinary SELECTs. Prints the requests done per
kind, the errors by status, the trivial ASK's latency (p50, p95, max) and the resident memory
of the server and its worker processes (from /proc) before and after.

    .venv/bin/python scripts/load_test.py                      # 20 clients, 30 s
    .venv/bin/python scripts/load_test.py --clients 50 --seconds 60 --heavy-clients 3
    .venv/bin/python scripts/load_test.py --url http://127.0.0.1:8000 --pid 1234

Only the standard library is used; the numbers are measurements, not pass/fail targets.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

BASE_IRI = "https://w3id.org/guidelinekg/"
PREFIXES = """PREFIX gkg: <https://w3id.org/guidelinekg/ontology#>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
"""
TRIVIAL = PREFIXES + "ASK { ?s a gkg:Recommendation }"
SELECTS = [
    PREFIXES + """SELECT ?key ?modality ?text WHERE {
  ?s a gkg:Recommendation ; skos:notation ?key ; gkg:sectionOrder ?order ;
     gkg:modality/skos:notation ?modality ; gkg:verbatimText ?text } ORDER BY ?order""",
    PREFIXES + """SELECT ?key ?fact WHERE { ?s a gkg:Recommendation ; skos:notation ?key ;
  gkg:applicability/gkg:hasMember*/gkg:onFact ?fact } ORDER BY ?key ?fact""",
    "SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g",
    PREFIXES + """SELECT ?source ?title WHERE { ?s a gkg:EvidenceSource ; skos:notation ?source .
  OPTIONAL { ?s gkg:sourceTitle ?title } } ORDER BY ?source""",
]
HEAVY = [
    # Counted until the time limit stops it: all CPU, no memory.
    "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }",
    # Sorts the 29.5 million rows of a cross join: gigabytes, into the memory cap.
    "SELECT ?a ?d WHERE { ?a ?b ?c . ?d ?e ?f } ORDER BY ?c ?f LIMIT 1",
]
ACCEPTS = ["text/html", "text/turtle", "application/ld+json", "application/rdf+xml",
           "application/n-triples", "*/*"]
EXPECTED = {"deref": 303}  # every other kind: 200


@dataclass
class Tally:
    """What the clients saw; one lock, since every client thread records into it."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    done: Counter = field(default_factory=Counter)
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    trivial_seconds: list[float] = field(default_factory=list)

    def record(self, kind: str, status: int | str, seconds: float) -> None:
        with self.lock:
            self.done[kind] += 1
            self.statuses[kind][status] += 1
            if kind == "ask":
                self.trivial_seconds.append(seconds)


class Client:
    """One keep-alive connection, reopened when the server closes it or a request fails."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.connection: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, headers: dict[str, str],
                body: bytes | None = None) -> tuple[int | str, dict[str, str], bytes]:
        if self.connection is None:
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=120)
        try:
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
            data = response.read()
            answer = {k.lower(): v for k, v in response.getheaders()}
            if response.will_close:
                self.close()
            return response.status, answer, data
        except (OSError, http.client.HTTPException) as error:
            self.close()
            return f"exception {type(error).__name__}", {}, b""

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def timed(tally: Tally, kind: str, client: Client, method: str, path: str,
          headers: dict[str, str], body: bytes | None = None) -> dict[str, str]:
    started = time.monotonic()
    status, answer, data = client.request(method, path, headers, body)
    if status == 503:  # which limit: the message says
        reason = next((word for word in ("time limit", "memory", "long queries", "busy")
                       if word.encode() in data), "other")
        status = f"503 {reason}"
    tally.record(kind, status, time.monotonic() - started)
    return answer


def sparql(tally: Tally, kind: str, client: Client, query: str) -> None:
    timed(tally, kind, client, "POST", "/sparql",
          {"Content-Type": "application/sparql-query",
           "Accept": "application/sparql-results+json"}, query.encode())


def mixed_client(tally: Tally, client: Client, paths: list[str], deadline: float,
                 rng: random.Random) -> None:
    while time.monotonic() < deadline:
        kind = rng.choices(["deref", "ask", "select"], weights=[50, 25, 25])[0]
        if kind == "deref":
            answer = timed(tally, "deref", client, "GET", rng.choice(paths),
                           {"Accept": rng.choice(ACCEPTS)})
            if "location" in answer:
                timed(tally, "document", client, "GET", answer["location"], {})
        elif kind == "ask":
            sparql(tally, "ask", client, TRIVIAL)
        else:
            sparql(tally, "select", client, rng.choice(SELECTS))
    client.close()


def heavy_client(tally: Tally, client: Client, deadline: float, rng: random.Random) -> None:
    while time.monotonic() < deadline:
        sparql(tally, "heavy", client, rng.choice(HEAVY))
    client.close()


# ---------------------------------------------------------------------------------------
# The server and its memory
# ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(log: Path, options: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "guidelinekg.cli", "serve", "--host", "127.0.0.1",
               "--port", str(port), *options]
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    client = Client("127.0.0.1", port)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"guidelinekg serve exited:\n{log.read_text()}")
        if client.request("GET", "/", {})[0] == 200:
            client.close()
            return process, f"http://127.0.0.1:{port}"
        time.sleep(0.3)
    process.kill()
    raise SystemExit("guidelinekg serve did not answer within 180 s")


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name (in parentheses) may hold spaces: the fields follow its end.
        parent = int(stat[stat.rindex(")") + 2:].split()[1])
        children[parent].append(int(entry))
    return children


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _role(pid: int) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "gone"
    if "spawn_main" in command:
        return "worker"
    return "tracker" if "resource_tracker" in command else "other"


def snapshot(pid: int) -> dict[str, list[float]] | None:
    """RSS in MB of the server and of every process under it, by role; None if it is gone."""
    server = _rss_mb(pid)
    if server is None:
        return None
    tree = _children()
    sizes: dict[str, list[float]] = {"server": [server]}
    stack = list(tree.get(pid, []))
    while stack:
        child = stack.pop()
        stack.extend(tree.get(child, []))
        size = _rss_mb(child)
        if size is not None:
            sizes.setdefault(_role(child), []).append(size)
    return sizes


def describe(sizes: dict[str, list[float]] | None) -> str:
    if sizes is None:
        return "unknown (give --pid with --url)"
    parts = []
    for role in ("server", "worker", "tracker", "other"):
        if sizes.get(role):
            count = len(sizes[role])
            label = role if role == "server" else f"{count} {role}{'s' if count > 1 else ''}"
            parts.append(f"{label} " + "+".join(f"{size:.0f}" for size in sorted(sizes[role])))
    total = sum(sum(values) for values in sizes.values())
    return f"{', '.join(parts)}; total {total:.0f} MB"


class MemorySampler(threading.Thread):
    """The largest total and the largest worker seen, sampled every quarter second."""

    def __init__(self, pid: int | None) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.stopped = threading.Event()
        self.peak_total = 0.0
        self.peak_worker = 0.0

    def run(self) -> None:
        while self.pid is not None and not self.stopped.wait(0.25):
            sizes = snapshot(self.pid)
            if sizes is None:
                return
            self.peak_total = max(self.peak_total, sum(sum(v) for v in sizes.values()))
            self.peak_worker = max([self.peak_worker, *sizes.get("worker", [])])


# ---------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------


def statement_paths(client: Client) -> list[str]:
    """Request paths of the statement IRIs, from the endpoint itself."""
    query = PREFIXES + "SELECT DISTINCT ?s WHERE { ?s gkg:verbatimText ?text }"
    connection = http.client.HTTPConnection(client.host, client.port, timeout=60)
    connection.request("GET", "/sparql?" + urlencode({"query": query}),
                       headers={"Accept": "application/sparql-results+json"})
    rows = json.loads(connection.getresponse().read())["results"]["bindings"]
    connection.close()
    paths = sorted("/" + row["s"]["value"][len(BASE_IRI):] for row in rows
                   if row["s"]["value"].startswith(BASE_IRI))
    if not paths:
        raise SystemExit("the endpoint lists no statement IRIs")
    return paths


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(share * len(ordered)), len(ordered) - 1)]


def report(tally: Tally, wall: float, tail: float, clients: int, heavy_clients: int) -> None:
    print(f"\nrequests done in {wall:.1f} s ({clients} clients, {heavy_clients} of them heavy; "
          f"the heavy queries under way at the end took {tail:.1f} s more):")
    print(f"  {'kind':<9}{'done':>8}{'per s':>9}   statuses")
    for kind in ("deref", "document", "ask", "select", "heavy"):
        if tally.done[kind]:
            statuses = ", ".join(f"{status}: {count}" for status, count
                                 in sorted(tally.statuses[kind].items(), key=str))
            print(f"  {kind:<9}{tally.done[kind]:>8}{tally.done[kind] / wall:>9.1f}   {statuses}")
    print(f"  {'all':<9}{sum(tally.done.values()):>8}{sum(tally.done.values()) / wall:>9.1f}")
    errors = Counter()
    for kind, statuses in tally.statuses.items():
        for status, count in statuses.items():
            if status != EXPECTED.get(kind, 200):
                errors[f"{kind} {status}"] += count
    listed = ", ".join(f"{name}: {count}" for name, count in sorted(errors.items()))
    print(f"errors by status (a heavy query's 503 is a limit at work): {listed or 'none'}")
    if tally.trivial_seconds:
        seconds = tally.trivial_seconds
        print(f"trivial ASK latency: p50 {percentile(seconds, 0.5) * 1000:.0f} ms, "
              f"p95 {percentile(seconds, 0.95) * 1000:.0f} ms, max {max(seconds) * 1000:.0f} ms "
              f"(n={len(seconds)})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="an already running server (default: start one)")
    parser.add_argument("--pid", type=int, help="with --url: its process, for the memory")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--heavy-clients", type=int, default=2,
                        help="clients that send only heavy queries (default 2)")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--serve-option", action="append", default=[], metavar="OPTION",
                        help="passed to guidelinekg serve, e.g. --serve-option=--workers=4")
    args = parser.parse_args()
    if not 0 <= args.heavy_clients <= args.clients:
        parser.error("--heavy-clients must be between 0 and --clients")

    with tempfile.TemporaryDirectory(prefix="guidelinekg-load-") as folder:
        process = None
        if args.url:
            url, pid = args.url.rstrip("/"), args.pid
        else:
            log = Path(folder) / "serve.log"
            process, url = start_server(log, args.serve_option)
            pid = process.pid
        try:
            parts = urlsplit(url)
            host, port = parts.hostname or "127.0.0.1", parts.port or 80
            paths = statement_paths(Client(host, port))
            if process is not None:
                print(next(line for line in log.read_text().splitlines()
                           if line.startswith("serving")))
            print(f"load test of {url}: {args.clients} clients for {args.seconds:g} s, "
                  f"{len(paths)} statement IRIs, {os.cpu_count()} cores")
            print(f"memory before (RSS, MB): {describe(snapshot(pid) if pid else None)}")
            sampler = MemorySampler(pid)
            sampler.start()
            tally = Tally()
            started = time.monotonic()
            deadline = started + args.seconds
            threads = []
            for number in range(args.clients):
                rng = random.Random(args.seed * 1000 + number)
                client = Client(host, port)
                if number < args.heavy_clients:
                    target, extra = heavy_client, (deadline, rng)
                else:
                    target, extra = mixed_client, (paths, deadline, rng)
                threads.append(threading.Thread(target=target, args=(tally, client, *extra)))
            for thread in threads:
                thread.start()
            for thread in threads[args.heavy_clients:]:
                thread.join()
            wall = time.monotonic() - started
            for thread in threads[:args.heavy_clients]:
                thread.join()
            tail = time.monotonic() - started - wall
            sampler.stopped.set()
            report(tally, wall, tail, args.clients, args.heavy_clients)
            if pid is not None:
                print(f"memory during the load (RSS, sampled every 0.25 s): peak total "
                      f"{sampler.peak_total:.0f} MB, largest worker {sampler.peak_worker:.0f} MB")
            time.sleep(2)  # let replaced workers finish loading
            print(f"memory after (RSS, MB): {describe(snapshot(pid) if pid else None)}")
        finally:
            if process is not None:
                process.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(60)
                if process.poll() is None:
                    process.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
