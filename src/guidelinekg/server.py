"""``guidelinekg serve``: the guideline's IRIs with content negotiation, and SPARQL.

At start the static site is built (``guidelinekg publish``) into a temporary folder. Then:

- every IRI of the graph dereferences: the request path is the IRI's path under
  https://w3id.org/guidelinekg/ (``GET /guideline/bcbm/BMA-1``); the answer is ``303 See Other``
  to the document for the ``Accept`` header (HTML by default; Turtle, JSON-LD, RDF/XML,
  N-Triples on request, q-values weighed), with ``Vary: Accept``, or ``406`` when nothing
  asked for can be served. The ontology's hash IRIs (gkg:...) dereference through /ontology.
- ``/sparql`` is a read-only SPARQL 1.1 Protocol endpoint (GET ``?query=``, POST form-encoded
  or ``application/sparql-query``); results as JSON, XML, CSV or TSV, graphs as Turtle,
  N-Triples, RDF/XML or JSON-LD, by Accept. Updates are refused (403), a malformed query is
  a 400 with the parser's message, and a query running longer than ``--query-timeout`` is
  stopped (503). With Accept text/html, /sparql is the query page.

Queries run in worker processes, each with its own in-memory pyoxigraph store of the published
graphs (one named graph per ontology IRI; the default graph is their union). A query cannot be
interrupted inside the store, so a worker that overruns the time limit is killed and replaced:
the limit is real, not advisory. pyoxigraph is imported here (besides loading.py/sparql.py)
because the endpoint needs the store's own SPARQL result serialisers.

Access logs go to stderr in the Common Log Format. SIGINT and SIGTERM stop the server cleanly;
a port already in use is reported and the command exits with 2.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import multiprocessing
import queue
import signal
import socketserver
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pyoxigraph as ox
from rdflib.plugins.sparql.parser import parseUpdate

from guidelinekg import __version__
from guidelinekg.publishing import FHIR_JSON, HTML, MEDIA_TYPES, Site, build_site

EXIT_USAGE = 2
MAX_BODY_BYTES = 1024 * 1024
DEFAULT_QUERY_TIMEOUT = 10.0
WORKERS = 2

# Documents of an IRI in the server's order of preference (HTML for */*).
DOCUMENT_PREFERENCE = (HTML, "text/turtle", "application/ld+json", "application/rdf+xml",
                       "application/n-triples", FHIR_JSON)
# Other names clients use for the same media types.
ALIASES: dict[str, tuple[str, ...]] = {
    HTML: ("application/xhtml+xml",),
    "text/turtle": ("application/x-turtle", "application/turtle"),
    "application/ld+json": ("application/json",),
    "application/n-triples": ("text/plain",),
    FHIR_JSON: ("application/json", "application/json+fhir"),
    "application/sparql-results+json": ("application/json",),
    "application/sparql-results+xml": ("application/xml", "text/xml"),
}

SOLUTION_FORMATS: dict[str, ox.QueryResultsFormat] = {
    "application/sparql-results+json": ox.QueryResultsFormat.JSON,
    "application/sparql-results+xml": ox.QueryResultsFormat.XML,
    "text/csv": ox.QueryResultsFormat.CSV,
    "text/tab-separated-values": ox.QueryResultsFormat.TSV,
}
GRAPH_FORMATS: dict[str, ox.RdfFormat] = {
    "text/turtle": ox.RdfFormat.TURTLE,
    "application/n-triples": ox.RdfFormat.N_TRIPLES,
    "application/rdf+xml": ox.RdfFormat.RDF_XML,
    "application/ld+json": ox.RdfFormat.JSON_LD,
}
TEXT_TYPES = {"text/csv", "text/tab-separated-values", "text/turtle", "application/n-triples"}


# ---------------------------------------------------------------------------------------
# Content negotiation
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MediaRange:
    type: str
    subtype: str
    q: float


def parse_accept(header: str | None) -> list[MediaRange]:
    """The media ranges of an Accept header; a malformed q counts as 0 (not acceptable)."""
    ranges = []
    for part in (header or "").split(","):
        pieces = [piece.strip() for piece in part.split(";")]
        if not pieces[0] or "/" not in pieces[0]:
            continue
        main, _, sub = pieces[0].lower().partition("/")
        q = 1.0
        for parameter in pieces[1:]:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
                q = min(max(q, 0.0), 1.0)
        ranges.append(MediaRange(main, sub, q))
    return ranges


def _quality(ranges: list[MediaRange], media_type: str) -> float:
    """The q of the most specific range that matches the type (or one of its aliases)."""
    names = (media_type, *ALIASES.get(media_type, ()))
    best: tuple[int, float] | None = None
    for candidate in names:
        main, _, sub = candidate.partition("/")
        for accepted in ranges:
            if accepted.type == main and accepted.subtype == sub:
                specificity = 3 if candidate == media_type else 2
            elif accepted.type == main and accepted.subtype == "*":
                specificity = 1
            elif accepted.type == "*" and accepted.subtype == "*":
                specificity = 0
            else:
                continue
            if best is None or specificity > best[0]:
                best = (specificity, accepted.q)
    return best[1] if best else 0.0


def negotiate(header: str | None, available: list[str]) -> str | None:
    """The available media type the client prefers (q-values), ties in server order."""
    if not available:
        return None
    if header is None or not header.strip():
        return available[0]
    ranges = parse_accept(header)
    if not ranges:
        return available[0]
    scored = [(_quality(ranges, media_type), -index, media_type)
              for index, media_type in enumerate(available)]
    q, _, chosen = max(scored)
    return chosen if q > 0 else None


# ---------------------------------------------------------------------------------------
# Query workers
# ---------------------------------------------------------------------------------------


def _worker_main(connection: Connection, dataset: list[tuple[str, str]]) -> None:
    """A worker process: load the graphs, then answer queries until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it
    store = ox.Store()
    for graph_iri, path in dataset:
        store.load(path=path, format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(graph_iri))
    connection.send(("ready", len(store)))
    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):
            return
        connection.send(_answer(store, *request))


def _answer(store: ox.Store, text: str, default_graphs: list[str], named_graphs: list[str],
            accept: str | None) -> tuple:
    try:
        result = store.query(
            text,
            use_default_graph_as_union=not default_graphs,
            default_graph=[ox.NamedNode(iri) for iri in default_graphs] or None,
            named_graphs=[ox.NamedNode(iri) for iri in named_graphs] or None,
        )
        if isinstance(result, ox.QueryTriples):
            media_type = negotiate(accept, list(GRAPH_FORMATS))
            if media_type is None:
                return ("not-acceptable", list(GRAPH_FORMATS))
            return ("ok", media_type, result.serialize(format=GRAPH_FORMATS[media_type]))
        media_type = negotiate(accept, list(SOLUTION_FORMATS))
        if media_type is None:
            return ("not-acceptable", list(SOLUTION_FORMATS))
        return ("ok", media_type, result.serialize(format=SOLUTION_FORMATS[media_type]))
    except SyntaxError as error:
        return ("syntax", str(error))
    except (OSError, ValueError, TypeError, RuntimeError) as error:
        return ("error", str(error))


class QueryWorker:
    def __init__(self, context: multiprocessing.context.BaseContext,
                 dataset: list[tuple[str, str]]) -> None:
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, dataset), daemon=True)
        self.process.start()
        child.close()

    def wait_ready(self, timeout: float) -> bool:
        if self.connection.poll(timeout):
            try:
                return self.connection.recv()[0] == "ready"
            except (EOFError, OSError):
                return False
        return False

    def ask(self, request: tuple, timeout: float) -> tuple | None:
        """The worker's answer, or None when it did not answer in time (or died)."""
        try:
            self.connection.send(request)
            if self.connection.poll(timeout):
                return self.connection.recv()
        except (EOFError, OSError, BrokenPipeError):
            pass
        return None

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.connection.close()


class QueryPool:
    """Worker processes; one that overruns its time limit is killed and replaced."""

    def __init__(self, dataset: list[tuple[str, str]], size: int = WORKERS) -> None:
        self.dataset = dataset
        self.context = multiprocessing.get_context("spawn")
        self.idle: queue.Queue[QueryWorker] = queue.Queue()
        self.all: set[QueryWorker] = set()
        self.lock = threading.Lock()
        self.closed = False
        workers = [self._start() for _ in range(size)]
        for worker in workers:
            if not worker.wait_ready(120):
                self.close()
                raise RuntimeError("a SPARQL worker process did not start")
            self.idle.put(worker)

    def _start(self) -> QueryWorker:
        worker = QueryWorker(self.context, self.dataset)
        with self.lock:
            self.all.add(worker)
        return worker

    def _replace(self, worker: QueryWorker) -> None:
        with self.lock:
            self.all.discard(worker)
        worker.stop()
        if self.closed:
            return
        fresh = self._start()
        if fresh.wait_ready(120) and not self.closed:
            self.idle.put(fresh)
        else:
            fresh.stop()

    def run(self, request: tuple, timeout: float) -> tuple:
        started = time.monotonic()
        try:
            worker = self.idle.get(timeout=timeout)
        except queue.Empty:
            return ("busy", timeout)
        answer = worker.ask(request, max(timeout - (time.monotonic() - started), 0.01))
        if answer is None:
            threading.Thread(target=self._replace, args=(worker,), daemon=True).start()
            return ("timeout", timeout)
        self.idle.put(worker)
        return answer

    def close(self) -> None:
        self.closed = True
        with self.lock:
            workers = list(self.all)
            self.all.clear()
        for worker in workers:
            worker.stop()


# ---------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def common_log_time(now: float | None = None) -> str:
    """[10/Oct/2000:13:55:36 -0700], independent of the locale."""
    local = time.localtime(now)
    offset = time.strftime("%z", local)
    return (f"{local.tm_mday:02d}/{_MONTHS[local.tm_mon - 1]}/{local.tm_year:04d}:"
            f"{local.tm_hour:02d}:{local.tm_min:02d}:{local.tm_sec:02d} {offset}")


class GuidelineServer(ThreadingHTTPServer):
    daemon_threads = True
    site: Site
    pool: QueryPool
    query_timeout: float

    def server_bind(self) -> None:
        # No reverse DNS lookup of the host (HTTPServer.server_bind does one): works offline.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = port


class Handler(BaseHTTPRequestHandler):
    server: GuidelineServer
    server_version = f"guidelinekg/{__version__}"
    protocol_version = "HTTP/1.1"
    timeout = 60  # an idle keep-alive connection is closed

    # -- responses ----------------------------------------------------------------------

    def version_string(self) -> str:
        return self.server_version

    def send_response(self, code: int, message: str | None = None) -> None:
        # Logged once the body size is known (_send), in the Common Log Format.
        self.send_response_only(code, message)
        self.send_header("Server", self.version_string())
        self.send_header("Date", self.date_time_string())

    def _send(self, code: int, body: bytes, content_type: str | None,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)
        self._log(code, len(body))

    def _text(self, code: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._send(code, (message.rstrip("\n") + "\n").encode("utf-8"),
                   "text/plain; charset=utf-8", headers)

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        self.close_connection = True
        self._text(code, message or self.responses.get(code, ("error",))[0],
                   {"Connection": "close"})

    def _log(self, code: int, size: int) -> None:
        request = self.requestline.replace('"', '\\"') if self.requestline else "-"
        sys.stderr.write(f'{self.address_string()} - - [{common_log_time()}] "{request}" '
                         f"{code} {size}\n")
        sys.stderr.flush()

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{self.address_string()} - - [{common_log_time()}] {format % args}\n")

    # -- methods ------------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        if path in ("/sparql", "/sparql/"):
            self._sparql_get(parts.query)
            return
        self._document(path)

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        if unquote(parts.path) not in ("/sparql", "/sparql/"):
            self._text(405, "POST is accepted at /sparql only", {"Allow": "GET, HEAD"})
            return
        self._sparql_post(parts.query)

    def _not_allowed(self) -> None:
        self._text(405, f"{self.command} is not allowed: this server is read-only",
                   {"Allow": "GET, HEAD, POST"})

    do_PUT = do_DELETE = do_PATCH = _not_allowed

    def do_OPTIONS(self) -> None:
        self._send(204, b"", None, {"Allow": "GET, HEAD, POST, OPTIONS",
                                    "Access-Control-Allow-Origin": "*",
                                    "Access-Control-Allow-Headers": "Accept, Content-Type"})

    # -- documents and IRIs -------------------------------------------------------------

    def _file(self, relative: str) -> Path | None:
        """The site file for a path, never outside the site and never a dot file."""
        parts = [part for part in relative.split("/") if part]
        if any(part.startswith(".") for part in parts):
            return None
        root = self.server.site.root.resolve()
        candidate = root.joinpath(*parts).resolve() if parts else root
        if candidate != root and root not in candidate.parents:
            return None
        return candidate

    def _serve_file(self, path: Path) -> None:
        content_type = MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")
        self._send(200, path.read_bytes(), content_type)

    def _document(self, path: str) -> None:
        relative = path.lstrip("/")
        target = self._file(relative)
        if target is None:
            self._text(404, f"not found: {path}")
            return
        if target.is_file():
            self._serve_file(target)
            return
        route = self.server.site.route_for(relative)
        if route is not None:
            available = [m for m in DOCUMENT_PREFERENCE if m in route.documents]
            chosen = negotiate(self.headers.get("Accept"), available)
            if chosen is None:
                listing = "\n".join(f"  {media_type}" for media_type in available)
                self._text(406, f"{path} is available as:\n{listing}", {"Vary": "Accept"})
                return
            location = "/" + route.documents[chosen]
            self._send(303, f"See Other: {location}\n".encode(), "text/plain; charset=utf-8",
                       {"Location": location, "Vary": "Accept"})
            return
        if target.is_dir() and (target / "index.html").is_file():
            self._serve_file(target / "index.html")
            return
        self._text(404, f"not found: {path}")

    # -- SPARQL -------------------------------------------------------------------------

    def _sparql_get(self, query_string: str) -> None:
        parameters = parse_qs(query_string, keep_blank_values=True)
        if "update" in parameters:
            self._refuse_update()
            return
        if "query" not in parameters:
            # Without a query: the query page for a browser, the dataset description (VoID,
            # which names this endpoint) for an RDF client.
            description = self.server.site.route_for("void")
            rdf_types = [m for m in DOCUMENT_PREFERENCE[1:] if description
                         and m in description.documents]
            chosen = negotiate(self.headers.get("Accept"), [HTML, *rdf_types,
                                                            *SOLUTION_FORMATS])
            if chosen == HTML:
                self._serve_file(self.server.site.root / "query.html")
            elif chosen in rdf_types and description is not None:
                location = "/" + description.documents[chosen]
                self._send(303, f"See Other: {location}\n".encode(),
                           "text/plain; charset=utf-8", {"Location": location, "Vary": "Accept"})
            else:
                self._text(400, "missing the query parameter (GET /sparql?query=...)")
            return
        self._run_query(parameters)

    def _sparql_post(self, query_string: str) -> None:
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            self._text(411, "a POST to /sparql needs a Content-Length")
            return
        try:
            length = int(length_header)
        except ValueError:
            self._text(400, "Content-Length is not a number")
            return
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            self._text(413, f"the request body is larger than {MAX_BODY_BYTES} bytes")
            return
        body = self.rfile.read(length)
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        parameters = parse_qs(query_string, keep_blank_values=True)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            self._text(400, "the request body is not UTF-8")
            return
        if content_type == "application/x-www-form-urlencoded":
            form = parse_qs(text, keep_blank_values=True)
            if "update" in form:
                self._refuse_update()
                return
            for name, values in form.items():
                parameters.setdefault(name, []).extend(values)
            if "query" not in parameters:
                self._text(400, "missing the query parameter in the form")
                return
            self._run_query(parameters)
        elif content_type == "application/sparql-query":
            parameters["query"] = [text]
            self._run_query(parameters)
        elif content_type == "application/sparql-update":
            self._refuse_update()
        else:
            self._text(415, "send the query as application/sparql-query or as the query "
                            "parameter of an application/x-www-form-urlencoded form")

    def _refuse_update(self) -> None:
        self._text(403, "SPARQL Update is refused: this endpoint is read-only")

    def _run_query(self, parameters: dict[str, list[str]]) -> None:
        queries = parameters.get("query", [])
        if len(queries) != 1:
            self._text(400, "give exactly one query parameter")
            return
        text = queries[0]
        request = (text, parameters.get("default-graph-uri", []),
                   parameters.get("named-graph-uri", []), self.headers.get("Accept"))
        timeout = self.server.query_timeout
        answer = self.server.pool.run(request, timeout)
        kind = answer[0]
        cors = {"Access-Control-Allow-Origin": "*", "Vary": "Accept"}
        if kind == "ok":
            _, media_type, body = answer
            charset = "; charset=utf-8" if media_type in TEXT_TYPES else ""
            self._send(200, body, media_type + charset, cors)
        elif kind == "syntax":
            if _is_update(text):
                self._refuse_update()
            else:
                self._text(400, f"SPARQL syntax error: {answer[1]}", cors)
        elif kind == "not-acceptable":
            self._text(406, "the result can be sent as: " + ", ".join(answer[1]), cors)
        elif kind == "timeout":
            self._text(503, f"the query was stopped: it ran longer than the time limit of "
                            f"{timeout:g} s", cors)
        elif kind == "busy":
            self._text(503, "every query worker is busy; try again", cors)
        else:
            self._text(400, f"the query failed: {answer[1]}", cors)


def _is_update(text: str) -> bool:
    try:
        parseUpdate(text)
    except Exception:  # rdflib raises pyparsing's exceptions, and others
        return False
    return True


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on "
                        "(default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks "
                        "a free one)")
    parser.add_argument("--query-timeout", type=float, default=DEFAULT_QUERY_TIMEOUT,
                        metavar="S", help="time limit of a SPARQL query in seconds "
                        f"(default {DEFAULT_QUERY_TIMEOUT:g})")


def run(args: argparse.Namespace) -> int:
    if args.query_timeout <= 0:
        print("guidelinekg serve: error: --query-timeout must be positive", file=sys.stderr)
        return EXIT_USAGE
    try:
        server = GuidelineServer((args.host, args.port), Handler, bind_and_activate=False)
        server.server_bind()
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            message = f"port {args.port} on {args.host} is already in use"
        else:
            message = f"cannot listen on {args.host}:{args.port} ({error.strerror or error})"
        print(f"guidelinekg serve: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    pool: QueryPool | None = None
    with tempfile.TemporaryDirectory(prefix="guidelinekg-site-") as folder:
        try:
            print("building the site ...", file=sys.stderr, flush=True)
            site = build_site(Path(folder) / "site")
            dataset = [(str(g.iri), str(site.root / g.file("latest", "nt"))) for g in site.graphs]
            dataset.append(("https://w3id.org/guidelinekg/void", str(site.root / "void.nt")))
            pool = QueryPool(dataset)
            server.site = site
            server.pool = pool
            server.query_timeout = args.query_timeout
            server.server_activate()
            host, port = server.server_address[:2]
            print(f"serving http://{host}:{port}/ (SPARQL endpoint http://{host}:{port}/sparql, "
                  f"query time limit {args.query_timeout:g} s); stop with Ctrl-C",
                  file=sys.stderr, flush=True)
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                      daemon=True)
            thread.start()
            while not stop.wait(0.5):
                pass
            server.shutdown()
            thread.join(10)
        finally:
            server.server_close()
            if pool is not None:
                pool.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    print("stopped", file=sys.stderr, flush=True)
    return 0
