"""``guidelinekg import-fhir``: the command line of the FHIR importer."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rdflib import Graph

from guidelinekg.loading import bind_project_prefixes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Import FHIR R4 / mCODE JSON into the patient graph, read exactly as validate and "
        "recommend read the same files (folders give their .json files), with an import "
        "report of what became of each resource.")
    parser.add_argument("bundles", nargs="+", type=Path, metavar="BUNDLE.json",
                        help="FHIR R4 JSON files (Bundles or single resources), or folders; - "
                             "reads standard input")
    parser.add_argument("-o", "--output", type=Path, metavar="patient.ttl",
                        help="write the patient graph (Turtle) here, and the import report "
                             "to standard output; default, and -: the graph to standard "
                             "output and the report to standard error")


def run(args: argparse.Namespace) -> int:
    # The loader validate and recommend use: the same files give the same graph.
    from guidelinekg import console
    from guidelinekg.patients import load_patient_input

    started = console.clock()
    source = load_patient_input(args.bundles, fhir_only=True, quiet=True)
    assert source.fhir is not None
    console.files_read(source.files, started, [
        console.count(len(source.fhir.patients), "patient"),
        f"{len(source.graph):,} triples"])
    report = source.fhir.report_text()
    if len(set(source.files)) > 1:
        report += "".join(f"{line}\n" for line in source.provenance_lines())
    return write_import(args.output, source.graph, report)


def write_import(output: Path | str | None, graph: Graph, report: str,
                 never_quiet: Sequence[str] = ()) -> int:
    """The patient graph as Turtle on standard output with the report on standard error
    (``--quiet`` silences it, but for the ``never_quiet`` lines, said as warnings), or in
    ``output`` with the report on standard output."""
    from guidelinekg import console
    from guidelinekg.stdio import is_stdio, output_stream

    turtle = bind_project_prefixes(graph).serialize(format="turtle")
    if output is None or is_stdio(output):
        sys.stdout.write(turtle)
        if not console.is_quiet():
            sys.stderr.write(report)
        else:
            for line in never_quiet:
                console.warn(line)
        return 0
    # Written next to the file and moved into place: a write that fails leaves no part.
    with output_stream(output) as out:
        out.write(turtle)
    # The report quotes the record (codes, statuses): its control characters are written as
    # escapes, as on standard error, so that a record cannot clear or retitle a terminal.
    sys.stdout.write(console.terminal_text(f"wrote {output}\n{report}"))
    return 0
