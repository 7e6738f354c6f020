"""A client for a SPARQL 1.1 store (Oxigraph server, Fuseki, GraphDB): queries and graph
writes (patient records are read back and results written by guidelinekg.store_commands).

Queries (SELECT, CONSTRUCT, ASK) go through SPARQLWrapper with the SPARQL 1.1 Protocol; graphs
are written with the Graph Store HTTP Protocol (PUT replaces a named graph, POST appends to
it) as N-Triples. Nothing else is sent: no SPARQL Update, so no LOAD, DROP or CLEAR, and every
query is checked by :func:`guidelinekg.query_text.refuse_remote_access` (no SERVICE, no FROM)
exactly as the embedded engines check theirs.

Parameters are bound as RDF terms: each term is written by :func:`sparql_term`, which checks
an IRI against the IRI grammar and escapes a literal, and the terms reach the query as a
``VALUES`` block (SPARQL 1.1 inline data) placed first in the query's WHERE group.

Credentials come from the environment only (never from the command line, never printed):
``GUIDELINEKG_STORE_USER`` and ``GUIDELINEKG_STORE_PASSWORD`` for HTTP basic, or
``GUIDELINEKG_STORE_TOKEN`` for a bearer token.
"""

from __future__ import annotations

import ast
import base64
import http.client
import json
import os
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import IO, NoReturn, TypeVar
from urllib.parse import quote, urlsplit

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.term import Node
from SPARQLWrapper import CONSTRUCT, JSON, POST, SELECT, TURTLE, URLENCODED, SPARQLWrapper
from SPARQLWrapper import SPARQLExceptions as wrapper_errors
from SPARQLWrapper import Wrapper as wrapper_module

from guidelinekg.loading import MAX_FILE_BYTES, RDF_FORMATS, InputError, parse_rdf_bytes
from guidelinekg.query_text import QueryError, refuse_remote_access
from guidelinekg.sparql import Row, load_query

USER_VARIABLE = "GUIDELINEKG_STORE_USER"
PASSWORD_VARIABLE = "GUIDELINEKG_STORE_PASSWORD"
TOKEN_VARIABLE = "GUIDELINEKG_STORE_TOKEN"

# Gateways and a store that is starting or overloaded answer these; worth another try.
TRANSIENT_STATUSES = frozenset({502, 503, 504})
# How much of a store's error answer a message quotes.
BODY_EXCERPT = 300

T = TypeVar("T")


class StoreError(Exception):
    """The store could not be reached, refused a request, or answered something unreadable;
    the message names the URL and quotes the store's answer. ``status``: the HTTP status of
    a refusal (a 400 to a query may mean the store lacks a SPARQL feature it uses)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


# ---------------------------------------------------------------------------------------
# Endpoint settings


@dataclass(frozen=True)
class Endpoint:
    """Where the store answers, and how long and how often to try."""

    query_url: str
    update_url: str
    store_url: str  # Graph Store HTTP Protocol
    connect_timeout: float = 5.0
    read_timeout: float = 120.0
    attempts: int = 3  # 1 + retries, for transient failures only
    backoff: float = 0.25  # seconds before the first retry; doubled each time

    @classmethod
    def from_base(cls, base: str, *, query_url: str | None = None,
                  update_url: str | None = None, store_url: str | None = None) -> Endpoint:
        """The Oxigraph server's layout under a base URL (``/query``, ``/update``,
        ``/store``); each URL can be given instead (Fuseki, GraphDB: docs/store.md)."""
        base = _checked_url(base, "--endpoint").rstrip("/")
        return cls(_checked_url(query_url or f"{base}/query", "--query-url"),
                   _checked_url(update_url or f"{base}/update", "--update-url"),
                   _checked_url(store_url or f"{base}/store", "--store-url"))


def _checked_url(url: str, what: str) -> str:
    parts = urlsplit(url)
    if "@" in parts.netloc:
        # A URL is printed in messages; credentials must not be (so this one is not).
        raise QueryError(f"{what}: give credentials in {USER_VARIABLE} and "
                         f"{PASSWORD_VARIABLE} (or {TOKEN_VARIABLE}), not in the URL")
    try:
        parts.port  # noqa: B018 (urllib checks the port when it is read)
    except ValueError:
        raise QueryError(f"{what}: {url!r} has no valid port number") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise QueryError(f"{what}: {url!r} is not an http:// or https:// URL")
    if parts.query or parts.fragment:
        raise QueryError(f"{what}: {url!r} must have no query string or fragment")
    return url


def authorization_header(environ: Mapping[str, str] | None = None) -> str | None:
    """The Authorization header the environment asks for, or None."""
    environ = os.environ if environ is None else environ
    user, password = environ.get(USER_VARIABLE), environ.get(PASSWORD_VARIABLE)
    token = environ.get(TOKEN_VARIABLE)
    if token and (user or password):
        raise QueryError(f"set either {TOKEN_VARIABLE} or {USER_VARIABLE} and "
                         f"{PASSWORD_VARIABLE}, not both")
    if token:
        return f"Bearer {token}"
    if bool(user) != bool(password):
        raise QueryError(f"{USER_VARIABLE} and {PASSWORD_VARIABLE} go together; one is unset")
    if user and password:
        pair = f"{user}:{password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")
    return None


# ---------------------------------------------------------------------------------------
# RDF terms as SPARQL text, and the VALUES block that binds them

# IRIREF of SPARQL 1.1 (and of N-Triples): no spaces, controls or <>"{}|^`\ ; absolute.
_IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\x00-\x20\x7f-\x9f<>\"{}|^`\\]*")
_LANGUAGE = re.compile(r"[A-Za-z]+(-[A-Za-z0-9]+)*")
_VARIABLE = re.compile(r"[A-Za-z0-9_]+")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b",
            "\f": "\\f"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def _iri_text(iri: str) -> str:
    if not _IRI.fullmatch(iri):
        raise QueryError(f"<{iri}> is not a valid absolute IRI (no spaces, control characters "
                         "or any of <>\"{}|^`\\); it is not sent")
    return f"<{iri}>"


def _string_text(value: str) -> str:
    if _CONTROL.search(value):
        raise QueryError(f"{value!r} holds a control character; it is not sent")
    if re.search(r"\\[uU]", value):
        # SPARQL reads \u escapes before anything else (SPARQL 1.1, 19.2): a backslash
        # before u could not be written unambiguously.
        raise QueryError(f"{value!r} holds a backslash before u; it is not sent")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise QueryError(f"{value!r} is not valid Unicode text; it is not sent") from None
    return '"' + "".join(_ESCAPES.get(char, char) for char in value) + '"'


def sparql_term(term: Node) -> str:
    """An IRI or literal as SPARQL text, checked and escaped; anything else is refused."""
    if isinstance(term, URIRef):
        return _iri_text(str(term))
    if isinstance(term, Literal):
        text = _string_text(str(term))
        if term.language:
            if not _LANGUAGE.fullmatch(term.language):
                raise QueryError(f"{term.language!r} is not a language tag; it is not sent")
            return f"{text}@{term.language}"
        if term.datatype is not None:
            return f"{text}^^{_iri_text(str(term.datatype))}"
        return text
    kind = "a blank node" if isinstance(term, BNode) else type(term).__name__
    raise QueryError(f"{kind} cannot be a parameter value; give an IRI or a literal")


def _variable(name: str) -> str:
    if not _VARIABLE.fullmatch(name):
        raise QueryError(f"{name!r} is not a SPARQL variable name")
    return f"?{name}"


def values_block(variables: Sequence[str], rows: Sequence[Sequence[Node]]) -> str:
    """``VALUES (?a ?b) { (<...> "...") ... }``: each row binds each variable to its term.

    The one place where RDF terms become query text: each through :func:`sparql_term`, the
    block put together token by token (no query text is built by string formatting).
    """
    tokens = ["VALUES", "(", *map(_variable, variables), ")", "{"]
    for row in rows:
        if len(row) != len(variables):
            raise QueryError(f"a VALUES row of {len(row)} terms for {len(variables)} variables")
        tokens += ["(", *map(sparql_term, row), ")"]
    return " ".join([*tokens, "}"])


# Just enough of SPARQL's lexical grammar to find the query's WHERE group: comments, strings
# and IRIs are skipped whole, so a brace or a WHERE inside one does not count.
_TOKENS = re.compile(r"""
    (?P<comment>\#[^\n\r]*)
  | (?P<string>\"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\"|'''(?:[^'\\]|\\.|'(?!''))*'''
              |"(?:[^"\\\n\r]|\\.)*"|'(?:[^'\\\n\r]|\\.)*')
  | (?P<iri><[^<>"{}|^`\\\x00-\x20]*>)
  | (?P<open>[{(])
  | (?P<close>[})])
  | (?P<word>[A-Za-z_:](?:[\w.:%-]|\\[_~.!$&'()*+,;=/?\#@%-])*)
  | (?P<other>[^\s])
""", re.VERBOSE | re.DOTALL)


def _where_group_start(text: str) -> int:
    """The offset just after the ``{`` that opens the query's WHERE group (SELECT and ASK
    may leave out the keyword WHERE; CONSTRUCT's template comes before it)."""
    depth = 0
    form = previous = ""  # previous: the token before, comments left out
    after_where = False
    first_group: int | None = None
    for match in _TOKENS.finditer(text):
        kind, token = match.lastgroup, match.group()
        if kind == "comment":
            continue
        if kind == "open":
            if depth == 0 and token == "{":
                if after_where:
                    return match.end()
                first_group = match.end() if first_group is None else first_group
            depth += 1
        elif kind == "close":
            depth -= 1
        elif kind == "word" and depth == 0:
            word = token.upper()
            if word in ("SELECT", "CONSTRUCT", "ASK", "DESCRIBE"):
                form = form or word
            elif word == "WHERE":
                if previous == "CONSTRUCT":
                    raise QueryError("parameters cannot be bound in the short form CONSTRUCT "
                                     "WHERE { ... }: write the template out")
                after_where = True
        previous = token.upper()
    if first_group is None or form not in ("SELECT", "ASK"):
        raise QueryError("the query has no WHERE group to bind parameters in")
    return first_group


def with_bindings(text: str, bindings: Mapping[str, Node] | None) -> str:
    """The query text with the bindings as a VALUES block opening its WHERE group.

    SPARQL 1.1 passes bindings as inline data (VALUES): written after the WHERE clause it is
    joined with the solutions once the pattern has been evaluated, so a parameter only a
    FILTER reads (``FILTER EXISTS { ?drug rdfs:subClassOf* ?intervention }``) would not
    narrow anything. Opening the WHERE group it is joined first, and every FILTER and BIND
    of the group sees it: the same answers as pyoxigraph's substitutions (tested on the
    bundled queries). rdflib mis-evaluates VALUES before OPTIONAL (bug 2332); the store is
    not rdflib.
    """
    if not bindings:
        return text
    return with_values(text, list(bindings), [list(bindings.values())])


def with_values(text: str, variables: Sequence[str], rows: Sequence[Sequence[Node]]) -> str:
    """The query text with a VALUES block of the rows opening its WHERE group."""
    block = values_block(variables, rows)
    start = _where_group_start(text)
    return "".join([text[:start], " ", block, "\n", text[start:]])


# ---------------------------------------------------------------------------------------
# The client

# The client's own queries are queries/store/term-occurs.rq and graph-sizes.rq, loaded when
# they run, not on import: loading looks through the library folders, and a bad
# GUIDELINEKG_LIBRARY must fail as a command's error, not as an import's.


def __getattr__(name: str) -> str:
    # OCCURS, the text of store/term-occurs, is still imported by that name (querying).
    if name == "OCCURS":
        return load_query("store/term-occurs").text
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Transient(Exception):
    """A failure worth another try; ``unsent``: the request surely did not reach the store."""

    def __init__(self, reason: str, unsent: bool) -> None:
        super().__init__(reason)
        self.unsent = unsent


# SPARQLWrapper turns these statuses into its own exceptions, keeping the body only in the
# message, as the repr of the bytes after "Response:".
_WRAPPER_STATUS: dict[type[wrapper_errors.SPARQLWrapperException], int] = {
    wrapper_errors.QueryBadFormed: 400, wrapper_errors.Unauthorized: 401,
    wrapper_errors.EndPointNotFound: 404, wrapper_errors.URITooLong: 414,
    wrapper_errors.EndPointInternalError: 500}


def _wrapper_body(error: wrapper_errors.SPARQLWrapperException) -> bytes:
    shown = str(error).partition("Response:\n")[2].strip()
    try:
        body = ast.literal_eval(shown) if shown else b""
    except (ValueError, SyntaxError):
        return shown.encode()
    return body if isinstance(body, bytes) else str(body).encode()


def _excerpt(body: bytes) -> str:
    text = " ".join(body[:4 * BODY_EXCERPT].decode("utf-8", errors="replace").split())
    return text[:BODY_EXCERPT] + ("..." if len(text) > BODY_EXCERPT else "") or "(empty)"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A store's redirect is not followed: urllib would send the Authorization header (the
    store's credentials) to wherever it points, another host included."""

    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int,
                         msg: str, headers: Message, newurl: str) -> None:
        raise urllib.error.HTTPError(req.full_url, code, f"redirect to {newurl}", headers, fp)


# SPARQLWrapper opens its requests with this module-level name (urllib's urlopen, which
# follows redirects): this project's queries to a store go through an opener that does not.
wrapper_module.urlopener = urllib.request.build_opener(_NoRedirects).open  # type: ignore[assignment]


def _refused(url: str, status: int, body: bytes) -> StoreError:
    reason = http.client.responses.get(status, "")
    message = (f"the SPARQL store at {url} refused the request: HTTP {status} {reason}: "
               f"{_excerpt(body)}")
    if status in (401, 403):
        message += (f" (credentials are read from {USER_VARIABLE} and {PASSWORD_VARIABLE}, "
                    f"or {TOKEN_VARIABLE})")
    return StoreError(message, status)


def _connection_failure(url: str, error: BaseException, timeout: float) -> NoReturn:
    """Raise the _Transient or StoreError a socket-level failure means."""
    reason = getattr(error, "reason", error)
    if isinstance(reason, ConnectionRefusedError):
        raise _Transient("connection refused", unsent=True)
    if isinstance(reason, ConnectionError | http.client.HTTPException):
        raise _Transient(f"connection lost ({type(reason).__name__})", unsent=False)
    if isinstance(reason, TimeoutError):
        raise StoreError(f"the SPARQL store at {url} did not answer within {timeout:g} s")
    if isinstance(reason, socket.gaierror):
        raise StoreError(f"the SPARQL store at {url} cannot be reached: unknown host")
    raise StoreError(f"the SPARQL store at {url} cannot be reached: {reason}")


def _read_body(response: http.client.HTTPResponse, url: str) -> bytes:
    body = response.read(MAX_FILE_BYTES + 1)
    if len(body) > MAX_FILE_BYTES:
        raise StoreError(f"the SPARQL store at {url} answered more than {MAX_FILE_BYTES} "
                         "bytes (the limit)")
    return body


@dataclass
class StoreClient:
    """Queries and graph writes against one store, with timeouts and bounded retries."""

    endpoint: Endpoint
    authorization: str | None = field(default=None, repr=False)
    _reached: bool = field(default=False, repr=False)

    @classmethod
    def from_environment(cls, endpoint: Endpoint) -> StoreClient:
        return cls(endpoint, authorization_header())

    # -- transport ------------------------------------------------------------------

    def _retrying(self, url: str, send: Callable[[], T], *, idempotent: bool = True) -> T:
        """send() until it succeeds, at most ``attempts`` times, waiting longer each time;
        a request that may have reached the store is repeated only when ``idempotent``."""
        delay, started = self.endpoint.backoff, time.monotonic()
        for attempt in range(1, self.endpoint.attempts + 1):
            try:
                return send()
            except _Transient as failure:
                last = attempt == self.endpoint.attempts
                if last or not (idempotent or failure.unsent):
                    tries = f"{attempt} attempt{'s' if attempt > 1 else ''}"
                    spent = time.monotonic() - started
                    hint = "; is it running?" if failure.unsent else ""
                    raise StoreError(f"the SPARQL store at {url} did not answer: {failure} "
                                     f"({tries} in {spent:.1f} s){hint}") from None
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def _probe(self, url: str) -> None:
        # urllib (under SPARQLWrapper) has one timeout for connecting and reading; this
        # first connection is held to the shorter connect timeout.
        if self._reached:
            return
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            socket.create_connection((parts.hostname, port),
                                     timeout=self.endpoint.connect_timeout).close()
        except OSError as error:
            _connection_failure(url, error, self.endpoint.connect_timeout)
        self._reached = True

    def _send_query(self, text: str, graphs: Sequence[str], result_format: str
                    ) -> tuple[str, bytes]:
        url = self.endpoint.query_url
        self._probe(url)
        wrapper = SPARQLWrapper(url)
        wrapper.setQuery(text)
        # SPARQLWrapper guesses the form from the first keyword-like word of the text, with
        # comment lines only half stripped: a commented query whose comment says "load" went
        # as an update. Only queries are sent; the result format says which kind.
        wrapper.queryType = CONSTRUCT if result_format == TURTLE else SELECT
        wrapper.setMethod(POST)
        wrapper.setRequestMethod(URLENCODED)  # no URL length limit; protocol's own form
        wrapper.setReturnFormat(result_format)
        wrapper.setOnlyConneg(True)  # the Accept header only, no format=... parameters
        wrapper.setTimeout(max(1, round(self.endpoint.read_timeout)))
        for graph in graphs:
            wrapper.addDefaultGraph(graph)
        if self.authorization:
            wrapper.addCustomHttpHeader("Authorization", self.authorization)
        try:
            response = wrapper.query().response
            return response.headers.get("Content-Type", ""), _read_body(response, url)
        except urllib.error.HTTPError as error:
            if 300 <= error.code < 400:
                raise StoreError(f"the SPARQL store at {url} answered with a redirect (HTTP "
                                 f"{error.code}, {error.msg}): not followed, so that its "
                                 "credentials go nowhere else; give the store's own URL",
                                 error.code) from None
            body = error.read()
            if error.code in TRANSIENT_STATUSES:
                raise _Transient(f"HTTP {error.code}: {_excerpt(body)}", unsent=False) from None
            raise _refused(url, error.code, body) from None
        except wrapper_errors.SPARQLWrapperException as error:
            raise _refused(url, _WRAPPER_STATUS.get(type(error), 0),
                           _wrapper_body(error)) from None
        except (OSError, http.client.HTTPException) as error:
            _connection_failure(url, error, self.endpoint.read_timeout)

    def _query(self, text: str, graphs: Sequence[str], result_format: str
               ) -> tuple[str, bytes]:
        refuse_remote_access(text, "query for the store")
        return self._retrying(self.endpoint.query_url,
                              lambda: self._send_query(text, graphs, result_format))

    # -- queries --------------------------------------------------------------------

    def _results_json(self, text: str, bindings: Mapping[str, Node] | None,
                      graphs: Sequence[str]) -> dict:
        content_type, body = self._query(with_bindings(text, bindings), graphs, JSON)
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, ValueError):
            document = None
        if not isinstance(document, dict) or not ("boolean" in document or "results" in document):
            raise StoreError(f"the SPARQL store at {self.endpoint.query_url} returned a "
                             f"malformed result (expected SPARQL results JSON, got "
                             f"{content_type or 'no content type'}): {_excerpt(body)}")
        return document

    def select(self, text: str, bindings: Mapping[str, Node] | None = None,
               graphs: Sequence[str] = ()) -> tuple[list[str], list[Row]]:
        """The projected variables, in order, and the rows, as rdflib terms."""
        document = self._results_json(text, bindings, graphs)
        try:
            variables = [str(name) for name in document["head"]["vars"]]
            rows = [{name: _json_term(value) for name, value in binding.items()}
                    for binding in document["results"]["bindings"]]
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise StoreError(f"the SPARQL store at {self.endpoint.query_url} returned a "
                             f"malformed result ({type(error).__name__}: {error})") from None
        return variables, rows

    def ask(self, text: str, bindings: Mapping[str, Node] | None = None,
            graphs: Sequence[str] = ()) -> bool:
        answer = self._results_json(text, bindings, graphs).get("boolean")
        if not isinstance(answer, bool):
            raise StoreError(f"the SPARQL store at {self.endpoint.query_url} returned a "
                             "malformed result (no boolean for an ASK query)")
        return answer

    def construct(self, text: str, bindings: Mapping[str, Node] | None = None,
                  graphs: Sequence[str] = ()) -> Graph:
        """The triples a CONSTRUCT query builds (asked for as Turtle)."""
        _, body = self._query(with_bindings(text, bindings), graphs, TURTLE)
        try:
            return parse_rdf_bytes(body, Path("store-answer.ttl"), RDF_FORMATS[".ttl"])
        except InputError as error:
            raise StoreError(f"the SPARQL store at {self.endpoint.query_url} returned a "
                             f"malformed result ({error.detail}): {_excerpt(body)}") from None

    def occurs(self, iri: URIRef, graphs: Sequence[str] = ()) -> bool:
        """Whether the IRI is a subject, predicate or object in the graphs."""
        return self.ask(load_query("store/term-occurs").text, {"term": iri}, graphs)

    def graph_sizes(self, graphs: Sequence[str]) -> dict[str, int]:
        """The number of triples in each named graph (0 for one the store does not have)."""
        if not graphs:
            return {}
        _, rows = self.select(with_values(load_query("store/graph-sizes").text, ["g"],
                                          [[URIRef(graph)] for graph in graphs]))
        sizes = dict.fromkeys(graphs, 0)
        sizes.update({str(row["g"]): int(str(row["triples"])) for row in rows})
        return sizes

    # -- graph writes ---------------------------------------------------------------

    def write_graph(self, graph_iri: str, triples: Graph, *, replace: bool) -> int:
        """PUT (replace) or POST (append) the triples to a named graph; the number sent."""
        self._write(graph_iri, triples.serialize(format="nt", encoding="utf-8"), replace)
        return len(triples)

    def put_ntriples_file(self, graph_iri: str, path: Path) -> None:
        """Replace a named graph by an N-Triples file, in one PUT (one transaction on the
        Oxigraph server: the graph is then whole or as it was); the file is streamed."""
        self._write(graph_iri, path, replace=True)

    def _write(self, graph_iri: str, body: bytes | Path, replace: bool) -> None:
        _iri_text(graph_iri)
        url = f"{self.endpoint.store_url}?graph={quote(graph_iri, safe='')}"
        method = "PUT" if replace else "POST"
        self._retrying(self.endpoint.store_url, lambda: self._send_graph(method, url, body),
                       idempotent=replace)

    def _send_graph(self, method: str, url: str, body: bytes | Path) -> None:
        parts = urlsplit(url)
        kind = http.client.HTTPSConnection if parts.scheme == "https" \
            else http.client.HTTPConnection
        connection = kind(parts.netloc, timeout=self.endpoint.connect_timeout)
        headers = {"Content-Type": "application/n-triples"}
        if self.authorization:
            headers["Authorization"] = self.authorization
        timeout = self.endpoint.connect_timeout
        try:
            connection.connect()
            assert connection.sock is not None
            timeout = self.endpoint.read_timeout
            connection.sock.settimeout(timeout)
            if isinstance(body, Path):
                # Read anew at each attempt; a length, not chunks, which some stores refuse.
                headers["Content-Length"] = str(body.stat().st_size)
                with body.open("rb") as stream:
                    connection.request(method, f"{parts.path}?{parts.query}", stream, headers)
            else:
                connection.request(method, f"{parts.path}?{parts.query}", body, headers)
            response = connection.getresponse()
            answer = _read_body(response, self.endpoint.store_url)
        except (OSError, http.client.HTTPException) as error:
            _connection_failure(self.endpoint.store_url, error, timeout)
        finally:
            connection.close()
        if response.status in TRANSIENT_STATUSES:
            raise _Transient(f"HTTP {response.status}: {_excerpt(answer)}", unsent=False)
        if not 200 <= response.status < 300:
            raise _refused(self.endpoint.store_url, response.status, answer)


def _json_term(value: Mapping[str, str]) -> Node:
    """A term of SPARQL 1.1 Query Results JSON as an rdflib term (plain literals stay
    plain, as pyoxigraph's are made by guidelinekg.loading.from_oxigraph)."""
    kind, text = value["type"], value["value"]
    if kind == "uri":
        return URIRef(text)
    if kind == "bnode":
        return BNode(text)
    if kind not in ("literal", "typed-literal"):
        raise ValueError(f"unknown term type {kind!r}")
    datatype = value.get("datatype")
    if "xml:lang" in value or datatype in (None, "http://www.w3.org/2001/XMLSchema#string"):
        return Literal(text, lang=value.get("xml:lang"))
    return Literal(text, datatype=URIRef(datatype))
