"""The ``guidelinekg`` command line.

Each subcommand lives in the module of its responsibility, which provides
``add_arguments(parser)`` and ``run(args) -> int``; modules are imported only when
their command runs, so start-up stays fast.

Exit codes, the same for every command (``--help`` and the README list them):

- 0: done (for ``validate``: the records conform);
- 1: a record violates the shapes (``validate``, ``recommend``, ``import-fhir``), or
  ``check`` found errors;
- 2: bad input or usage (an unreadable file, an unknown query, a syntax error): one
  message, never a traceback;
- 3: an internal error (a bug): one line, and ``--debug`` shows the traceback;
- 4: the SPARQL store (``--endpoint``) could not be reached, refused the request or answered
  something unreadable: one message naming its URL and quoting its answer.

Library log records (rdflib logs a traceback for every ill-typed literal it reads) stay
off the terminal unless ``--debug`` asks for them: what the user must know is in the
command's own report. A reader that closes the output early (``| head``, ``less`` quit
early) ends the command quietly, with exit code 0 and nothing on standard error.

Usage mistakes are said plainly, with exit code 2: a mistyped command or option gets a
suggestion (``unknown option --as_of; did you mean --as-of?``) under the usage of the command
it was meant for, and an option value that is not a date or a port says what is expected.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import logging
import os
import re
import sys
import traceback
import warnings
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any, NoReturn

from guidelinekg import __version__, console

# command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("guidelinekg.checks",
              "check the guideline graph: reasoner, shapes, QC queries, coverage"),
    "query": ("guidelinekg.querying",
              "run a bundled or your own SPARQL query on the guideline graph"),
    "validate": ("guidelinekg.validation",
                 "validate patient records (RDF or FHIR) against the shapes"),
    "recommend": ("guidelinekg.recommend_command",
                  "derive recommendations, contraindications, care gaps, dose checks"),
    "import-fhir": ("guidelinekg.import_fhir_command",
                    "turn FHIR R4 / mCODE bundles or Bulk Data exports into a patient graph"),
    "publish": ("guidelinekg.publishing", "build the static linked-data site of the guideline"),
    "serve": ("guidelinekg.server", "serve the guideline with content negotiation and SPARQL"),
    "export-fhir": ("guidelinekg.fhir_export", "export the guideline as CPG-on-FHIR artefacts"),
    "synth": ("guidelinekg.synth", "make a synthetic cohort from template records (benchmarks)"),
    "load": ("guidelinekg.load_command",
             "write the guideline graph or patient records into a SPARQL 1.1 store"),
}

EXIT_DONE = 0
EXIT_VIOLATIONS = 1
EXIT_USAGE_OR_INPUT_ERROR = 2
EXIT_INTERNAL_ERROR = 3
EXIT_STORE_ERROR = 4
EXIT_CODES_HELP = ("exit codes: 0 done (records conform), 1 a record violates the shapes (or "
                   "check found errors), 2 bad input or usage, 3 internal error (--debug shows "
                   "the traceback), 4 the SPARQL store (--endpoint) could not be reached or "
                   "refused the request")


# What --quiet silences and --verbose adds, per command (both are on every command).
CHATTER: dict[str, tuple[str, str]] = {
    "check": ("nothing on standard error but errors (the report is the output)",
              "the guideline graph read, the time of each check"),
    "query": ("nothing on standard error but errors",
              "the query read, its form and parameters, the engine or store, the rows and "
              "the time"),
    "validate": ("no list of each patient's files (several inputs), no cohort progress; the "
                 "results in brief at the end of a cohort run stay",
                 "the files read, the patients and triples, the time of each step"),
    "recommend": ("no validation warnings and notes, no list of each patient's files, no "
                  "cohort progress (a cohort's closing summary stays)",
                  "the files read, the patients and triples, the time of each step; and "
                  "--format text names record items by their IRIs (by default by their class "
                  "and date, as a clinician reads them)"),
    "import-fhir": ("no import report on standard error (with -o FILE it is on standard "
                    "output, the output, and stays; an export's lines given to no patient "
                    "are still said, as warnings)",
                    "the files read, the patients and triples, the time"),
    "publish": ("no notes on standard error (the summary on standard output stays)",
                "the time the site took"),
    "serve": ("no access log and no 'building the site' and 'stopped' lines (the line saying "
              "where it serves stays)",
              "the time the site and the query workers took to start"),
    "export-fhir": ("no notes on codes without a display and, with --out -, no summary line",
                    "the Bundle's entries and the time"),
    "synth": ("no summary line on standard error",
              "the templates used, the time, where the cohort went"),
    "load": ("nothing on standard error but errors and refused records (what was written, on "
             "standard output, stays)",
             "the files read, the triples of each graph, the time of the writes and of the "
             "store check"),
}


def add_chatter_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """``--quiet`` and ``--verbose`` (one or the other), as the command means them."""
    quiet, verbose = CHATTER[command]
    chatter = parser.add_argument_group("what is said on standard error")
    exclusive = chatter.add_mutually_exclusive_group()
    exclusive.add_argument("--quiet", action="store_true",
                           help=f"no notes, progress or summaries on standard error: {quiet}; "
                                "errors, refusals and violations are never silenced")
    exclusive.add_argument("--verbose", action="store_true",
                           help=f"more detail on standard error: {verbose}")


DATE_EXAMPLE = "2026-12-01"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# A bad option value ("argument --as-of: ...") as argparse words its error.
_BAD_VALUE = re.compile(r"argument ([^:]+): (.*)", re.DOTALL)


def date_argument(text: str) -> date:
    """The argparse type of every option that takes a date: YYYY-MM-DD and a real day."""
    with contextlib.suppress(ValueError):
        if _DATE.fullmatch(text):
            return date.fromisoformat(text)
    raise argparse.ArgumentTypeError(f"{text} is not a date (YYYY-MM-DD, e.g. {DATE_EXAMPLE})")


def port_argument(text: str) -> int:
    """The argparse type of a TCP port: 1 to 65535, or 0 for one the system picks."""
    with contextlib.suppress(ValueError):
        port = int(text)
        if 0 <= port <= 65535:
            return port
    raise argparse.ArgumentTypeError(f"{text} is not a port (an integer from 1 to 65535, or 0 "
                                     "for a free one)")


# The longest time limit an option takes (query and serve --query-timeout, the store's
# --timeout): a day; a longer, infinite or NaN one is a mistake, not a limit.
MAX_SECONDS = 86_400.0


def seconds_problem(option: str, seconds: float) -> str | None:
    """What is wrong with a time limit given to ``option`` (None: nothing): it must be a
    number of seconds above 0 and at most a day. The one check of every such option."""
    if 0 < seconds <= MAX_SECONDS:  # false for NaN as well
        return None
    return f"{option} must be a number of seconds above 0 and at most {MAX_SECONDS:g} (a day)"


def count_problem(option: str, value: int, least: int, most: int) -> str | None:
    """What is wrong with a count given to ``option`` (None: nothing): it must be a whole
    number from ``least`` to ``most``."""
    if least <= value <= most:
        return None
    return f"{option} must be a whole number from {least} to {most}, not {value}"


class CommandParser(argparse.ArgumentParser):
    """An argument parser whose errors are one plain line under the usage of the command
    concerned; ``commands`` holds the subcommands' parsers (on the top-level one)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands: dict[str, argparse.ArgumentParser] = {}

    def error(self, message: str) -> NoReturn:
        bad_value = _BAD_VALUE.fullmatch(message)
        if bad_value:  # the option and what is wrong with its value say it all
            self.exit(EXIT_USAGE_OR_INPUT_ERROR, f"{self.prog}: {bad_value[1]}: {bad_value[2]}\n")
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE_OR_INPUT_ERROR, f"{self.prog}: {message}\n")


def build_parser(selected: str | None = None) -> CommandParser:
    """The parser; only the selected command's module is imported to add its options."""
    parser = CommandParser(
        prog="guidelinekg",
        description="A clinical practice guideline as a computable, publishable knowledge graph.",
        epilog=EXIT_CODES_HELP,
    )
    parser.add_argument("--version", action="version", version=f"guidelinekg {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show library log records and, on an internal error, the traceback")
    parser.add_argument("--library", action="append", metavar="DIR", default=[],
                        help="a folder laid out like the repository (guidelines/<id>/, "
                             "domains/<name>/) whose guidelines and domains are used beside "
                             "the bundled ones (repeatable; adds to GUIDELINEKG_LIBRARY)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text,
                                    epilog=EXIT_CODES_HELP)
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                         help="show library log records and, on an internal error, the traceback")
        add_chatter_arguments(sub, name)
        sub.set_defaults(_module=module_name)
        if name == selected:
            _module(module_name).add_arguments(sub)
        parser.commands[name] = sub
    return parser


def _module(name: str):
    return importlib.import_module(name)


def _did_you_mean(given: str, known: Iterable[str], quote: str = "") -> str:
    match = difflib.get_close_matches(given, list(known), n=1)
    return f"; did you mean {quote}{match[0]}{quote}?" if match else ""


def _command_of(argv: Sequence[str]) -> str | None:
    """The subcommand the user typed (known or not): the first word that is neither an
    option of the top-level parser nor the folder of ``--library``."""
    takes_value = False
    for token in argv:
        if takes_value:
            takes_value = False
        elif token.startswith("--l") and "--library".startswith(token):
            takes_value = True  # argparse takes an abbreviated option too
        elif not token.startswith("-"):
            return token
    return None


def _unknown_arguments(extras: Sequence[str], parser: argparse.ArgumentParser) -> str:
    option = next((extra for extra in extras if extra.startswith("-") and extra != "-"), None)
    if option is None:
        return f"unexpected argument{'s' if len(extras) > 1 else ''}: {' '.join(extras)}"
    name = option.split("=", 1)[0]
    known = (known for known in parser._option_string_actions if known.startswith("--"))
    return f"unknown option {name}{_did_you_mean(name, known)}"


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    """The parsed command line; a usage mistake ends the process with exit code 2 and one
    message (a suggestion where a known name is close)."""
    selected = _command_of(argv)
    if selected is not None and selected not in COMMANDS:
        parser = build_parser()
        parser.print_usage(sys.stderr)
        hint = _did_you_mean(selected, COMMANDS, quote="'") or f" (commands: {', '.join(COMMANDS)})"
        parser.exit(EXIT_USAGE_OR_INPUT_ERROR,
                    f"guidelinekg: unknown command '{selected}'{hint}\n")
    parser = build_parser(selected)
    args, extras = parser.parse_known_args(argv)
    if extras:
        # argparse reports these from the top-level parser; the command's usage helps more.
        target = parser.commands.get(getattr(args, "command", None) or "", parser)
        target.error(_unknown_arguments(extras, target))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    stderr = sys.stderr
    sys.stderr = console.TerminalSafe(stderr)
    try:
        code = _main(list(sys.argv[1:] if argv is None else argv))
        # Flushed here, not at exit: a reader gone by now is noticed where it is handled.
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_DONE
    finally:
        sys.stderr = stderr
    return code


def _main(argv: list[str]) -> int:
    from guidelinekg.loading import InputError
    from guidelinekg.resources import LIBRARY_VARIABLE, LibraryError, SettingError
    from guidelinekg.sparql import QueryError
    from guidelinekg.store import StoreError

    args = parse_arguments(argv)
    if not getattr(args, "command", None):
        build_parser().print_help()
        return EXIT_USAGE_OR_INPUT_ERROR
    debug = bool(getattr(args, "debug", False))
    _quiet_libraries(debug)
    console.configure(args.command, quiet=args.quiet, verbose=args.verbose)
    if args.library:
        listed = [os.environ.get(LIBRARY_VARIABLE, ""), *args.library]
        os.environ[LIBRARY_VARIABLE] = os.pathsep.join(part for part in listed if part)
    try:
        return int(_module(args._module).run(args) or 0)
    except (InputError, QueryError, LibraryError, SettingError) as error:
        print(f"guidelinekg {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE_OR_INPUT_ERROR
    except StoreError as error:
        print(f"guidelinekg {args.command}: error: {error}", file=sys.stderr)
        return EXIT_STORE_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        raise  # main ends the command quietly
    except Exception as error:  # the last line of defence: a bug, said once
        if debug:
            traceback.print_exc()
        print(f"guidelinekg {args.command}: internal error: {type(error).__name__}: "
              f"{_first_line(error)} (this is a bug; run again with --debug for the "
              "traceback)", file=sys.stderr)
        return EXIT_INTERNAL_ERROR


def output_directory(path: os.PathLike[str] | str) -> None:
    """Make the output folder of a command, or raise InputError saying why it cannot be:
    a file in the way (``--out README.md``), no permission."""
    from pathlib import Path

    from guidelinekg.loading import InputError

    folder = Path(path)
    blocking = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise InputError(folder, f"cannot write the output here: {blocking} is a file, not a "
                                 "folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(folder, f"cannot create the output folder: {error.strerror}") from None


def _quiet_libraries(debug: bool) -> None:
    """Library log records reach the terminal only with --debug."""
    if debug:
        logging.basicConfig(level=logging.WARNING)
        return
    for name in ("rdflib", "pyshacl", "owlready2", "urllib3", "py.warnings"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.CRITICAL + 1)
        logger.propagate = False
    # rdflib also warns ("Parsing weird boolean") where it logs: the literal checks say it.
    for module in ("rdflib", "pyshacl", "owlready2"):
        warnings.filterwarnings("ignore", module=module)


def _silence_stdout() -> None:
    # The reader has gone: further writes, and Python's flush at exit, must not fail again.
    with contextlib.suppress(OSError, ValueError, AttributeError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else "(no message)"


if __name__ == "__main__":
    sys.exit(main())
