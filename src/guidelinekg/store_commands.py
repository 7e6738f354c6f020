"""``validate`` and ``recommend`` on patient records kept in a SPARQL 1.1 store
(``--endpoint URL``), and a run's results written back (``recommend --write-results``).

Patients are read from the named graphs ``load --patients`` wrote (by default every graph
that declares a ``gkg:Patient``; ``--graph IRI`` names them), each patient's record with
one CONSTRUCT, a partition of patients per request. They are then validated and derived
exactly as records read from files: the embedded engine and the guideline this version of
guidelinekg ships, so the output is the files' output (blank nodes aside, which the store
names). ``--format jsonl`` (and csv) streams the partitions through
:func:`guidelinekg.cohorts.evaluate_partition`, as a cohort read from files.

The results graph of a run (:func:`guidelinekg.recommend_output.to_rdf`, PROV-O; for a
cohort run the union of each partition's) is gathered as N-Triples in a temporary file
while the run goes and written at the end with one Graph Store PUT: one request is one
transaction on the Oxigraph server, so the graph appears whole or not at all, and a failure
before that request writes nothing.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TextIO

from rdflib import BNode, Graph, URIRef
from rdflib.term import Node

from guidelinekg import console
from guidelinekg.cohorts import (
    DEFAULT_PARTITION_SIZE,
    CohortSettings,
    CohortSummary,
    PartitionOutcome,
    Progress,
    evaluate_partition,
    worker_pool,
    write_lines,
)
from guidelinekg.load_command import add_endpoint_arguments, canonical_term, endpoint_from_args
from guidelinekg.loading import InputError, merge_graphs, parse_ntriples
from guidelinekg.sparql import QueryError, load_query
from guidelinekg.store import Endpoint, StoreClient, StoreError, sparql_term, with_values

# Patients a CONSTRUCT asks for at once when the whole graph is read.
PATIENT_PARTITION = 100
RESULTS_PREFIX = "urn:guidelinekg:results:"


# ---------------------------------------------------------------------------------------
# Patient records read back

# The queries are under queries/store/: patient-graphs (every patient with its graph; ?g
# bound by VALUES when graphs are named) and patient-records (the records of a partition of
# patients, bound by VALUES), each written out with its reasons there.


@dataclass(frozen=True)
class StorePatients:
    """The patients of some named graphs of a store, in order, with their graphs."""

    graphs: list[str]
    patients: list[URIRef]
    patient_graphs: dict[URIRef, list[str]]

    def provenance_lines(self) -> list[str]:
        """Per patient, the graphs it came from (as a file input names its files)."""
        return [f"patient <{patient}>: from {', '.join(f'<{g}>' for g in graphs)}"
                for patient, graphs in self.patient_graphs.items()]


def patient_graphs(client: StoreClient) -> list[str]:
    """The named graphs of the store that declare a patient."""
    return store_patients(client).graphs


def store_patients(client: StoreClient, graphs: Sequence[str] | None = None) -> StorePatients:
    """The patients the named graphs declare (None: every graph that declares one)."""
    text = load_query("store/patient-graphs").text
    if graphs is not None:
        if not graphs:
            return StorePatients([], [], {})
        text = with_values(text, ["g"], [[URIRef(graph)] for graph in graphs])
    _, rows = client.select(text)
    anonymous = {row["patient"] for row in rows if not isinstance(row["patient"], URIRef)}
    if anonymous:
        raise StoreError(f"the store holds {len(anonymous)} patient(s) as blank nodes, which "
                         "cannot be asked for by name; give each patient an IRI")
    found: dict[URIRef, list[str]] = {}
    for row in rows:
        patient = row["patient"]
        if isinstance(patient, URIRef):
            found.setdefault(patient, []).append(str(row["g"]))
    named = sorted({graph for owners in found.values() for graph in owners})
    return StorePatients(list(graphs) if graphs is not None else named, list(found), found)


def read_patient_partitions(client: StoreClient, found: StorePatients, *,
                            partition_size: int = PATIENT_PARTITION) -> Iterator[Graph]:
    """The records of ``partition_size`` patients at a time, one CONSTRUCT each."""
    size = max(1, partition_size)
    records = _record_path_query("store/patient-records")
    for start in range(0, len(found.patients), size):
        batch = [[patient] for patient in found.patients[start:start + size]]
        yield client.construct(with_values(records, ["patient"], batch), graphs=found.graphs)


def read_patient_graph(endpoint: Endpoint | StoreClient, graphs: Sequence[str] | None = None,
                       *, partition_size: int = PATIENT_PARTITION) -> Graph:
    """The patient records of the named graphs (None: every graph that declares a
    patient), one CONSTRUCT per ``partition_size`` patients, merged into one graph."""
    client = endpoint if isinstance(endpoint, StoreClient) \
        else StoreClient.from_environment(endpoint)
    return merge_graphs(read_patient_partitions(client, store_patients(client, graphs),
                                           partition_size=partition_size))



# ---------------------------------------------------------------------------------------
# The feature probe: does the store follow the record path as the embedded engine does?

# The probe's queries (queries/store/record-path-probe*.rq) start with this mark: a reader of
# the store's log (and the tests' proxy) tells the probe apart by it.
PROBE_MARK = "# guidelinekg store probe"
# The path store/patient-records and store/record-path-probe write out, for messages.
RECORD_PATH = "(^gkg:subject)?/(rdf:type|!rdf:type)*"
# The predicate of the marker triple by which store/record-path-probe-data*.rq give back the
# node they read around (chosen by the store when none is given).
_ANCHOR = URIRef("urn:guidelinekg:probe-anchor")
_NEEDS = ("It may lack or mis-evaluate a SPARQL 1.1 feature the queries need "
          "(docs/store.md lists them)")


def probe_record_path(client: StoreClient, graphs: Sequence[str],
                      anchor: URIRef | None = None, reference: Graph | None = None) -> None:
    """Refuse a store that does not follow :data:`RECORD_PATH` from ``anchor`` as the
    embedded engine does on ``reference`` (the data the graphs hold; by default its part
    the answer depends on, read from the store without paths: one request more, and the
    store chooses the node when none is given). One or two cheap requests."""
    from guidelinekg.sparql import make_engine

    url = client.endpoint.query_url
    paths = _record_path_query("store/record-path-probe")
    try:
        if reference is None:
            name = "store/record-path-probe-data" if anchor is not None \
                else "store/record-path-probe-data-any"
            reference = client.construct(load_query(name).text,
                                         {"anchor": anchor} if anchor else None, graphs)
            chosen = next(reference.objects(None, _ANCHOR), None)
            if not isinstance(chosen, URIRef):
                return  # no typed IRI in the graphs: nothing to start from
            anchor = chosen
            reference.remove((None, _ANCHOR, None))
        if anchor is None:
            raise ValueError("an anchor is needed with a reference graph")
        _, on_store = client.select(paths, {"anchor": anchor}, graphs)
    except StoreError as error:
        if error.status != 400:
            raise
        raise StoreError(f"{error}. That was guidelinekg's probe of the property path patient "
                         f"records are read with, {RECORD_PATH}. {_NEEDS}", 400) from None
    _, embedded = make_engine("oxigraph", reference).select_with_variables(
        paths, {"anchor": anchor})
    difference = _reach_difference([row["s"] for row in embedded if "s" in row],
                                   [row["s"] for row in on_store if "s" in row])
    if difference:
        raise StoreError(f"the SPARQL store at {url} does not follow the property path patient "
                         f"records are read with, {RECORD_PATH}, as the embedded engine does: "
                         f"from <{anchor}> {difference}. {_NEEDS}")


def _record_path_query(name: str) -> str:
    """The text of a bundled query that follows :data:`RECORD_PATH`; a QueryError if it no
    longer writes that path (the probe vouches for the records query only when both do)."""
    text = load_query(name).text
    if RECORD_PATH not in text:
        raise QueryError(f"the bundled query {name} does not follow the record path "
                         f"{RECORD_PATH}; it and the probe must read records alike")
    return text


def _reach_difference(embedded: list[Node], on_store: list[Node]) -> str | None:
    """What the store reaches otherwise than the embedded engine (blank nodes count, but
    their labels differ between the two)."""
    def keys(nodes: list[Node]) -> Counter[str]:
        return Counter("_:" if isinstance(node, BNode) else canonical_term(node).n3()
                       for node in nodes)

    mine, theirs = keys(embedded), keys(on_store)
    if mine == theirs:
        return None
    counts = (f"it reaches {len(on_store)} of the nodes probed, the embedded engine "
              f"{len(embedded)}")
    missed = sorted((mine - theirs).elements())
    if missed:
        return f"{counts}; it misses {missed[0]}"
    return f"{counts}; it reaches {sorted((theirs - mine).elements())[0]}, which it should not"


# ---------------------------------------------------------------------------------------
# Command-line options, for validate and recommend

# (flag, attribute) of the options that mean nothing without --endpoint.
_STORE_OPTIONS = (("--graph", "graph"), ("--query-url", "query_url"),
                  ("--update-url", "update_url"), ("--store-url", "store_url"),
                  ("--write-results", "write_results"), ("--results-graph", "results_graph"))


def add_store_arguments(parser: argparse.ArgumentParser, *, results: bool = False) -> None:
    """``--endpoint`` and its options; ``results``: ``--write-results`` too (recommend)."""
    add_endpoint_arguments(parser)
    parser.add_argument("--graph", action="append", default=[], metavar="IRI",
                        help="with --endpoint: a named graph of patient records to read "
                             "(repeatable); by default every graph of the store that declares "
                             "a patient (those load --patients writes)")
    if results:
        parser.add_argument("--write-results", action="store_true",
                            help="with --endpoint: write the run's results (PROV-O, as "
                                 "--format turtle gives them) into a named graph of their own, "
                                 "in one request at the end: whole or not at all")
        parser.add_argument("--results-graph", metavar="IRI",
                            help="with --write-results: the graph to write (replaced if it "
                                 "exists; default urn:guidelinekg:results:<UTC time>-<random>, "
                                 "printed on standard error)")


def reads_store(args: argparse.Namespace) -> bool:
    """Whether the command reads its patients from a store (``--endpoint``); the options
    are checked either way."""
    if not args.endpoint:
        given = [flag for flag, name in _STORE_OPTIONS if getattr(args, name, None)]
        if given:
            raise QueryError(f"{', '.join(given)} need{'s' if len(given) == 1 else ''} "
                             "--endpoint URL")
        if not args.paths:
            raise QueryError("give patient records (PATH...) or --endpoint URL")
        return False
    if args.paths:
        raise QueryError("give patient records (PATH...) or --endpoint URL, not both")
    if getattr(args, "spark", None):
        raise QueryError("--spark reads files; it does not go with --endpoint")
    if getattr(args, "results_graph", None):
        if not args.write_results:
            raise QueryError("--results-graph needs --write-results")
        sparql_term(URIRef(args.results_graph))  # an IRI, checked before anything is sent
    return True


def is_cohort_run(args: argparse.Namespace) -> bool:
    """Whether the options ask for a cohort run (records refused or derived one by one), of
    ``recommend`` or ``validate``: ``--format jsonl`` (or ``csv``), a partition size, or more
    than one worker (the options of cohort_command.add_cohort_arguments)."""
    return args.format in ("jsonl", "csv") or bool(args.partition_size) or args.workers > 1


def _store_input(args: argparse.Namespace) -> tuple[StoreClient, StorePatients]:
    """The store and the patients of the graphs asked for; an error when there are none."""
    from guidelinekg.cohort_command import check_cohort_sizes

    check_cohort_sizes(args)
    for graph in args.graph:
        sparql_term(URIRef(graph))  # an IRI, checked before anything is sent
    client = StoreClient.from_environment(endpoint_from_args(args))
    found = store_patients(client, args.graph or None)
    url = client.endpoint.query_url
    empty = [graph for graph in args.graph
             if not any(graph in owners for owners in found.patient_graphs.values())]
    if empty:
        raise StoreError(f"the SPARQL store at {url} has no patient in "
                         f"{', '.join(f'<{graph}>' for graph in empty)}; write patients with "
                         "guidelinekg load --endpoint URL --patients FILE")
    if not found.patients:
        raise InputError(url, "no patient found (no named graph declares `a gkg:Patient`; "
                              "guidelinekg load --endpoint URL --patients FILE writes them)")
    # Before any record is read: a store that mis-follows the record path would give
    # records with parts missing, and so wrong results rather than an error.
    first = found.patients[0]
    probe_record_path(client, found.patient_graphs[first], first)
    return client, found


def _whole_graph(client: StoreClient, found: StorePatients) -> Graph:
    """Every patient's record in one graph; with several graphs, where each patient came
    from on standard error (as several input files are named)."""
    started = console.clock()
    graph = merge_graphs(read_patient_partitions(client, found))
    console.detail(f"read {console.count(len(found.patients), 'patient')} from "
                   f"{console.count(len(found.graphs), 'graph')} of {client.endpoint.query_url} "
                   f"in {console.since(started)}: {len(graph):,} triples")
    if len(found.graphs) > 1:
        for line in found.provenance_lines():
            console.say(line)
    return graph


# ---------------------------------------------------------------------------------------
# validate --endpoint


def run_validate(args: argparse.Namespace) -> int:
    """``validate --endpoint``: as ``validation.run`` on files."""
    from guidelinekg.validation import (
        EXIT_CONFORMS,
        EXIT_VIOLATIONS,
        annotated_report_graph,
        json_report,
        text_report,
        validate_patients,
    )

    client, found = _store_input(args)
    if is_cohort_run(args):
        return _validate_cohort(args, client, found)
    graph = _whole_graph(client, found)
    validation = validate_patients(graph, inplace=True)
    if args.format == "turtle":
        output = annotated_report_graph(validation, graph).serialize(format="turtle")
    elif args.format == "json":
        output = json_report(validation)
    else:
        output = text_report(validation, data=graph)
    sys.stdout.write(output)
    return EXIT_VIOLATIONS if validation.has_violations else EXIT_CONFORMS


def _validate_cohort(args: argparse.Namespace, client: StoreClient,
                     found: StorePatients) -> int:
    settings = CohortSettings(date.today(), validate_only=True)
    summary = _stream(args, client, found, settings, "validate", None, None)
    print(f"guidelinekg validate: {summary.patients} patients, {len(summary.refused)} with "
          f"violations, {summary.warnings} warnings. Results by shape:", file=sys.stderr)
    print("\n".join(summary.shape_lines()), file=sys.stderr)
    return 1 if summary.refused else 0


# ---------------------------------------------------------------------------------------
# recommend --endpoint


def run_recommend(args: argparse.Namespace) -> int:
    """``recommend --endpoint``: as ``recommend_command.run`` on files, and the results written
    back when asked."""
    client, found = _store_input(args)
    with results_file(args) as results:
        try:
            if is_cohort_run(args):
                code = _recommend_cohort(args, client, found, results)
            else:
                code = _recommend_whole(args, client, found, results)
        except StoreError as error:
            if results is None:
                raise
            raise StoreError(f"{error}. Nothing was written to the results graph "
                             f"<{results.iri}>") from None
        if results is not None:
            results.write(client)
    return code


def _recommend_whole(args: argparse.Namespace, client: StoreClient, found: StorePatients,
                     results: ResultsFile | None) -> int:
    from guidelinekg.derivation import derive
    from guidelinekg.recommend_command import print_results, said_validation
    from guidelinekg.recommend_output import to_rdf
    from guidelinekg.sparql import expand_iri
    from guidelinekg.validation import validate_patients

    graph = _whole_graph(client, found)
    validation = validate_patients(graph)
    if not said_validation(validation, allow_invalid=args.allow_invalid, data=graph):
        if results is not None:
            results.abandon("no result was derived")
        return 1
    patient = expand_iri(args.patient) if args.patient else None
    try:
        derivation = derive(graph, args.as_of or date.today(), args.engine, patient,
                            validation=validation, allow_invalid=args.allow_invalid,
                            guidelines=args.guideline)
    except ValueError as error:
        raise InputError("--guideline", str(error)) from None
    if not derivation.patients:
        print("guidelinekg recommend: no gkg:Patient in the input", file=sys.stderr)
        if results is not None:
            results.abandon("no result was derived")
        return 2
    rdf = to_rdf(derivation) if args.format == "turtle" or results is not None else None
    print_results(derivation, args.format, args.verbose, rdf)
    if results is not None and rdf is not None:
        results.add(rdf.serialize(format="nt", encoding="utf-8"))
    return 0


def _recommend_cohort(args: argparse.Namespace, client: StoreClient, found: StorePatients,
                      results: ResultsFile | None) -> int:
    from guidelinekg.cohort_command import cohort_settings, finish_cohort_run
    from guidelinekg.stdio import output_stream

    if args.patient:
        raise InputError("--patient", "a cohort run (jsonl, csv, --partition-size, --workers) "
                                      "covers every patient of the input")
    settings = cohort_settings(args)
    with ExitStack() as stack:
        report = None
        if args.validation_report is not None:
            report = stack.enter_context(output_stream(args.validation_report))
        summary = _stream(args, client, found, settings, "recommend", report, results)
    return finish_cohort_run(args, summary, [])


# ---------------------------------------------------------------------------------------
# Cohort runs: partitions read from the store, evaluated as a cohort from files is


@dataclass(frozen=True)
class _Job:
    records: bytes  # N-Triples: a job may go to a worker process
    settings: CohortSettings


def _evaluate(job: _Job) -> tuple[PartitionOutcome, bytes]:
    """One partition's lines, and its results graph as N-Triples when asked for."""
    outcome = evaluate_partition(parse_ntriples(job.records, "store partition"), job.settings,
                                 disposable=True)
    return outcome, outcome.results_graph


def _stream(args: argparse.Namespace, client: StoreClient, found: StorePatients,
            settings: CohortSettings, command: str, report: TextIO | None,
            results: ResultsFile | None) -> CohortSummary:
    """Read the partitions, evaluate them (in worker processes with --workers) and write
    their lines as they come; each partition's results go to ``results``."""
    size = args.partition_size or DEFAULT_PARTITION_SIZE
    console.say(f"guidelinekg {command}: {console.count(len(found.patients), 'patient')} in "
                f"{console.count(len(found.graphs), 'graph')} of {client.endpoint.query_url}")
    if results is not None:
        settings = replace(settings, results_started=results.started)
    jobs = (_Job(part.serialize(format="nt", encoding="utf-8"), settings)
            for part in read_patient_partitions(client, found, partition_size=size))
    with worker_pool(args.workers) as mapper:
        outcomes = _gathering(mapper(_evaluate, jobs), results)
        return write_lines(outcomes, sys.stdout,
                           Progress(len(found.patients), args.quiet, command=command),
                           as_csv=args.format == "csv", report=report)


def _gathering(evaluated: Iterable[tuple[PartitionOutcome, bytes]],
               results: ResultsFile | None) -> Iterator[PartitionOutcome]:
    for outcome, triples in evaluated:
        if results is not None:
            results.add(triples)
        yield outcome


# ---------------------------------------------------------------------------------------
# The results graph, written whole or not at all


@dataclass
class ResultsFile:
    """The run's results as N-Triples in a temporary file, until one PUT writes them."""

    iri: str
    path: Path
    started: datetime
    abandoned: bool = False

    def add(self, ntriples: bytes) -> None:
        with self.path.open("ab") as stream:
            stream.write(ntriples)

    def abandon(self, why: str) -> None:
        print(f"guidelinekg recommend: {why}; the results graph <{self.iri}> is not written",
              file=sys.stderr)
        self.abandoned = True

    def write(self, client: StoreClient) -> None:
        """One PUT of the whole file (retried only as a PUT may be: it is idempotent)."""
        if self.abandoned:
            return
        try:
            client.put_ntriples_file(self.iri, self.path)
        except StoreError as error:
            raise StoreError(f"{error}. The results graph <{self.iri}> was not confirmed "
                             "written; one PUT is one transaction, so the store holds all "
                             "of it or none") from None
        size = client.graph_sizes([self.iri])[self.iri]
        print(f"guidelinekg recommend: the results are in the graph <{self.iri}> of "
              f"{client.endpoint.store_url} ({size} triples)", file=sys.stderr)


def default_results_graph(now: datetime | None = None) -> str:
    """A results graph IRI of its own for a run: its UTC start and a random part."""
    now = now or datetime.now(UTC)
    return f"{RESULTS_PREFIX}{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(4)}"


@contextmanager
def results_file(args: argparse.Namespace) -> Iterator[ResultsFile | None]:
    """The results file of a run that writes its results (None otherwise); removed after."""
    if not getattr(args, "write_results", False):
        yield None
        return
    started = datetime.now(UTC)
    iri = args.results_graph or default_results_graph(started)
    with tempfile.TemporaryDirectory(prefix="guidelinekg-results-") as folder:
        path = Path(folder) / "results.nt"
        path.touch()
        print(f"guidelinekg recommend: this run's results graph: <{iri}>", file=sys.stderr)
        yield ResultsFile(iri, path, started)


__all__ = [
    "PATIENT_PARTITION",
    "ResultsFile",
    "StorePatients",
    "add_store_arguments",
    "default_results_graph",
    "patient_graphs",
    "probe_record_path",
    "read_patient_graph",
    "read_patient_partitions",
    "reads_store",
    "run_recommend",
    "run_validate",
    "store_patients",
]
