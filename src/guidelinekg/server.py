"""``guidelinekg serve``: the guideline's IRIs with content negotiation, and SPARQL.

At start the static site is built (``guidelinekg publish``) into a temporary folder. Then:

- every IRI of the graph dereferences: the request path is the IRI's path under
  https://w3id.org/guidelinekg/ (``GET /guideline/ID/KEY``); the answer is ``303 See Other``
  to the document for the ``Accept`` header (HTML by default; Turtle, JSON-LD, RDF/XML,
  N-Triples on request, q-values weighed), with ``Vary: Accept``, or ``406`` when nothing
  asked for can be served. The ontology's hash IRIs (gkg:...) dereference through /ontology.
- ``/sparql`` is a read-only SPARQL 1.1 Protocol endpoint (GET ``?query=``, POST form-encoded
  or ``application/sparql-query``); results as JSON, XML, CSV or TSV, graphs as Turtle,
  N-Triples, RDF/XML or JSON-LD, by Accept. The project's prefixes may be used undeclared
  (query_text.prepare_query); updates are refused (403), a malformed query or an unknown prefix
  is a 400 with a message. With Accept text/html, /sparql is the query page (YASGUI).

Open to anyone, it guards itself: a query with SERVICE or FROM / FROM NAMED is refused (400)
before a worker sees it (pyoxigraph would call a SERVICE endpoint: the server would make
requests for whoever asks); queries run in worker processes under a time limit, a memory cap
and lanes that keep short queries answered while long ones run (query_workers.py; the options
--query-timeout, --query-memory-mb, --workers, --long-queries); there is no cross-origin
access unless ``--cors-origin ORIGIN`` names an origin; a malformed request (a control
character or bad percent-encoding in the target, text that is not UTF-8, a bad
Content-Length) is a 400, a body over 64 KiB a 413, never a traceback or a dropped connection.

pyoxigraph is imported (besides loading.py/sparql.py) by query_workers.py, for the store's own
SPARQL result serialisers. Access logs go to stderr in the Common Log Format. SIGINT and
SIGTERM stop the server cleanly; a port already in use or out of range is reported and the
command exits with 2.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import signal
import socketserver
import sys
import tempfile
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from guidelinekg import __version__, console
from guidelinekg.http_protocol import (
    CONTROL_CHARACTERS,
    DIGITS,
    ORIGIN,
    RequestError,
    common_log_time,
    decode_path,
    negotiate,
    parse_form,
    printable,
)
from guidelinekg.publishing import FHIR_JSON, HTML, MEDIA_TYPES, Site, build_site
from guidelinekg.query_text import UPDATE_REFUSED, QueryError, UpdateRefused, prepare_query
from guidelinekg.query_workers import (
    DEFAULT_MEMORY_MB,
    DEFAULT_QUERY_TIMEOUT,
    GRAPH_FORMATS,
    MIN_MEMORY_MB,
    POOL_HELP,
    QUICK_SECONDS,
    SOLUTION_FORMATS,
    Outcome,
    PoolLimits,
    QueryPool,
    QueryRequest,
    WorkerStartError,
    default_workers,
    describe_failure,
)

EXIT_USAGE = 2
# Queries are parsed in this process (prepare_query: prefixes, updates, remote access), one at
# a time, at about 2 microseconds a character: a bigger body would hold every other query long.
# 64 KiB is also http.server's limit of a request line, so GET and POST take the same queries.
MAX_BODY_BYTES = 64 * 1024
RETRY_AFTER_SECONDS = 5
SPARQL_PATHS = ("/sparql", "/sparql/")

# Documents of an IRI in the server's order of preference (HTML for */*).
DOCUMENT_PREFERENCE = (HTML, "text/turtle", "application/ld+json", "application/rdf+xml",
                       "application/n-triples", FHIR_JSON)
TEXT_TYPES = {"text/csv", "text/tab-separated-values", "text/turtle", "application/n-triples"}


class GuidelineServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 drops or resets connections as soon as a few
    # clients connect at once.
    request_queue_size = 128
    site: Site
    pool: QueryPool
    limits: PoolLimits
    cors_origins: frozenset[str] = frozenset()

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
    _requested_close = False

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
        headers = {**(headers or {}), **self._cors_headers(headers or {})}
        if self.close_connection:
            headers["Connection"] = "close"
        self.send_response(code)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self._log(code, len(body))

    def _text(self, code: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._send(code, (message.rstrip("\n") + "\n").encode("utf-8"),
                   "text/plain; charset=utf-8", headers)

    def _cors_headers(self, headers: dict[str, str]) -> dict[str, str]:
        """CORS for the origins named with --cors-origin only (none by default)."""
        if not self.server.cors_origins:
            return {}
        vary = headers.get("Vary")
        added = {"Vary": f"{vary}, Origin" if vary else "Origin"}
        request_headers = getattr(self, "headers", None)  # absent when the request line is bad
        origin = request_headers.get("Origin") if request_headers else None
        if origin and origin.lower() in self.server.cors_origins:
            added["Access-Control-Allow-Origin"] = origin
        return added

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        # http.server's own refusals (bad request line, headers too long, unknown method).
        self.close_connection = True
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._text(code, message or self.responses.get(code, ("error",))[0])

    def _log(self, code: int, size: int) -> None:
        if console.is_quiet():  # the access log is progress; errors are said anyway
            return
        request = printable(self.requestline) if self.requestline else "-"
        sys.stderr.write(f'{self.address_string()} - - [{common_log_time()}] "{request}" '
                         f"{code} {size}\n")
        sys.stderr.flush()

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{self.address_string()} - - [{common_log_time()}] "
                         f"{printable(format % args)}\n")

    # -- methods ------------------------------------------------------------------------

    def _guarded(self, action: Callable[[], None]) -> None:
        """Run a method's action; a RequestError is answered with its status, not a traceback."""
        self._requested_close = self.close_connection
        # Until its body is read (_read_body), a request that has one will close the
        # connection: unread bytes would otherwise be taken for the next request.
        if self.headers.get("Content-Length", "0").strip() != "0" or \
                "Transfer-Encoding" in self.headers:
            self.close_connection = True
        try:
            action()
        except RequestError as error:
            self.close_connection = True
            self._text(error.status, str(error))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_GET(self) -> None:
        self._guarded(self._get)

    do_HEAD = do_GET

    def do_POST(self) -> None:
        self._guarded(self._post)

    def do_OPTIONS(self) -> None:
        self._guarded(self._options)

    def _refuse_write(self) -> None:
        self._guarded(self._not_allowed)

    do_PUT = do_DELETE = do_PATCH = _refuse_write

    def _target(self) -> tuple[str, str]:
        """The decoded path and the raw query string of the request target."""
        if not self.path.isascii() or CONTROL_CHARACTERS.search(self.path):
            raise RequestError("the request target must be ASCII without control characters "
                               "(percent-encode the others)")
        try:
            parts = urlsplit(self.path)
        except ValueError:
            raise RequestError("malformed request target") from None
        return decode_path(parts.path), parts.query

    def _get(self) -> None:
        path, query_string = self._target()
        if path in SPARQL_PATHS:
            self._sparql_get(query_string)
            return
        self._document(path)

    def _post(self) -> None:
        path, query_string = self._target()
        if path not in SPARQL_PATHS:
            self._text(405, "POST is accepted at /sparql only", {"Allow": "GET, HEAD"})
            return
        self._sparql_post(query_string)

    def _not_allowed(self) -> None:
        self._text(405, f"{self.command} is not allowed: this server is read-only",
                   {"Allow": "GET, HEAD, POST"})

    def _options(self) -> None:
        headers = {"Allow": "GET, HEAD, POST, OPTIONS"}
        if self.server.cors_origins:  # a preflight; _send adds the origin when it is allowed
            headers |= {"Access-Control-Allow-Methods": "GET, HEAD, POST",
                        "Access-Control-Allow-Headers": "Accept, Content-Type",
                        "Access-Control-Max-Age": "600"}
        self._send(204, b"", None, headers)

    def _read_body(self) -> bytes:
        if "Transfer-Encoding" in self.headers:
            raise RequestError("a chunked body is not supported: send a Content-Length", 411)
        values = {value.strip() for value in self.headers.get_all("Content-Length") or []}
        if not values:
            raise RequestError("a POST to /sparql needs a Content-Length", 411)
        if len(values) > 1:
            raise RequestError("the request has conflicting Content-Length headers")
        value = values.pop()
        if not DIGITS.fullmatch(value):
            raise RequestError(f"Content-Length must be a whole number of bytes, not "
                               f"{value[:20]!r}")
        length = int(value)
        if length > MAX_BODY_BYTES:
            raise RequestError(f"the request body is larger than {MAX_BODY_BYTES} bytes", 413)
        body = self.rfile.read(length)
        if len(body) != length:
            raise RequestError("the request body is shorter than its Content-Length")
        self.close_connection = self._requested_close
        return body

    # -- documents and IRIs -------------------------------------------------------------

    def _file(self, relative: str) -> Path | None:
        """The site file for a path, never outside the site and never a dot file."""
        parts = [part for part in relative.split("/") if part]
        if any(part.startswith(".") for part in parts):
            return None
        root = self.server.site.root.resolve()
        try:
            candidate = root.joinpath(*parts).resolve() if parts else root
        except (OSError, RuntimeError):  # a symlink loop
            return None
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
            self._not_found(path)
            return
        if _is_file(target):
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
            self._see_other("/" + route.documents[chosen])
            return
        if _is_file(target / "index.html"):
            self._serve_file(target / "index.html")
            return
        self._not_found(path)

    def _not_found(self, path: str) -> None:
        # A browser gets the site's 404 page; RDF clients and scripts a line of text.
        page = self.server.site.root / "404.html"
        wanted = negotiate(self.headers.get("Accept"), ["text/plain", HTML])
        if wanted == HTML and _is_file(page):
            self._send(404, page.read_bytes(), MEDIA_TYPES[".html"], {"Vary": "Accept"})
            return
        self._text(404, f"not found: {path}", {"Vary": "Accept"})

    def _see_other(self, location: str) -> None:
        self._send(303, f"See Other: {location}\n".encode(), "text/plain; charset=utf-8",
                   {"Location": location, "Vary": "Accept"})

    # -- SPARQL -------------------------------------------------------------------------

    def _sparql_get(self, query_string: str) -> None:
        parameters = parse_form(query_string, "query string")
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
                self._see_other("/" + description.documents[chosen])
            else:
                self._text(400, "missing the query parameter (GET /sparql?query=...)")
            return
        self._run_query(parameters)

    def _sparql_post(self, query_string: str) -> None:
        body = self._read_body()
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        parameters = parse_form(query_string, "query string")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise RequestError("the request body is not UTF-8") from None
        if content_type == "application/x-www-form-urlencoded":
            form = parse_form(text, "form")
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
        self._text(403, UPDATE_REFUSED)

    def _run_query(self, parameters: dict[str, list[str]]) -> None:
        queries = parameters.get("query", [])
        if len(queries) != 1:
            self._text(400, "give exactly one query parameter")
            return
        text = queries[0]
        try:
            text = prepare_query(text)  # the project prefixes declared; it takes the parse lock
        except UpdateRefused:
            self._refuse_update()
            return
        except QueryError as error:
            self._text(400, str(error), {"Vary": "Accept"})
            return
        except Exception as error:  # fail closed: a query the check cannot read does not run
            self._text(400, f"query: it could not be checked ({type(error).__name__})",
                       {"Vary": "Accept"})
            return
        accept = self.headers.get("Accept")
        request = QueryRequest(text, tuple(parameters.get("default-graph-uri", [])),
                               tuple(parameters.get("named-graph-uri", [])),
                               negotiate(accept, list(SOLUTION_FORMATS)),
                               negotiate(accept, list(GRAPH_FORMATS)))
        answer = self.server.pool.run(request)
        if answer.outcome is Outcome.OK:
            charset = "; charset=utf-8" if answer.media_type in TEXT_TYPES else ""
            self._send(200, answer.body, answer.media_type + charset, {"Vary": "Accept"})
        else:
            code, message, retry = describe_failure(answer, self.server.limits)
            headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if retry else {}
            self._text(code, message, {"Vary": "Accept", **headers})


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a name the file system refuses (too long): no such file
        return False


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------


# Upper bounds of the pool's options: beyond them a value is a typo (an extra digit), and
# would fail late and obscurely (RLIMIT_AS overflows; thousands of processes started).
MAX_MEMORY_MB = 1024 * 1024  # a tebibyte a query
MAX_WORKERS = 64


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = POOL_HELP
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on "
                        "(default 127.0.0.1)")
    from guidelinekg.cli import MAX_SECONDS, port_argument

    parser.add_argument("--port", type=port_argument, default=8000, help="port (default 8000; 0 "
                        "picks a free one)")
    parser.add_argument("--query-timeout", type=float, default=DEFAULT_QUERY_TIMEOUT,
                        metavar="S", help="time limit of a SPARQL query in seconds "
                        f"(default {DEFAULT_QUERY_TIMEOUT:g}, at most {MAX_SECONDS:g}: a day)")
    parser.add_argument("--query-memory-mb", type=int, default=DEFAULT_MEMORY_MB, metavar="MB",
                        help="memory cap of each query worker process in MiB "
                        f"(default {DEFAULT_MEMORY_MB}, {MIN_MEMORY_MB} to {MAX_MEMORY_MB})")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="query worker processes (default: cores, 2 to 8, plus one: "
                        f"{default_workers()} here; at most {MAX_WORKERS})")
    parser.add_argument("--long-queries", type=int, default=None, metavar="N",
                        help="queries that may run longer than "
                        f"{QUICK_SECONDS:g} s at once (default: workers - 1)")
    parser.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                        help="let this web origin (https://host[:port]) read answers from a "
                        "browser; repeatable (default: none)")


def pool_limits(args: argparse.Namespace) -> PoolLimits | str:
    """The limits the options ask for, or what is wrong with them."""
    from guidelinekg.cli import count_problem, seconds_problem

    workers = default_workers() if args.workers is None else args.workers
    long_queries = max(workers - 1, 1) if args.long_queries is None else args.long_queries
    problem = (count_problem("--port", args.port, 0, 65535)
               or seconds_problem("--query-timeout", args.query_timeout)
               or count_problem("--query-memory-mb", args.query_memory_mb, MIN_MEMORY_MB,
                                 MAX_MEMORY_MB)
               or count_problem("--workers", workers, 1, MAX_WORKERS)
               or (None if 1 <= long_queries <= workers else
                   f"--long-queries must be between 1 and --workers ({workers}), not "
                   f"{long_queries}")
               or next((f"--cors-origin must be an origin like https://example.org, not "
                        f"{origin!r}" for origin in args.cors_origin
                        if not ORIGIN.fullmatch(origin.lower())), None))
    if problem:
        return problem
    return PoolLimits(workers, long_queries, args.query_memory_mb, args.query_timeout)


def _bind(args: argparse.Namespace) -> GuidelineServer | str:
    try:
        server = GuidelineServer((args.host, args.port), Handler, bind_and_activate=False)
        server.server_bind()
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            return f"port {args.port} on {args.host} is already in use"
        return f"cannot listen on {args.host}:{args.port} ({error.strerror or error})"
    return server


def run(args: argparse.Namespace) -> int:
    limits = pool_limits(args)
    # Checked, and the port taken, before building anything: a mistake is reported at once.
    server = _bind(args) if isinstance(limits, PoolLimits) else limits
    if not isinstance(server, GuidelineServer) or not isinstance(limits, PoolLimits):
        print(f"guidelinekg serve: error: {server}", file=sys.stderr)
        return EXIT_USAGE
    server.limits = limits
    server.cors_origins = frozenset(origin.lower() for origin in args.cors_origin)
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with tempfile.TemporaryDirectory(prefix="guidelinekg-site-") as folder:
            _serve(server, Path(folder), stop)
    except WorkerStartError as error:
        print(f"guidelinekg serve: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        server.server_close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    console.say("stopped")
    return 0


def _serve(server: GuidelineServer, folder: Path, stop: threading.Event) -> None:
    console.say("building the site ...")
    started = console.clock()
    site = build_site(folder / "site")
    console.detail(f"built the site in {console.since(started)}: {len(site.files)} files")
    dataset = [(str(g.iri), str(site.root / g.file("latest", "nt"))) for g in site.graphs]
    dataset.append(("https://w3id.org/guidelinekg/void", str(site.root / "void.nt")))
    limits = server.limits
    started = console.clock()
    pool = QueryPool(dataset, limits)
    console.detail(f"started {limits.workers} query workers and a spare in "
                   f"{console.since(started)}")
    try:
        server.site = site
        server.pool = pool
        server.server_activate()
        host, port = str(server.server_address[0]), server.server_address[1]
        print(f"serving http://{host}:{port}/ (SPARQL endpoint http://{host}:{port}/sparql: "
              f"{limits.workers} workers and a spare, {limits.long_queries} for long queries, "
              f"{limits.query_timeout:g} s and {limits.memory_mb} MB a query); stop with Ctrl-C",
              file=sys.stderr, flush=True)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                  daemon=True)
        thread.start()
        while not stop.wait(0.5):
            pass
        server.shutdown()
        thread.join(10)
    finally:
        pool.close()
