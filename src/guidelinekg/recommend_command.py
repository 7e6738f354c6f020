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

from guidelinekg.derivation import derive
from guidelinekg.loading import InputError
from guidelinekg.spark_cohorts import add_spark_arguments, run_spark


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from guidelinekg.cli import date_argument
    from guidelinekg.cohort_command import add_cohort_arguments
    from guidelinekg.store_commands import add_store_arguments

    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                        help="patient records: RDF files, FHIR JSON, or folders of them (or "
                             "--endpoint URL: from a SPARQL store)")
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
                             "has it in brief)")
    parser.add_argument("--verbose", action="store_true",
                        help="text: name record items by their IRIs (by default by their class "
                             "and date, as a clinician reads them)")
    parser.add_argument("--allow-invalid", action="store_true",
                        help="for research only: derive even from a record that violates the "
                             "shapes; every result is then marked as derived from an invalid "
                             "record")
    add_spark_arguments(parser)
    add_store_arguments(parser, results=True)


def run(args: argparse.Namespace) -> int:
    from guidelinekg.patients import absent_patient, load_patient_input
    from guidelinekg.recommend_output import to_json, to_rdf, to_text
    from guidelinekg.sparql import expand_iri
    from guidelinekg.store_commands import reads_store, run_recommend
    from guidelinekg.validation import text_report, validate_patients

    if reads_store(args):
        return run_recommend(args)
    if args.spark:
        return run_spark(args)
    if args.format in ("jsonl", "csv") or args.partition_size or args.workers > 1:
        from guidelinekg.cohort_command import run_cohort

        return run_cohort(args)
    source = load_patient_input(args.paths)
    # Said before validating: a mistyped IRI is a usage error, not a report on others.
    if absent := absent_patient(source.graph, expand_iri(args.patient) if args.patient else None):
        print(f"guidelinekg recommend: {absent}", file=sys.stderr)
        return 2
    validation = validate_patients(source.graph)
    if validation.has_violations and not args.allow_invalid:
        # A record that violates the shapes is refused: nothing is derived from it.
        print("guidelinekg recommend: the record violates the patient shapes; nothing is "
              "derived. Validation report:\n", file=sys.stderr)
        print(text_report(validation, source), file=sys.stderr)
        return 1
    if validation.results:
        # Warnings and notes: shown, and the statements they name come out undetermined.
        print(text_report(validation, source), file=sys.stderr)
    if validation.has_violations:
        print("guidelinekg recommend: --allow-invalid: the record violates the patient shapes; "
              "every result below is derived from an invalid record, for research only.",
              file=sys.stderr)
    as_of = args.as_of or date.today()
    patient = expand_iri(args.patient) if args.patient else None
    try:
        derivation = derive(source.graph, as_of, args.engine, patient, validation=validation,
                            allow_invalid=args.allow_invalid, guidelines=args.guideline)
    except ValueError as error:
        raise InputError("--guideline", str(error)) from None
    if not derivation.patients:
        print("guidelinekg recommend: no gkg:Patient in the input", file=sys.stderr)
        return 2
    if args.format == "json":
        print(to_json(derivation))
    elif args.format == "turtle":
        print(to_rdf(derivation).serialize(format="turtle"))
    else:
        print(to_text(derivation, verbose=args.verbose))
    return 0
