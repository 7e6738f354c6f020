"""``guidelinekg load``: write the guideline graph, patient records or RDF files into a SPARQL
1.1 store, each into its own named graph, with the Graph Store HTTP Protocol.

Without a file, the guideline graph is written: the core ontology, each domain and each
guideline (its content with its vocabulary) into a graph of its own, named by the module's
ontology IRI and version as ``publish`` names its version folders (``.../guideline/ID/0.1.0``,
the guideline content's owl:versionIRI); the merge of those graphs is the graph ``query``
runs on. ``--patients`` writes patient records (RDF or FHIR JSON, imported as ``validate``
reads them), each file into the graph named by its ``file:`` URL, after validating every one:
a record that violates the shapes is refused with its report and nothing is written.
``--graph`` writes everything given into that one graph instead.

``--replace`` replaces each graph (HTTP PUT); by default triples are appended (POST). RDF
graphs are sets, so appending a file again adds nothing, except its blank nodes, which are
new nodes each time: write a graph again with ``--replace``.

Then the store is checked (``--no-check`` skips it, for a store already checked): after the
guideline graph, every bundled guideline query must answer on the store as the embedded
engine answers on the graph just written; after patient records, each graph must read back
as written; after either, the store must follow the path records are read with
(:func:`guidelinekg.store_commands.probe_record_path`). A store that does not is refused
(exit 4): it may lack or mis-evaluate a SPARQL 1.1 feature the queries need.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from itertools import zip_longest
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import OWL, RDF, XSD
from rdflib.term import Node

from guidelinekg import __version__, console
from guidelinekg.cli import EXIT_CODES_HELP, EXIT_DONE, EXIT_VIOLATIONS, seconds_problem
from guidelinekg.loading import BASE, InputError, parse_rdf_bytes, parse_rdf_file
from guidelinekg.namespaces import GKG, canonical_literal
from guidelinekg.patients import input_files, load_patient_input
from guidelinekg.resources import Module, modules
from guidelinekg.sparql import (
    QueryError,
    QueryFile,
    QueryParameter,
    Row,
    bundled_queries,
    load_query,
)
from guidelinekg.stdio import STDIN, STDIO_ARGUMENT, is_stdio, read_stdin, stdin_rdf_format
from guidelinekg.store import (
    PASSWORD_VARIABLE,
    TOKEN_VARIABLE,
    USER_VARIABLE,
    Endpoint,
    StoreClient,
    StoreError,
    sparql_term,
)

if TYPE_CHECKING:
    from guidelinekg.querying import QueryResult


@dataclass
class GraphWrite:
    """One named graph to write: its IRI, its triples and what they come from."""

    iri: str
    graph: Graph
    source: str


# ---------------------------------------------------------------------------------------
# The guideline graph, one named graph per module


def module_iri(module: Module) -> str:
    """The IRI a module's ontology answers for (as ``publish`` names it)."""
    return f"{BASE}ontology" if module.kind == "core" else f"{BASE}{module.kind}/{module.name}"


def _module_graph(module: Module) -> Graph:
    merged = Graph()
    for path in module.ontology_files():
        for triple in parse_rdf_file(path):
            merged.add(triple)
    return merged


def _graph_name(module: Module, graph: Graph) -> str:
    iri = module_iri(module)
    version = graph.value(URIRef(iri), OWL.versionInfo)
    return f"{iri}/{quote(str(version or __version__), safe='.-_~')}"


def guideline_writes() -> list[GraphWrite]:
    """The guideline graph as one named graph per module: core, domains, guidelines.

    A triple an earlier module already holds is left out of a later one: a store's union of
    graphs (Oxigraph's union default graph, or several default-graph-uri) does not merge
    equal triples, and would give it twice to a query.
    """
    seen: set[tuple] = set()
    writes = []
    for module in modules():
        graph = _module_graph(module)
        kept = Graph()
        for triple in graph:
            if triple not in seen:
                kept.add(triple)
        seen.update(graph)
        files = ", ".join(path.name for path in module.ontology_files())
        name = "core ontology" if module.kind == "core" else f"{module.kind} {module.name}"
        writes.append(GraphWrite(_graph_name(module, graph), kept, f"{name}: {files}"))
    return writes


def guideline_graph_names() -> list[str]:
    """The named graphs ``load`` writes the guideline graph into, in order."""
    return list(_graph_names(modules()))


@cache  # per set of modules: the files are read for their version
def _graph_names(found: tuple[Module, ...]) -> tuple[str, ...]:
    return tuple(_graph_name(module, _module_graph(module)) for module in found)


# ---------------------------------------------------------------------------------------
# Patient records and RDF files


def file_graph_iri(path: Path) -> str:
    """The graph a file is written into: its ``file:`` URL (one graph per file, and the
    same graph when the file is written again)."""
    return path.resolve().as_uri()


def patient_writes(paths: list[Path], graph_iri: str | None) -> list[GraphWrite] | None:
    """The validated records to write, or None (after printing each refused record's
    report) when any violates the shapes."""
    from guidelinekg.validation import text_report, validate_patients

    files = input_files(paths, stdin=True)
    groups = [files] if graph_iri else [[path] for path in files]
    writes: list[GraphWrite] = []
    refused = 0
    for group in groups:
        started = console.clock()
        source = load_patient_input([STDIO_ARGUMENT if path == STDIN else path
                                     for path in group], quiet=True)
        console.files_read(group, started, [f"{len(source.graph):,} triples"])
        label = ", ".join(map(str, group))
        if not any(source.graph.subjects(RDF.type, GKG.Patient)):
            raise InputError(label, "no patient found (nothing is declared `a gkg:Patient`): "
                                    "nothing to write")
        validation = validate_patients(source.graph)
        if validation.has_violations:
            refused += 1
            print(f"{label}: refused, violates the patient shapes:", file=sys.stderr)
            sys.stderr.write(text_report(validation, source))
            continue
        writes.append(GraphWrite(graph_iri or file_graph_iri(group[0]), source.graph, label))
    if refused:
        print(f"Nothing was written to the store: {refused} of {len(groups)} input"
              f"{'s' if len(groups) != 1 else ''} violate the shapes (exit 1).", file=sys.stderr)
        return None
    return writes


def file_writes(paths: list[Path], graph_iri: str | None) -> list[GraphWrite]:
    """RDF files as they are: each into its own graph, or all into ``graph_iri``."""
    started = console.clock()
    if graph_iri:
        merged = Graph()
        for path in paths:
            for triple in _rdf_file(path):
                merged.add(triple)
        writes = [GraphWrite(graph_iri, merged, ", ".join(map(_name, paths)))]
    else:
        writes = [GraphWrite(file_graph_iri(path), parse_rdf_file(path), str(path))
                  for path in paths]
    console.files_read([_name(path) for path in paths], started,
                       [f"{sum(len(write.graph) for write in writes):,} triples"])
    return writes


def _name(path: Path) -> str:
    return str(STDIN) if is_stdio(path) else str(path)


def _rdf_file(path: Path) -> Graph:
    """An RDF file as it is, or standard input (``-``), its format told from its content."""
    if not is_stdio(path):
        return parse_rdf_file(path)
    data = read_stdin()
    return parse_rdf_bytes(data, STDIN, stdin_rdf_format(data))


# ---------------------------------------------------------------------------------------
# Command-line options shared by `load` and `query --endpoint`


def add_endpoint_arguments(parser: argparse.ArgumentParser, required: bool = False) -> None:
    parser.add_argument("--endpoint", metavar="URL", required=required,
                        help="the SPARQL store's base URL (Oxigraph server: http://HOST:7878, "
                             "whose /query, /update and /store are used); credentials from "
                             f"{USER_VARIABLE} and {PASSWORD_VARIABLE}, or {TOKEN_VARIABLE}")
    parser.add_argument("--query-url", metavar="URL",
                        help="the store's SPARQL query URL, when not BASE/query")
    parser.add_argument("--update-url", metavar="URL",
                        help="the store's SPARQL update URL, when not BASE/update")
    parser.add_argument("--store-url", metavar="URL",
                        help="the store's Graph Store Protocol URL, when not BASE/store")
    parser.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS",
                        help="how long to wait for the store's answer (default 120)")


def endpoint_from_args(args: argparse.Namespace) -> Endpoint:
    if problem := seconds_problem("--timeout", args.timeout):
        raise QueryError(problem)
    endpoint = Endpoint.from_base(args.endpoint, query_url=args.query_url,
                                  update_url=args.update_url, store_url=args.store_url)
    return replace(endpoint, read_timeout=args.timeout)


# ---------------------------------------------------------------------------------------
# Writing


def write_graphs(client: StoreClient, writes: list[GraphWrite], *, replace: bool
                 ) -> tuple[list[str], dict[str, int]]:
    """Write each graph; a line per graph saying what was done, with triple counts, and
    the number of triples each graph held before."""
    names = [write.iri for write in writes]
    before = client.graph_sizes(names)
    for write in writes:
        client.write_graph(write.iri, write.graph, replace=replace)
    after = client.graph_sizes(names)
    lines = []
    for write in writes:
        sent = len(write.graph)
        if replace:
            line = (f"replaced <{write.iri}>: {sent} triples (it held {before[write.iri]}, "
                    f"now {after[write.iri]}) from {write.source}")
        else:
            line = (f"appended {sent} triples to <{write.iri}> (it held {before[write.iri]}, "
                    f"now {after[write.iri]}) from {write.source}")
            if before[write.iri] and any(isinstance(term, BNode)
                                         for triple in write.graph for term in triple):
                line += ("; blank nodes are never merged with the graph's own, so writing "
                         "these again adds them again (--replace writes a graph anew)")
        lines.append(line)
    return lines, before


# ---------------------------------------------------------------------------------------
# The store check: the store answers as the embedded engine on what was just written

# The example a parameter's description gives ("e.g. gkg:ShouldNot"): the check runs each
# query without parameters, then once with each parameter's example (the query files say
# what a good value is, so no guideline is named here).
_EXAMPLE = re.compile(r"\be\.g\.\s+(\S+?)[.,;)]?(?:\s|$)")


def parameter_example(parameter: QueryParameter) -> str | None:
    """The first example value a parameter's description gives, or None."""
    found = _EXAMPLE.search(parameter.description)
    return found.group(1) if found else None


_NEEDS = ("The store may lack or mis-evaluate a SPARQL 1.1 feature the bundled queries need "
          "(docs/store.md lists them)")
_EXCERPT = 300


def canonical_term(term: Node) -> Node:
    """The term as a store that keeps literals by value gives it back: numbers in canonical
    form (Oxigraph reads 120.0 back as 120) and date-times in one form (Z as +00:00)."""
    if isinstance(term, Literal) and term.datatype == XSD.dateTime \
            and isinstance(term.value, datetime):
        return Literal(term.value, datatype=XSD.dateTime)
    return canonical_literal(term)


def canonical_graph(graph: Graph) -> Graph:
    """The graph with each literal as :func:`canonical_term` gives it."""
    result = Graph()
    for s, p, o in graph:
        result.add((s, p, canonical_term(o)))
    return result


def guideline_check_cases() -> Iterator[tuple[QueryFile, dict[str, str]]]:
    """Each bundled guideline query without parameters, then with each parameter that gives
    an example (:func:`parameter_example`)."""
    for query in bundled_queries("guideline"):
        yield query, {}
        for parameter in query.parameters:
            example = parameter_example(parameter)
            if example is not None:
                yield query, {parameter.name: example}


def case_name(query: QueryFile, values: dict[str, str]) -> str:
    return " ".join([query.name, *(f"--param {name}={value}" for name, value in values.items())])


def _cut(text: str) -> str:
    return text if len(text) <= _EXCERPT else text[:_EXCERPT] + "..."


def row_text(row: Row | None, variables: list[str]) -> str:
    from guidelinekg.querying import display_text

    if row is None:
        return "no row"
    cells = [f"?{name}={display_text(row[name])}" for name in variables if name in row]
    return _cut(" ".join(cells) or "an empty row")


def _comparable(row: Row) -> dict[str, Node]:
    # The store names blank nodes its own way: any blank node matches any other.
    return {name: BNode("b") if isinstance(term, BNode) else term for name, term in row.items()}


def answer_difference(embedded: QueryResult, on_store: QueryResult) -> str | None:
    """What first differs between two answers to one query (literals canonical in both, as
    run_query gives them), or None when they are the same."""
    if embedded.form == "ASK":
        if embedded.boolean == on_store.boolean:
            return None
        return f"the store answers {on_store.boolean}, the embedded engine {embedded.boolean}"
    if embedded.form == "CONSTRUCT":
        mine, theirs = Graph(), Graph()
        for triple in embedded.triples:
            mine.add(triple)
        for triple in on_store.triples:
            theirs.add(triple)
        return None if isomorphic(mine, theirs) else (
            f"the store builds {len(theirs)} triples, the embedded engine {len(mine)}")
    if embedded.variables != on_store.variables:
        return (f"the store's variables are {' '.join(on_store.variables)}, the embedded "
                f"engine's {' '.join(embedded.variables)}")
    pairs = zip_longest(embedded.rows, on_store.rows)
    for number, (mine_row, their_row) in enumerate(pairs, start=1):
        if mine_row is None or their_row is None or _comparable(mine_row) != _comparable(
                their_row):
            counts = ("" if len(embedded.rows) == len(on_store.rows) else
                      f"the store gives {len(on_store.rows)} rows, the embedded engine "
                      f"{len(embedded.rows)}; ")
            return (f"{counts}the first differing row is row {number}: the store gives "
                    f"{row_text(their_row, on_store.variables)}, the embedded engine "
                    f"{row_text(mine_row, embedded.variables)}")
    return None


def _merged_writes(writes: list[GraphWrite]) -> Graph:
    merged = Graph()
    for write in writes:
        for triple in write.graph:
            merged.add(triple)
    return merged


def _first_typed(graph: Graph, kind: URIRef) -> URIRef | None:
    found = sorted(node for node in graph.subjects(RDF.type, kind) if isinstance(node, URIRef))
    return found[0] if found else None


def check_guideline(client: StoreClient, writes: list[GraphWrite], held: dict[str, int], *,
                    replace: bool) -> str:
    """Run the guideline check cases on the store's guideline graphs and on the embedded
    engine with the graph just written; a StoreError at the first difference."""
    from guidelinekg.querying import StoreDataset, run_query
    from guidelinekg.store_commands import probe_record_path

    graph = _merged_writes(writes)
    names = [write.iri for write in writes]
    dataset = StoreDataset(client, names, probe=False)
    url = client.endpoint.query_url
    # Appended to graphs that held triples: the store may hold more than the files.
    hint = "" if replace or not any(held.values()) else (
        "; the graphs held triples before this append, so they may hold more than was "
        "written: write them anew with --replace")
    checked = 0
    for query, values in guideline_check_cases():
        try:
            embedded = run_query(query, values, graph=graph)
        except QueryError:
            if not values:
                raise
            continue  # this library's guidelines lack the representative value
        try:
            difference = answer_difference(embedded, run_query(query, values, store=dataset))
        except QueryError as error:  # the embedded engine ran it: the store's answer is wrong
            difference = str(error)
        if difference:
            raise StoreError(f"the SPARQL store at {url} answers {case_name(query, values)} "
                             "otherwise than the embedded engine on the guideline graph just "
                             f"written: {difference}. {_NEEDS}{hint}")
        checked += 1
    anchor = _first_typed(graph, GKG.Recommendation) or _first_typed(graph, OWL.Ontology)
    if anchor is not None:
        # After an append the store may hold more than the files: probe on its own triples.
        probe_record_path(client, names, anchor, None if hint else graph)
    return (f"store check: {checked} queries answer as the embedded engine (the bundled "
            "guideline queries, without and with a parameter), and so does the path records "
            "are read with")


def _triple_key(triple: tuple[Node, Node, Node]) -> str:
    return " ".join(term.n3() for term in triple)


def _triple_text(triple: tuple[Node, Node, Node]) -> str:
    return _cut(_triple_key(triple))


def _graph_difference(written: Graph, stored: Graph, *, appended: bool) -> str | None:
    """How the graph read back differs from the one written (both canonical); after an
    append to triples held before, only whether every triple without blank nodes is there."""
    def ground(graph: Graph) -> set[tuple[Node, Node, Node]]:
        return {triple for triple in graph
                if not any(isinstance(term, BNode) for term in triple)}

    missing = sorted(ground(written) - set(stored), key=_triple_key)
    if missing:
        return (f"{len(missing)} triple(s) written are not there, the first "
                f"{_triple_text(missing[0])}")
    if appended:
        return None
    extra = sorted(ground(stored) - set(written), key=_triple_key)
    if extra:
        return (f"{len(extra)} triple(s) not written are there, the first "
                f"{_triple_text(extra[0])}")
    if len(stored) != len(written) or not isomorphic(stored, written):
        return (f"its triples with blank nodes differ ({len(stored)} triples read back, "
                f"{len(written)} written)")
    return None


def check_written_graphs(client: StoreClient, writes: list[GraphWrite], held: dict[str, int],
                         *, replace: bool) -> str:
    """Read back each graph written (one CONSTRUCT each, without paths) and compare it with
    what was written; then probe the record path from the first patient."""
    from guidelinekg.store_commands import probe_record_path

    probe: tuple[URIRef, str, Graph] | None = None
    whole_graph = load_query("store/whole-graph").text
    for write in writes:
        stored = canonical_graph(client.construct(whole_graph, graphs=[write.iri]))
        difference = _graph_difference(canonical_graph(write.graph), stored,
                                       appended=not replace and held[write.iri] > 0)
        if difference:
            raise StoreError(f"the SPARQL store at {client.endpoint.query_url} lost or changed "
                             f"triples of <{write.iri}>: read back after writing, "
                             f"{difference}")
        patient = _first_typed(stored, GKG.Patient)
        if probe is None and patient is not None:
            probe = (patient, write.iri, stored)
    if probe is not None:
        patient, iri, stored = probe
        probe_record_path(client, [iri], patient, stored)
    count = f"{len(writes)} graph{'' if len(writes) == 1 else 's'}"
    return (f"store check: {count} read back as written, and the store follows the path "
            "records are read with as the embedded engine does")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Write into a SPARQL 1.1 store (Graph Store HTTP Protocol), each into its own named "
        "graph: without FILE the guideline graph (core ontology, domains, each guideline); "
        "with FILE... RDF files as they are; with --patients patient records, validated first "
        "(a record that violates the shapes is refused, exit 1, and nothing is written).")
    parser.epilog = EXIT_CODES_HELP
    add_endpoint_arguments(parser, required=True)
    parser.add_argument("files", nargs="*", type=Path, metavar="FILE",
                        help="RDF files to write as they are (each into the graph named by "
                             "its file: URL); - reads standard input, which has no file: URL: "
                             "give --graph IRI")
    parser.add_argument("--patients", nargs="+", type=Path, metavar="PATH", default=[],
                        help="patient records (RDF or FHIR JSON files, or folders of them), "
                             "each file into its own graph; - reads standard input (with "
                             "--graph IRI)")
    parser.add_argument("--graph", metavar="IRI",
                        help="write everything given into this one named graph")
    parser.add_argument("--replace", action="store_true",
                        help="replace each graph (HTTP PUT); by default triples are appended "
                             "(POST)")
    parser.add_argument("--no-check", action="store_true",
                        help="skip the store check after the guideline graph or --patients "
                             "(for a store you have checked): by default every bundled "
                             "guideline query must answer as the embedded engine, and each "
                             "record graph read back as written (exit 4 otherwise)")


def run(args: argparse.Namespace) -> int:
    if args.files and args.patients:
        raise QueryError("give FILE... or --patients PATH..., not both")
    if args.graph:
        sparql_term(URIRef(args.graph))  # an IRI, checked before anything is read or sent
    elif any(is_stdio(path) for path in [*args.files, *args.patients]):
        raise InputError(STDIN, "has no file: URL to name its graph by: give --graph IRI")
    started = console.clock()
    if args.patients:
        writes = patient_writes(args.patients, args.graph)
        if writes is None:
            return EXIT_VIOLATIONS
    elif args.files:
        writes = file_writes(args.files, args.graph)
    else:
        if args.graph:
            raise QueryError("--graph names the graph of FILE... or --patients; the guideline "
                             "graph is written one graph per module")
        writes = guideline_writes()
    client = StoreClient.from_environment(endpoint_from_args(args))
    console.detail(f"{console.count(len(writes), 'graph')} to write, read in "
                   f"{console.since(started)}")
    started = console.clock()
    lines, held = write_graphs(client, writes, replace=args.replace)
    console.detail(f"written to {client.endpoint.store_url} in {console.since(started)}")
    for line in lines:
        print(line)
    if args.no_check or args.files:
        return EXIT_DONE
    sys.stdout.flush()  # what was written is said before a check that may fail
    check = check_written_graphs if args.patients else check_guideline
    started = console.clock()
    print(check(client, writes, held, replace=args.replace))
    console.detail(f"store check done in {console.since(started)}")
    return EXIT_DONE
