"""``guidelinekg recommend``: the command line of the derivation (guidelinekg.derivation).

Files (or standard input) are read, validated and derived for a clinician (text), a program
(the JSON contract) or a graph (Turtle with PROV-O); a cohort run, a SPARQL store and Apache
Spark each have their own module, chosen here by the options given.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from guidelinekg.derivation import derive
from guidelinekg.distributed_cohorts import is_uri, path_or_uri
from guidelinekg.loading import InputError
from guidelinekg.spark_cohorts import add_spark_arguments, run_spark

if TYPE_CHECKING:
    from rdflib import Graph

    from guidelinekg.patients import PatientInput
    from guidelinekg.results import Derivation
    from guidelinekg.validation import PatientValidation


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from guidelinekg.cli import date_argument
    from guidelinekg.cohort_command import add_cohort_arguments
    from guidelinekg.store_commands import add_store_arguments

    # a URI stays as given (with --spark, hdfs://... input; a Path would fold its //)
    parser.add_argument("paths", nargs="*", type=path_or_uri, metavar="PATH",
                        help="patient records: RDF files, FHIR JSON, or folders of them; - "
                             "reads standard input (its format told from its content; a cohort "
                             "run, jsonl or csv, spools it to a temporary file, deleted "
                             "afterwards, and reads that) (or --endpoint URL: from a SPARQL "
                             "store)")
    parser.add_argument("-o", "--output", type=Path, default=None, metavar="FILE",
                        help="write the results to FILE (default, and -: standard output)")
    parser.add_argument("--as-of", type=date_argument, default=None, metavar="YYYY-MM-DD",
                        help="evaluation date for ages, durations and counts (default: today)")
    parser.add_argument("--format", choices=("text", "json", "turtle", "jsonl", "csv"),
                        default="text",
                        help="text for a clinician, json (the JSON contract), turtle (with "
                             "PROV-O), or a cohort run: jsonl, one JSON line per patient and "
                             "guideline written as partitions finish, a refused patient a line "
                             "saying why; csv, the same as flat rows for a spreadsheet "
                             "(default: text)")
    parser.add_argument("--patient", default=None, metavar="IRI",
                        help="only this patient of the graph")
    parser.add_argument("--engine", choices=("oxigraph", "rdflib"), default="oxigraph",
                        help="SPARQL engine (both give the same results)")
    parser.add_argument("--guideline", action="append", metavar="ID",
                        help="report on this guideline only (repeatable; default: every "
                             "guideline found, one result per patient and guideline)")
    add_cohort_arguments(parser, "evaluate")
    parser.add_argument("--validation-report", type=Path, default=None, metavar="FILE",
                        help="a cohort run's full validation report: every result a JSON "
                             "line in FILE, as validate --format json gives it (standard error "
                             "has it in brief); - is standard output, with the results in a "
                             "file (-o FILE)")
    parser.add_argument("--allow-invalid", action="store_true",
                        help="for research only: derive even from a record that violates the "
                             "shapes; every result is then marked as derived from an invalid "
                             "record")
    add_spark_arguments(parser)
    add_store_arguments(parser, results=True)


def _check_streams(args: argparse.Namespace) -> None:
    """``-`` where it cannot be: a folder, or a second output on standard output."""
    from guidelinekg.stdio import one_standard_output, refuse_folder

    refuse_folder("--spark-output", args.spark_output, "the Spark run's output")
    if args.spark and args.output is not None:
        raise InputError("--output", "not with --spark: the results go to --spark-output DIR")
    if args.validation_report is not None:
        one_standard_output("--validation-report",
                            {"the validation report": args.validation_report,
                             "the results": args.output},
                            "give the results a file with -o FILE, or the report a file")


def run(args: argparse.Namespace) -> int:
    from guidelinekg.stdio import command_output
    from guidelinekg.store_commands import is_cohort_run

    _check_streams(args)
    with command_output(args.output) as outputs:
        code = _run(args)
        # A cohort's refused records are lines of its complete output (exit 1), kept; a
        # record read whole and refused (1), or an input without patients (2), fails the run.
        outputs.keep = code == 0 or (code == 1 and is_cohort_run(args))
        return code


def _run(args: argparse.Namespace) -> int:
    from guidelinekg.store_commands import is_cohort_run, reads_store, run_recommend

    if reads_store(args):
        return run_recommend(args)
    if args.spark:
        return run_spark(args)
    uri = next((path for path in args.paths if is_uri(path)), None)
    if uri is not None:
        raise InputError(uri, "a URI is read only by a Spark run (--spark MASTER), whose "
                              "executors read Hadoop's file systems: give a local file or folder")
    if is_cohort_run(args):
        from guidelinekg.cohort_command import run_cohort

        return run_cohort(args)
    return _recommend_files(args)


def _recommend_files(args: argparse.Namespace) -> int:
    from guidelinekg import console
    from guidelinekg.patients import absent_patient, load_patient_input
    from guidelinekg.sparql import expand_iri
    from guidelinekg.validation import validate_patients

    started = console.clock()
    source = load_patient_input(args.paths, quiet=console.is_quiet())
    console.files_read(source.files, started, [f"{len(source.graph):,} triples"])
    # Said before validating: a mistyped IRI is a usage error, not a report on others.
    if absent := absent_patient(source.graph, expand_iri(args.patient) if args.patient else None):
        print(f"guidelinekg recommend: {absent}", file=sys.stderr)
        return 2
    started = console.clock()
    validation = validate_patients(source.graph)
    console.detail(f"validated in {console.since(started)}: "
                   f"{console.count(len(validation.results), 'result')}")
    if not said_validation(validation, source, args.allow_invalid):
        return 1
    as_of = args.as_of or date.today()
    patient = expand_iri(args.patient) if args.patient else None
    started = console.clock()
    try:
        derivation = derive(source.graph, as_of, args.engine, patient, validation=validation,
                            allow_invalid=args.allow_invalid, guidelines=args.guideline)
    except ValueError as error:
        raise InputError("--guideline", str(error)) from None
    if not derivation.patients:
        print("guidelinekg recommend: no gkg:Patient in the input", file=sys.stderr)
        return 2
    console.detail(f"derived {console.count(len(derivation.patients), 'result')} (a patient "
                   f"and guideline each) in {console.since(started)}")
    print_results(derivation, args.format, args.verbose)
    return 0


def said_validation(validation: PatientValidation, source: PatientInput | None = None,
                    allow_invalid: bool = False, data: Graph | None = None) -> bool:
    """What validation found, on standard error, before anything is derived: a record that
    violates the shapes is refused (False: nothing is derived), unless ``allow_invalid``;
    warnings and notes are said unless --quiet (the statements they name come out
    undetermined)."""
    from guidelinekg import console
    from guidelinekg.validation import text_report

    if validation.has_violations and not allow_invalid:
        print("guidelinekg recommend: the record violates the patient shapes; nothing is "
              "derived. Validation report:\n", file=sys.stderr)
        print(text_report(validation, source, data=data), file=sys.stderr)
        return False
    if validation.has_violations:
        print(text_report(validation, source, data=data), file=sys.stderr)
        print("guidelinekg recommend: --allow-invalid: the record violates the patient shapes; "
              "every result below is derived from an invalid record, for research only.",
              file=sys.stderr)
    elif validation.results:
        console.say(text_report(validation, source, data=data))
    return True


def print_results(derivation: Derivation, output_format: str, verbose: bool,
                  rdf: Graph | None = None) -> None:
    """The results on standard output (or the file of -o): json, turtle or text."""
    from guidelinekg.recommend_output import to_json, to_rdf, to_text

    if output_format == "json":
        print(to_json(derivation))
    elif output_format == "turtle":
        print((rdf if rdf is not None else to_rdf(derivation)).serialize(format="turtle"))
    else:
        print(to_text(derivation, verbose=verbose))
