"""``-`` on the command line (issue 15): standard input where a file is read, standard output
where a file is written.

Standard input has no name, so its format is told from its content, here and nowhere else
(:func:`content_suffix`): JSON (FHIR or JSON-LD, told apart as a ``.json`` file's are),
NDJSON (FHIR Bulk Data), RDF/XML, N-Triples, N-Quads, or else Turtle. It can be read only
once: a reader that needs a file (a cohort run reads its input in two passes, ``check``
reads a spec twice) gets it spooled to a temporary file, deleted afterwards, and messages
still call it "standard input" (:func:`said_of_stdin`).

An output given as ``-`` is standard output. A folder cannot be, and two outputs of one
command cannot share it: both are usage errors (:func:`refuse_folder`,
:func:`one_standard_output`). ``-o FILE`` of ``recommend`` sends the command's output to a
file for the run (:func:`command_output`); ``-`` for another output then still means the
process's standard output (:func:`standard_output`). A file is written under a temporary
name beside it and moved into place only when the run succeeds (:class:`OutputFile`): a
refused input leaves no new empty or partial file, and an existing one as it was.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import stat
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from guidelinekg.loading import (
    MAX_FILE_BYTES,
    RDF_FORMATS,
    UTF8_BOM,
    InputError,
    parses_whole_as,
)
from guidelinekg.oxigraph import RdfFormat

STDIO_ARGUMENT = "-"
# Standard input as an input "file": its label in messages and provenance lines.
STDIN = Path("standard input")
# What the format of standard input is told from: its first mebibyte.
HEAD_BYTES = 1024 * 1024
_STEP_BYTES = 1024 * 1024
# Standard output while ``command_output`` sends the command's output to a file.
_outer_stdout: list[TextIO] = []


def is_stdio(path: Path | str | None) -> bool:
    """Whether a path given on the command line is ``-``."""
    return path is not None and str(path) == STDIO_ARGUMENT


# --------------------------------------------------------------------------------------
# Standard input


def _stdin_chunks() -> Iterator[bytes]:
    stream = sys.stdin.buffer
    try:
        while chunk := stream.read(_STEP_BYTES):
            yield chunk
    except OSError as error:
        raise InputError(STDIN, f"cannot be read ({error.strerror})") from None


def _too_large() -> InputError:
    return InputError(STDIN, f"too large (over the limit of {MAX_FILE_BYTES} bytes)")


def _empty() -> InputError:
    return InputError(STDIN, "empty (nothing was piped in)")


def read_stdin() -> bytes:
    """Standard input's bytes, read in steps up to the size limit of a file."""
    chunks: list[bytes] = []
    size = 0
    for chunk in _stdin_chunks():
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_FILE_BYTES:
            raise _too_large()
    data = b"".join(chunks)
    if not data.strip():
        raise _empty()
    return data


def _json_lines(text: bytes) -> bool:
    """Whether JSON text is NDJSON: a first line that is a whole JSON object, and more."""
    first, _, rest = text.partition(b"\n")
    if not rest.strip():
        return False
    try:
        return isinstance(json.loads(first), dict)
    except (ValueError, RecursionError):
        return False


@functools.lru_cache(maxsize=4)  # asked again by each reader of the same input
def content_suffix(head: bytes, whole: bool) -> str:
    """The file suffix standard input reads as, told from its first bytes (``whole``: they
    are all of it): ``.json`` (FHIR or JSON-LD), ``.ndjson`` (a JSON object a line),
    ``.rdf`` (RDF/XML), ``.nt`` or ``.nq`` (its first lines are N-Triples, N-Quads), else
    ``.ttl``."""
    text = head.removeprefix(UTF8_BOM).lstrip()
    if text[:1] in (b"{", b"["):
        return ".ndjson" if _json_lines(text) else ".json"
    if text.startswith((b"<?xml", b"<rdf:RDF")):
        return ".rdf"
    lines = head if whole or b"\n" not in head else head[:head.rindex(b"\n") + 1]
    if parses_whole_as(lines, ".nt"):
        return ".nt"
    if parses_whole_as(lines, ".nq"):
        return ".nq"
    return ".ttl"


# What each suffix content_suffix gives reads as, in words.
CONTENT_NAMES = {".json": "JSON (FHIR or JSON-LD)", ".ndjson": "FHIR Bulk Data NDJSON",
                 ".rdf": "RDF/XML", ".nt": "N-Triples", ".nq": "N-Quads", ".ttl": "Turtle"}


def stdin_suffix(data: bytes) -> str:
    """:func:`content_suffix` of all of standard input, read whole: FHIR Bulk Data NDJSON is
    refused, since only a cohort run reads it (from a spooled copy)."""
    suffix = content_suffix(data[:HEAD_BYTES], len(data) <= HEAD_BYTES)
    if suffix == ".ndjson":
        raise InputError(STDIN, "FHIR Bulk Data NDJSON (a resource a line) is read by a cohort "
                                "run (recommend or validate --format jsonl -)")
    return suffix


def stdin_rdf_format(data: bytes) -> RdfFormat:
    """The RDF format standard input, read whole, is parsed in (N-Triples as Turtle, which
    it is a part of: Turtle reads all of it, whatever its first lines were)."""
    suffix = stdin_suffix(data)
    return RDF_FORMATS[".ttl" if suffix == ".nt" else suffix]


def spool_stdin(folder: Path, limit: int | None = None, suffix: str | None = None) -> Path:
    """Standard input copied to ``folder``/``standard-input<suffix>``, the suffix told from
    its content (:func:`content_suffix`) unless given; at most ``limit`` bytes when given
    (a cohort's N-Triples, N-Quads and NDJSON are streamed, with no limit)."""
    spooled = folder / "standard-input"
    head = b""
    size = 0
    with spooled.open("wb") as stream:
        for chunk in _stdin_chunks():
            if len(head) < HEAD_BYTES:
                head += chunk[:HEAD_BYTES - len(head)]
            size += len(chunk)
            if limit is not None and size > limit:
                raise _too_large()
            stream.write(chunk)
    if not head.strip():
        raise _empty()
    named = spooled.with_name(spooled.name + (suffix or content_suffix(head, size == len(head))))
    return spooled.rename(named)


@contextlib.contextmanager
def said_of_stdin(spooled: Path | None) -> Iterator[None]:
    """An InputError that names the spooled copy of standard input says "standard input"."""
    try:
        yield
    except InputError as error:
        if spooled is None or error.path != str(spooled):
            raise
        raise InputError(STDIN, error.detail, error.line, error.column) from None


@contextlib.contextmanager
def stdin_file(suffix: str | None = None) -> Iterator[Path]:
    """Standard input as a temporary file (removed afterwards), for a reader that needs a
    file; read up to the size limit of a file, its suffix told from its content unless
    given."""
    with tempfile.TemporaryDirectory(prefix="guidelinekg-stdin-") as folder:
        spooled = spool_stdin(Path(folder), MAX_FILE_BYTES, suffix)
        if spooled.suffix == ".nt":  # read whole: as Turtle, which reads all of it
            spooled = spooled.rename(spooled.with_suffix(".ttl"))
        with said_of_stdin(spooled):
            yield spooled


def one_standard_input(given: Mapping[str, Path | str | Sequence[Path | str] | None]) -> None:
    """Usage error when ``-`` is given to more than one option (option -> its value or
    values): standard input is read once."""
    named = [option for option, value in given.items()
             if any(is_stdio(item) for item in ([value] if value is None or isinstance(
                 value, Path | str) else value))]
    if len(named) > 1:
        raise InputError(STDIN, f"given twice (as - to {' and '.join(named)}); it can be "
                                "read only once")


# --------------------------------------------------------------------------------------
# Standard output


def refuse_folder(option: str, path: Path | str | None, what: str) -> None:
    """Usage error for ``-`` where a folder is written (``what`` the command writes)."""
    if is_stdio(path):
        raise InputError(option, f"{what} is a folder of files, which cannot be standard "
                                 "output (-): give a folder")


def one_standard_output(option: str, outputs: Mapping[str, Path | str | None],
                        hint: str = "write one of them to a file") -> None:
    """Usage error, said of ``option``, when two outputs would both be standard output (what
    -> its path; None or ``-``: standard output)."""
    on_stdout = [what for what, path in outputs.items() if path is None or is_stdio(path)]
    if len(on_stdout) > 1:
        raise InputError(option, f"{' and '.join(on_stdout)} would both go to standard "
                                 f"output; {hint}")


def standard_output() -> TextIO:
    """The stream ``-`` names: the process's standard output, even while the command's own
    output goes to a file (:func:`command_output`)."""
    return _outer_stdout[-1] if _outer_stdout else sys.stdout


class OutputFile:
    """A file being written: under a temporary name beside it (same folder, so that the move
    is atomic) until :meth:`commit` moves it into place; :meth:`discard` removes it, leaving
    the target as it was (absent, or its old content). A target that exists and is not a
    regular file (``/dev/null``, a FIFO) is written in place: it cannot be replaced."""

    def __init__(self, path: Path) -> None:
        if path.is_dir():
            raise InputError(path, "is a folder; give the file to write (or - for standard "
                                   "output)")
        self.path = path
        # A link is followed: the file it names is replaced, the link stays.
        self.target = Path(os.path.realpath(path))
        self.temporary: Path | None = None
        try:
            if self.target.exists() and not self.target.is_file():
                self.stream: TextIO = self.target.open("w", encoding="utf-8")
            else:
                self.stream = self._create_temporary()
        except OSError as error:
            raise InputError(path, f"cannot write the file ({error.strerror})") from None

    def _create_temporary(self) -> TextIO:
        # The target's own permissions when it exists; else a new file's (umask applies).
        mode = stat.S_IMODE(self.target.stat().st_mode) if self.target.exists() else 0o666
        while True:
            candidate = self.target.with_name(f".{self.target.name}."
                                              f"{secrets.token_hex(4)}.partial")
            try:
                descriptor = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            except FileExistsError:
                continue
            self.temporary = candidate
            if self.target.exists():
                os.fchmod(descriptor, mode)  # os.open's mode was reduced by the umask
            return os.fdopen(descriptor, "w", encoding="utf-8")

    def commit(self) -> None:
        """The file written, in place."""
        self.stream.close()
        if self.temporary is None:
            return
        try:
            os.replace(self.temporary, self.target)
        except OSError as error:
            self.discard()
            raise InputError(self.path, f"cannot write the file ({error.strerror})") from None
        self.temporary = None

    def discard(self) -> None:
        """The file not written: the temporary one removed, the target left as it was."""
        with contextlib.suppress(OSError):
            self.stream.close()
        if self.temporary is not None:
            with contextlib.suppress(OSError):
                self.temporary.unlink()
            self.temporary = None


@dataclass
class CommandOutputs:
    """The files a command run writes (:func:`command_output`), kept only if it succeeds:
    the command sets ``keep`` False when it fails without an exception (an exit code)."""

    files: list[OutputFile] = field(default_factory=list)
    keep: bool = True

    def finish(self, succeeded: bool) -> None:
        try:
            for output in self.files:
                if succeeded and self.keep:
                    output.commit()
                else:
                    output.discard()
        finally:  # a commit that failed leaves none of the others half done
            for output in self.files:
                output.discard()  # nothing left to do for a committed one


# The runs under way (command_output): their files are committed when the run ends.
_runs: list[CommandOutputs] = []


def open_output_file(path: Path) -> OutputFile:
    """A file to write (see OutputFile), or InputError saying why it cannot be written."""
    return OutputFile(path)


@contextlib.contextmanager
def _written(output: OutputFile) -> Iterator[TextIO]:
    """The output's stream; the file is kept when the run it belongs to succeeds or, outside
    a run, when the block ends without an exception."""
    if _runs:
        _runs[-1].files.append(output)
        yield output.stream
        output.stream.flush()
        return
    try:
        yield output.stream
    except BaseException:
        output.discard()
        raise
    output.commit()


@contextlib.contextmanager
def output_stream(path: Path | str | None) -> Iterator[TextIO]:
    """The stream to write an output to: the file, or standard output for None and ``-``
    (left open). A failed run leaves no new file and an existing one as it was."""
    if path is None or is_stdio(path):
        yield standard_output()
        return
    with _written(open_output_file(Path(path))) as stream:
        yield stream


@contextlib.contextmanager
def command_output(path: Path | str | None) -> Iterator[CommandOutputs]:
    """The command's output (what it prints to ``sys.stdout``) to the file for the duration;
    None and ``-``: standard output, as without the option. The files written meanwhile
    (this one and those of :func:`output_stream`) are moved into place only when the block
    ends without an exception and the command has not set ``keep`` False."""
    outputs = CommandOutputs()
    _runs.append(outputs)
    succeeded = False
    try:
        if path is None or is_stdio(path):
            yield outputs
        else:
            output = open_output_file(Path(path))
            outputs.files.append(output)
            _outer_stdout.append(sys.stdout)
            try:
                with contextlib.redirect_stdout(output.stream):
                    yield outputs
            finally:
                _outer_stdout.pop()
        succeeded = True
    finally:
        _runs.pop()
        outputs.finish(succeeded)
