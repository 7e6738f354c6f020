"""``guidelinekg query``: run a bundled or your own SPARQL query on the guideline graph.

The graph is the bundled one (core ontology, patient-fact vocabulary, guideline content).
A query is a commented ``.rq`` file: a bundled one under ``queries/`` named by its path
without ``.rq`` (or by its file stem when that is unique), or the user's own (``--file``).
Parameters are the file's ``# param:`` lines; values given as ``--param name=value`` are
turned into RDF terms and bound by the engine (never written into the query text). A query
may use the project's prefixes (``gkg:``, each guideline's own...) without declaring them
(:func:`guidelinekg.query_text.prepare_query`); an update is refused.

Parameters are optional unless their description starts with ``required``: the bundled
queries are written so that an unbound parameter means "all". An IRI value must occur in
the guideline graph, so a mistyped name is an error rather than an empty answer.

With ``--endpoint`` the query runs on a SPARQL 1.1 store instead (guidelinekg.store): on the
merge of the guideline's named graphs that ``guidelinekg load`` writes, or of the ``--graph``
IRIs given, with the same parameter checks and the same output.

Results are printed as an aligned table (IRIs as CURIEs), CSV (RFC 4180, full IRIs, as in
the SPARQL 1.1 CSV results format) or SPARQL 1.1 Query Results JSON; a CONSTRUCT query
prints Turtle. Numbers are printed in their canonical form (``120.0`` as ``120``), as
Oxigraph stores them, so both engines print the same answer.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import io
import json
import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import XSD
from rdflib.term import Node

from guidelinekg import console
from guidelinekg.cli import seconds_problem
from guidelinekg.load_command import (
    add_endpoint_arguments,
    endpoint_from_args,
    guideline_graph_names,
)
from guidelinekg.loading import InputError, bind_project_prefixes, guideline_graph
from guidelinekg.namespaces import canonical_literal, curie
from guidelinekg.query_text import prepare_query
from guidelinekg.sparql import (
    EngineName,
    QueryError,
    QueryFile,
    QueryForm,
    QueryParameter,
    Row,
    SparqlEngine,
    Triple,
    bind_parameters,
    bundled_queries,
    make_engine,
    query_form,
    read_query_file,
)
from guidelinekg.stdio import STDIN, is_stdio, stdin_file
from guidelinekg.store import (
    OCCURS,
    StoreClient,
    StoreError,
    sparql_term,
    with_bindings,
)

FORMATS = ("table", "csv", "json")
# A query of the guideline graph takes well under a second; a minute is for your own heavy
# ones, and ends the pathological ones (serve's default is shorter: it has many clients).
DEFAULT_QUERY_TIMEOUT = 60.0
ENGINES = ("oxigraph", "rdflib")


@dataclass
class QueryResult:
    """A query's answer: rows for SELECT, triples for CONSTRUCT, a boolean for ASK."""

    form: QueryForm
    variables: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    triples: list[Triple] = field(default_factory=list)
    boolean: bool | None = None


# ---------------------------------------------------------------------------------------
# Finding the query and its parameters


def resolve_query(name: str) -> QueryFile:
    """A bundled query by its path under queries/ (``guideline/x``) or its unique stem."""
    name = name.strip().removesuffix(".rq")
    queries = bundled_queries()
    by_name = {query.name: query for query in queries}
    if name in by_name:
        return by_name[name]
    same_stem = [query for query in queries if query.name.rsplit("/", 1)[-1] == name]
    if len(same_stem) == 1:
        return same_stem[0]
    if same_stem:
        names = ", ".join(query.name for query in same_stem)
        raise QueryError(f"{name!r} names several bundled queries ({names}); give its folder too")
    message = f"no bundled query named {name!r}"
    if Path(name + ".rq").is_file() or Path(name).is_file():
        message += "; to run a query file of your own, use --file"
    candidates = {query.name: query.name for query in queries}
    candidates.update({query.name.rsplit("/", 1)[-1]: query.name for query in queries})
    close = dict.fromkeys(candidates[match]
                          for match in difflib.get_close_matches(name, list(candidates), n=3))
    if close:
        message += f"; did you mean {' or '.join(close)}?"
    raise QueryError(message + " (guidelinekg query --list shows them all)")


def read_user_query(path: Path | str) -> QueryFile:
    """The user's query file; ``-``: the query text on standard input."""
    if is_stdio(path):
        with stdin_file(".rq") as spooled:
            try:
                spooled.read_text(encoding="utf-8")
            except UnicodeDecodeError as error:
                raise InputError(STDIN, f"not UTF-8 text ({error.reason})") from None
            return replace(read_query_file(spooled, str(STDIN)), path=STDIN)
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such query file")
    if path.is_dir():
        raise InputError(path, "is a folder, not a query file")
    return read_query_file(path, str(path))


def parse_parameter_values(pairs: Sequence[str]) -> dict[str, str]:
    """``name=value`` pairs (from repeated ``--param``) as a dict; each name once."""
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise QueryError(f"--param {pair!r}: expected name=value, "
                             "e.g. --param source=ID:REF-1, ID a guideline's prefix")
        if name in values:
            raise QueryError(f"--param {name} is given twice")
        values[name] = value  # as given: a string parameter keeps its spaces
    return values


def is_required(parameter: QueryParameter) -> bool:
    """Declared as ``# param: name (kind) required: ...``; any other parameter is optional."""
    return parameter.description.lower().startswith("required")


def _occurs_in(graph: Graph, iri: URIRef) -> bool:
    return ((iri, None, None) in graph or (None, None, iri) in graph
            or (None, iri, None) in graph)


def bind_checked(query: QueryFile, values: Mapping[str, str],
                 graph: Graph | Callable[[URIRef], bool]) -> dict[str, Node]:
    """The RDF terms to bind, after checking names, required parameters and IRI values
    (each must occur in the graph, or be one ``graph(iri)`` says occurs)."""
    occurs = (lambda iri: _occurs_in(graph, iri)) if isinstance(graph, Graph) else graph
    declared = {parameter.name: parameter for parameter in query.parameters}
    missing = [name for name, parameter in declared.items()
               if is_required(parameter) and name not in values]
    if missing:
        raise QueryError(f"query {query.name!r} needs --param {', '.join(missing)} "
                         f"({'; '.join(declared[name].description for name in missing)})")
    bindings: dict[str, Node] = {}
    for name, value in values.items():
        try:
            bindings.update(bind_parameters(query, {name: value}))
        except QueryError as error:
            message = str(error)
            if name in declared and not message.startswith("parameter"):
                message = f"parameter {name}: {message}"
            raise QueryError(message) from None
        term = bindings[name]
        if isinstance(term, URIRef) and not occurs(term):
            raise QueryError(f"parameter {name}: {value} (<{term}>) does not occur in the "
                             "guideline graph; check its spelling")
    return bindings


# ---------------------------------------------------------------------------------------
# Running it


@dataclass
class StoreDataset:
    """A store and the graphs a query reads (their merge is its default graph): what
    ``guidelinekg query --endpoint`` runs on, with an embedded engine's interface. The
    first request checks that the store holds every graph, so that a store not loaded yet
    is said to be so, rather than answering nothing; then (``probe``) that the store follows
    property paths as the embedded engine does (two small requests), so that one that does
    not is refused rather than answering wrong."""

    client: StoreClient
    graphs: Sequence[str]
    probe: bool = True
    _checked: bool = field(default=False, repr=False)

    def _ready(self, text: str, bindings: Mapping[str, Node] | None) -> None:
        with_bindings(text, bindings)  # a refused term is refused before anything is sent
        if self._checked:
            return
        missing = [graph for graph, size in self.client.graph_sizes(self.graphs).items()
                   if not size]
        if missing:
            raise StoreError(f"the SPARQL store at {self.client.endpoint.query_url} has no "
                             f"graph {', '.join(f'<{g}>' for g in missing)}; write it with "
                             "guidelinekg load --endpoint URL")
        if self.probe:
            from guidelinekg.store_commands import probe_record_path

            probe_record_path(self.client, self.graphs)
        self._checked = True

    def select_with_variables(self, text: str, bindings: Mapping[str, Node] | None = None
                              ) -> tuple[list[str], list[Row]]:
        self._ready(text, bindings)
        return self.client.select(text, bindings, self.graphs)

    def construct(self, text: str, bindings: Mapping[str, Node] | None = None) -> list[Triple]:
        self._ready(text, bindings)
        return list(self.client.construct(text, bindings, self.graphs))

    def ask(self, text: str, bindings: Mapping[str, Node] | None = None) -> bool:
        self._ready(text, bindings)
        return self.client.ask(text, bindings, self.graphs)

    def occurs(self, iri: URIRef) -> bool:
        self._ready(OCCURS, {"term": iri})
        return self.client.occurs(iri, self.graphs)


def _projected_variables(text: str) -> list[str]:
    """The SELECT clause's variables, read by evaluating the query on an empty graph."""
    return make_engine("oxigraph").select_with_variables(text)[0]


def run_query(query: QueryFile, values: Mapping[str, str] | None = None,
              engine_name: EngineName = "oxigraph", graph: Graph | None = None,
              store: StoreDataset | None = None, timeout: float | None = None) -> QueryResult:
    """Run a query file on the guideline graph (or the graph given, or the store's graphs)
    with parameter values. With ``timeout`` (seconds), an embedded engine runs the query in
    a worker process stopped at the limit (guidelinekg.query_workers: no engine can be
    interrupted otherwise), and a QueryError says so; a store has its own time limits."""
    prepared = prepare_query(query.text, query.name)  # project prefixes declared, checked
    if prepared != query.text:
        query = replace(query, text=prepared)
    form = query_form(query.text, query.name)
    if store is not None:
        bindings = bind_checked(query, values or {}, store.occurs)
    else:
        graph = guideline_graph() if graph is None else graph
        bindings = bind_checked(query, values or {}, graph)
    if form == "SELECT" and bindings:
        # pyoxigraph binds only projected variables; the rule is checked for both engines so
        # that a query that runs on one runs on the other.
        projected = set(_projected_variables(query.text))
        unprojected = sorted(set(bindings) - projected)
        if unprojected:
            raise QueryError(f"{query.name}: parameter {', '.join(unprojected)} must be a "
                             "variable of the SELECT clause to be bound")
    if store is not None:
        return _evaluate(store, query, form, bindings, engine_name)
    if timeout is None:
        # an unknown engine name raises QueryError
        return _evaluate(make_engine(engine_name, graph), query, form, bindings, engine_name)
    from guidelinekg.query_workers import QueryStopped, call_with_time_limit

    make_engine(engine_name)  # an unknown engine is refused here, not in the worker
    embedded = graph
    try:
        return call_with_time_limit(
            lambda: _evaluate(make_engine(engine_name, embedded), query, form, bindings,
                              engine_name), timeout)
    except QueryStopped as stopped:
        raise QueryError(f"{query.name}: {stopped} (--query-timeout; give a larger one to let "
                         "it run longer)") from None


def _evaluate(engine: SparqlEngine | StoreDataset, query: QueryFile, form: QueryForm,
              bindings: Mapping[str, Node], engine_name: str) -> QueryResult:
    """The query's answer from the engine or store, every failure a QueryError (or the
    store's StoreError)."""
    try:
        if form == "SELECT":
            variables, rows = engine.select_with_variables(query.text, bindings)
            rows = [{name: canonical_literal(term) for name, term in row.items()} for row in rows]
            return QueryResult(form, variables=variables, rows=rows)
        if form == "CONSTRUCT":
            triples = [(s, p, canonical_literal(o))
                       for s, p, o in engine.construct(query.text, bindings)]
            return QueryResult(form, triples=triples)
        return QueryResult(form, boolean=engine.ask(query.text, bindings))
    except QueryError as error:
        raise QueryError(f"{query.name}: {error}") from None
    except StoreError:
        raise
    except Exception as error:  # rdflib's evaluator raises many types; the user sees why
        raise QueryError(f"{query.name}: the {engine_name} engine could not run the query: "
                         f"{type(error).__name__}: {error}") from None


# ---------------------------------------------------------------------------------------
# Printing it


def display_text(term: Node | None) -> str:
    """A term as a table cell: CURIE, ``_:label`` or the literal's text on one line."""
    if term is None:
        return ""
    if isinstance(term, URIRef | BNode):
        return curie(term)
    return str(term).replace("\r", "\\r").replace("\n", "\\n").replace("\t", " ")


def csv_text(term: Node | None) -> str:
    """A term as a CSV field (SPARQL 1.1 CSV results: full IRIs, literals without type)."""
    if term is None:
        return ""
    if isinstance(term, BNode):
        return f"_:{term}"
    return str(term)


def json_term(term: Node) -> dict[str, str]:
    """A term in SPARQL 1.1 Query Results JSON form."""
    if isinstance(term, URIRef):
        return {"type": "uri", "value": str(term)}
    if isinstance(term, BNode):
        return {"type": "bnode", "value": str(term)}
    if isinstance(term, Literal):
        encoded = {"type": "literal", "value": str(term)}
        if term.language:
            encoded["xml:lang"] = term.language
        elif term.datatype is not None and term.datatype != XSD.string:
            encoded["datatype"] = str(term.datatype)
        return encoded
    raise TypeError(f"unsupported RDF term {term!r}")


def format_table(result: QueryResult) -> str:
    if result.form == "ASK":
        return "true\n" if result.boolean else "false\n"
    cells = [[display_text(row.get(name)) for name in result.variables] for row in result.rows]
    widths = [max([len(name), *(len(line[i]) for line in cells)])
              for i, name in enumerate(result.variables)]
    lines = ["  ".join(name.ljust(width) for name, width in zip(result.variables, widths,
                                                                 strict=True)).rstrip(),
             "  ".join("-" * width for width in widths)]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(line, widths,
                                                                 strict=True)).rstrip()
              for line in cells]
    count = len(result.rows)
    lines.append(f"({count} row{'' if count == 1 else 's'})")
    return "\n".join(lines) + "\n"


def format_csv(result: QueryResult) -> str:
    if result.form == "ASK":
        return "true\r\n" if result.boolean else "false\r\n"
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180: CRLF, quotes when needed
    writer.writerow(result.variables)
    for row in result.rows:
        writer.writerow([csv_text(row.get(name)) for name in result.variables])
    return buffer.getvalue()


def format_json(result: QueryResult) -> str:
    if result.form == "ASK":
        document: dict = {"head": {}, "boolean": bool(result.boolean)}
    else:
        document = {
            "head": {"vars": list(result.variables)},
            "results": {"bindings": [
                {name: json_term(row[name]) for name in result.variables if name in row}
                for row in result.rows
            ]},
        }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def format_turtle(result: QueryResult) -> str:
    graph = bind_project_prefixes(Graph())
    for triple in result.triples:
        graph.add(triple)
    return graph.serialize(format="turtle")


def format_result(result: QueryResult, output_format: str | None) -> str:
    if result.form == "CONSTRUCT":
        if output_format not in (None, "table"):
            # An error message, not query text: kept free of f-strings around SPARQL
            # keywords so the project's formatting check stays meaningful.
            raise QueryError("a CONSTRUCT query prints Turtle; --format " + output_format
                             + " is for SELECT and ASK queries")
        return format_turtle(result)
    formatter = {"table": format_table, "csv": format_csv, "json": format_json}
    return formatter[output_format or "table"](result)


def describe_bundled_queries(folder: str = "") -> str:
    """The text of ``--list``: each bundled query with its description and parameters."""
    folder = folder.strip("/")
    queries = bundled_queries(folder) if folder else bundled_queries()
    if not queries:
        folders = sorted({query.name.split("/")[0] for query in bundled_queries()})
        raise QueryError(f"no bundled queries under {folder!r} (folders: {', '.join(folders)})")
    lines: list[str] = []
    for query in queries:
        lines.append(query.name)
        description = query.description or "(no description)"
        lines += textwrap.wrap(description, width=96, initial_indent="    ",
                               subsequent_indent="    ")
        for parameter in query.parameters:
            flag = f"--param {parameter.name}=<{parameter.kind}>"
            lines += textwrap.wrap(f"{flag}  {parameter.description}", width=96,
                                   initial_indent="    ", subsequent_indent=" " * 8)
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "name", nargs="?", metavar="NAME",
        help="bundled query: path under queries/ without .rq (guideline/dose-regimens) "
             "or its file name when unique (dose-regimens)")
    parser.add_argument("--file", metavar="QUERY.rq",
                        help="run your own query file instead (-: the query text on standard "
                             "input)")
    parser.add_argument("--list", action="store_true",
                        help="list the bundled queries with their descriptions and parameters "
                             "(with NAME: only those of that folder, e.g. --list guideline)")
    parser.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE",
        help="a parameter value (repeatable): an IRI as a CURIE (gkg:Recommendation; ID:KEY "
             "for a guideline's statement) or in full; a string, integer, decimal, date or "
             "boolean as written")
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="SELECT/ASK output: aligned table (default), CSV, or SPARQL JSON; "
                             "CONSTRUCT prints Turtle")
    parser.add_argument("--engine", choices=ENGINES, default=None,
                        help="SPARQL engine (default oxigraph; rdflib gives the same answers, "
                             "slower)")
    add_endpoint_arguments(parser)
    parser.add_argument("--graph", action="append", default=[], metavar="IRI",
                        help="with --endpoint: a named graph of the store to query (repeatable; "
                             "their merge is the default graph); by default the guideline "
                             "graphs guidelinekg load writes")
    parser.add_argument("--query-timeout", type=float, default=DEFAULT_QUERY_TIMEOUT,
                        metavar="SECONDS",
                        help="stop a query still running after SECONDS (default "
                             f"{DEFAULT_QUERY_TIMEOUT:g}; as serve --query-timeout, the query "
                             "runs in a worker process that is killed): an error, exit code 2; "
                             "with --endpoint, --timeout bounds the wait for the store's answer")


def store_dataset(args: argparse.Namespace) -> StoreDataset | None:
    """The store and graphs ``--endpoint`` asks for, or None for the embedded graph."""
    if not args.endpoint:
        given = [flag for flag, value in (("--graph", args.graph), ("--query-url", args.query_url),
                                          ("--store-url", args.store_url),
                                          ("--update-url", args.update_url)) if value]
        if given:
            raise QueryError(f"{', '.join(given)} need --endpoint URL")
        return None
    if args.engine:
        raise QueryError("--engine chooses an embedded engine; with --endpoint the store runs "
                         "the query")
    graphs = list(args.graph) or guideline_graph_names()
    for graph in graphs:
        sparql_term(URIRef(graph))  # an IRI, checked before anything is sent
    return StoreDataset(StoreClient.from_environment(endpoint_from_args(args)), graphs)


def run(args: argparse.Namespace) -> int:
    if args.list:
        if args.file or args.param:
            raise QueryError("--list takes no --file or --param")
        sys.stdout.write(describe_bundled_queries(args.name or ""))
        return 0
    if bool(args.name) == bool(args.file):
        raise QueryError("give either a bundled query NAME or --file QUERY.rq"
                         + (" (not both)" if args.name else "")
                         + "; guidelinekg query --list shows the bundled queries")
    problem = seconds_problem("--query-timeout", args.query_timeout)
    if problem is not None:
        raise QueryError(problem)
    query = read_user_query(args.file) if args.file else resolve_query(args.name)
    store = store_dataset(args)
    values = parse_parameter_values(args.param)
    console.detail(f"query {query.name}"
                   + (f" ({query.path}), " if str(query.path) != query.name else ", ")
                   + (f"on the store {store.client.endpoint.query_url}" if store is not None
                      else f"on the guideline graph with {args.engine or 'oxigraph'}")
                   + (f", parameters: {', '.join(sorted(values))}" if values else ""))
    started = console.clock()
    result = run_query(query, values, args.engine or "oxigraph", store=store,
                       timeout=args.query_timeout)
    answer = (f"{console.count(len(result.rows), 'row')}" if result.form == "SELECT" else
              f"{console.count(len(result.triples), 'triple')}" if result.form == "CONSTRUCT"
              else str(result.boolean).lower())
    console.detail(f"{result.form} answered in {console.since(started)}: {answer}")
    sys.stdout.write(format_result(result, args.format))
    return 0
