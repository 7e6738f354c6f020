"""``guidelinekg import-fhir``: FHIR Bundles (guidelinekg.fhir_import's command line, as
validate and recommend read them) and FHIR Bulk Data exports (guidelinekg.bulk_import, as a
cohort run reads them), into one patient graph and an import report.

Input with an NDJSON file (given, in a folder, or on standard input) is read as an export;
any other input by the Bundle reader, unchanged. A ``.ndjson`` file is known by its suffix
(standard input by its content), never parsed as one JSON document.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

EXPORT_HELP = (
    " A FHIR Bulk Data export (its .ndjson files, one resource a line, with its manifest.json; "
    "a folder, the files, or several exports) is read as a cohort run reads it (each "
    "resource given to the patient it names), and the report has a line for every resource, "
    "and for every line given to no patient, with why. An export is held whole in memory "
    "here (one graph is written): a cohort run (recommend --format jsonl) reads any size.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from guidelinekg.fhir_import.command import add_arguments as bundle_arguments

    bundle_arguments(parser)
    parser.description = (parser.description or "") + EXPORT_HELP
    for action in parser._actions:
        if action.dest == "bundles":
            action.metavar = "PATH"
            action.help = ("FHIR R4 JSON files (Bundles or single resources), FHIR Bulk Data "
                           ".ndjson files, or folders of them; - reads standard input")


def run(args: argparse.Namespace) -> int:
    from guidelinekg.bulk_import import contains_ndjson
    from guidelinekg.fhir_import.command import run as run_bundles
    from guidelinekg.stdio import is_stdio, spool_stdin

    paths = list(args.bundles)
    if not any(is_stdio(path) for path in paths):
        return _run_exports(args, None) if contains_ndjson(paths) else run_bundles(args)
    with tempfile.TemporaryDirectory(prefix="guidelinekg-import-") as folder:
        # Standard input is told by its content, so it is copied first: an export is read
        # from the copy, anything else by the Bundle reader from the same bytes.
        copy = spool_stdin(Path(folder))
        if copy.suffix == ".ndjson" or contains_ndjson(paths):
            return _run_exports(args, copy)
        with _stdin_from(copy):
            return run_bundles(args)


@contextlib.contextmanager
def _stdin_from(copy: Path) -> Iterator[None]:
    """Standard input read again, from its copy."""
    saved = sys.stdin
    with copy.open("rb") as stream:
        sys.stdin = io.TextIOWrapper(stream, encoding="utf-8")
        try:
            yield
        finally:
            sys.stdin = saved


def _run_exports(args: argparse.Namespace, stdin: Path | None) -> int:
    from guidelinekg import console
    from guidelinekg.bulk_import import import_exports
    from guidelinekg.fhir_import.command import write_import
    from guidelinekg.loading import InputError
    from guidelinekg.patients import MAX_BLANK_NODE_DEPTH, blank_node_depth

    started = console.clock()
    imported = import_exports(args.bundles, stdin)
    depth = blank_node_depth(imported.fhir.graph)
    if depth > MAX_BLANK_NODE_DEPTH:  # as the Bundle reader checks its graph
        raise InputError(imported.files[0], f"blank nodes are nested {depth} levels deep")
    console.files_read(imported.files, started, [
        console.count(len(imported.fhir.patients), "patient"),
        f"{len(imported.fhir.graph):,} triples",
        console.count(len(imported.problems), "line") + " given to no patient"])
    return write_import(args.output, imported.fhir.graph, imported.report_text(),
                        never_quiet=imported.problem_lines())
