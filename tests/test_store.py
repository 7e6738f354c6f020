"""`guidelinekg load`, and `query`, `validate` and `recommend --endpoint` against a SPARQL 1.1
store (issue 14).

A real Oxigraph server (the `oxigraph` package's `oxigraph serve`) runs for the module on a
free port with a temporary folder. The guideline written with `load` must answer every
bundled guideline query exactly as the embedded engine does; patient records written with
`load --patients` must read back as the files' records, and be validated and derived as the
files are; a run's results written back must read back whole, and a store that fails during
a run must be left without any of them (a proxy that drops connections). A store that
answers otherwise than the embedded engine (a proxy that alters its answers) is refused: by
`load`'s store check, and by the probe of the record path every `--endpoint` command makes.
Requests the store must never see (a hostile parameter, a SERVICE query) and what reaches the
store's HTTP layer (credentials, retries, error answers) are checked against a small recording
HTTP server.
"""

from __future__ import annotations

import base64
import csv
import http.client
import io
import json
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import PROV, RDF

from guidelinekg import cli
from guidelinekg.load_command import (
    canonical_graph,
    file_graph_iri,
    guideline_check_cases,
    guideline_graph_names,
    guideline_writes,
    parameter_example,
    row_text,
)
from guidelinekg.loading import shared_guideline_graph
from guidelinekg.namespaces import canonical_literal
from guidelinekg.patients import load_patient_input
from guidelinekg.querying import StoreDataset, resolve_query, run_query
from guidelinekg.resources import examples_dir
from guidelinekg.sparql import QueryError, bundled_queries, load_query, make_engine
from guidelinekg.store import (
    Endpoint,
    StoreClient,
    sparql_term,
    values_block,
    with_bindings,
)
from guidelinekg.store_commands import PROBE_MARK, RECORD_PATH, read_patient_graph, store_patients
from json_contract import cohort_line, results_of, validation_report
from linked_data_server import free_port

pytestmark = pytest.mark.xdist_group("store")

OXIGRAPH = Path(sys.executable).with_name("oxigraph")
PATIENTS = examples_dir() / "patients"
VALID_PATIENTS = sorted(path for path in PATIENTS.glob("*.ttl")
                        if not path.name.startswith("invalid-"))
FHIR_PATIENTS = sorted((examples_dir() / "fhir").glob("*.json"))
INVALID_PATIENT = PATIENTS / "invalid-negative-dose.ttl"
GUIDELINE_GRAPHS = ["https://w3id.org/guidelinekg/ontology/0.1.0",
                    "https://w3id.org/guidelinekg/domain/oncology/0.1.0",
                    "https://w3id.org/guidelinekg/guideline/bcbm/0.1.0"]
HOSTILE_IRI = "http://example.org/x> } ; DROP ALL #"
GUIDELINE_SOURCES = ["core ontology: guidelinekg.ttl, patient-facts.ttl",
                     "domain oncology: facts.ttl, oncology.ttl",
                     "guideline bcbm: bcbm.ttl, vocabulary.ttl"]
GUIDELINE_CHECK = ("store check: 13 queries answer as the embedded engine (the bundled guideline "
                   "queries, without and with a parameter), and so does the path records are "
                   "read with")
NEEDS = ("may lack or mis-evaluate a SPARQL 1.1 feature the {} need (docs/store.md lists "
         "them)")


# ---------------------------------------------------------------------------------------
# The Oxigraph server


@dataclass
class OxigraphServer:
    port: int
    process: subprocess.Popen
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> StoreClient:
        return StoreClient(Endpoint.from_base(self.base))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def start_oxigraph(folder: Path) -> OxigraphServer:
    port = free_port()
    log = folder / "oxigraph.log"
    with log.open("wb") as output:
        process = subprocess.Popen([str(OXIGRAPH), "serve", "--location", str(folder / "db"),
                                    "--bind", f"127.0.0.1:{port}"],
                                   stdout=output, stderr=subprocess.STDOUT)
    server = OxigraphServer(port, process, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"oxigraph serve exited early:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(server.base + "/", timeout=2) as answer:
                if answer.status == 200:
                    return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"oxigraph serve did not answer in time:\n{log.read_text()}")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OxigraphServer]:
    server = start_oxigraph(tmp_path_factory.mktemp("oxigraph"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def guideline_load(store: OxigraphServer) -> subprocess.CompletedProcess[str]:
    """The guideline written into the store once, by the command itself."""
    done = subprocess.run([sys.executable, "-m", "guidelinekg.cli", "load", "--endpoint",
                           store.base, "--replace"], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return done


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def store_totals(client: StoreClient) -> tuple[int, int]:
    """(named graphs, triples in them) in the whole store."""
    _, rows = client.select("SELECT (COUNT(DISTINCT ?g) AS ?graphs) (COUNT(*) AS ?triples) "
                            "WHERE { GRAPH ?g { ?s ?p ?o } }")
    return int(str(rows[0]["graphs"])), int(str(rows[0]["triples"]))


def row_count(text: str, output: str) -> int:
    if output == "json":
        return len(json.loads(text)["results"]["bindings"])
    if output == "csv":
        return len(list(csv.reader(io.StringIO(text, newline="")))) - 1
    found = re.fullmatch(r"\((\d+) rows?\)", text.splitlines()[-1])
    assert found, text
    return int(found[1])


# The graph with numbers in canonical form and times in one form, as Oxigraph stores them by
# value (120.0 as 120, 18:44:06+00:00 as 18:44:06Z): the store check's own comparison.
canonical = canonical_graph


# ---------------------------------------------------------------------------------------
# The guideline graph


def test_load_writes_the_guideline_one_named_graph_per_module(store, guideline_load):
    assert guideline_graph_names() == GUIDELINE_GRAPHS
    lines = guideline_load.stdout.splitlines()
    assert len(lines) == 4
    # Checked after writing: every bundled guideline query answers as the embedded engine.
    assert lines.pop() == GUIDELINE_CHECK
    assert len(list(guideline_check_cases())) == 13
    sizes = store.client().graph_sizes(GUIDELINE_GRAPHS)
    for line, graph, source in zip(lines, GUIDELINE_GRAPHS, GUIDELINE_SOURCES, strict=True):
        assert line == (f"replaced <{graph}>: {sizes[graph]} triples (it held 0, now "
                        f"{sizes[graph]}) from {source}")
    # Together they are exactly the graph `query` runs on, each triple in one graph only.
    assert sum(sizes.values()) == len(shared_guideline_graph())
    assert [write.iri for write in guideline_writes()] == GUIDELINE_GRAPHS


def _guideline_cases() -> Iterator[object]:
    for query in bundled_queries("guideline"):
        yield pytest.param(query.name, [], id=f"{query.name}-all")
        for parameter in query.parameters:
            # The example the query file gives, as the store check of `load` uses it.
            value = parameter_example(parameter)
            assert value is not None, (query.name, parameter.name)
            yield pytest.param(query.name, ["--param", f"{parameter.name}={value}"],
                               id=f"{query.name}-{parameter.name}")


@pytest.mark.parametrize(("name", "params"), list(_guideline_cases()))
@pytest.mark.parametrize("output", ["table", "csv", "json"])
def test_query_on_the_store_prints_what_the_embedded_engine_prints(
        store, guideline_load, capsys, name, params, output):
    argv = ["query", name, *params, "--format", output]
    embedded = run_cli(argv, capsys)
    on_store = run_cli([*argv, "--endpoint", store.base], capsys)
    assert embedded[0] == 0, embedded[2]
    assert on_store == embedded
    assert row_count(embedded[1], output) > 0


def test_a_parameter_narrows_the_store_query_as_it_narrows_the_embedded_one(
        store, guideline_load, capsys):
    # A parameter only a FILTER EXISTS reads: a VALUES block after the WHERE clause would
    # list every regimen; the store must list only the bone-modifying agents'.
    argv = ["query", "dose-regimens", "--param", "intervention=gkg:BoneModifyingAgent",
            "--format", "csv", "--endpoint", store.base]
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert sorted({row["regimen"].rsplit("/", 1)[-1] for row in rows}) == [
        "regimen-denosumab-120mg-q4w", "regimen-zoledronic-acid-4mg-q12w",
        "regimen-zoledronic-acid-4mg-q3-4w"]
    assert {row["intervention"] for row in rows} == {
        "https://w3id.org/guidelinekg/ontology#BoneModifyingAgent"}


@pytest.mark.parametrize(("text", "params"), [
    ("# param: modality (IRI) the modality\n"
     "PREFIX gkg: <https://w3id.org/guidelinekg/ontology#>\n"
     "PREFIX skos: <http://www.w3.org/2004/02/skos/core#>\n"
     "CONSTRUCT { ?r skos:notation ?key } WHERE { ?r gkg:modality ?modality ; "
     "skos:notation ?key }\n", ["--param", "modality=gkg:ShouldNot"]),
    ("# param: key (string) a statement key\n"
     "PREFIX skos: <http://www.w3.org/2004/02/skos/core#>\n"
     "ASK { ?r skos:notation ?key }\n", ["--param", "key=BMA-1"]),
    ("# param: key (string) a statement key\n"
     "PREFIX skos: <http://www.w3.org/2004/02/skos/core#>\n"
     "ASK { ?r skos:notation ?key }\n", ["--param", "key=NO-SUCH-KEY"]),
], ids=["construct", "ask-true", "ask-false"])
def test_construct_and_ask_files_give_the_same_output(store, guideline_load, capsys, tmp_path,
                                                      text, params):
    query = tmp_path / "mine.rq"
    query.write_text(text, encoding="utf-8")
    embedded = run_cli(["query", "--file", str(query), *params], capsys)
    on_store = run_cli(["query", "--file", str(query), *params, "--endpoint", store.base],
                       capsys)
    assert embedded[0] == 0, embedded[2]
    assert on_store == embedded


@pytest.mark.parametrize("params", [
    ["--param", "section=bcbm:no-such-section"],
    ["--param", "nonsense=1"],
    ["--param", "modality=gkg:ShouldNot", "--param", "modality=gkg:Should"],
    ["--param", "section=http://example.org/a b"],
])
def test_parameters_are_checked_as_on_the_embedded_engine(store, guideline_load, capsys,
                                                          params):
    argv = ["query", "recommendations-by-section", *params]
    embedded = run_cli(argv, capsys)
    on_store = run_cli([*argv, "--endpoint", store.base], capsys)
    assert embedded[0] == 2
    assert on_store == embedded


def test_a_graph_the_store_lacks_is_named(store, guideline_load, capsys):
    code, out, err = run_cli(["query", "recommendations-by-section", "--endpoint", store.base,
                              "--graph", "urn:guidelinekg:test:absent"], capsys)
    assert (code, out) == (4, "")
    assert err == (f"guidelinekg query: error: the SPARQL store at {store.base}/query has no "
                   "graph <urn:guidelinekg:test:absent>; write it with guidelinekg load "
                   "--endpoint URL\n")


def test_engine_and_endpoint_do_not_go_together(store, capsys):
    code, _, err = run_cli(["query", "recommendations-by-section", "--engine", "rdflib",
                            "--endpoint", store.base], capsys)
    assert code == 2
    assert "with --endpoint the store runs the query" in err


# ---------------------------------------------------------------------------------------
# Patient records


def test_patients_are_written_one_graph_per_file_and_read_back(store, capsys):
    files = [*VALID_PATIENTS, *FHIR_PATIENTS]
    code, out, err = run_cli(["load", "--endpoint", store.base, "--patients", *map(str, files)],
                             capsys)
    assert code == 0, err
    records = {path: load_patient_input([path], quiet=True).graph for path in files}
    assert out.splitlines() == [
        *(f"appended {len(records[path])} triples to <{file_graph_iri(path)}> (it held 0, now "
          f"{len(records[path])}) from {path}" for path in files),
        f"store check: {len(files)} graphs read back as written, and the store follows the "
        "path records are read with as the embedded engine does"]
    expected = canonical(load_patient_input(files, quiet=True).graph)
    endpoint = Endpoint.from_base(store.base)
    everything = read_patient_graph(endpoint, partition_size=4)
    assert len(everything) == len(expected)
    assert isomorphic(everything, expected)
    # Oxigraph stores numbers by value: the store's graph is already in canonical form.
    assert isomorphic(everything, canonical(everything))
    one_at_a_time = read_patient_graph(endpoint, partition_size=1)
    assert isomorphic(one_at_a_time, expected)
    # Named graphs: only those records.
    chosen = [FHIR_PATIENTS[0], VALID_PATIENTS[0]]
    subset = read_patient_graph(endpoint, [file_graph_iri(path) for path in chosen])
    assert isomorphic(subset, canonical(load_patient_input(chosen, quiet=True).graph))


def test_a_record_that_violates_the_shapes_is_refused_and_nothing_written(store, capsys):
    client = store.client()
    before = store_totals(client)
    code, out, err = run_cli(["load", "--endpoint", store.base, "--patients",
                              str(VALID_PATIENTS[0]), str(INVALID_PATIENT)], capsys)
    assert (code, out) == (1, "")
    assert err.startswith(f"{INVALID_PATIENT}: refused, violates the patient shapes:\n")
    assert "The dose amount is one number above 0" in err
    assert err.endswith("Nothing was written to the store: 1 of 2 inputs violate the shapes "
                        "(exit 1).\n")
    assert store_totals(client) == before
    assert client.graph_sizes([file_graph_iri(INVALID_PATIENT)]) == {
        file_graph_iri(INVALID_PATIENT): 0}


def test_replace_puts_and_append_posts(store, capsys, tmp_path):
    first = tmp_path / "first.ttl"
    first.write_text("<urn:s> <urn:p> 1, 2, 3 .\n", encoding="utf-8")
    second = tmp_path / "second.ttl"
    second.write_text("<urn:s> <urn:p> 3, 4 .\n", encoding="utf-8")
    nested = tmp_path / "nested.ttl"
    nested.write_text("<urn:s> <urn:q> [ <urn:r> 5 ] .\n", encoding="utf-8")
    graph = "urn:guidelinekg:test:replace-and-append"

    def load(path: Path, *flags: str) -> str:
        code, out, err = run_cli(["load", "--endpoint", store.base, "--graph", graph,
                                  str(path), *flags], capsys)
        assert code == 0, err
        return out

    assert load(first, "--replace") == f"replaced <{graph}>: 3 triples (it held 0, now 3) " \
                                       f"from {first}\n"
    assert load(second) == f"appended 2 triples to <{graph}> (it held 3, now 4) from {second}\n"
    assert load(second) == f"appended 2 triples to <{graph}> (it held 4, now 4) from {second}\n"
    note = ("; blank nodes are never merged with the graph's own, so writing these again adds "
            "them again (--replace writes a graph anew)\n")
    assert load(nested) == f"appended 2 triples to <{graph}> (it held 4, now 6) from {nested}" \
                           + note
    assert load(nested) == f"appended 2 triples to <{graph}> (it held 6, now 8) from {nested}" \
                           + note
    assert load(second, "--replace") == f"replaced <{graph}>: 2 triples (it held 8, now 2) " \
                                        f"from {second}\n"
    # Without --graph, a file goes to the graph its file: URL names.
    code, out, _ = run_cli(["load", "--endpoint", store.base, str(first), "--replace"], capsys)
    assert code == 0
    assert out == f"replaced <{first.resolve().as_uri()}>: 3 triples (it held 0, now 3) " \
                  f"from {first}\n"


# ---------------------------------------------------------------------------------------
# validate and recommend on the store's patient records

AS_OF = "2026-12-01"
RESULTS_GRAPH = re.compile(r"urn:guidelinekg:results:\d{8}T\d{6}Z-[0-9a-f]{8}")
PROV_LINKS = """PREFIX prov: <http://www.w3.org/ns/prov#>
SELECT ?result ?source WHERE { ?result prov:wasGeneratedBy ?run ; prov:wasDerivedFrom ?source }
ORDER BY ?result ?source"""
RUN_USED = """PREFIX prov: <http://www.w3.org/ns/prov#>
SELECT ?used WHERE { ?run a prov:Activity ; prov:used ?used } ORDER BY ?used"""
WHOLE_GRAPH = "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }"


@pytest.fixture(scope="module")
def patients_in_store(store: OxigraphServer, guideline_load: object) -> list[Path]:
    """The example records (those that conform) written by `load --patients`, one graph
    per file; replaced, so an earlier test's append does not double their blank nodes."""
    files = [*VALID_PATIENTS, *FHIR_PATIENTS]
    done = subprocess.run([sys.executable, "-m", "guidelinekg.cli", "load", "--endpoint",
                           store.base, "--replace", "--patients", *map(str, files)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return files


def store_graph(store: OxigraphServer, graph: str) -> Graph:
    return store.client().construct(WHOLE_GRAPH, graphs=[graph])


def without_run(graph: Graph) -> Graph:
    """The results graph with its run made anonymous: each run is named by its own start
    time (urn:guidelinekg:run:<time>, prov:startedAtTime), which two runs cannot share."""
    runs = set(graph.subjects(RDF.type, PROV.Activity))
    assert len(runs) == 1, runs
    same = Graph()
    for s, p, o in graph:
        if p == PROV.startedAtTime:
            continue
        s, o = (URIRef("urn:guidelinekg:test:run") if term in runs else term for term in (s, o))
        same.add((s, p, canonical_literal(o)))
    return same


def test_validate_on_the_store_reports_what_it_reports_on_the_files(store, patients_in_store,
                                                                     capsys):
    on_files = run_cli(["validate", *map(str, patients_in_store), "--format", "json"], capsys)
    on_store = run_cli(["validate", "--endpoint", store.base, "--format", "json"], capsys)
    assert on_files[0] == on_store[0] == 0, on_store[2]
    report = validation_report(on_store[1])
    assert report == validation_report(on_files[1])
    assert report["summary"]["patients"] == len(patients_in_store)
    # Where each patient came from: the store's graph where the files' run names the file.
    named = {str(path): f"<{file_graph_iri(path)}>" for path in patients_in_store}
    from_files = sorted(re.sub(r"from (.+)$", lambda m: "from " + named[m[1]], line)
                        for line in on_files[2].splitlines())
    assert sorted(on_store[2].splitlines()) == from_files


@pytest.mark.parametrize("output", ["json", "turtle", "jsonl"])
def test_recommend_on_the_store_gives_what_it_gives_on_the_files(store, patients_in_store,
                                                                 capsys, output):
    flags = ["--format", output, "--as-of", AS_OF, "--quiet"]
    code, on_files, err = run_cli(["recommend", *map(str, patients_in_store), *flags], capsys)
    assert code == 0, err
    code, on_store, err = run_cli(["recommend", "--endpoint", store.base, *flags], capsys)
    assert code == 0, err
    if output == "json":
        assert results_of(on_store) == results_of(on_files)
        assert len(results_of(on_store)) == len(patients_in_store)
    elif output == "turtle":
        assert isomorphic(without_run(Graph().parse(data=on_store, format="turtle")),
                          without_run(Graph().parse(data=on_files, format="turtle")))
    else:
        # The store is read in order of patient IRIs, the files in the order given.
        def by_patient(text: str) -> list[dict]:
            return sorted(map(cohort_line, text.splitlines()), key=lambda line: line["patient"])

        assert by_patient(on_store) == by_patient(on_files)
        assert len(on_store.splitlines()) == len(patients_in_store)


def test_a_named_graph_without_patients_is_an_error(store, patients_in_store, capsys):
    code, out, err = run_cli(["validate", "--endpoint", store.base, "--graph",
                              "urn:guidelinekg:test:absent"], capsys)
    assert (code, out) == (4, "")
    assert err == (f"guidelinekg validate: error: the SPARQL store at {store.base}/query has no "
                   "patient in <urn:guidelinekg:test:absent>; write patients with guidelinekg "
                   "load --endpoint URL --patients FILE\n")


def put_raw(store: OxigraphServer, graph: str, path: Path | None) -> None:
    """A Graph Store PUT of a Turtle file (or a DELETE), bypassing load's validation."""
    request = urllib.request.Request(
        f"{store.base}/store?graph={urllib.parse.quote(graph, safe='')}",
        data=path.read_bytes() if path else None, method="PUT" if path else "DELETE",
        headers={"Content-Type": "text/turtle"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status in (200, 201, 204)


def test_an_invalid_record_in_the_store_is_refused_as_from_a_file(store, capsys):
    graph = "urn:guidelinekg:test:invalid-record"
    results = "urn:guidelinekg:test:results-of-a-refused-record"
    put_raw(store, graph, INVALID_PATIENT)
    try:
        on_store = ["recommend", "--endpoint", store.base, "--graph", graph, "--as-of", AS_OF]
        on_file = ["recommend", str(INVALID_PATIENT), "--as-of", AS_OF]
        code, out, err = run_cli([*on_store, "--format", "json", "--write-results",
                                  "--results-graph", results], capsys)
        expected = run_cli([*on_file, "--format", "json"], capsys)
        assert (code, out) == (expected[0], expected[1]) == (1, "")
        # The store keeps numbers by value (docs/store.md): the file's -120.0 reads back -120.
        assert expected[2].count("value: -120.0;") == 1
        report = expected[2].replace("value: -120.0;", "value: -120;")
        assert err == (f"guidelinekg recommend: this run's results graph: <{results}>\n"
                       f"{report}guidelinekg recommend: no result was derived; the results "
                       f"graph <{results}> is not written\n")
        assert store.client().graph_sizes([results]) == {results: 0}
        # A cohort run: the same refusal line, and exit 1.
        lines = run_cli([*on_store, "--format", "jsonl", "--quiet"], capsys)
        expected = run_cli([*on_file, "--format", "jsonl", "--quiet"], capsys)
        assert lines[:2] == expected[:2]
        assert lines[0] == 1 and json.loads(lines[1])["refused"] is True
    finally:
        put_raw(store, graph, None)


def test_write_results_leaves_the_runs_prov_graph_in_the_store(store, patients_in_store,
                                                               capsys):
    code, out, err = run_cli(["recommend", "--endpoint", store.base, "--format", "turtle",
                              "--as-of", AS_OF, "--write-results"], capsys)
    assert code == 0, err
    iri = RESULTS_GRAPH.search(err)[0]
    printed = Graph().parse(data=out, format="turtle")
    assert err.startswith(f"guidelinekg recommend: this run's results graph: <{iri}>\n")
    assert err.endswith(f"guidelinekg recommend: the results are in the graph <{iri}> of "
                        f"{store.base}/store ({len(printed)} triples)\n")
    # Read back whole: the very graph the run printed (to_rdf of the embedded derivation).
    assert isomorphic(canonical(store_graph(store, iri)), canonical(printed))
    # And by SPARQL on the store: the PROV-O links, and the guideline versions used, which
    # are the graphs `load` wrote the guideline into.
    client = store.client()
    embedded = make_engine("oxigraph")
    embedded.add(printed)
    _, links = client.select(PROV_LINKS, graphs=[iri])
    assert links == embedded.select(PROV_LINKS)
    assert len(links) > 100
    _, used = client.select(RUN_USED, graphs=[iri])
    assert [str(row["used"]) for row in used] == sorted(GUIDELINE_GRAPHS)


def test_a_cohort_run_writes_one_graph_of_all_its_partitions(store, patients_in_store, capsys):
    graph = "urn:guidelinekg:test:results-of-a-cohort-run"
    code, out, err = run_cli(["recommend", "--endpoint", store.base, "--format", "jsonl",
                              "--partition-size", "4", "--as-of", AS_OF, "--quiet",
                              "--write-results", "--results-graph", graph], capsys)
    assert code == 0, err
    assert len(out.splitlines()) == len(patients_in_store)
    assert f"the results are in the graph <{graph}> of {store.base}/store" in err
    whole = run_cli(["recommend", "--endpoint", store.base, "--format", "turtle", "--as-of",
                     AS_OF], capsys)
    # The union of four partitions' results is the results of one run over all patients.
    assert isomorphic(without_run(store_graph(store, graph)),
                      without_run(Graph().parse(data=whole[1], format="turtle")))


def _keep(body: bytes, answer: bytes) -> bytes:
    return answer


class _QuietHandler(BaseHTTPRequestHandler):
    """A request handler of the tests' own servers: no access log, one way to answer."""

    def reply(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _LocalHttpServer:
    """An HTTP server on 127.0.0.1 in a thread of the test, serving ``handler``'s class."""

    def serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class DroppingProxy(_LocalHttpServer):
    """An HTTP proxy on 127.0.0.1 to the Oxigraph server that drops the connection, without
    an answer, on each request ``drops(method, body, count)`` picks (``count``: requests of
    that method seen before), and passes the store's answers on as ``alters(body, answer)``
    gives them; every request is recorded as (method, path, dropped), its body in
    ``bodies``."""

    target: OxigraphServer
    drops: Callable[[str, bytes, int], bool]
    alters: Callable[[bytes, bytes], bytes] = _keep
    requests: list[tuple[str, str, bool]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        proxy = self

        class Handler(_QuietHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                count = sum(1 for method, _, _ in proxy.requests if method == self.command)
                dropped = proxy.drops(self.command, body, count)
                proxy.requests.append((self.command, self.path, dropped))
                proxy.bodies.append(body)
                if dropped:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.target.port,
                                                      timeout=60)
                headers = {name: value for name, value in self.headers.items()
                           if name.lower() in ("content-type", "accept", "authorization")}
                upstream.request(self.command, self.path, body, headers)
                answer = upstream.getresponse()
                data = proxy.alters(body, answer.read())
                upstream.close()
                self.reply(answer.status, answer.getheader("Content-Type") or "", data)

            do_GET = do_POST = do_PUT = _forward

        self.serve(Handler)


def query_sent(body: bytes) -> str:
    """The query text of a SPARQL Protocol request body ("" for a graph write)."""
    try:
        return urllib.parse.parse_qs(body.decode()).get("query", [""])[0]
    except UnicodeDecodeError:
        return ""


def _reads_records(body: bytes) -> bool:
    query = query_sent(body)
    return "CONSTRUCT" in query and RECORD_PATH in query


def _records_read_after_the_first() -> Callable[[str, bytes, int], bool]:
    seen = 0

    def drops(method: str, body: bytes, count: int) -> bool:
        nonlocal seen
        if not _reads_records(body):
            return False
        seen += 1
        return seen > 1

    return drops


def _never(method: str, body: bytes, count: int) -> bool:
    return False


FAILURES = {
    # The results PUT at the end of a run: every attempt is dropped.
    "results-put": (["--format", "json"],
                    lambda: lambda method, body, count: method == "PUT"),
    # The records of the second partition of a cohort run: the store is gone mid-run.
    "second-partition": (["--format", "jsonl", "--partition-size", "4"],
                         _records_read_after_the_first),
}


@pytest.mark.parametrize("where", list(FAILURES))
def test_a_store_failing_mid_run_leaves_no_results_graph(store, patients_in_store, capsys,
                                                         where):
    flags, drops = FAILURES[where]
    proxy = DroppingProxy(store, drops())
    graph = f"urn:guidelinekg:test:results-lost-at-{where}"
    client = store.client()
    before = store_totals(client)
    try:
        code, out, err = run_cli(["recommend", "--endpoint", proxy.base, *flags, "--as-of",
                                  AS_OF, "--quiet", "--write-results", "--results-graph",
                                  graph], capsys)
    finally:
        proxy.close()
    assert code == cli.EXIT_STORE_ERROR
    attempts = r"\(3 attempts in \d+\.\d s\)"
    if where == "results-put":
        assert json.loads(out)  # the run's own output was complete
        assert [request for request in proxy.requests if request[0] == "PUT"] == [
            ("PUT", f"/store?graph={urllib.parse.quote(graph, safe='')}", True)] * 3
        message = (rf"the SPARQL store at {re.escape(proxy.base)}/store did not answer: "
                   rf"connection lost \(RemoteDisconnected\) {attempts}\. The results graph "
                   rf"<{graph}> was not confirmed written; one PUT is one transaction, so the "
                   r"store holds all of it or none")
    else:
        assert len(out.splitlines()) == 4  # the first partition's lines, as they came
        assert not any(method == "PUT" for method, _, _ in proxy.requests)
        message = (rf"the SPARQL store at {re.escape(proxy.base)}/query did not answer: "
                   rf"connection lost \(RemoteDisconnected\) {attempts}\. Nothing was written "
                   rf"to the results graph <{graph}>")
    assert re.fullmatch(rf"guidelinekg recommend: error: {message}", err.splitlines()[-1]), err
    # Through the real server: no results graph, nothing else written either.
    assert client.graph_sizes([graph]) == {graph: 0}
    assert store_totals(client) == before


# ---------------------------------------------------------------------------------------
# A store that answers otherwise than the embedded engine


def _without_last_row(answer: bytes) -> bytes:
    document = json.loads(answer)
    document["results"]["bindings"].pop()
    return json.dumps(document).encode()


def _no_rows(answer: bytes) -> bytes:
    document = json.loads(answer)
    document["results"]["bindings"] = []
    return json.dumps(document).encode()


def _is_probe_select(body: bytes) -> bool:
    query = query_sent(body)
    return query.startswith(PROBE_MARK) and "SELECT DISTINCT ?anchor ?s" in query


def _is_by_section_should(body: bytes) -> bool:
    query = query_sent(body)
    return "?modalityNotation" in query and "ontology#Should>" in query


def test_load_refuses_a_store_that_answers_a_guideline_query_wrong(store, guideline_load,
                                                                    capsys):
    # One row of one answer goes missing on its way back: as a store that mis-evaluates a
    # feature of that query would answer.
    proxy = DroppingProxy(store, _never, lambda body, answer: _without_last_row(answer)
                          if _is_by_section_should(body) else answer)
    try:
        code, out, err = run_cli(["load", "--endpoint", proxy.base, "--replace"], capsys)
        unchecked = run_cli(["load", "--endpoint", proxy.base, "--replace", "--no-check"],
                            capsys)
    finally:
        proxy.close()
    query, values = resolve_query("recommendations-by-section"), {"modality": "gkg:Should"}
    expected = run_query(query, values, graph=shared_guideline_graph())
    rows = len(expected.rows)
    assert rows > 1
    sizes = store.client().graph_sizes(GUIDELINE_GRAPHS)
    written = "".join(f"replaced <{graph}>: {sizes[graph]} triples (it held {sizes[graph]}, now "
                      f"{sizes[graph]}) from {source}\n"
                      for graph, source in zip(GUIDELINE_GRAPHS, GUIDELINE_SOURCES, strict=True))
    assert (code, out) == (cli.EXIT_STORE_ERROR, written)  # written, then checked
    assert err == (
        f"guidelinekg load: error: the SPARQL store at {proxy.base}/query answers guideline/"
        "recommendations-by-section --param modality=gkg:Should otherwise than the embedded "
        f"engine on the guideline graph just written: the store gives {rows - 1} rows, the "
        f"embedded engine {rows}; the first differing row is row {rows}: the store gives no "
        f"row, the embedded engine {row_text(expected.rows[-1], expected.variables)}. The "
        f"store {NEEDS.format('bundled queries')}\n")
    # --no-check: written and said so, nothing checked.
    assert unchecked == (0, written, "")
    # The store itself is right: the same load straight to it passes the check.
    code, out, err = run_cli(["load", "--endpoint", store.base, "--replace"], capsys)
    assert (code, out.splitlines()[-1], err) == (0, GUIDELINE_CHECK, "")


def test_load_refuses_a_store_that_does_not_give_back_a_record(store, patients_in_store,
                                                               capsys):
    record = VALID_PATIENTS[0]
    iri = file_graph_iri(record)
    held = store.client().graph_sizes([iri])[iri]
    # The whole graph read back comes back empty, as from a store that lost it.
    whole_graph = load_query("store/whole-graph").text
    proxy = DroppingProxy(store, _never, lambda body, answer: b""
                          if query_sent(body) == whole_graph else answer)
    argv = ["load", "--endpoint", proxy.base, "--replace", "--patients", str(record)]
    try:
        code, out, err = run_cli(argv, capsys)
        unchecked = run_cli([*argv, "--no-check"], capsys)
    finally:
        proxy.close()
    raw = load_patient_input([record], quiet=True).graph
    ground = sorted(" ".join(term.n3() for term in triple) for triple in canonical(raw)
                     if not any(isinstance(term, BNode) for term in triple))
    assert held >= len(ground) > 0
    line = f"replaced <{iri}>: {len(raw)} triples (it held {held}, now {held}) from {record}\n"
    assert (code, out) == (cli.EXIT_STORE_ERROR, line)
    assert err == (f"guidelinekg load: error: the SPARQL store at {proxy.base}/query lost or "
                   f"changed triples of <{iri}>: read back after writing, {len(ground)} "
                   f"triple(s) written are not there, the first {ground[0]}\n")
    assert unchecked == (0, line, "")


@pytest.mark.parametrize("argv", [
    ["recommend", "--format", "json", "--as-of", AS_OF],
    ["validate", "--format", "json"],
    ["query", "evidence-sources"],
], ids=["recommend", "validate", "query"])
def test_every_store_command_probes_the_record_path_first(store, patients_in_store, capsys,
                                                          argv):
    # A store whose path evaluation answers nothing is refused before anything is read...
    proxy = DroppingProxy(store, _never, lambda body, answer: _no_rows(answer)
                          if _is_probe_select(body) else answer)
    try:
        code, out, err = run_cli([*argv, "--endpoint", proxy.base], capsys)
    finally:
        proxy.close()
    assert (code, out) == (cli.EXIT_STORE_ERROR, "")
    if argv[0] == "query":
        anchor = r"<[^<>\s]+>"  # the store chooses one
    else:
        anchor = re.escape(f"<{store_patients(store.client()).patients[0]}>")
    assert re.fullmatch(
        rf"guidelinekg {argv[0]}: error: the SPARQL store at {re.escape(proxy.base)}/query "
        r"does not follow the property path patient records are read with, "
        rf"{re.escape(RECORD_PATH)}, as the embedded engine does: from {anchor} it reaches 0 "
        r"of the nodes probed, the embedded engine [1-9]\d*; it misses .+\. It "
        rf"{re.escape(NEEDS.format('queries'))}\n", err), err
    assert not any(_reads_records(body) for body in proxy.bodies)
    # ... and on a store that answers right, the probe costs two requests per command.
    proxy = DroppingProxy(store, _never)
    try:
        code, out, err = run_cli([*argv, "--endpoint", proxy.base], capsys)
    finally:
        proxy.close()
    assert code == 0, err
    assert out == run_cli([*argv, "--endpoint", store.base], capsys)[1]
    assert sum(query_sent(body).startswith(PROBE_MARK) for body in proxy.bodies) == 2


@pytest.mark.parametrize(("argv", "message"), [
    (["validate"], "give patient records (PATH...) or --endpoint URL"),
    (["recommend", "--write-results", str(INVALID_PATIENT)], "--write-results needs --endpoint"),
    (["validate", "--graph", "urn:g", str(INVALID_PATIENT)], "--graph needs --endpoint URL"),
    (["recommend", "--endpoint", "http://127.0.0.1:1", str(INVALID_PATIENT)],
     "give patient records (PATH...) or --endpoint URL, not both"),
    (["recommend", "--endpoint", "http://127.0.0.1:1", "--results-graph", "urn:g"],
     "--results-graph needs --write-results"),
    (["recommend", "--endpoint", "http://127.0.0.1:1", "--write-results", "--results-graph",
      "not an IRI"], "<not an IRI> is not a valid absolute IRI"),
], ids=["no-input", "results-need-a-store", "graph-needs-a-store", "both-inputs",
        "results-graph-alone", "results-graph-not-an-iri"])
def test_store_options_are_checked_before_anything_is_sent(capsys, argv, message):
    code, out, err = run_cli(argv, capsys)
    assert (code, out) == (2, "")
    assert err.startswith(f"guidelinekg {argv[0]}: error: {message}"), err


# ---------------------------------------------------------------------------------------
# Failures


def test_a_stopped_store_is_a_clear_error_and_quick(tmp_path, capsys):
    stopped = start_oxigraph(tmp_path)
    stopped.stop()
    started = time.monotonic()
    code, out, err = run_cli(["query", "recommendations-by-section", "--endpoint",
                              stopped.base], capsys)
    elapsed = time.monotonic() - started
    assert (code, out) == (cli.EXIT_STORE_ERROR, "")
    assert re.fullmatch(
        rf"guidelinekg query: error: the SPARQL store at {re.escape(stopped.base)}/query did "
        r"not answer: connection refused \(3 attempts in \d+\.\d s\); is it running\?\n", err)
    assert elapsed < 5
    code, _, err = run_cli(["load", "--endpoint", stopped.base, "--replace"], capsys)
    assert code == 4
    assert f"the SPARQL store at {stopped.base}/query did not answer" in err


@dataclass
class RecordingStore(_LocalHttpServer):
    """An HTTP server on 127.0.0.1 that records every request and answers from a script:
    each answer is (status, content type, body); the last one is repeated."""

    answers: list[tuple[int, str, bytes]]
    requests: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        recorder = self

        class Handler(_QuietHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                recorder.requests.append({"method": self.command, "path": self.path,
                                          "headers": dict(self.headers),
                                          "body": self.rfile.read(length)})
                status, kind, body = recorder.answers[
                    min(len(recorder.requests), len(recorder.answers)) - 1]
                self.reply(status, kind, body)

            do_GET = do_POST = do_PUT = _answer

        self.serve(Handler)


NO_ROWS = (200, "application/sparql-results+json",
           json.dumps({"head": {"vars": ["g", "triples"]},
                       "results": {"bindings": []}}).encode())


@pytest.fixture
def recorder() -> Iterator[RecordingStore]:
    running = RecordingStore([NO_ROWS])
    yield running
    running.close()


@pytest.fixture
def rdf_file(tmp_path: Path) -> Path:
    path = tmp_path / "one.ttl"
    path.write_text("<urn:s> <urn:p> <urn:o> .\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("variables", "header"), [
    ({"GUIDELINEKG_STORE_USER": "alice", "GUIDELINEKG_STORE_PASSWORD": "s3cret-pw"},
     "Basic " + base64.b64encode(b"alice:s3cret-pw").decode()),
    ({"GUIDELINEKG_STORE_TOKEN": "t0ken-value"}, "Bearer t0ken-value"),
], ids=["basic", "bearer"])
def test_credentials_from_the_environment_reach_the_store(recorder, rdf_file, monkeypatch,
                                                          capsys, variables, header):
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    code, out, err = run_cli(["load", "--endpoint", recorder.base, "--graph", "urn:g",
                              str(rdf_file)], capsys)
    assert code == 0, err
    assert [(r["method"], r["path"]) for r in recorder.requests] == [
        ("POST", "/query"), ("POST", "/store?graph=urn%3Ag"), ("POST", "/query")]
    assert [r["headers"].get("Authorization") for r in recorder.requests] == [header] * 3
    assert recorder.requests[1]["body"] == b"<urn:s> <urn:p> <urn:o> .\n"
    assert "s3cret-pw" not in out + err and "t0ken-value" not in out + err


def test_no_credentials_no_authorization_header(recorder, rdf_file, monkeypatch, capsys):
    for name in ("GUIDELINEKG_STORE_USER", "GUIDELINEKG_STORE_PASSWORD",
                 "GUIDELINEKG_STORE_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert run_cli(["load", "--endpoint", recorder.base, str(rdf_file)], capsys)[0] == 0
    assert all("Authorization" not in r["headers"] for r in recorder.requests)


def test_a_refusal_names_the_url_and_quotes_the_store_not_the_password(
        recorder, rdf_file, monkeypatch, capsys):
    monkeypatch.setenv("GUIDELINEKG_STORE_USER", "alice")
    monkeypatch.setenv("GUIDELINEKG_STORE_PASSWORD", "s3cret-pw")
    recorder.answers = [(401, "text/plain", b"bad credentials for this realm")]
    code, out, err = run_cli(["query", "evidence-sources", "--endpoint", recorder.base],
                             capsys)
    assert (code, out) == (4, "")
    assert err == (f"guidelinekg query: error: the SPARQL store at {recorder.base}/query "
                   "refused the request: HTTP 401 Unauthorized: bad credentials for this "
                   "realm (credentials are read from GUIDELINEKG_STORE_USER and "
                   "GUIDELINEKG_STORE_PASSWORD, or GUIDELINEKG_STORE_TOKEN)\n")
    assert len(recorder.requests) == 1  # a refusal is not retried


@pytest.mark.parametrize(("status", "reason"), [(400, "Bad Request"), (403, "Forbidden")])
def test_a_refused_graph_write_is_an_error(recorder, rdf_file, capsys, status, reason):
    recorder.answers = [NO_ROWS, (status, "text/plain", b"no " * 200)]
    code, _, err = run_cli(["load", "--endpoint", recorder.base, str(rdf_file)], capsys)
    assert code == 4
    # The store's answer, cut after 300 characters.
    hint = (" (credentials are read from GUIDELINEKG_STORE_USER and GUIDELINEKG_STORE_PASSWORD, "
            "or GUIDELINEKG_STORE_TOKEN)") if status == 403 else ""
    assert err == (f"guidelinekg load: error: the SPARQL store at {recorder.base}/store "
                   f"refused the request: HTTP {status} {reason}: {'no ' * 100}...{hint}\n")
    assert len(recorder.requests) == 2


def test_transient_answers_are_retried_a_bounded_number_of_times(recorder, capsys):
    unavailable = (503, "text/plain", b"starting up")
    recorder.answers = [unavailable, unavailable, NO_ROWS]
    client = StoreClient(Endpoint.from_base(recorder.base))
    assert client.graph_sizes(["urn:g"]) == {"urn:g": 0}
    assert len(recorder.requests) == 3
    recorder.requests.clear()
    recorder.answers = [unavailable]
    code, _, err = run_cli(["query", "evidence-sources", "--endpoint", recorder.base], capsys)
    assert code == 4
    assert re.fullmatch(rf"guidelinekg query: error: the SPARQL store at "
                        rf"{re.escape(recorder.base)}/query did not answer: HTTP 503: starting "
                        r"up \(3 attempts in \d+\.\d s\)\n", err)
    assert len(recorder.requests) == 3


def test_an_append_that_may_have_reached_the_store_is_not_repeated(recorder, rdf_file, capsys):
    recorder.answers = [NO_ROWS, (502, "text/plain", b"bad gateway")]
    code, _, err = run_cli(["load", "--endpoint", recorder.base, str(rdf_file)], capsys)
    assert code == 4
    assert "/store did not answer: HTTP 502: bad gateway (1 attempt in" in err
    assert [r["method"] for r in recorder.requests] == ["POST", "POST"]


def test_a_malformed_answer_is_an_error(recorder, capsys):
    recorder.answers = [(200, "text/plain", b"hello, not JSON")]
    code, _, err = run_cli(["query", "evidence-sources", "--endpoint", recorder.base], capsys)
    assert code == 4
    assert err == (f"guidelinekg query: error: the SPARQL store at {recorder.base}/query "
                   "returned a malformed result (expected SPARQL results JSON, got text/plain):"
                   " hello, not JSON\n")


def test_credentials_in_the_url_are_refused(capsys):
    code, _, err = run_cli(["query", "evidence-sources", "--endpoint",
                            "http://alice:pw@127.0.0.1:1"], capsys)
    assert code == 2
    assert "give credentials in GUIDELINEKG_STORE_USER" in err and "pw@" not in err


# ---------------------------------------------------------------------------------------
# Nothing hostile is sent


def test_a_hostile_parameter_is_refused_and_not_sent(recorder, capsys):
    code, out, err = run_cli(["query", "intervention", "--endpoint", recorder.base,
                              "--param", f"intervention={HOSTILE_IRI}"], capsys)
    assert (code, out) == (2, "")
    assert "is not an IRI or a known prefixed name" in err
    # The Python API's own line: a URIRef rdflib accepted is refused by the serializer.
    dataset = StoreDataset(StoreClient(Endpoint.from_base(recorder.base)), GUIDELINE_GRAPHS)
    with pytest.raises(QueryError, match="is not a valid absolute IRI"):
        dataset.select_with_variables("SELECT ?intervention WHERE { ?class ?p ?intervention }",
                                      {"intervention": URIRef(HOSTILE_IRI)})
    with pytest.raises(QueryError, match="is not a valid absolute IRI"):
        dataset.occurs(URIRef(HOSTILE_IRI))
    with pytest.raises(QueryError, match="not a SPARQL variable name"):
        values_block(["x } DROP ALL #"], [[Literal("1")]])
    with pytest.raises(QueryError, match="backslash before u"):
        sparql_term(Literal("\\u0022 } DROP ALL #"))
    assert recorder.requests == []


@pytest.mark.parametrize("query", [
    "SELECT * WHERE { SERVICE <http://127.0.0.1:1/sparql> { ?s ?p ?o } }",
    "SELECT * FROM <http://127.0.0.1:1/data.ttl> WHERE { ?s ?p ?o }",
], ids=["service", "from"])
def test_a_query_that_would_reach_out_is_refused_before_sending(recorder, capsys, tmp_path,
                                                                query):
    path = tmp_path / "outside.rq"
    path.write_text(query, encoding="utf-8")
    code, _, err = run_cli(["query", "--file", str(path), "--endpoint", recorder.base], capsys)
    assert code == 2
    assert "is not allowed: queries run offline" in err
    assert recorder.requests == []


def test_literal_values_reach_the_store_exactly(store):
    client = store.client()
    for value in (Literal('x" } ; DROP ALL # \\ \n\t é 🦴'), Literal("texte", lang="fr-CA"),
                  Literal("2026-12-01", datatype=URIRef("http://www.w3.org/2001/XMLSchema#date")),
                  URIRef("https://w3id.org/guidelinekg/guideline/bcbm/BMA-1")):
        variables, rows = client.select("SELECT ?v WHERE { }", {"v": value})
        assert (variables, rows) == (["v"], [{"v": value}])


# ---------------------------------------------------------------------------------------
# Where the VALUES block goes


@pytest.mark.parametrize(("text", "expected"), [
    ("SELECT ?a WHERE { ?a ?b ?c }", "SELECT ?a WHERE { VALUES ( ?a ) { ( 1 ) }\n ?a ?b ?c }"),
    ("select ?a { ?a ?b ?c }", "select ?a { VALUES ( ?a ) { ( 1 ) }\n ?a ?b ?c }"),
    ("ASK { ?a ?b ?c }", "ASK { VALUES ( ?a ) { ( 1 ) }\n ?a ?b ?c }"),
    ("# where { is in a comment\nPREFIX ex: <http://e/{x}>\nSELECT ?a (\"WHERE {\" AS ?w)\n"
     "WHERE { ?a ex:WHERE ?c }",
     "# where { is in a comment\nPREFIX ex: <http://e/{x}>\nSELECT ?a (\"WHERE {\" AS ?w)\n"
     "WHERE { VALUES ( ?a ) { ( 1 ) }\n ?a ex:WHERE ?c }"),
    ("CONSTRUCT { ?a ?b ?c } WHERE { ?a ?b ?c }",
     "CONSTRUCT { ?a ?b ?c } WHERE { VALUES ( ?a ) { ( 1 ) }\n ?a ?b ?c }"),
    ("SELECT ?a (EXISTS { ?a ?b 2 } AS ?e) WHERE { { SELECT ?a WHERE { ?a ?b ?c } } }",
     "SELECT ?a (EXISTS { ?a ?b 2 } AS ?e) WHERE { VALUES ( ?a ) { ( 1 ) }\n "
     "{ SELECT ?a WHERE { ?a ?b ?c } } }"),
])
def test_the_values_block_opens_the_where_group(text, expected):
    one = Literal("1", datatype=URIRef("http://www.w3.org/2001/XMLSchema#integer"))
    assert with_bindings(text, {"a": one}).replace(
        '"1"^^<http://www.w3.org/2001/XMLSchema#integer>', "1") == expected


@pytest.mark.parametrize("text", ["CONSTRUCT WHERE { ?a ?b ?c }", "DESCRIBE <http://e/x>"])
def test_a_query_without_a_where_group_to_bind_in_is_refused(text):
    with pytest.raises(QueryError):
        with_bindings(text, {"a": Literal("1")})


def test_every_vignette_gives_on_a_store_what_it_gives_from_its_file(
        tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's bar: results identical to the embedded engine's on every test record.
    Every vignette written into a store of its own, then read back by recommend."""
    vignettes = sorted((Path(__file__).parent / "vignettes").glob("*.ttl"))
    server = start_oxigraph(tmp_path_factory.mktemp("vignette-store"))
    try:
        done = subprocess.run([sys.executable, "-m", "guidelinekg.cli", "load", "--endpoint",
                               server.base, "--replace", "--no-check", "--patients",
                               *map(str, vignettes)], capture_output=True, text=True,
                              timeout=600, check=False)
        assert done.returncode == 0, done.stderr
        flags = ["--format", "jsonl", "--as-of", AS_OF, "--quiet"]
        code, on_files, err = run_cli(["recommend", *map(str, vignettes), *flags], capsys)
        assert code == 0, err
        code, on_store, err = run_cli(["recommend", "--endpoint", server.base, *flags], capsys)
        assert code == 0, err
    finally:
        server.stop()

    def by_patient(text: str) -> list[dict]:
        return sorted(map(cohort_line, text.splitlines()), key=lambda line: line["patient"])

    assert len(by_patient(on_files)) == len(vignettes)
    assert by_patient(on_store) == by_patient(on_files)


@pytest.mark.parametrize("value", ["inf", "nan", "0", "-1", "86401"])
@pytest.mark.parametrize("command", ["load", "query"])
def test_a_store_timeout_out_of_range_is_refused_before_anything_is_sent(
        capsys, command: str, value: str) -> None:
    # Port 9 (discard): nothing answers there, and nothing must be tried.
    argv = [command, *(["dose-regimens"] if command == "query" else []),
            "--endpoint", "http://127.0.0.1:9/sparql", "--timeout", value]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == (
        f"guidelinekg {command}: error: --timeout must be a number of seconds above 0 and at "
        "most 86400 (a day)\n")


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_not_followed_and_the_credentials_go_nowhere_else(
        recorder, monkeypatch, capsys, status):
    """urllib follows a redirect with every header it was given: the store's token went to
    the host a 302 named (an attack campaign's finding). Queries now stop at a redirect."""
    monkeypatch.setenv("GUIDELINEKG_STORE_TOKEN", "t0ken-value")
    elsewhere = recorder.base

    class Redirecting(_QuietHandler):
        def do_POST(self) -> None:
            self.send_response(status)
            self.send_header("Location", f"{elsewhere}/stolen")
            self.send_header("Content-Length", "0")
            self.end_headers()

    redirecting = _LocalHttpServer()
    redirecting.serve(Redirecting)
    try:
        code, out, err = run_cli(["query", "evidence-sources", "--endpoint",
                                  redirecting.base], capsys)
    finally:
        redirecting.close()
    assert (code, out) == (4, "")
    assert f"the SPARQL store at {redirecting.base}/query answered with a redirect (HTTP " \
           f"{status}, redirect to {elsewhere}/stolen): not followed" in err
    assert recorder.requests == []
    assert "t0ken-value" not in err
