"""What a command says on standard error besides its errors (issue 15): notes, progress and
summaries, which ``--quiet`` silences, and details (the files read, counts, timings), which
only ``--verbose`` shows.

Errors, refusals, validation violations and the command's output never go through here:
nothing silences them. The command line sets the level once per command
(:func:`configure`); the Python API leaves it at the default, notes on and details off.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

# What a terminal would act on rather than show: control characters (but newline and tab),
# which can retitle or clear it, and the bidirectional formatting characters, which reorder
# what follows them. A record's values reach the reports and messages a command writes.
_NOT_SHOWN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f"
                        "\u202a-\u202e\u2066-\u2069]")
# The same, line breaks and tabs included: for one line of a log.
_NOT_SHOWN_IN_A_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f"
                                  "\u202a-\u202e\u2066-\u2069]")


def terminal_text(text: str, one_line: bool = False) -> str:
    """Text as a terminal shows it: each control or bidirectional formatting character
    written as its escape (\\x1b, \\u202e). ``one_line``: newlines and tabs too (a log
    line that a value must not break or forge)."""
    return (_NOT_SHOWN_IN_A_LINE if one_line else _NOT_SHOWN).sub(_escape, text)


def _escape(found: re.Match[str]) -> str:
    code = ord(found[0])
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


class TerminalSafe:
    """A text stream that writes :func:`terminal_text` (standard error of every command:
    its errors, notes and reports)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        return self.stream.write(terminal_text(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


@dataclass
class _Level:
    command: str = ""
    quiet: bool = False
    verbose: bool = False


_level = _Level()


def configure(command: str, quiet: bool = False, verbose: bool = False) -> None:
    """The level of the command about to run (``guidelinekg COMMAND --quiet``...)."""
    _level.command, _level.quiet, _level.verbose = command, quiet, verbose


def is_quiet() -> bool:
    return _level.quiet


def is_verbose() -> bool:
    return _level.verbose


def say(line: str) -> None:
    """A note, a progress line or a summary: on standard error unless --quiet."""
    if not _level.quiet:
        print(line, file=sys.stderr, flush=True)


def warn(text: str) -> None:
    """A warning about the input (a file left unread): like a refusal, never silenced."""
    prefix = f"guidelinekg {_level.command}: " if _level.command else "guidelinekg: "
    print(prefix + "warning: " + text, file=sys.stderr, flush=True)


def detail(text: str) -> None:
    """A detail (``guidelinekg COMMAND: text``): on standard error with --verbose only."""
    if _level.verbose:
        prefix = f"guidelinekg {_level.command}: " if _level.command else "guidelinekg: "
        print(prefix + text, file=sys.stderr, flush=True)


def clock() -> float:
    return time.monotonic()


def since(started: float) -> str:
    """The time since ``started`` (:func:`clock`), in words for a detail."""
    return f"{time.monotonic() - started:.2f} s"


def count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def files_read(files: Sequence[Path | str], started: float, what: Iterable[str] = ()) -> None:
    """The detail of an input read: how many files, which (the first few), how long, and
    what they gave."""
    if not _level.verbose:
        return
    names = [str(path) for path in dict.fromkeys(files)]
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    gave = ", ".join(what)
    detail(f"read {count(len(names), 'file')} ({shown}) in {since(started)}"
           + (f": {gave}" if gave else ""))
