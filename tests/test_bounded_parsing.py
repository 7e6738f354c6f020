"""Hostile RDF input is refused quickly, in bounded memory, with an InputError that names
the file (and line), or parses: never a traceback, a hang, or a process killed for memory.

Each test writes real files (or uses tests/data/hostile/) and goes through
parse_rdf_file, the one place user RDF is parsed.
"""

from __future__ import annotations

import contextlib
import errno
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyoxigraph as ox
import pytest
from rdflib import Graph, Literal, URIRef
from rdflib.compare import isomorphic

from guidelinekg import cli, loading
from guidelinekg.loading import (
    MAX_HTML_TAGS,
    MAX_NESTING_DEPTH,
    MAX_TOKEN_BYTES,
    MAX_XML_ATTRIBUTES,
    MAX_XML_NAMESPACES,
    InputError,
    parse_rdf_bytes,
    parse_rdf_file,
)

HOSTILE = Path(__file__).parent / "data" / "hostile"
BOMB = HOSTILE / "billion-laughs.rdf"
EX = "http://example.org/"
RDF_NS = ('xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
          'xmlns:ex="http://example.org/"')
DOCTYPE_REFUSED = ("XML DOCTYPE and entity declarations are not accepted (entities can expand "
                   "without bound, and an external DTD or entity would have to be fetched); "
                   "remove the DOCTYPE")
XML_TOO_DEEP = (f"XML elements nested more than {MAX_NESTING_DEPTH} levels deep (the limit; "
                "a record needs a few levels)")
JSON_TOO_DEEP = (f"JSON objects and arrays nested more than {MAX_NESTING_DEPTH} levels deep "
                 "(the limit; a record needs a few levels)")
TOO_LONG = "a single literal, IRI or name is longer than the limit of 16 MiB"
BIG = MAX_TOKEN_BYTES + 1024 * 1024  # 17 MiB: one token just over the limit


def refusal(path: Path, rdf_format: ox.RdfFormat | None = None) -> InputError:
    with pytest.raises(InputError) as raised:
        parse_rdf_file(path, rdf_format)
    assert raised.value.path == str(path)
    return raised.value


def timed_refusal(path: Path, seconds: float) -> InputError:
    start = time.perf_counter()
    error = refusal(path)
    assert time.perf_counter() - start < seconds
    return error


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def rdf_xml(body: str) -> str:
    return f'<?xml version="1.0"?>\n<rdf:RDF {RDF_NS}>\n{body}\n</rdf:RDF>\n'


# ---------------------------------------------------------------------------------------
# Entities: refused at the DOCTYPE, before any declaration is read, expanded or fetched
# ---------------------------------------------------------------------------------------

# Run in a child process, so that a regression kills the child (address space capped at
# 1 GiB more than after the imports), not the test run; it measures the whole process,
# pyoxigraph's native allocations included, which tracemalloc alone would miss.
BOMB_CHILD = """
import json, resource, sys, time, tracemalloc
from guidelinekg.loading import InputError, parse_rdf_file
try:
    with open("/proc/self/status") as status:
        size = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    limit = (size + 1024 * 1024) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
except (OSError, StopIteration, ValueError):
    pass
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
start = time.perf_counter()
try:
    parse_rdf_file(sys.argv[1])
    message = None
except InputError as error:
    message = str(error)
seconds = time.perf_counter() - start
traced_peak = tracemalloc.get_traced_memory()[1]
growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({"message": message, "seconds": seconds, "rss_growth_kib": growth,
                  "traced_peak_bytes": traced_peak}))
"""


def test_billion_laughs_is_refused_at_the_doctype_fast_and_in_bounded_memory() -> None:
    assert BOMB.stat().st_size < 1024
    child = subprocess.run([sys.executable, "-c", BOMB_CHILD, str(BOMB)], capture_output=True,
                           text=True, timeout=120, check=False)
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout)
    assert report["message"] == f"{BOMB}, line 2, column 19: {DOCTYPE_REFUSED}"
    assert "entity" in report["message"]
    assert report["seconds"] < 1
    assert report["rss_growth_kib"] < 100 * 1024
    assert report["traced_peak_bytes"] < 100 * 1024 * 1024


def test_billion_laughs_is_refused_for_data_already_in_memory_too() -> None:
    with pytest.raises(InputError) as raised:
        parse_rdf_bytes(BOMB.read_bytes(), Path("upload.rdf"), ox.RdfFormat.RDF_XML)
    assert str(raised.value) == f"upload.rdf, line 2, column 19: {DOCTYPE_REFUSED}"


def test_validate_refuses_the_billion_laughs_with_one_line_and_exit_2(capsys) -> None:
    assert cli.main(["validate", str(BOMB)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (f"guidelinekg validate: error: {BOMB}, line 2, column 19: "
                            f"{DOCTYPE_REFUSED}\n")


def test_an_external_entity_naming_a_local_file_is_refused() -> None:
    error = refusal(HOSTILE / "external-entity.rdf")
    assert (error.line, error.column, error.detail) == (2, 19, DOCTYPE_REFUSED)
    assert "root:" not in str(error)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_an_external_entity_file_is_never_opened(tmp_path: Path) -> None:
    # A named pipe: whoever opens it to read blocks until a writer comes, so a parser that
    # fetched the entity would hang here instead of refusing.
    secret = tmp_path / "secret"
    os.mkfifo(secret)
    path = write(tmp_path / "external.rdf", (
        f'<?xml version="1.0"?>\n<!DOCTYPE rdf:RDF [\n<!ENTITY secret SYSTEM "{secret.as_uri()}">'
        f'\n]>\n<rdf:RDF {RDF_NS}>\n<rdf:Description rdf:about="{EX}a">'
        "<ex:note>&secret;</ex:note></rdf:Description>\n</rdf:RDF>\n"))
    outcome: dict[str, InputError] = {}

    def parse() -> None:
        try:
            parse_rdf_file(path)
        except InputError as error:
            outcome["error"] = error

    thread = threading.Thread(target=parse, daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():
        os.close(os.open(secret, os.O_WRONLY | os.O_NONBLOCK))  # let the reader go
        pytest.fail("the parser opened the external entity's file")
    assert str(outcome["error"]) == f"{path}, line 2, column 19: {DOCTYPE_REFUSED}"
    # Opening a pipe for writing without blocking fails when nobody has it open to read.
    with pytest.raises(OSError) as raised:
        os.open(secret, os.O_WRONLY | os.O_NONBLOCK)
    assert raised.value.errno == errno.ENXIO


@pytest.fixture
def http_requests() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server that records every request made to it."""
    requests: list[str] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'<!ENTITY leak "fetched">')

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


def test_an_external_dtd_or_entity_over_http_is_never_fetched(tmp_path: Path,
                                                              http_requests) -> None:
    base, requests = http_requests
    body = (f'<rdf:RDF {RDF_NS}>\n<rdf:Description rdf:about="{EX}a">'
            "<ex:note>&leak;</ex:note></rdf:Description>\n</rdf:RDF>\n")
    dtd = write(tmp_path / "dtd.rdf", '<?xml version="1.0"?>\n'
                f'<!DOCTYPE rdf:RDF SYSTEM "{base}/evil.dtd">\n' + body)
    entity = write(tmp_path / "entity.rdf", '<?xml version="1.0"?>\n'
                   f'<!DOCTYPE rdf:RDF [ <!ENTITY leak SYSTEM "{base}/leak"> ]>\n' + body)
    context = write(tmp_path / "context.jsonld", json.dumps(
        {"@context": {"@import": f"{base}/context.jsonld"}, "@id": f"{EX}a", f"{EX}p": 1}))
    for path in (dtd, entity):
        error = refusal(path)
        assert (error.line, error.detail) == (2, DOCTYPE_REFUSED)
    assert refusal(context).detail == (
        f"JSON-LD points to a remote @context ({base}/context.jsonld); guidelinekg fetches "
        "nothing over the network: inline the context")
    assert requests == []


def test_predefined_and_character_references_still_work_without_a_doctype(
        tmp_path: Path) -> None:
    path = write(tmp_path / "refs.rdf", rdf_xml(
        f'<rdf:Description rdf:about="{EX}a"><ex:p>a &amp; b &lt; &#233;</ex:p>'
        "</rdf:Description>"))
    assert set(parse_rdf_file(path)) == {(URIRef(EX + "a"), URIRef(EX + "p"),
                                          Literal("a & b < é"))}


def test_an_undeclared_entity_is_malformed_xml_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "undeclared.rdf", rdf_xml(
        f'<rdf:Description rdf:about="{EX}a">\n<ex:p>&lol9;</ex:p>\n</rdf:Description>'))
    error = refusal(path)
    assert (error.line, error.column, error.detail) == (
        4, 7, "not well-formed XML: undefined entity")


def test_malformed_xml_is_an_input_error_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "mismatched.rdf", rdf_xml(
        f'<rdf:Description rdf:about="{EX}a">\n<ex:p>x</ex:q>\n</rdf:Description>'))
    error = refusal(path)
    assert (error.line, error.column, error.detail) == (
        4, 10, "not well-formed XML: mismatched tag")


# ---------------------------------------------------------------------------------------
# Depth and width: refused while scanning, in time linear in the input
# ---------------------------------------------------------------------------------------


def deep_rdf_xml(levels: int) -> str:
    """rdf:RDF (depth 1, line 2), rdf:Description (2, line 3), then ``levels`` nested
    property elements, one per line: the element at depth d is on line d + 1."""
    return ('<?xml version="1.0"?>\n'
            f"<rdf:RDF {RDF_NS}>\n"
            f'<rdf:Description rdf:about="{EX}a">\n'
            + '<ex:p rdf:parseType="Resource">\n' * levels
            + "</ex:p>" * levels + "\n</rdf:Description>\n</rdf:RDF>\n")


def test_rdf_xml_nested_100000_deep_is_refused_quickly_at_the_limit(tmp_path: Path) -> None:
    path = write(tmp_path / "deep.rdf", deep_rdf_xml(100_000))
    error = timed_refusal(path, seconds=5)
    line = MAX_NESTING_DEPTH + 2  # the first element too deep
    assert str(error) == f"{path}, line {line}, column 1: {XML_TOO_DEEP}"
    assert str(MAX_NESTING_DEPTH) in str(error)


def test_rdf_xml_at_the_depth_limit_still_parses(tmp_path: Path) -> None:
    levels = MAX_NESTING_DEPTH - 2
    assert len(parse_rdf_file(write(tmp_path / "limit.rdf", deep_rdf_xml(levels)))) == levels
    assert refusal(write(tmp_path / "over.rdf", deep_rdf_xml(levels + 1))).detail == XML_TOO_DEEP


def test_an_xml_literal_nested_100000_deep_is_refused_too(tmp_path: Path) -> None:
    path = write(tmp_path / "literal.rdf", rdf_xml(
        f'<rdf:Description rdf:about="{EX}a"><ex:p rdf:parseType="Literal">\n'
        + "<a>" * 100_000 + "</a>" * 100_000 + "</ex:p></rdf:Description>"))
    error = timed_refusal(path, seconds=5)
    assert (error.line, error.detail) == (4, XML_TOO_DEEP)


def test_an_element_with_too_many_attributes_is_refused(tmp_path: Path) -> None:
    attributes = " ".join(f'ex:p{i}="v"' for i in range(100_000))
    path = write(tmp_path / "wide.rdf",
                 rdf_xml(f'<rdf:Description rdf:about="{EX}a"\n{attributes}/>'))
    error = timed_refusal(path, seconds=5)
    assert (error.line, error.detail) == (
        3, f"an XML element has 100001 attributes (the limit is {MAX_XML_ATTRIBUTES})")


def test_too_many_namespaces_in_scope_are_refused(tmp_path: Path) -> None:
    def declaring(name: str, level: int) -> str:
        return f"<{name} " + " ".join(f'xmlns:n{level}x{i}="{EX}{level}/{i}/"'
                                      for i in range(200)) + ">"
    path = write(tmp_path / "namespaces.rdf", rdf_xml(
        declaring("rdf:Description", 1).replace(">", f' rdf:about="{EX}a">')
        + "\n" + declaring('ex:p rdf:parseType="Resource"', 2)
        + "</ex:p></rdf:Description>"))
    error = refusal(path)
    assert (error.line, error.detail) == (
        4, f"more than {MAX_XML_NAMESPACES} XML namespace declarations are in scope at once "
           "(the limit)")


def test_turtle_blank_nodes_nested_100000_deep_parse_without_recursion(tmp_path: Path) -> None:
    depth = 100_000
    path = write(tmp_path / "deep.ttl", f"@prefix : <{EX}> .\n:a :p "
                 + "[ :p " * depth + "1" + " ]" * depth + " .\n")
    start = time.perf_counter()
    graph = parse_rdf_file(path)  # pyoxigraph's Turtle parser does not recurse
    seconds = time.perf_counter() - start
    assert len(graph) == depth + 1
    assert seconds < 30


def nested_objects(depth: int) -> str:
    """A JSON-LD node whose property value is a node whose ... (``depth`` objects in all
    under the outer one), ending in a value object."""
    return (f'{{"@id": "{EX}a", ' + f'"{EX}p": {{' * depth + '"@value": 1'
            + "}" * depth + "}")


def nested_arrays(depth: int) -> str:
    return f'{{"@id": "{EX}a", "{EX}p": ' + "[" * depth + "1" + "]" * depth + "}"


@pytest.mark.parametrize(("name", "text"), [
    ("objects-100000", lambda: nested_objects(100_000)),  # json.loads itself gives up
    ("arrays-100000", lambda: nested_arrays(100_000)),
    # Deeper than the limit yet shallow enough for json.loads: the walk refuses it.
    ("objects-300", lambda: nested_objects(300)),
])
def test_deep_json_ld_is_refused_at_the_limit(tmp_path: Path, name: str,
                                              text: Callable[[], str]) -> None:
    path = write(tmp_path / f"{name}.jsonld", text())
    error = timed_refusal(path, seconds=5)
    assert str(error) == f"{path}: {JSON_TOO_DEEP}"


def test_json_ld_at_the_depth_limit_still_parses(tmp_path: Path) -> None:
    levels = MAX_NESTING_DEPTH - 1  # the outer object is the first level
    assert len(parse_rdf_file(write(tmp_path / "limit.jsonld", nested_objects(levels)))) == levels
    assert refusal(write(tmp_path / "over.jsonld", nested_objects(levels + 1))).detail == (
        JSON_TOO_DEEP)


# ---------------------------------------------------------------------------------------
# Size: whole files, single tokens, triples
# ---------------------------------------------------------------------------------------


# (file name, the file's text around one long value, the message); built in the test, so
# that the 17 MiB strings do not live for the whole session.
LONG_TOKENS: list[tuple[str, Callable[[str], str], str]] = [
    ("literal.ttl", lambda long: f'<{EX}a> <{EX}p> "{long}" .\n',
     f"not valid Turtle: {TOO_LONG} (more than the parser can buffer)"),
    ("iri.ttl", lambda long: f"<{EX}a> <{EX}p> <{EX}{long}> .\n",
     f"not valid Turtle: {TOO_LONG} (more than the parser can buffer)"),
    ("literal.nt", lambda long: f'<{EX}a> <{EX}p> "{long}" .\n',
     f"not valid N-Triples: {TOO_LONG} (more than the parser can buffer)"),
    ("literal.jsonld", lambda long: f'{{"@id": "{EX}a", "{EX}p": "{long}"}}',
     f"not valid JSON-LD: {TOO_LONG} (more than the parser can buffer)"),
    ("text.rdf", lambda long: rdf_xml(f'<rdf:Description rdf:about="{EX}a"><ex:p>{long}'
                                      "</ex:p></rdf:Description>"), f"{TOO_LONG} (XML text)"),
    ("attribute.rdf", lambda long: rdf_xml(f'<rdf:Description rdf:about="{EX}a" '
                                           f'ex:p="{long}"/>'),
     f"{TOO_LONG} (an XML tag, comment or other markup)"),
    ("comment.rdf", lambda long: rdf_xml(f"<!--{long}-->"),
     f"{TOO_LONG} (an XML tag, comment or other markup)"),
]


@pytest.mark.parametrize(("name", "text", "expected"), LONG_TOKENS)
def test_a_token_over_16_mib_is_an_input_error(tmp_path: Path, name: str,
                                               text: Callable[[str], str],
                                               expected: str) -> None:
    error = timed_refusal(write(tmp_path / name, text("x" * BIG)), seconds=10)
    assert error.detail == expected
    if name.endswith(".rdf"):
        assert error.line == 3


@pytest.mark.parametrize("name", ["literal.ttl", "literal.rdf"])
def test_a_15_mib_literal_is_still_accepted(tmp_path: Path, name: str) -> None:
    value = "x" * (15 * 1024 * 1024)
    text = (f'<{EX}a> <{EX}p> "{value}" .\n' if name.endswith(".ttl") else
            rdf_xml(f'<rdf:Description rdf:about="{EX}a"><ex:p>{value}</ex:p>'
                    "</rdf:Description>"))
    graph = parse_rdf_file(write(tmp_path / name, text))
    assert set(graph) == {(URIRef(EX + "a"), URIRef(EX + "p"), Literal(value))}


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(monkeypatch,
                                                                 tmp_path: Path) -> None:
    monkeypatch.setattr(loading, "MAX_FILE_BYTES", 100)
    path = write(tmp_path / "big.ttl", f"<{EX}a> <{EX}p> " + '"x" , ' * 30 + '"x" .\n')
    size = path.stat().st_size
    assert refusal(path).detail == f"file is too large ({size} bytes; limit 100)"


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_device_that_never_ends_is_refused() -> None:
    assert refusal(Path("/dev/zero"), ox.RdfFormat.TURTLE).detail == "is not a regular file"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_pipe_is_read_in_steps_up_to_the_size_limit(monkeypatch, tmp_path: Path) -> None:
    def piped(name: str, text: str) -> Path:
        pipe = tmp_path / name
        os.mkfifo(pipe)

        def writer() -> None:
            with contextlib.suppress(BrokenPipeError):  # the reader stops at the limit
                pipe.write_text(text)

        threading.Thread(target=writer, daemon=True).start()
        return pipe

    record = f"<{EX}a> <{EX}p> " + '"x" , ' * 30 + '"x" .\n'
    assert len(parse_rdf_file(piped("record.ttl", record))) == 1
    monkeypatch.setattr(loading, "MAX_FILE_BYTES", 100)
    with pytest.raises(InputError) as raised:
        parse_rdf_file(piped("endless.ttl", record * 10_000))
    assert raised.value.detail == "file is too large (over the limit of 100 bytes)"


def test_more_triples_than_the_limit_are_refused(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(loading, "MAX_TRIPLES", 10)
    objects = " , ".join(str(number) for number in range(10))
    assert len(parse_rdf_file(write(tmp_path / "ten.ttl", f"<{EX}a> <{EX}p> {objects} .\n"))) == 10
    path = write(tmp_path / "eleven.ttl", f"<{EX}a> <{EX}p> {objects} , 10 .\n")
    assert refusal(path).detail == "more than 10 triples (the limit)"


@pytest.mark.parametrize(("name", "text"), [
    ("number.ttl", f"@prefix : <{EX}> .\n:a :p {'9' * 1_000_000} .\n:a :q 1e99999999 .\n"),
    ("number.jsonld", f'{{"@id": "{EX}a", "{EX}p": {"9" * 1_000_000}, "{EX}q": 1e999999}}'),
])
def test_huge_numbers_parse(tmp_path: Path, name: str, text: str) -> None:
    graph = parse_rdf_file(write(tmp_path / name, text))
    lengths = sorted(len(str(value)) for value in graph.objects())
    assert len(graph) == 2
    assert lengths[-1] >= 1_000_000  # the digits are kept, not rounded away or refused


# ---------------------------------------------------------------------------------------
# rdf:HTML literals, which rdflib parses (quadratically in their nesting)
# ---------------------------------------------------------------------------------------

RDF_HTML = "http://www.w3.org/1999/02/22-rdf-syntax-ns#HTML"


def test_a_deeply_nested_html_literal_is_refused_quickly(tmp_path: Path) -> None:
    path = write(tmp_path / "html.ttl", f'<{EX}a> <{EX}p> "' + "<div>" * 100_000
                 + "</div>" * 100_000 + f'"^^<{RDF_HTML}> .\n')
    error = timed_refusal(path, seconds=5)
    assert error.detail == (f"rdf:HTML literals with more than {MAX_HTML_TAGS} tags in all "
                            "(the limit; parsing them slows down with their nesting)")


def test_html_literals_within_the_budget_parse(tmp_path: Path) -> None:
    fragment = "<p>" + "<b>x</b>" * 100 + "</p>"  # 202 tags
    path = write(tmp_path / "html.ttl", f'<{EX}a> <{EX}p> "{fragment}"^^<{RDF_HTML}> ;\n'
                 f'    <{EX}q> "{fragment}"^^<{RDF_HTML}> .\n')
    assert len(parse_rdf_file(path)) == 2
    path = write(tmp_path / "over.ttl", path.read_text().replace(" .\n", f' ;\n    <{EX}r> '
                 f'"{fragment}"^^<{RDF_HTML}> .\n'))
    assert refusal(path).detail.startswith(f"rdf:HTML literals with more than {MAX_HTML_TAGS}")


# ---------------------------------------------------------------------------------------
# Other malformed input: InputError with the file name, never the parser's exception
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "data", "expected"), [
    ("bad-utf8.ttl", f'<{EX}a> <{EX}p> "\xff" .\n'.encode("latin-1"),
     "not valid Turtle: Parser error at line 1 column 48: Invalid UTF-8: invalid utf-8 "
     "sequence of 1 bytes from index 0"),
    ("bad-utf8.jsonld", f'{{"@id": "{EX}a", "{EX}p": "\xff"}}'.encode("latin-1"),
     "not UTF-8 text, so not JSON (invalid start byte)"),
    ("bad-utf8.rdf", rdf_xml(f'<rdf:Description rdf:about="{EX}a"><ex:p>\xff</ex:p>'
                             "</rdf:Description>").encode("latin-1"),
     "not well-formed XML: not well-formed (invalid token)"),
    ("truncated.jsonld", f'{{"@id": "{EX}a",'.encode(),
     "not valid JSON (Expecting property name enclosed in double quotes)"),
])
def test_undecodable_or_broken_input_is_an_input_error(tmp_path: Path, name: str, data: bytes,
                                                       expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    assert refusal(path).detail == expected


# ---------------------------------------------------------------------------------------
# Ordinary RDF/XML is unaffected
# ---------------------------------------------------------------------------------------


def test_an_ordinary_rdf_xml_file_parses_to_its_triples() -> None:
    graph = parse_rdf_file(HOSTILE / "small.rdf")
    expected = Graph().parse(HOSTILE / "small.ttl", format="turtle")
    assert len(graph) == len(expected) == 4
    assert isomorphic(graph, expected)
