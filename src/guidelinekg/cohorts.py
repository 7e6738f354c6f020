"""Cohorts in partitions: the patients of a graph evaluated a bounded number at a time, in
worker processes, each refused or derived on its own, results written as they come.

A patient's results depend only on its own record (the items that name it, and what they
hold) and on the guideline, so a cohort split by patient gives the same results as the
whole, whatever the partition size. Patients that share a node (an item naming two
patients) are kept in one partition, so the shapes see what they would see in the whole;
triples that belong to no patient go to a partition of their own, so their violations are
still reported.

In a cohort run a record that violates the shapes refuses that patient, not the cohort: the
patient gets one output line saying it is refused and why (the violations), nothing is
derived for it, and the command ends with exit 1. The other patients are derived.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TextIO

from rdflib import Graph, Literal
from rdflib.namespace import RDF
from rdflib.term import Node

from guidelinekg.bulk_data import BulkProblem
from guidelinekg.grouping import UnionFind
from guidelinekg.loading import MAX_FILE_BYTES, InputError, parse_ntriples
from guidelinekg.namespaces import GKG
from guidelinekg.patients import MAX_BLANK_NODE_DEPTH, blank_node_depth
from guidelinekg.shacl import ShaclReport
from guidelinekg.sparql import EngineName

PATIENT_CLASS = GKG.Patient
SUBJECT = GKG.subject
DEFAULT_PARTITION_SIZE = 500


# --------------------------------------------------------------------------------------
# Splitting a graph by patient
# --------------------------------------------------------------------------------------


def _owned_subjects(graph: Graph, patient: Node) -> set[Node]:
    """The patient, the items that name it, and every node described in the input that
    they lead to (a dose specification, blank or named), other patients excepted."""
    owned: set[Node] = {patient}
    stack: list[Node] = [patient, *graph.subjects(SUBJECT, patient)]
    owned.update(stack)
    while stack:
        for obj in graph.objects(stack.pop(), None):
            if obj in owned or isinstance(obj, Literal) or (obj, None, None) not in graph:
                continue
            if (obj, RDF.type, PATIENT_CLASS) in graph:
                continue
            owned.add(obj)
            stack.append(obj)
    return owned


def _groups(graph: Graph) -> tuple[list[list[Node]], dict[Node, set[Node]]]:
    """Patients that share a subject, grouped (union-find); each patient's subjects."""
    patients = sorted(set(graph.subjects(RDF.type, PATIENT_CLASS)), key=str)
    owned = {patient: _owned_subjects(graph, patient) for patient in patients}
    sets: UnionFind[Node] = UnionFind()
    first_owner: dict[Node, Node] = {}
    for patient in patients:
        for node in owned[patient]:
            other = first_owner.setdefault(node, patient)
            if other != patient:
                sets.union(other, patient)
    grouped: dict[Node, list[Node]] = {}
    for patient in patients:
        grouped.setdefault(sets.find(patient), []).append(patient)
    return list(grouped.values()), owned


def patient_partitions(graph: Graph, size: int) -> Iterator[Graph]:
    """Graphs of about ``size`` patients each (a group of patients sharing a node is never
    split), then one graph of the triples no patient owns, if there are any."""
    for part, _owned in owned_partitions(graph, size):
        yield part


def owned_partitions(graph: Graph, size: int, reuse: bool = False
                     ) -> Iterator[tuple[Graph, dict[Node, set[Node]]]]:
    """:func:`patient_partitions`, each graph with what each of its patients owns (see
    :func:`_owned_subjects`; the graph of triples no patient owns has no patient). Every
    graph is a new one, unless ``reuse`` lets a graph that is one partition be its own."""
    groups, owned = _groups(graph)
    if reuse and sum(map(len, groups)) <= size and _all_owned(graph, owned):
        # One partition holding every triple (a bucket of a cohort run): no copy.
        yield graph, owned
        return
    placed: set[Node] = set()
    batch: list[Node] = []
    for group in groups:
        batch.extend(group)
        if len(batch) >= size:
            yield _subgraph(graph, batch, owned, placed), {p: owned[p] for p in batch}
            batch = []
    if batch:
        yield _subgraph(graph, batch, owned, placed), {p: owned[p] for p in batch}
    leftover = Graph()
    for triple in graph:
        if triple[0] not in placed:
            leftover.add(triple)
    if len(leftover):
        yield leftover, {}


def _all_owned(graph: Graph, owned: dict[Node, set[Node]]) -> bool:
    """Whether every subject of the graph belongs to a patient."""
    subjects = set().union(*owned.values()) if owned else set()
    return all(subject in subjects for subject in graph.subjects(unique=True))


def _subgraph(graph: Graph, patients: Sequence[Node], owned: dict[Node, set[Node]],
              placed: set[Node]) -> Graph:
    subjects = set().union(*(owned[patient] for patient in patients))
    placed |= subjects
    part = Graph()
    for subject in subjects:
        for predicate, obj in graph.predicate_objects(subject):
            part.add((subject, predicate, obj))
    return part


# --------------------------------------------------------------------------------------
# One partition: validate, refuse the invalid, derive the rest
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartitionOutcome:
    """What one partition gives: output lines (JSON), patients refused, counts."""

    lines: list[str]
    refused: list[str]
    patients: int
    warnings: int
    # (severity, shape name) -> how many results: the cohort's validation in brief
    shapes: dict[tuple[str, str], int] = field(default_factory=dict)
    # every validation result as a JSON line, when the full report is asked for
    report: list[str] = field(default_factory=list)
    # the results graph (PROV-O, N-Triples) of the patients derived, when asked for
    results_graph: bytes = b""


@dataclass(frozen=True)
class CohortSettings:
    as_of: date
    engine: EngineName = "oxigraph"
    guidelines: tuple[str, ...] | None = None
    allow_invalid: bool = False
    full_report: bool = False
    # validate only: the partition's lines are its validation results, nothing is derived
    validate_only: bool = False
    # the start of the run whose results graph each partition adds to (PROV-O), if any
    results_started: datetime | None = None


def evaluate_partition(graph: Graph, settings: CohortSettings,
                       owned: dict[Node, set[Node]] | None = None,
                       disposable: bool = False) -> PartitionOutcome:
    """Validate the partition; each patient with violations is refused (one line naming
    them), the others are derived; one JSON line per patient and guideline. ``owned``: what
    each patient owns, when the caller has it (:func:`owned_partitions`); ``disposable``:
    the graph is the partition's own, changed at will (refused records are taken out of it
    rather than the kept ones copied)."""
    from guidelinekg.derivation import derive
    from guidelinekg.validation import PatientValidation, result_json, validate_patients

    validation = validate_patients(graph)
    by_patient = validation.by_patient()
    refused_nodes = sorted((patient for patient, results in by_patient.items()
                            if any(r.result.severity == "Violation" for r in results)),
                           key=lambda node: (node is not None, str(node)))
    # Violations of triples that name no patient (patient None) come first, refused too.
    lines = [_refusal_line(patient, by_patient, validation.report.graph)
             for patient in refused_nodes]
    refused = [str(patient) for patient in refused_nodes if patient is not None]
    if None in refused_nodes:
        refused.append("(triples that name no patient)")
    warnings = validation.count("Warning")
    counts: dict[tuple[str, str], int] = {}
    for result in validation.results:
        key = (result.result.severity, result.shape_name)
        counts[key] = counts.get(key, 0) + 1
    # Each result as validate --format json gives it, with the patient it concerns.
    report = [json.dumps(result_json(result, validation.report.graph), ensure_ascii=False)
              for result in validation.results
              ] if settings.full_report or settings.validate_only else []
    patients = len(set(graph.subjects(RDF.type, PATIENT_CLASS)))
    if settings.validate_only:
        return PartitionOutcome(report, refused, patients, warnings, counts)
    if settings.allow_invalid:
        refused, lines = [], []
    dropped = set() if settings.allow_invalid else set(refused_nodes)
    # What the refused triples that name no patient are about (a guideline term a record
    # redefines) may be reachable from a kept patient's items: it is not derived from either.
    unowned = {r.result.focus for r in by_patient.get(None, [])} if None in dropped else set()
    kept_graph = _kept(graph, dropped, owned, disposable, unowned) if dropped else graph
    if not any(kept_graph.subjects(RDF.type, PATIENT_CLASS)):
        return PartitionOutcome(lines, refused, patients, warnings, counts, report)
    kept = [r for r in validation.results if r.patient not in dropped]
    kept_validation = PatientValidation(
        report=ShaclReport(conforms=not any(r.result.severity == "Violation" for r in kept),
                           results=[r.result for r in kept]),
        patients=[p for p in validation.patients if p not in dropped],
        results=kept)
    derivation = derive(kept_graph, settings.as_of, settings.engine,
                        validation=kept_validation, allow_invalid=settings.allow_invalid,
                        guidelines=settings.guidelines)
    lines += [json.dumps(result.to_json(), ensure_ascii=False) for result in
              derivation.patients]
    results_graph = b""
    if settings.results_started is not None:
        from guidelinekg.recommend_output import to_rdf

        # Every partition names the same run: their union is one run's results graph.
        derivation.started = settings.results_started
        results_graph = to_rdf(derivation).serialize(format="nt", encoding="utf-8")
    return PartitionOutcome(lines, refused, patients, warnings, counts, report, results_graph)


def _refusal_line(patient: Node | None, by_patient: dict, report_graph: Graph) -> str:
    """The line of a refused patient: its violations as validate --format json gives them
    (the shape by its name)."""
    from guidelinekg.validation import result_json

    found = [result_json(r, report_graph) for r in by_patient[patient]
             if r.result.severity == "Violation"]
    # In a fixed order: the engine's order depends on how the partition was built.
    violations = sorted(({"shape": r["shape_name"], "focus": r["focus"], "path": r["path"],
                          "message": r["message"]} for r in found),
                        key=lambda v: tuple(str(v[k]) for k in ("focus", "path", "shape",
                                                                  "message")))
    because = ("the record violates the patient shapes; nothing is derived from it"
               if patient is not None else
               "triples of the input name no patient (or a patient that is not one): they "
               "are refused; nothing is derived from them")
    return json.dumps({"patient": str(patient) if patient is not None else None,
                       "refused": True, "because": because, "violations": violations},
                      ensure_ascii=False)


def _kept(graph: Graph, refused: set[Node | None],
          owned: dict[Node, set[Node]] | None = None, disposable: bool = False,
          unowned: set[Node] | frozenset[Node] = frozenset()) -> Graph:
    """The records of the patients not refused: without the refused ones and without the
    triples that name no patient (refused too when they violate the shapes), nor any about
    the ``unowned`` subjects. A disposable graph loses them (fewer than the kept: cheaper
    than copying), another is copied."""
    keep: set[Node] = set()
    for patient in graph.subjects(RDF.type, PATIENT_CLASS):
        if patient not in refused:
            keep |= owned[patient] if owned is not None else _owned_subjects(graph, patient)
    keep -= unowned
    if disposable:
        for subject in [s for s in graph.subjects(unique=True) if s not in keep]:
            graph.remove((subject, None, None))
        return graph
    kept = Graph()
    for subject in keep:
        for predicate, obj in graph.predicate_objects(subject):
            kept.add((subject, predicate, obj))
    return kept


# --------------------------------------------------------------------------------------
# Workers
# --------------------------------------------------------------------------------------


def _evaluate_serialised(job: tuple[bytes, CohortSettings]) -> PartitionOutcome:
    data, settings = job
    return evaluate_partition(parse_ntriples(data, "cohort partition"), settings,
                              disposable=True)


def evaluate_cohort(graph: Graph, settings: CohortSettings, partition_size: int,
                    workers: int) -> Iterator[PartitionOutcome]:
    """Each partition's outcome of a graph in memory, in order; with ``workers`` > 1 in
    worker processes (a cohort on disk: :func:`evaluate_buckets`)."""
    if workers <= 1:
        for partition, owned in owned_partitions(graph, max(1, partition_size)):
            yield evaluate_partition(partition, settings, owned, disposable=True)
        return
    jobs = ((partition.serialize(format="nt", encoding="utf-8"), settings)
            for partition in patient_partitions(graph, max(1, partition_size)))
    with worker_pool(workers) as mapper:
        yield from mapper(_evaluate_serialised, jobs)


@contextmanager
def worker_pool(workers: int) -> Iterator[Callable]:
    """``map`` in this process for one worker, else a process pool's ordered ``imap``."""
    if workers <= 1:
        yield map
        return
    context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    with context.Pool(workers) as pool:
        yield pool.imap


def evaluate_bucket(job: tuple[str, int, CohortSettings]) -> PartitionOutcome:
    """A bucket file of whole patients (guidelinekg.cohort_input), evaluated in partitions
    of the given size; one outcome for the bucket."""
    path, size, settings = job
    if Path(path).stat().st_size > MAX_FILE_BYTES:
        # Buckets hold whole records of about ``size`` patients: one this large is a record
        # (or records joined by shared nodes) no patient has; refused, not read.
        raise InputError("cohort input", f"the records of one group of patients that share "
                                         f"nodes exceed {MAX_FILE_BYTES} bytes")
    graph = parse_ntriples(Path(path).read_bytes(), "cohort input")
    depth = blank_node_depth(graph)
    if depth > MAX_BLANK_NODE_DEPTH:
        raise InputError("cohort input", f"blank nodes are nested {depth} levels deep (the "
                                         f"limit is {MAX_BLANK_NODE_DEPTH})")
    outcomes = [evaluate_partition(part, settings, owned, disposable=True)
                for part, owned in owned_partitions(graph, size, reuse=True)]
    shapes: dict[tuple[str, str], int] = {}
    for outcome in outcomes:
        for key, count in outcome.shapes.items():
            shapes[key] = shapes.get(key, 0) + count
    return PartitionOutcome([line for o in outcomes for line in o.lines],
                            [patient for o in outcomes for patient in o.refused],
                            sum(o.patients for o in outcomes), sum(o.warnings for o in outcomes),
                            shapes, [line for o in outcomes for line in o.report])


def evaluate_buckets(buckets: Iterable[Path], settings: CohortSettings, partition_size: int,
                     mapper: Callable = map) -> Iterator[PartitionOutcome]:
    """Each bucket's outcome, in order, through ``mapper`` (see :func:`worker_pool`)."""
    jobs = ((str(path), max(1, partition_size), settings) for path in buckets)
    yield from mapper(evaluate_bucket, jobs)


def unowned_line(because: str, source: str, line: int | None = None,
                 resource: str | None = None) -> str:
    """The refusal line of input that goes to no patient (a line of an export with no
    subject, a file that cannot be read), with why."""
    return json.dumps({"patient": None, "refused": True, "because": because,
                       "source": source, "line": line, "resource": resource or None},
                      ensure_ascii=False)


def problem_line(problem: BulkProblem) -> str:
    """A line of FHIR Bulk Data input that belongs to no patient, as a refusal line."""
    return unowned_line(problem.because, problem.source, problem.line, problem.resource)


@dataclass
class CohortSummary:
    patients: int = 0
    refused: list[str] = field(default_factory=list)
    warnings: int = 0
    shapes: dict[tuple[str, str], int] = field(default_factory=dict)

    def shape_lines(self, limit: int = 10) -> list[str]:
        """The validation of the cohort in brief: results per severity and shape, the most
        frequent first (each refused patient's line has its own violations)."""
        order = {"Violation": 0, "Warning": 1, "Info": 2}
        ranked = sorted(self.shapes.items(), key=lambda item: (order.get(item[0][0], 3),
                                                                -item[1], item[0][1]))
        lines = [f"  {count:>7}  {severity:<9}  {shape}"
                 for (severity, shape), count in ranked[:limit]]
        if len(ranked) > limit:
            lines.append(f"  ... and {len(ranked) - limit} more shapes")
        return lines


class Progress:
    """Patients done, rate and time left on standard error: one updated line on a terminal,
    a plain line at most every ``every`` seconds otherwise; nothing when quiet."""

    def __init__(self, total: int, quiet: bool = False, every: float = 10.0,
                 stream: TextIO | None = None, command: str = "recommend") -> None:
        self.total, self.quiet, self.every, self.command = total, quiet, every, command
        self.stream = stream if stream is not None else sys.stderr
        self.started = self.shown = time.monotonic()
        self.terminal = self.stream.isatty()

    def update(self, done: int) -> None:
        now = time.monotonic()
        if self.quiet or (not self.terminal and now - self.shown < self.every
                          and done < self.total):
            return
        self.shown = now
        rate = done / max(now - self.started, 1e-9)
        left = (self.total - done) / rate if rate else 0.0
        line = (f"guidelinekg {self.command}: {done}/{self.total} patients, {rate:.1f}/s, "
                f"about {left:.0f} s left")
        if self.terminal:
            self.stream.write("\r" + line + ("\n" if done >= self.total else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


CSV_COLUMNS = ("patient", "guideline", "result", "key", "status", "record_item",
               "missing", "recommendation")


def csv_rows(line: str) -> Iterator[tuple[str, ...]]:
    """One JSON line as flat rows for a spreadsheet: the population verdict, each statement's
    status, each flag, care gap and dose check; a refused record as one row."""
    document = json.loads(line)
    patient, guideline = document.get("patient") or "", document.get("guideline", "")
    if document.get("refused"):
        yield (patient, "", "refused", "", "refused", "", "", "")
        return
    population = document["population"]
    yield (patient, guideline, "population", "", population["status"], "",
           ";".join(population["missing"]), "")
    parts = (("contraindication", "contraindicated", "to_confirm"),
             ("care-gap", "care_gaps", None), ("dose-check", "dose_checks", None),
             ("statement", "recommendations", "missing"))
    for kind, field_name, missing in parts:
        for item in document[field_name]:
            yield (patient, guideline, kind, item["key"], item.get("status", "applies"),
                   item.get("record_item", ""),
                   ";".join(item[missing]) if missing else "", item["recommendation"])


def write_lines(outcomes: Iterable[PartitionOutcome], out: TextIO,
                progress: Progress | None = None, as_csv: bool = False,
                report: TextIO | None = None) -> CohortSummary:
    """Write every line (or its CSV rows) as its partition finishes, and its validation
    results to ``report`` when given; the run's counts."""
    summary = CohortSummary()
    writer = csv.writer(out, lineterminator="\n") if as_csv else None
    if writer is not None:
        writer.writerow(CSV_COLUMNS)
    for outcome in outcomes:
        if writer is not None:
            for line in outcome.lines:
                writer.writerows(csv_rows(line))
        else:
            out.writelines(line + "\n" for line in outcome.lines)
        out.flush()
        if report is not None:
            report.writelines(line + "\n" for line in outcome.report)
        summary.patients += outcome.patients
        summary.refused += outcome.refused
        summary.warnings += outcome.warnings
        for key, count in outcome.shapes.items():
            summary.shapes[key] = summary.shapes.get(key, 0) + count
        if progress is not None:
            progress.update(summary.patients)
    return summary
