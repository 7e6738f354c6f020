"""`guidelinekg serve`: content negotiation on every IRI, and the read-only SPARQL endpoint.

One server runs for the session (linked_data_server.py). SPARQL is tested with SPARQLWrapper,
the client informaticians use, and every answer is compared with the same query run in process
on the same graphs.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import re
import socket
import subprocess
import threading
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import RDF, SKOS
from SPARQLWrapper import CSV, JSON, POST, POSTDIRECTLY, TURTLE, XML, SPARQLWrapper
from SPARQLWrapper.SPARQLExceptions import QueryBadFormed

from counting_listener import CountingListener
from guidelinekg.loading import BASE, parse_rdf_bytes, rdf_format_for
from guidelinekg.publishing import collect_graphs
from guidelinekg.sparql import make_engine
from linked_data_server import (
    ServerProcess,
    free_port,
    serve_command,
    shared_server,
    stop_shared_server,
)

XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"
# Open, unlike guidelinekg.namespaces.GKG: the tests also name the domain's terms.
GKG = Namespace(BASE + "ontology#")
RDF_TYPES = {
    "text/html": ".html",
    "text/turtle": ".ttl",
    "application/ld+json": ".jsonld",
    "application/rdf+xml": ".rdf",
    "application/n-triples": ".nt",
}


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = shared_server(tmp_path_factory.mktemp("serve"))
    yield running
    code, log = stop_shared_server()
    assert code == 0, f"serve did not stop cleanly on SIGTERM:\n{log[-2000:]}"
    assert log.rstrip().endswith("stopped")


@pytest.fixture(scope="session")
def published_graphs(server: ServerProcess) -> dict[str, Graph]:
    """The graphs the server publishes (ontology IRI -> graph), read from its own files.

    Read from what the server serves rather than rebuilt here, so that the comparison is
    with exactly the data the endpoint loaded.
    """
    graphs = {}
    for graph in collect_graphs():
        status, _, body = server.request("GET", "/" + graph.file("latest", "nt"))
        assert status == 200
        graphs[str(graph.iri)] = parse_rdf_bytes(body, Path("graph.nt"),
                                                 rdf_format_for(Path("graph.nt")))
    return graphs


@pytest.fixture(scope="session")
def published(published_graphs: dict[str, Graph]) -> Graph:
    """The published graphs merged: the endpoint's default graph, read in process."""
    union = Graph()
    for graph in published_graphs.values():
        for triple in graph:
            union.add(triple)
    return union


@pytest.fixture(scope="session")
def recommendation_keys(published: Graph) -> list[str]:
    return sorted(str(published.value(r, SKOS.notation))
                  for r in published.subjects(RDF.type, GKG.Recommendation))


def endpoint(server: ServerProcess, return_format: str = JSON) -> SPARQLWrapper:
    client = SPARQLWrapper(server.base + "/sparql")
    client.setReturnFormat(return_format)
    return client


# ---------------------------------------------------------------------------------------
# Content negotiation
# ---------------------------------------------------------------------------------------


def test_thirty_seven_recommendations_are_published(recommendation_keys: list[str]) -> None:
    assert len(recommendation_keys) == 37
    assert {"SUM-1", "BMA-1", "HER2-3", "AVOID-6", "OLIGO-4"} <= set(recommendation_keys)


def test_every_recommendation_iri_answers_every_media_type(
        server: ServerProcess, published: Graph, recommendation_keys: list[str]) -> None:
    for key in recommendation_keys:
        path = f"/guideline/bcbm/{key}"
        verbatim = str(published.value(URIRef(BASE + path[1:]), GKG.verbatimText))
        for media_type, extension in RDF_TYPES.items():
            status, headers, _ = server.request("GET", path, {"Accept": media_type})
            assert status == 303, (key, media_type)
            assert "accept" in headers["vary"].lower()
            assert headers["location"] == path + extension
            status, headers, body = server.request("GET", headers["location"])
            assert status == 200
            assert headers["content-type"].split(";")[0] == media_type
            if media_type == "text/html":
                assert verbatim in html.unescape(body.decode())
            else:
                document = parse_rdf_bytes(body, Path("x" + extension),
                                           rdf_format_for(Path("x" + extension)))
                assert (URIRef(BASE + path[1:]), GKG.verbatimText,
                        Literal(verbatim, lang="en")) in document


def test_html_is_the_default(server: ServerProcess) -> None:
    for headers in ({}, {"Accept": "*/*"},
                    {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,"
                               "*/*;q=0.8"}):
        status, answer, _ = server.request("GET", "/guideline/bcbm/BMA-1", headers)
        assert (status, answer["location"]) == (303, "/guideline/bcbm/BMA-1.html")


@pytest.mark.parametrize(("accept", "location"), [
    ("text/turtle;q=0.4, application/ld+json;q=0.9", "/guideline/bcbm/TN-1.jsonld"),
    ("text/html;q=0, */*;q=0.5", "/guideline/bcbm/TN-1.ttl"),
    ("application/n-triples, text/turtle;q=0.99", "/guideline/bcbm/TN-1.nt"),
    ("application/rdf+xml;q=0.3, text/turtle;q=0.3", "/guideline/bcbm/TN-1.ttl"),
    ("text/*;q=0.2, application/rdf+xml;q=0.1", "/guideline/bcbm/TN-1.html"),
    ("application/json", "/guideline/bcbm/TN-1.jsonld"),
])
def test_q_values_are_weighed(server: ServerProcess, accept: str, location: str) -> None:
    status, headers, _ = server.request("GET", "/guideline/bcbm/TN-1", {"Accept": accept})
    assert (status, headers["location"]) == (303, location)


@pytest.mark.parametrize("accept", ["application/pdf", "text/turtle;q=0, text/html;q=0",
                                    "image/*"])
def test_nothing_acceptable_is_406(server: ServerProcess, accept: str) -> None:
    status, headers, body = server.request("GET", "/guideline/bcbm/BMA-1", {"Accept": accept})
    assert status == 406
    assert "accept" in headers["vary"].lower()
    assert "text/turtle" in body.decode() and "application/ld+json" in body.decode()


def test_ontology_hash_iris_dereference_through_the_ontology(server: ServerProcess) -> None:
    # A client strips #Denosumab before asking: GET /ontology.
    status, headers, _ = server.request("GET", "/ontology", {"Accept": "text/html"})
    assert (status, headers["location"]) == (303, "/ontology.html")
    status, _, body = server.request("GET", "/ontology.html")
    assert status == 200 and 'id="Denosumab"' in body.decode()
    status, headers, _ = server.request("GET", "/ontology", {"Accept": "text/turtle"})
    assert headers["location"] == "/ontology/latest/guidelinekg.ttl"
    status, _, body = server.request("GET", headers["location"])
    graph = parse_rdf_bytes(body, Path("o.ttl"), rdf_format_for(Path("o.ttl")))
    owl_class = URIRef("http://www.w3.org/2002/07/owl#Class")
    assert (GKG.Intervention, RDF.type, owl_class) in graph
    # A domain's terms share the namespace but are the domain's graph: in RDF they are
    # found there (ontology.html documents them all and links the domain's files).
    status, headers, _ = server.request("GET", "/domain/oncology", {"Accept": "text/turtle"})
    assert status == 303
    status, _, body = server.request("GET", headers["location"])
    graph = parse_rdf_bytes(body, Path("d.ttl"), rdf_format_for(Path("d.ttl")))
    assert (GKG.Denosumab, RDF.type, owl_class) in graph


def test_version_iri_dereferences_to_the_version(server: ServerProcess) -> None:
    status, headers, _ = server.request("GET", "/ontology/0.1.0", {"Accept": "text/turtle"})
    assert (status, headers["location"]) == (303, "/ontology/0.1.0/guidelinekg.ttl")
    status, headers, _ = server.request("GET", "/ontology/0.1.0")
    assert headers["location"] == "/ontology/0.1.0/index.html"
    assert server.request("GET", headers["location"])[0] == 200


def test_every_iri_of_the_graph_dereferences(server: ServerProcess, published: Graph) -> None:
    paths = {str(term)[len(BASE):].split("#")[0].rstrip("/")
             for triple in published for term in triple
             if isinstance(term, URIRef) and str(term).startswith(BASE)}
    paths.discard("")
    assert len(paths) > 250
    for path in sorted(paths):
        status, headers, _ = server.request("GET", "/" + path, {"Accept": "text/turtle"})
        assert status == 303, path
        assert server.request("HEAD", headers["location"])[0] == 200, (path, headers["location"])


def test_unknown_paths_dot_files_and_traversal_are_404(server: ServerProcess) -> None:
    for path in ("/guideline/bcbm/NOPE-1", "/.htaccess", "/.guidelinekg-site.json",
                 "/../../etc/passwd", "/static/../../etc/passwd"):
        assert server.request("GET", path)[0] == 404, path


def test_writes_are_not_allowed(server: ServerProcess) -> None:
    assert server.request("PUT", "/guideline/bcbm/BMA-1", body=b"x")[0] == 405
    assert server.request("DELETE", "/guideline/bcbm/BMA-1")[0] == 405
    assert server.request("POST", "/guideline/bcbm/BMA-1", body=b"x",
                          headers={"Content-Type": "text/plain"})[0] == 405


# ---------------------------------------------------------------------------------------
# SPARQL
# ---------------------------------------------------------------------------------------

PREFIXES = """PREFIX gkg: <https://w3id.org/guidelinekg/ontology#>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
"""
SELECT_RECOMMENDATIONS = PREFIXES + """
SELECT ?key ?modality ?text ?order WHERE {
  ?s a gkg:Recommendation ; skos:notation ?key ; gkg:sectionOrder ?order ;
     gkg:modality/skos:notation ?modality ; gkg:verbatimText ?text .
} ORDER BY ?order"""
SELECT_FACTS = PREFIXES + """
SELECT ?key ?fact WHERE {
  ?s a gkg:Recommendation ; skos:notation ?key ;
     gkg:applicability/gkg:hasMember*/gkg:onFact ?fact .
} ORDER BY ?key ?fact"""
SELECT_OPTIONAL = PREFIXES + """
SELECT ?source ?title WHERE {
  ?s a gkg:EvidenceSource ; skos:notation ?source .
  OPTIONAL { ?s gkg:sourceTitle ?title }
} ORDER BY ?source"""
CONSTRUCT_PITFALLS = PREFIXES + """
CONSTRUCT { ?s skos:notation ?key ; gkg:verbatimText ?text }
WHERE { ?s gkg:statementKind gkg:AvoidStatement ; skos:notation ?key ; gkg:verbatimText ?text }"""


def _json_term(value: dict) -> tuple:
    """A SPARQL JSON term as (kind, value, datatype or language)."""
    if value["type"] == "uri":
        return ("uri", value["value"], "")
    if value["type"] == "bnode":
        return ("bnode", "", "")
    extra = value.get("xml:lang") or value.get("datatype") or XSD_STRING
    return ("literal", value["value"], extra)


def _rdflib_term(term) -> tuple:
    if isinstance(term, URIRef):
        return ("uri", str(term), "")
    if isinstance(term, Literal):
        extra = term.language or str(term.datatype or XSD_STRING)
        return ("literal", str(term), extra)
    return ("bnode", "", "")


def _rows_in_process(graph: Graph, query: str, engine: str) -> list[dict]:
    return [{name: _rdflib_term(term) for name, term in row.items()}
            for row in make_engine(engine, graph).select(query)]


@pytest.mark.parametrize("query", [SELECT_RECOMMENDATIONS, SELECT_FACTS, SELECT_OPTIONAL])
def test_select_over_http_equals_the_same_query_in_process(
        server: ServerProcess, published: Graph, query: str) -> None:
    client = endpoint(server)
    client.setQuery(query)
    result = client.query().convert()
    remote = [{name: _json_term(value) for name, value in row.items()}
              for row in result["results"]["bindings"]]
    assert remote, "the query returned nothing"
    assert remote == _rows_in_process(published, query, "oxigraph")
    # rdflib's engine gives the same rows (it does not keep the ORDER BY ties the same way).
    assert sorted(map(sorted_items, remote)) == sorted(
        map(sorted_items, _rows_in_process(published, query, "rdflib")))


def sorted_items(row: dict) -> tuple:
    return tuple(sorted(row.items()))


def test_select_results_as_xml_and_csv_agree_with_json(server: ServerProcess) -> None:
    client = endpoint(server, JSON)
    client.setQuery(SELECT_RECOMMENDATIONS)
    as_json = [(row["key"]["value"], row["modality"]["value"])
               for row in client.query().convert()["results"]["bindings"]]
    client = endpoint(server, XML)
    client.setQuery(SELECT_RECOMMENDATIONS)
    document = client.query().convert()
    as_xml = []
    for result in document.getElementsByTagName("result"):
        values = {b.getAttribute("name"): b.getElementsByTagName("literal")[0].firstChild.data
                  for b in result.getElementsByTagName("binding")}
        as_xml.append((values["key"], values["modality"]))
    client = endpoint(server, CSV)
    client.setQuery(SELECT_RECOMMENDATIONS)
    rows = list(csv.DictReader(io.StringIO(client.query().convert().decode("utf-8"))))
    as_csv = [(row["key"], row["modality"]) for row in rows]
    assert len(as_json) == 37
    assert as_json == as_xml == as_csv
    assert as_json[0] == ("SUM-1", "should")


def test_post_form_and_direct_post_give_the_same_rows(server: ServerProcess) -> None:
    answers = []
    for method, request_method in ((POST, "urlencoded"), (POST, "postdirectly")):
        client = endpoint(server)
        client.setMethod(method)
        if request_method == "postdirectly":
            client.setRequestMethod(POSTDIRECTLY)
        client.setQuery(SELECT_FACTS)
        answers.append(client.query().convert()["results"]["bindings"])
    assert answers[0] == answers[1] and len(answers[0]) > 40


def test_ask(server: ServerProcess, published: Graph) -> None:
    query = PREFIXES + 'ASK { ?s skos:notation "REF-4" ; a gkg:UnresolvedCitation }'
    client = endpoint(server)
    client.setQuery(query)
    assert client.query().convert()["boolean"] is True
    assert make_engine("oxigraph", published).ask(query) is True


def test_construct_as_turtle_is_the_graph_built_in_process(
        server: ServerProcess, published: Graph) -> None:
    client = endpoint(server, TURTLE)
    client.setQuery(CONSTRUCT_PITFALLS)
    remote = Graph().parse(data=client.query().convert(), format="turtle")
    local = Graph()
    for triple in make_engine("oxigraph", published).construct(CONSTRUCT_PITFALLS):
        local.add(triple)
    assert len(remote) == 12  # 6 pitfalls, key and text each
    assert isomorphic(remote, local)


def test_named_graphs_are_the_published_graphs(server: ServerProcess,
                                               published_graphs: dict[str, Graph]) -> None:
    client = endpoint(server)
    client.setQuery("SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g")
    counts = {row["g"]["value"]: int(row["n"]["value"])
              for row in client.query().convert()["results"]["bindings"]}
    expected = {iri: len(graph) for iri, graph in published_graphs.items()}
    assert {BASE + "ontology", BASE + "guideline/bcbm"} <= set(expected)
    assert {iri: counts[iri] for iri in expected} == expected
    assert BASE + "void" in counts


def test_an_update_is_refused(server: ServerProcess) -> None:
    update = 'INSERT DATA { <urn:x:a> <urn:x:b> "c" }'
    client = endpoint(server)
    client.setMethod(POST)
    client.setQuery(update)  # SPARQLWrapper sends it as update=...
    with pytest.raises(urllib.error.HTTPError) as refused:
        client.query()
    assert refused.value.code == 403
    assert refused.value.read() == b"updates are refused: the endpoint is read-only\n"
    status, _, body = server.request("POST", "/sparql", {"Content-Type":
                                                         "application/sparql-update"},
                                     update.encode())
    assert status == 403 and b"read-only" in body
    status, _, body = server.request("POST", "/sparql", {"Content-Type":
                                                         "application/sparql-query"},
                                     update.encode())
    assert status == 403
    client = endpoint(server)
    client.setQuery("ASK { <urn:x:a> ?p ?o }")
    assert client.query().convert()["boolean"] is False


def test_a_query_may_use_the_project_prefixes_undeclared(server: ServerProcess,
                                                         published: Graph) -> None:
    bare = SELECT_RECOMMENDATIONS.removeprefix(PREFIXES)
    assert "PREFIX" not in bare
    client = endpoint(server)
    client.setQuery(bare)
    rows = client.query().convert()["results"]["bindings"]
    remote = [{name: _json_term(value) for name, value in row.items()} for row in rows]
    assert len(remote) == 37
    assert remote == _rows_in_process(published, SELECT_RECOMMENDATIONS, "oxigraph")
    # bcbm: too, the guideline's own prefix, by every way of sending a query.
    ask = "ASK { bcbm:AVOID-2 gkg:modality gkg:ShouldNot }"
    for status, _, body in _three_ways(server, ask):
        assert status == 200 and json.loads(body)["boolean"] is True, body


def test_an_explicit_prefix_wins_over_the_project_one(server: ServerProcess) -> None:
    client = endpoint(server)
    client.setQuery("PREFIX gkg: <https://example.org/not-gkg#>\n"
                    "ASK { ?s a gkg:Recommendation ; skos:notation ?key }")
    assert client.query().convert()["boolean"] is False
    client.setQuery("PREFIX g: <https://w3id.org/guidelinekg/ontology#>\n"
                    "ASK { ?s a g:Recommendation ; skos:notation ?key }")
    assert client.query().convert()["boolean"] is True


KNOWN_PREFIXES = ("bcbm:, code:, dcterms:, fact:, gkg:, gsh:, owl:, prov:, psh:, rdf:, rdfs:, "
                  "sh:, skos:, unit:, xsd:")


def test_an_undeclared_prefix_is_named(server: ServerProcess) -> None:
    expected = ("query: the prefix foo: is not declared; known prefixes: "
                f"{KNOWN_PREFIXES}\n").encode()
    for status, _, body in _three_ways(server, "SELECT * WHERE { ?s foo:bar ?o }"):
        assert (status, body) == (400, expected)


@pytest.mark.parametrize("update", [
    'INSERT DATA { <urn:x:a> <urn:x:b> "c" }',
    "DELETE WHERE { ?s gkg:modality ?m }",
    "LOAD <http://127.0.0.1:9/data.ttl>",
    "CLEAR ALL",
    "DROP GRAPH <urn:x:g>",
])
def test_an_update_sent_as_a_query_is_named(server: ServerProcess, update: str) -> None:
    for status, _, body in _three_ways(server, update):
        assert (status, body) == (403, b"updates are refused: the endpoint is read-only\n")


def test_a_malformed_query_is_400_with_the_parser_message(server: ServerProcess) -> None:
    client = endpoint(server)
    client.setQuery("SELECT ?x WHERE { ?x ?y }")
    with pytest.raises(QueryBadFormed) as bad:
        client.query()
    # The position as the parser gives it: the remote-access check parses first (rdflib,
    # "line:1, col:N"); a query it accepts is parsed again by the store ("error at 1:N").
    assert re.search(r"SPARQL syntax error.*(?:line:1, col:\d+|error at 1:\d+)",
                     str(bad.value))


def test_a_query_over_the_time_limit_is_stopped(server: ServerProcess) -> None:
    heavy = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"
    started = time.monotonic()
    status, _, body = server.request("POST", "/sparql",
                                     {"Content-Type": "application/sparql-query"},
                                     heavy.encode())
    assert status == 503 and b"time limit of 3 s" in body
    assert time.monotonic() - started < 15
    # The worker that ran it was replaced: queries keep working.
    client = endpoint(server)
    client.setQuery("ASK { ?s ?p ?o }")
    assert client.query().convert()["boolean"] is True


def test_query_page_is_served_at_sparql_for_html(server: ServerProcess) -> None:
    for path in ("/sparql", "/query.html"):
        status, headers, body = server.request("GET", path, {"Accept": "text/html"})
        assert status == 200 and headers["content-type"].startswith("text/html")
        page = body.decode()
        assert 'src="static/query.js"' in page
        # YASGUI from this site, and the plain form for a browser without it.
        assert 'src="static/vendor/yasgui/yasgui.min.js"' in page
        assert 'href="static/vendor/yasgui/yasgui.min.css"' in page
        assert '<form id="query-form" method="get" action="sparql">' in page
        assert 'id="query" name="query"' in page and "<noscript>" in page
        prefixes = json.loads(re.search(r'<script type="application/json" id="query-prefixes">'
                                         r"(.*?)</script>", page, re.S)[1])
        assert prefixes["gkg"] == str(GKG) and prefixes["bcbm"] == BASE + "guideline/bcbm/"
    for asset in ("query.js", "vendor/yasgui/yasgui.min.js", "vendor/yasgui/yasgui.min.css"):
        status, headers, body = server.request("GET", "/static/" + asset)
        local = Path(__file__).resolve().parents[1] / "src/guidelinekg/static" / asset
        assert (status, body) == (200, local.read_bytes()), asset
    status, _, body = server.request("GET", "/sparql",
                                     {"Accept": "application/sparql-results+json"})
    assert status == 400 and b"missing the query" in body
    # An RDF client asking the endpoint itself gets the dataset description that names it.
    status, headers, _ = server.request("GET", "/sparql", {"Accept": "text/turtle"})
    assert (status, headers["location"]) == (303, "/void.ttl")


def test_access_log_is_common_log_format(server: ServerProcess) -> None:
    server.request("GET", "/guideline/bcbm/BMA-1", {"Accept": "text/turtle"})
    line = server.log_lines_with('"GET /guideline/bcbm/BMA-1 HTTP/1.1" 303')[-1]
    assert re.fullmatch(r'127\.0\.0\.1 - - \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} '
                        r'[+-]\d{4}\] "GET /guideline/bcbm/BMA-1 HTTP/1\.1" 303 \d+', line)


def test_access_log_escapes_what_a_terminal_would_act_on(server: ServerProcess) -> None:
    """A request line's raw bytes are read as Latin-1: a right-to-left override sent as UTF-8
    arrives as C1 controls (\\x80), and an escape byte would restyle the terminal showing
    the log. Both are written escaped, so a request can neither forge nor reorder a line."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as connection:
        connection.sendall(b"GET /logged-\x1b[2J-\xe2\x80\xae HTTP/1.1\r\n"
                           b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert connection.recv(4096).startswith(b"HTTP/1.1 400")
    (line,) = server.log_lines_with("/logged-")
    assert '"GET /logged-\\x1b[2J-\xe2\\x80\xae HTTP/1.1" 400' in line
    assert not any(character in line for character in "\x1b\x80")


def test_a_port_in_use_is_exit_2_with_a_message(server: ServerProcess) -> None:
    started = time.monotonic()
    result = subprocess.run(serve_command(server.port), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert f"port {server.port} on 127.0.0.1 is already in use" in result.stderr
    assert time.monotonic() - started < 30  # refused before building anything


def test_void_names_the_endpoint(server: ServerProcess) -> None:
    status, headers, _ = server.request("GET", "/void", {"Accept": "application/ld+json"})
    assert status == 303
    assert headers["location"] == "/void.jsonld"
    _, _, body = server.request("GET", "/void.jsonld")
    document = json.loads(body)
    dataset = next(node for node in document["@graph"] if node["@id"].endswith("#dataset"))
    assert dataset["void:sparqlEndpoint"] == [{"@id": BASE + "sparql"}]


# ---------------------------------------------------------------------------------------
# An endpoint open to anyone: remote access, CORS, malformed requests, resource limits
# ---------------------------------------------------------------------------------------

ALLOWED_ORIGIN = "https://allowed.example"
GUARDED_TIMEOUT = 8
GUARDED_MEMORY_MB = 256
ASK_PATH = "/sparql?" + urlencode({"query": "ASK { ?s ?p ?o }"})
# 5,435 triples cubed: never ends, so it runs until the time limit, using no memory (COUNT).
HEAVY = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"
# ORDER BY keeps all 29.5 million rows of the cross join: gigabytes, in about a second.
MEMORY_HOG = "SELECT ?a ?d WHERE { ?a ?b ?c . ?d ?e ?f } ORDER BY ?c ?f LIMIT 1"
SPARQL_QUERY = {"Content-Type": "application/sparql-query"}


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A second server with the options under test: three workers (two for long queries),
    a small memory cap and one allowed origin."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("guarded") / "serve.log"
    command = [*serve_command(port, GUARDED_TIMEOUT), "--workers", "3", "--long-queries", "2",
               "--query-memory-mb", str(GUARDED_MEMORY_MB), "--cors-origin", ALLOWED_ORIGIN]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
    running = ServerProcess(port, log_path, process)
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, running.log()
        assert time.monotonic() < deadline, running.log()
        try:
            if running.request("GET", "/")[0] == 200:
                break
        except OSError:
            time.sleep(0.3)
    yield running
    assert running.stop() == 0, running.log()[-2000:]
    assert "Traceback" not in running.log()


def _three_ways(server: ServerProcess, query: str) -> list[tuple[int, dict[str, str], bytes]]:
    """The query sent by GET, by POST as a form and by POST as application/sparql-query."""
    form = urlencode({"query": query})
    return [server.request("GET", "/sparql?" + form),
            server.request("POST", "/sparql",
                           {"Content-Type": "application/x-www-form-urlencoded"}, form.encode()),
            server.request("POST", "/sparql", SPARQL_QUERY, query.encode())]


@pytest.mark.parametrize("silent", ["", "SILENT "])
def test_service_is_refused_before_anything_connects(
        server: ServerProcess, listener: CountingListener, silent: str) -> None:
    query = (f"SELECT * WHERE {{ SERVICE {silent}<http://127.0.0.1:{listener.port}/sparql> "
             "{ ?s ?p ?o } }")
    for status, _, body in _three_ways(server, query):
        assert status == 400 and b"SERVICE" in body and b"not allowed" in body, body
    # The refusal came back, so a SERVICE call (made while the query ran) would have happened.
    time.sleep(0.3)
    assert listener.accepted == 0
    # The listener does count: a connection of our own is seen.
    socket.create_connection(("127.0.0.1", listener.port), timeout=5).close()
    deadline = time.monotonic() + 5
    while listener.accepted == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert listener.accepted == 1


def test_a_carriage_return_cannot_hide_a_service(server: ServerProcess,
                                                listener: CountingListener) -> None:
    """A comment ended by a lone CR hid a SERVICE from the check (which read it to the line
    feed) while the engine called it and returned what it answered (server-side request
    forgery): refused, on GET, form POST and direct POST."""
    query = (f"SELECT * WHERE {{ # note\r SERVICE <http://127.0.0.1:{listener.port}/x> "
             "{ ?s ?p ?o }\n}")
    for status, _, body in _three_ways(server, query):
        assert status == 400 and b"carriage return" in body, body
    time.sleep(0.3)
    assert listener.accepted == 0


@pytest.mark.parametrize("clause", ["FROM", "FROM NAMED"])
def test_from_is_refused_with_a_message(server: ServerProcess, listener: CountingListener,
                                        clause: str) -> None:
    query = f"SELECT * {clause} <http://127.0.0.1:{listener.port}/graph> WHERE {{ ?s ?p ?o }}"
    for status, _, body in _three_ways(server, query):
        assert status == 400 and b"FROM is not allowed" in body, body
    assert listener.accepted == 0


def test_no_cross_origin_access_by_default(server: ServerProcess) -> None:
    for method, path in (("GET", ASK_PATH), ("OPTIONS", "/sparql"),
                         ("GET", "/guideline/bcbm/BMA-1")):
        status, headers, _ = server.request(method, path, {"Origin": "https://evil.example"})
        assert status in (200, 204, 303)
        assert "access-control-allow-origin" not in headers, (method, path)


def test_cors_origin_allows_the_named_origin_only(guarded_server: ServerProcess) -> None:
    status, headers, _ = guarded_server.request("GET", ASK_PATH, {"Origin": ALLOWED_ORIGIN})
    assert status == 200
    assert headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "origin" in headers["vary"].lower() and "accept" in headers["vary"].lower()
    status, headers, _ = guarded_server.request(
        "OPTIONS", "/sparql", {"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST"})
    assert status == 204 and headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "POST" in headers["access-control-allow-methods"]
    for other in ("https://evil.example", ALLOWED_ORIGIN + ".evil.example", "null"):
        status, headers, _ = guarded_server.request("GET", ASK_PATH, {"Origin": other})
        assert status == 200 and "access-control-allow-origin" not in headers, other
        assert "origin" in headers["vary"].lower()  # a cache must not reuse it for another


def _raw_exchange(port: int, data: bytes) -> int:
    """Send the bytes as they are; the status of the answer, which must be complete."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(data)
        connection.shutdown(socket.SHUT_WR)  # nothing more comes: a short body ends here
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    answer = b"".join(chunks)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 "), answer[:300]  # answered, not dropped
    length = re.search(rb"\r\nContent-Length: (\d+)", head)
    assert length and int(length[1]) == len(body), answer[:300]
    return int(head.split()[1])


def _get(target: bytes) -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def _post(length: bytes, body: bytes = b"") -> bytes:
    return (b"POST /sparql HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Type: application/sparql-query\r\nContent-Length: " + length
            + b"\r\n\r\n" + body)


@pytest.mark.parametrize(("request_bytes", "status"), [
    (_get(b"/%00"), 400),
    (_get(b"/guideline/bcbm/BMA-1%00.html"), 400),
    (_get(b"/guideline/%e9"), 400),  # not UTF-8
    (_get(b"/guideline/%zz"), 400),  # not a percent-escape
    (_get(b"/sparql?query=ASK%20%7B%7D%ff"), 400),
    (_get(b"/sparql?query=ASK%20%7B%7D%z"), 400),
    (_get(b"/" + b"a" * 300), 404),  # a name too long for the file system
    (_post(b"-1"), 400),
    (_post(b"12abc", b"ASK {}"), 400),
    (_post(b"9" * 30), 413),
    (_post(b"70000"), 413),  # over the 64 KiB limit: refused before the body is read
    (_post(b"6", b"ASK \xff\xfe"), 400),  # not UTF-8
    (_post(b"20", b"ASK {}"), 400),  # shorter than it says
], ids=["nul", "nul-in-name", "latin-1", "bad-escape", "query-latin-1", "query-bad-escape",
        "long-name", "negative-length", "non-numeric-length", "huge-length", "over-limit",
        "body-latin-1", "short-body"])
def test_a_malformed_request_is_answered_and_the_server_goes_on(
        server: ServerProcess, request_bytes: bytes, status: int) -> None:
    assert _raw_exchange(server.port, request_bytes) == status
    assert server.request("GET", ASK_PATH)[0] == 200
    assert "Traceback" not in server.log()


def test_a_port_out_of_range_is_exit_2_with_one_line() -> None:
    result = subprocess.run(serve_command(99999), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "--port" in result.stderr and "99999" in result.stderr


TIMEOUT_REFUSED = ("guidelinekg serve: error: --query-timeout must be a number of seconds "
                   "above 0 and at most 86400 (a day)\n")


@pytest.mark.parametrize(("options", "message"), [
    (["--query-timeout", "inf"], TIMEOUT_REFUSED),
    (["--query-timeout", "nan"], TIMEOUT_REFUSED),
    (["--query-timeout", "86401"], TIMEOUT_REFUSED),
    (["--query-timeout", "1e9"], TIMEOUT_REFUSED),
    (["--query-timeout", "0"], TIMEOUT_REFUSED),
    (["--query-timeout", "-5"], TIMEOUT_REFUSED),
    (["--query-memory-mb", "99999999999999999999"],
     "guidelinekg serve: error: --query-memory-mb must be a whole number from 128 to 1048576, "
     "not 99999999999999999999\n"),
    (["--query-memory-mb", "64"],
     "guidelinekg serve: error: --query-memory-mb must be a whole number from 128 to 1048576, "
     "not 64\n"),
    (["--workers", "100000"],
     "guidelinekg serve: error: --workers must be a whole number from 1 to 64, not 100000\n"),
    (["--workers", "0"],
     "guidelinekg serve: error: --workers must be a whole number from 1 to 64, not 0\n"),
    (["--workers", "2", "--long-queries", "3"],
     "guidelinekg serve: error: --long-queries must be between 1 and --workers (2), not 3\n"),
    (["--query-timeout", "infinity"], TIMEOUT_REFUSED),
], ids=["inf", "nan", "over-a-day", "absurd", "zero", "negative", "memory-absurd",
        "memory-too-small", "workers-absurd", "workers-zero", "long-over-workers", "infinity"])
def test_a_numeric_serve_option_out_of_range_is_exit_2_with_one_line(
        options: list[str], message: str) -> None:
    # Refused before the port is taken or the site built: nothing is served.
    result = subprocess.run([*serve_command(0), *options], capture_output=True, text=True,
                            timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", message)


def test_serve_and_query_refuse_a_timeout_in_the_same_words() -> None:
    from guidelinekg.cli import seconds_problem

    assert seconds_problem("--query-timeout", float("inf")) == TIMEOUT_REFUSED.removeprefix(
        "guidelinekg serve: error: ").removesuffix("\n")
    assert seconds_problem("--query-timeout", 86_400.0) is None
    assert seconds_problem("--query-timeout", 0.5) is None


def _in_thread(server: ServerProcess, query: str,
               answers: list[tuple[int, dict[str, str], bytes]]) -> threading.Thread:
    """POST the query from a thread that appends the answer to the list."""
    def send() -> None:
        answers.append(server.request("POST", "/sparql", SPARQL_QUERY, query.encode()))

    thread = threading.Thread(target=send)
    thread.start()
    return thread


def _timed_ask(server: ServerProcess) -> float:
    started = time.monotonic()
    status, _, body = server.request("GET", ASK_PATH)
    assert (status, json.loads(body)["boolean"]) == (200, True)
    return time.monotonic() - started


def test_a_trivial_query_is_answered_while_two_long_queries_run(
        guarded_server: ServerProcess) -> None:
    answers: list[tuple[int, dict[str, str], bytes]] = []
    long_ones = [_in_thread(guarded_server, HEAVY, answers) for _ in range(2)]
    time.sleep(1.5)  # past the 1 s quick lane: both hold the two long-query slots
    elapsed = _timed_ask(guarded_server)
    assert all(thread.is_alive() for thread in long_ones), "the long queries ended too soon"
    # Queued behind a long query, the ASK would wait for the time limit: 6.5 s more. Given
    # the free worker it takes milliseconds, even with three busy processes on two cores;
    # 2 s leaves room for a slow machine and still proves it did not wait.
    assert elapsed < 2.0, elapsed

    # A third long query, new to the server, finds both slots taken: stopped once past the
    # quick lane (1 s), not queued.
    started = time.monotonic()
    status, headers, body = guarded_server.request(
        "POST", "/sparql", SPARQL_QUERY, HEAVY.replace("?i", "?j").encode())
    assert status == 503 and b"2 long queries" in body and headers["retry-after"]
    assert time.monotonic() - started < 3.0

    # The same long query sent again is known: it waits for a slot (3 s) without holding a
    # worker, so the quick lane still answers meanwhile.
    again: list[tuple[int, dict[str, str], bytes]] = []
    started = time.monotonic()
    waiting = _in_thread(guarded_server, HEAVY, again)
    time.sleep(0.5)
    assert _timed_ask(guarded_server) < 2.0
    assert waiting.is_alive()
    waiting.join(30)
    assert again[0][0] == 503 and b"2 long queries" in again[0][2]
    assert time.monotonic() - started > 2.5  # it waited for a slot, not in the quick lane

    for thread in long_ones:
        thread.join(30)
    assert [status for status, _, _ in answers] == [503, 503]
    assert all(f"time limit of {GUARDED_TIMEOUT} s".encode() in body for _, _, body in answers)


def test_a_query_over_the_memory_cap_is_503_and_the_server_goes_on(
        guarded_server: ServerProcess) -> None:
    started = time.monotonic()
    status, _, body = guarded_server.request("POST", "/sparql", SPARQL_QUERY,
                                             MEMORY_HOG.encode())
    assert status == 503, body
    assert f"more memory than the limit of {GUARDED_MEMORY_MB} MB".encode() in body
    assert time.monotonic() - started < GUARDED_TIMEOUT  # the cap stopped it, not the clock
    for _ in range(4):  # every worker, the replaced one included, answers
        status, _, body = guarded_server.request("GET", ASK_PATH)
        assert (status, json.loads(body)["boolean"]) == (200, True)


def test_a_result_over_the_size_cap_is_503(guarded_server: ServerProcess) -> None:
    # 29.5 million rows as JSON: refused in the worker once past 64 MB, not sent over.
    status, _, body = guarded_server.request(
        "POST", "/sparql", SPARQL_QUERY, b"SELECT * WHERE { ?a ?b ?c . ?d ?e ?f }")
    assert status == 503 and b"larger than 64 MB" in body
    assert guarded_server.request("GET", ASK_PATH)[0] == 200
