"""``recommend`` and ``validate`` on a cohort (``--format jsonl``, ``--partition-size``,
``--workers``; ``recommend --format csv`` too): the input read as a stream
(guidelinekg.cohort_input), evaluated bucket by bucket in worker processes
(guidelinekg.cohorts), lines written as they come, the validation in brief on standard error
(and, for ``recommend``, in full in a file when asked)."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import date
from itertools import chain
from pathlib import Path
from typing import TextIO

from guidelinekg import console
from guidelinekg.bulk_data import BulkProblem
from guidelinekg.cohort_input import read_cohort
from guidelinekg.cohorts import (
    DEFAULT_PARTITION_SIZE,
    CohortSettings,
    CohortSummary,
    PartitionOutcome,
    Progress,
    evaluate_buckets,
    problem_line,
    worker_pool,
    write_lines,
)
from guidelinekg.loading import InputError
from guidelinekg.resources import guideline_module
from guidelinekg.stdio import STDIN, is_stdio, output_stream

# The largest partition and the most worker processes a cohort run takes: a partition
# holds its patients in memory (about 1 MB each), a worker its own copy of the guideline.
MAX_PARTITION_SIZE = 100_000
MAX_COHORT_WORKERS = 64


def add_cohort_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """The options of a cohort run, for ``recommend`` and ``validate``; ``what`` the command
    does to each patient ("evaluate", "validate")."""
    parser.add_argument("--partition-size", type=int, default=0, metavar="N",
                        help=f"{what} the cohort N patients at a time (implies --format "
                             f"jsonl; default with jsonl: 500; at most {MAX_PARTITION_SIZE}): "
                             "memory stays bounded by N")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="worker processes for a cohort run (implies --format jsonl); "
                             "one per core is the fastest, e.g. --workers 2 (at most "
                             f"{MAX_COHORT_WORKERS})")


def run_cohort(args: argparse.Namespace) -> int:
    """A cohort read as a stream (guidelinekg.cohort_input), evaluated in partitions: each
    patient refused or derived on its own, JSON lines (or CSV rows) out as they come."""
    if args.patient:
        raise InputError("--patient", "a cohort run (jsonl, csv, --partition-size, --workers) "
                                      "covers every patient of the input")
    check_cohort_sizes(args)
    settings = cohort_settings(args)
    size = args.partition_size or DEFAULT_PARTITION_SIZE
    with ExitStack() as stack:
        report = None
        if args.validation_report is not None:
            report = stack.enter_context(output_stream(args.validation_report))
        return _cohort_lines(args, settings, size, report)


def run_cohort_validation(args: argparse.Namespace) -> int:
    """``validate`` on a cohort read as a stream: every validation result a JSON line (the
    lines of ``recommend --validation-report``), the results in brief on standard error;
    exit 1 when a record violates the shapes."""
    check_cohort_sizes(args)
    settings = CohortSettings(date.today(), validate_only=True)
    summary, problems = _evaluate(args, settings, args.partition_size or
                                  DEFAULT_PARTITION_SIZE, "validate", None)
    if not summary.patients and not problems:
        # As validate on the input read whole: an input without patients is an error.
        raise InputError(", ".join(str(STDIN) if is_stdio(path) else str(path)
                                   for path in args.paths),
                         "no patient found (nothing is declared `a gkg:Patient`): nothing to "
                         "validate")
    print(f"guidelinekg validate: {summary.patients} patients, {len(summary.refused)} with "
          f"violations, {len(problems)} input lines given to no patient (each has a line), "
          f"{summary.warnings} warnings. Results by shape:", file=sys.stderr)
    print("\n".join(summary.shape_lines()), file=sys.stderr)
    return 1 if summary.refused or problems else 0


def check_cohort_sizes(args: argparse.Namespace) -> None:
    """Refuse a partition size (0: the default) or a number of workers out of bounds."""
    from guidelinekg.cli import count_problem

    for option, value, least, most in (
            ("--partition-size", args.partition_size, 0, MAX_PARTITION_SIZE),
            ("--workers", getattr(args, "workers", 1), 1, MAX_COHORT_WORKERS)):
        if problem := count_problem(option, value, least, most):
            raise InputError(option, problem.removeprefix(f"{option} "))


def cohort_settings(args: argparse.Namespace) -> CohortSettings:
    """The settings of a cohort run (on this machine or on Spark); an unknown guideline is
    refused before the cohort starts, as check refuses it."""
    try:
        for name in args.guideline or ():
            guideline_module(name)
    except ValueError as error:
        raise InputError("--guideline", str(error)) from None
    return CohortSettings(args.as_of or date.today(), args.engine,
                          tuple(args.guideline) if args.guideline else None,
                          args.allow_invalid,
                          full_report=getattr(args, "validation_report", None) is not None)


def _cohort_lines(args: argparse.Namespace, settings: CohortSettings, size: int,
                  report: TextIO | None) -> int:
    summary, problems = _evaluate(args, settings, size, "recommend", report)
    if _no_patient(summary, problems):
        # As recommend on the input read whole (recommend_command): nothing to derive from.
        print("guidelinekg recommend: no gkg:Patient in the input", file=sys.stderr)
        return 2
    return finish_cohort_run(args, summary, problems)


def _no_patient(summary: CohortSummary, problems: list[BulkProblem]) -> bool:
    """Whether a cohort run found no patient and nothing to refuse (records that name an
    undeclared patient are refused, exit 1, as in a whole run)."""
    return not summary.patients and not summary.refused and not problems


def finish_cohort_run(args: argparse.Namespace, summary: CohortSummary,
                      problems: list[BulkProblem]) -> int:
    """A recommend cohort run's last words on standard error, and its exit code."""
    print(f"guidelinekg recommend: {summary.patients} patients, {len(summary.refused)} "
          f"refused (their records violate the patient shapes; each has a line saying why), "
          f"{len(problems)} input lines given to no patient (each has a line), "
          f"{summary.warnings} warnings. Validation results by shape:", file=sys.stderr)
    print("\n".join(summary.shape_lines()), file=sys.stderr)
    if args.validation_report is not None and not is_stdio(args.validation_report):
        # Part of the closing summary: said with --quiet too.
        print(f"guidelinekg recommend: every validation result is in {args.validation_report}",
              file=sys.stderr)
    refused = len(summary.refused) + len(problems)
    return 1 if refused and not args.allow_invalid else 0


# The most inputs the hint to import-fhir lists (a run over a shell glob may have thousands).
HINT_PATHS = 4


def import_fhir_hint(paths: Sequence[Path | str]) -> str:
    """The import-fhir command that reports on the FHIR resources of a run's input: its
    folders, FHIR JSON and NDJSON files (import-fhir reads no RDF file given alone)."""
    given = [str(path) for path in paths
             if is_stdio(path) or Path(path).is_dir() or Path(path).suffix.lower() in
             (".json", ".ndjson")]
    if not given or len(given) > HINT_PATHS:
        return "guidelinekg import-fhir with the FHIR files and folders of this input"
    hint = "guidelinekg import-fhir " + " ".join(shlex.quote(path) for path in given)
    return hint + (" (given the same standard input)" if any(map(is_stdio, given)) else "")


def _evaluate(args: argparse.Namespace, settings: CohortSettings, size: int, command: str,
              report: TextIO | None) -> tuple[CohortSummary, list[BulkProblem]]:
    """Read the cohort, evaluate it bucket by bucket and write its lines as they come."""
    with worker_pool(args.workers) as mapper:
        started = time.monotonic()
        cohort = read_cohort(args.paths, size, mapper)
        if not cohort.buckets and not cohort.problems:
            # Nothing at all was read: said by the caller, before any output (a CSV header).
            cohort.close()
            return CohortSummary(), []
        try:
            console.detail(f"{cohort.read}, cut into "
                           f"{console.count(len(cohort.buckets), 'bucket')} of whole patients, "
                           f"{size} patients a partition, "
                           f"{console.count(args.workers, 'worker')}")
            console.say(f"guidelinekg {command}: read {cohort.patients} patients in "
                        f"{time.monotonic() - started:.1f} s"
                        + (f" (FHIR: {cohort.imported} resources or elements imported, "
                           f"{cohort.ignored} ignored: {import_fhir_hint(args.paths)} says "
                           "why)"
                           if cohort.imported or cohort.ignored else ""))
            # Input lines that belong to no patient come first, each a line saying why.
            unowned = PartitionOutcome([problem_line(p) for p in cohort.problems], [], 0, 0)
            outcomes = chain([unowned], evaluate_buckets(cohort.buckets, settings, size,
                                                         mapper))
            summary = write_lines(outcomes, sys.stdout,
                                  Progress(cohort.patients, args.quiet, command=command),
                                  as_csv=args.format == "csv", report=report)
        finally:
            cohort.close()
    return summary, cohort.problems
