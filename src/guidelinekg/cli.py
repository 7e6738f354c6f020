"""The ``guidelinekg`` command line.

Each subcommand lives in the module of its responsibility, which provides
``add_arguments(parser)`` and ``run(args) -> int``; modules are imported only when
their command runs, so start-up stays fast. Errors a user can cause (a bad file, an
unknown query, a syntax error) end with a clear message and exit code 2, never a
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from guidelinekg import __version__

# command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("guidelinekg.checks",
              "check the guideline graph: reasoner, shapes, QC queries, coverage"),
    "query": ("guidelinekg.querying",
              "run a bundled or your own SPARQL query on the guideline graph"),
    "validate": ("guidelinekg.validation",
                 "validate patient records (RDF or FHIR) against the shapes"),
    "recommend": ("guidelinekg.derivation",
                  "derive recommendations, contraindications, care gaps, dose checks"),
    "import-fhir": ("guidelinekg.fhir_import", "turn FHIR R4 / mCODE bundles into a patient graph"),
    "publish": ("guidelinekg.publishing", "build the static linked-data site of the guideline"),
    "serve": ("guidelinekg.server", "serve the guideline with content negotiation and SPARQL"),
    "export-fhir": ("guidelinekg.fhir_export", "export the guideline as CPG-on-FHIR artefacts"),
}

EXIT_USAGE_OR_INPUT_ERROR = 2


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """The parser; only the selected command's module is imported to add its options."""
    parser = argparse.ArgumentParser(
        prog="guidelinekg",
        description="A clinical practice guideline as a computable, publishable knowledge graph.",
    )
    parser.add_argument("--version", action="version", version=f"guidelinekg {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(_module=module_name)
        if name == selected:
            _module(module_name).add_arguments(sub)
    return parser


def _module(name: str):
    return importlib.import_module(name)


def main(argv: Sequence[str] | None = None) -> int:
    from guidelinekg.loading import InputError
    from guidelinekg.sparql import QueryError

    argv = list(sys.argv[1:] if argv is None else argv)
    selected = next((arg for arg in argv if not arg.startswith("-")), None)
    parser = build_parser(selected)
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE_OR_INPUT_ERROR
    try:
        return int(_module(args._module).run(args) or 0)
    except (InputError, QueryError) as error:
        print(f"guidelinekg {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE_OR_INPUT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
