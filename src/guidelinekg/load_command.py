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
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from urllib.parse import quote

from rdflib import BNode, Graph, URIRef
from rdflib.namespace import OWL, RDF

from guidelinekg import __version__
from guidelinekg.cli import EXIT_CODES_HELP, EXIT_DONE, EXIT_VIOLATIONS
from guidelinekg.loading import BASE, InputError, parse_rdf_file
from guidelinekg.namespaces import GKG
from guidelinekg.patients import input_files, load_patient_input
from guidelinekg.resources import Module, modules
from guidelinekg.sparql import QueryError
from guidelinekg.store import (
    PASSWORD_VARIABLE,
    TOKEN_VARIABLE,
    USER_VARIABLE,
    Endpoint,
    StoreClient,
    sparql_term,
)


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

    files = input_files(paths)
    groups = [files] if graph_iri else [[path] for path in files]
    writes: list[GraphWrite] = []
    refused = 0
    for group in groups:
        source = load_patient_input(group, quiet=True)
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
    if graph_iri:
        merged = Graph()
        for path in paths:
            for triple in parse_rdf_file(path):
                merged.add(triple)
        return [GraphWrite(graph_iri, merged, ", ".join(map(str, paths)))]
    return [GraphWrite(file_graph_iri(path), parse_rdf_file(path), str(path)) for path in paths]


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
    if args.timeout <= 0:
        raise QueryError("--timeout must be a positive number of seconds")
    endpoint = Endpoint.from_base(args.endpoint, query_url=args.query_url,
                                  update_url=args.update_url, store_url=args.store_url)
    return replace(endpoint, read_timeout=args.timeout)


# ---------------------------------------------------------------------------------------
# Writing


def write_graphs(client: StoreClient, writes: list[GraphWrite], *, replace: bool) -> list[str]:
    """Write each graph; a line per graph saying what was done, with triple counts."""
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
    return lines


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
                             "its file: URL)")
    parser.add_argument("--patients", nargs="+", type=Path, metavar="PATH", default=[],
                        help="patient records (RDF or FHIR JSON files, or folders of them), "
                             "each file into its own graph")
    parser.add_argument("--graph", metavar="IRI",
                        help="write everything given into this one named graph")
    parser.add_argument("--replace", action="store_true",
                        help="replace each graph (HTTP PUT); by default triples are appended "
                             "(POST)")


def run(args: argparse.Namespace) -> int:
    if args.files and args.patients:
        raise QueryError("give FILE... or --patients PATH..., not both")
    if args.graph:
        sparql_term(URIRef(args.graph))  # an IRI, checked before anything is read or sent
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
    for line in write_graphs(client, writes, replace=args.replace):
        print(line)
    return EXIT_DONE
