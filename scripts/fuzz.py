"""Fuzzing ``guidelinekg validate`` and ``guidelinekg recommend`` with mutated patient records.

The command-line contract (src/guidelinekg/cli.py): exit 0 done / conforms, 1 the record
violates the shapes, 2 bad input or usage (one message, never a traceback), 3 an internal
error (a bug). Every other ending of a run is a finding, of one of these classes:

- ``traceback``: "Traceback (most recent call last)" on stdout or stderr, or an exception
  that escaped ``cli.main`` (the real command would print a traceback);
- ``exit-3``: the run ended in exit 3 (an internal error: a bug);
- ``other-exit``: any exit code but 0, 1, 2 and 3;
- ``slow``: the run took longer than the time bound (10 s by default);
- ``network``: a socket was created, bound or connected, a host name looked up, or the
  canary listener of a campaign was reached (that one also sees native code);
- ``stray-file``: a file was opened outside the input file, the project's package,
  ontology, queries and shapes folders, Python's own installation and site-packages,
  /dev/null, /proc and the temporary folder made for the run;
- ``process``: a subprocess was started;
- ``crash`` and ``hang`` (campaigns and the CI test only): the worker process died on the
  input (a segfault, an abort, the memory limit) or was killed after the hard time limit.

How a run is watched: :func:`run_one` calls ``guidelinekg.cli.main`` in this process, with
stdout and stderr captured, timed, and inside an audit window: a ``sys.addaudithook`` hook
(installed once; hooks cannot be removed, so it checks a module-level armed flag) records
``open`` events, socket events and subprocess events while armed. File paths are
classified after the run, unarmed. The audit hook sees what Python code does; a file that
native code (pyoxigraph is Rust) opens itself is not seen, and native network access is
seen only when it reaches the canary listener whose address the mutator puts in IRIs,
contexts and external entities.

The mutator is deterministic: input ``i`` of format ``f`` under seed ``s`` is made by
``random.Random(f"{s}:{f}:{i}")`` from one of the seed records (tests/data/fuzz-seeds/), so
one input can be made again alone (``--replay``). Mutations are byte-level (flip, insert,
delete, duplicate ranges, truncate), token-level for RDF (odd lexical forms and datatypes,
blank nodes for literals, odd IRIs, deep nesting, duplicate subjects, prefix and context
changes, XML entities) and structure-level for JSON (dropped and duplicated keys, wrong
JSON types, huge numbers, deep nesting, invalid dates and units, negative doses, unknown
resource types, odd references, duplicated entries).

A campaign runs the inputs in worker processes (each calls :func:`run_one` in-process) so
that an input that crashes or hangs the interpreter is reported as such and the campaign
goes on::

    .venv/bin/python scripts/fuzz.py --per-format 3000 --seed 1 \\
        --formats ttl,jsonld,nt,rdf,fhir --out /tmp/fuzz-findings

Each failing input is written to the output folder with a JSON file saying what happened;
``summary.json`` has the totals, which are also printed per format. Stdlib and the
project's own dependencies only.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import random
import re
import shutil
import site
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEEDS_DIR = ROOT / "tests" / "data" / "fuzz-seeds"
FORMATS: dict[str, str] = {"ttl": ".ttl", "jsonld": ".jsonld", "nt": ".nt", "rdf": ".rdf",
                           "fhir": ".json"}
AS_OF = "2026-12-01"
SLOW_SECONDS = 10.0
HARD_TIMEOUT_SECONDS = 120.0
ALLOWED_EXIT_CODES = frozenset({0, 1, 2})
TRACEBACK_TEXT = "Traceback (most recent call last)"
FINDING_CLASSES = ("traceback", "exit-3", "other-exit", "slow", "network", "stray-file",
                   "process", "crash", "hang")
# Mutants are capped at this size (a huge literal or a deep nesting stays below it).
MAX_MUTANT_BYTES = 8 * 1024 * 1024
DEFAULT_CANARY = "127.0.0.1:9"

XSD = "http://www.w3.org/2001/XMLSchema#"
GKG = "https://w3id.org/guidelinekg/ontology#"


# =======================================================================================
# The audit window
# =======================================================================================

NETWORK_EVENTS = frozenset({
    "socket.__new__", "socket.bind", "socket.connect", "socket.getaddrinfo",
    "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo", "socket.sendto",
    "socket.sendmsg", "urllib.Request", "http.client.connect", "ftplib.connect",
    "smtplib.connect", "poplib.connect", "imaplib.open", "telnetlib.Telnet.open",
})
PROCESS_EVENTS = frozenset({
    "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
    "os.forkpty", "pty.spawn",
})

_ARMED = False
_HOOK_INSTALLED = False
_EVENTS: list[tuple[str, tuple]] = []


def _audit_hook(event: str, args: tuple) -> None:
    # Runs for every audit event of the process: cheap when unarmed, and it records raw
    # values only (classifying here could raise events of its own).
    if not _ARMED:
        return
    if event == "open":
        _EVENTS.append((event, (args[0], args[1] if len(args) > 1 else None)))
    elif event in NETWORK_EVENTS or event in PROCESS_EVENTS:
        _EVENTS.append((event, tuple(
            a if isinstance(a, str | int | float | bytes | tuple | type(None))
            else type(a).__name__ for a in args)))


def install_audit_hook() -> None:
    """Install the audit hook once per process (it stays: hooks cannot be removed)."""
    global _HOOK_INSTALLED
    if not _HOOK_INSTALLED:
        sys.addaudithook(_audit_hook)
        _HOOK_INSTALLED = True


def _real(path: str | os.PathLike) -> str:
    return os.path.realpath(os.path.abspath(os.fspath(path)))


def _base_allowed_roots() -> list[str]:
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, "/proc"}
    roots.update(site.getsitepackages())
    with contextlib.suppress(Exception):
        roots.add(site.getusersitepackages())
    for name in ("stdlib", "platstdlib", "purelib", "platlib"):
        with contextlib.suppress(KeyError):
            roots.add(sysconfig.get_paths()[name])
    import guidelinekg
    from guidelinekg.resources import modules, ontology_dir, queries_dir, shapes_dir

    roots.add(str(Path(guidelinekg.__file__).parent))
    roots.update(str(folder()) for folder in (ontology_dir, queries_dir, shapes_dir))
    roots.update(str(module.folder) for module in modules() if module.kind != "core")
    return sorted({_real(root) for root in roots if root})


_ALLOWED_ROOTS: list[str] | None = None


def allowed_roots() -> list[str]:
    global _ALLOWED_ROOTS
    if _ALLOWED_ROOTS is None:
        _ALLOWED_ROOTS = _base_allowed_roots()
    return _ALLOWED_ROOTS


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


@dataclass
class AuditRecord:
    """What happened inside one audit window."""

    network: list[str] = field(default_factory=list)
    stray_files: list[str] = field(default_factory=list)
    processes: list[str] = field(default_factory=list)


@contextlib.contextmanager
def audit_window(input_paths: Sequence[str | os.PathLike],
                 run_dir: str | os.PathLike | None = None) -> Iterator[AuditRecord]:
    """Arm the audit hook for the body; on exit, the record lists every network event,
    subprocess and file opened outside the allowed places (the input files, the run's
    temporary folder, the project's resources, Python's installation)."""
    global _ARMED
    install_audit_hook()
    roots = allowed_roots()  # computed before arming: it opens nothing, but imports might
    exact = {_real(p) for p in input_paths} | {"/dev/null"}
    run_root = _real(run_dir) if run_dir is not None else None
    record = AuditRecord()
    _EVENTS.clear()
    _ARMED = True
    try:
        yield record
    finally:
        _ARMED = False
        events = list(_EVENTS)
        _EVENTS.clear()
        seen: set[str] = set()
        for event, args in events:
            if event == "open":
                target = args[0]
                if isinstance(target, int):
                    continue  # an already open descriptor
                try:
                    path = _real(os.fsdecode(target))
                except (TypeError, ValueError):
                    path = repr(target)
                if (path in exact or (run_root and _inside(path, run_root))
                        or any(_inside(path, root) for root in roots) or path in seen):
                    continue
                seen.add(path)
                record.stray_files.append(f"{path} (mode {args[1]!r})")
            elif event in NETWORK_EVENTS:
                record.network.append(f"{event}{args!r}"[:300])
            else:
                record.processes.append(f"{event}{args!r}"[:300])


# =======================================================================================
# One run
# =======================================================================================


@dataclass
class Outcome:
    """How one run of the command line ended."""

    path: str
    command: str
    exit_code: int | None  # None: an exception escaped main() (or the worker died)
    traceback: bool
    elapsed: float
    network: list[str] = field(default_factory=list)
    stray_files: list[str] = field(default_factory=list)
    processes: list[str] = field(default_factory=list)
    stderr_first_line: str = ""
    exception: str | None = None  # the escaped exception's traceback
    crash: str | None = None  # campaign: the worker died ("crash") or was killed ("hang")
    stdout_chars: int = 0
    python_warning: bool = False  # not a finding: a "...Warning:" line of Python's on stderr

    def findings(self, slow: float = SLOW_SECONDS) -> list[str]:
        found = []
        if self.crash is not None:
            found.append("hang" if self.crash.startswith("hang") else "crash")
        if self.traceback or self.exception:
            found.append("traceback")
        if self.exit_code == 3:
            found.append("exit-3")
        elif self.exit_code is not None and self.exit_code not in ALLOWED_EXIT_CODES:
            found.append("other-exit")
        if self.elapsed > slow:
            found.append("slow")
        if self.network:
            found.append("network")
        if self.stray_files:
            found.append("stray-file")
        if self.processes:
            found.append("process")
        return found

    def describe(self, slow: float = SLOW_SECONDS) -> str:
        """One line: the input, the command, how it ended and what it said first."""
        what = ", ".join(self.findings(slow)) or "ok"
        said = self.stderr_first_line
        if not said and self.exception:
            said = self.exception.strip().splitlines()[-1]
        said = said or self.crash or ""
        extra = "; ".join(self.network[:1] + self.stray_files[:1] + self.processes[:1])
        return (f"{self.path} [{self.command}] exit={self.exit_code} {self.elapsed:.2f}s "
                f"{what}: {said}{' | ' + extra if extra else ''}")


_PYTHON_WARNING = re.compile(r"\.py:\d+: \w*Warning: ")


def command_argv(path: str | os.PathLike, command: str, as_of: str = AS_OF) -> list[str]:
    if command == "validate":
        return ["validate", str(path)]
    if command == "recommend":
        return ["recommend", str(path), "--as-of", as_of]
    raise ValueError(f"unknown command {command!r}")


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:300]
    return ""


def _system_exit_code(error: SystemExit) -> int:
    if error.code is None:
        return 0
    if isinstance(error.code, int):
        return error.code
    return 1  # sys.exit("message") prints the message and exits 1


def run_one(path: str | os.PathLike, command: str, *, as_of: str = AS_OF,
            run_parent: str | os.PathLike | None = None) -> Outcome:
    """Run ``guidelinekg COMMAND PATH`` in this process, captured, timed and audited.

    The run gets a temporary folder of its own (in ``run_parent`` if given: a worker
    that is killed leaves it there for its campaign to remove)."""
    from guidelinekg.cli import main as cli_main

    install_audit_hook()
    argv = command_argv(path, command, as_of)
    run_dir = tempfile.mkdtemp(prefix="guidelinekg-fuzz-run-", dir=run_parent)
    saved_tempdir, saved_env = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir = os.environ["TMPDIR"] = run_dir
    out, err = io.StringIO(), io.StringIO()
    exit_code: int | None = None
    exception = None
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
                audit_window([path], run_dir) as audit:
            start = time.perf_counter()
            try:
                exit_code = cli_main(argv)
            except SystemExit as error:
                exit_code = _system_exit_code(error)
            except KeyboardInterrupt:
                raise
            except BaseException:
                exception = traceback.format_exc()
            elapsed = time.perf_counter() - start
    finally:
        tempfile.tempdir = saved_tempdir
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env
        shutil.rmtree(run_dir, ignore_errors=True)
    if exit_code == 130:  # main() turns Ctrl-C into 130: stop, this is no finding
        raise KeyboardInterrupt
    stdout, stderr = out.getvalue(), err.getvalue()
    return Outcome(
        path=str(path), command=command, exit_code=exit_code,
        traceback=TRACEBACK_TEXT in stdout or TRACEBACK_TEXT in stderr,
        elapsed=round(elapsed, 4), network=audit.network, stray_files=audit.stray_files,
        processes=audit.processes, stderr_first_line=_first_line(stderr),
        exception=exception, stdout_chars=len(stdout),
        python_warning=bool(_PYTHON_WARNING.search(stderr)))


# =======================================================================================
# The mutator
# =======================================================================================

ODD_LEXICALS = (
    "-0", "NaN", "INF", "-INF", "2026-13-45", "", "12345678901234567890",
    "-12345678901234567890", "0000-00-00", "2026-02-30", "2026-09-01T25:61:00Z",
    "-2026-09-01", "2026-09-01Z", "2026-09-01+14:01", "+1", "1e400", "-1e400", "0x10", "1,5",
    " 7 ", "true false", "tRuE", "2", "-1", "0", "1.", ".5", "-.0e-0", "\u216b", "\u0663",
    "\u0000", "\ufeff2026-09-01", "2026-09-01\n", "9" * 5000, "1" + "0" * 400 + ".5",
    "99999-12-31", "-999999999-01-01", "P1Y", "\"'<>&", "${jndi:ldap://127.0.0.1/a}",
)
CORE_DATATYPES = ("date", "decimal", "integer", "boolean")
OTHER_DATATYPES = ("dateTime", "double", "float", "string", "gYear", "nonNegativeInteger",
                   "anyURI", "duration", "nonsense")
HUGE_LENGTHS = (10_000, 300_000, 1_000_000)
DEEP_LEVELS = (51, 60, 500, 3000, 20_000, 100_000)


def odd_iris(canary: str, name: str) -> tuple[str, ...]:
    return (
        "", "#", "x", "../../../../../etc/passwd", "file:///etc/passwd", "file:///etc/hostname",
        f"http://{canary}/{name}", f"https://{canary}/{name}", "urn:x", "urn:uuid:",
        "http://example.org/a b", "http://[::1]/", "http://user:pass@example.org:0/",
        "javascript:alert(1)", "http://example.org/\u00e9\u4e2d", "http://example.org/%00",
        GKG, GKG + "Unknown", GKG + "Patient", "https://w3id.org/guidelinekg/code/",
        "https://w3id.org/guidelinekg/code/positive", "http://example.org/" + "a" * 100_000,
        "http://example.org/x>y", "data:text/plain,hi", "\\u0000", "_:b1",
    )


def odd_lexical(rng: random.Random) -> str:
    if rng.random() < 0.1:
        return "x" * rng.choice(HUGE_LENGTHS)
    return rng.choice(ODD_LEXICALS)


def odd_datatype(rng: random.Random, core_only: bool = False) -> str:
    pool = CORE_DATATYPES if core_only or rng.random() < 0.6 else OTHER_DATATYPES
    if not core_only and rng.random() < 0.05:
        return rng.choice(("http://example.org/dt", "", "xsd:date", GKG + "Patient"))
    return XSD + rng.choice(pool)


def _odd_number_text(rng: random.Random) -> str:
    return rng.choice(("1e400", "-1e400", "NaN", "Infinity", "-Infinity", "-0", "-0.0",
                       "12345678901234567890", "-12345678901234567890", "9" * 5000,
                       "1" + "0" * 400, "1e-400", "0.1e1000000", "123456789.123456789e5"))


# ---------------------------------------------------------------------------------------
# Byte level
# ---------------------------------------------------------------------------------------

INTERESTING_BYTES = (b"\x00", b"\xff\xfe", b"\xef\xbb\xbf", b'"', b"<", b">", b"{", b"}",
                     b"[", b"]", b"\\", b"\\u0000", b"]]>", b"\r", b"\xc3\x28", b"\xed\xa0\x80",
                     b"@prefix", b"^^", b" .", b";", b"#", b"&", b"&amp;", b"<!--", b"null",
                     b"\n", b"\t", b"_:", b"'''", b'"""', b"\xf0\x9f\x92\xa9")


def mutate_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    buf = bytearray(data)
    op = rng.choice(("flip", "insert", "delete", "duplicate", "truncate"))
    n = len(buf)
    if op == "flip" and n:
        for _ in range(rng.randint(1, 8)):
            buf[rng.randrange(n)] ^= 1 << rng.randrange(8)
    elif op == "insert":
        pos = rng.randint(0, n)
        chunk = (rng.choice(INTERESTING_BYTES) if rng.random() < 0.6
                 else bytes(rng.randrange(256) for _ in range(rng.randint(1, 16))))
        buf[pos:pos] = chunk
    elif op == "delete" and n:
        start = rng.randrange(n)
        del buf[start:start + rng.randint(1, 64)]
    elif op == "duplicate" and n:
        start = rng.randrange(n)
        piece = bytes(buf[start:start + rng.randint(1, max(1, n // 4))])
        times = min(rng.choice((1, 1, 2, 10, 1000)), max(1, MAX_MUTANT_BYTES // len(piece)))
        pos = rng.randint(0, n)
        buf[pos:pos] = piece * times
    else:  # truncate (or an op that had nothing to work on)
        op = "truncate"
        del buf[rng.randint(0, n):]
    return bytes(buf), f"byte:{op}"


# ---------------------------------------------------------------------------------------
# Token level: Turtle and N-Triples
# ---------------------------------------------------------------------------------------

_TTL_TOKEN = re.compile(r'''
    (?P<comment>\#[^\n]*)
  | (?P<typed>"(?:[^"\\\n]|\\.)*"\^\^(?:<[^<>"\s]*>|[A-Za-z][\w-]*:[\w.-]*))
  | (?P<string>"(?:[^"\\\n]|\\.)*"(?:@[A-Za-z][A-Za-z0-9-]*)?)
  | (?P<iri><[^<>"\s]*>)
  | (?P<pname>(?<![\w:])[A-Za-z][\w-]*:[A-Za-z_][\w-]*(?:\.[\w-]+)*)
  | (?P<bare>(?<![\w.:-])(?:true|false|[+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(?![\w:]))
''', re.VERBOSE)
_LITERAL_KINDS = ("typed", "string", "bare")


def _ttl_escape(text: str) -> str:
    return (text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            .replace("\r", "\\r"))


def _ttl_literal(lexical: str, datatype: str) -> str:
    return f'"{_ttl_escape(lexical)}"^^<{datatype}>'


def _tokens(text: str, kinds: Sequence[str]) -> list[re.Match]:
    # Only the start of a large text is looked at: its spans are the same in the whole.
    return [m for m in _TTL_TOKEN.finditer(text[:200_000]) if m.lastgroup in kinds]


def _splice(text: str, match: re.Match, new: str) -> str:
    return text[:match.start()] + new + text[match.end():]


def _lexical_and_datatype(token: re.Match) -> tuple[str, str | None]:
    value = token.group()
    if token.lastgroup == "typed":
        lexical, _, datatype = value.rpartition("^^")
        return lexical[1:-1], datatype
    if token.lastgroup == "string":
        return value[1:value.rindex('"')], None
    return value, None


def _line_subjects(text: str) -> list[str]:
    subjects = []
    for line in text.splitlines():
        if line and not line[0].isspace() and line[0] not in "@#":
            subject = line.split()[0]
            if subject != "PREFIX" and subject != "BASE":
                subjects.append(subject)
    return subjects


def mutate_turtle_tokens(text: str, rng: random.Random, fmt: str, canary: str,
                         name: str) -> tuple[str, str]:
    nt = fmt == "nt"
    ops = ["odd_lexical", "swap_datatype", "literal_to_bnode", "odd_iri", "deep_nesting",
           "duplicate_subject", "replicate"]
    op = rng.choice(ops)
    literals = _tokens(text, _LITERAL_KINDS)
    if op in ("odd_lexical", "swap_datatype", "literal_to_bnode") and literals:
        token = rng.choice(literals)
        lexical, datatype = _lexical_and_datatype(token)
        if op == "odd_lexical":
            keep = datatype is not None and rng.random() < 0.5
            new = (f'"{_ttl_escape(odd_lexical(rng))}"^^{datatype}' if keep
                   else _ttl_literal(odd_lexical(rng), odd_datatype(rng, core_only=True)))
        elif op == "swap_datatype":
            new = f'"{lexical}"^^<{odd_datatype(rng)}>'
        else:
            new = rng.choice(("_:fz1", "_:fz1", "[]", f"[ a <{GKG}Patient> ]",
                              "( )", "( 1 2 )")) if not nt else "_:fz1"
        return _splice(text, token, new), f"rdf:{op}"
    if op == "odd_iri":
        iris = _tokens(text, ("iri",) if nt else ("iri", "pname"))
        if iris:
            token = rng.choice(iris)
            odd = rng.choice(odd_iris(canary, name))
            new = odd if odd.startswith("_:") else f"<{odd}>"
            return _splice(text, token, new), "rdf:odd_iri"
    subjects = ([m.group() for m in _tokens(text, ("iri",))] if nt
                else _line_subjects(text[:200_000])) or ["<http://example.org/fz>"]
    subject = rng.choice(subjects)
    if op == "deep_nesting":
        depth = rng.choice(DEEP_LEVELS)
        pred = "gkg:subject" if not nt and "@prefix gkg:" in text else f"<{GKG}subject>"
        if nt:
            depth = min(depth, 20_000)
            chain = "".join(f"_:d{i} {pred} _:d{i + 1} .\n" for i in range(depth))
            return text + f"\n{subject} {pred} _:d0 .\n" + chain, f"rdf:deep_nesting:{depth}"
        if rng.random() < 0.7:
            body = f"[ {pred} " * depth + f"<{GKG}Patient>" + " ]" * depth
        else:
            body = "( " * depth + "1" + " )" * depth
        return text + f"\n{subject} {pred} {body} .\n", f"rdf:deep_nesting:{depth}"
    if op == "duplicate_subject":
        predicate = rng.choice((f"<{GKG}birthDate>", f"<{GKG}effectiveDate>",
                                f"<{GKG}doseAmount>", f"<{GKG}valueCode>", f"<{GKG}subject>",
                                "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"))
        value = (_ttl_literal(odd_lexical(rng), odd_datatype(rng, core_only=True))
                 if rng.random() < 0.6 else rng.choice((subject, f"<{GKG}Patient>")))
        extra = "".join(f"{subject} {predicate} {value} .\n" for _ in range(1))
        if not nt and rng.random() < 0.5:
            # the whole statement block of a subject again, with one literal changed
            lines = text.splitlines(keepends=True)
            starts = [i for i, line in enumerate(lines) if line.startswith(subject + " ")]
            if starts:
                i = rng.choice(starts)
                j = i + 1
                while j < len(lines) and lines[j][:1].isspace() and lines[j].strip():
                    j += 1
                block = "".join(lines[i:j])
                block_literals = _tokens(block, _LITERAL_KINDS)
                if block_literals:
                    block = _splice(block, rng.choice(block_literals),
                                    _ttl_literal(odd_lexical(rng), odd_datatype(rng, True)))
                extra = block
        return text + "\n" + extra, "rdf:duplicate_subject"
    # replicate: k copies of the record under other IRIs (several patients)
    copies = rng.choice((2, 5, 20)) if len(text) < 100_000 else 2
    base = "http://example.org/patients/"
    return text + "".join(text.replace(base, f"{base}copy{k}/") for k in range(copies)), \
        f"rdf:replicate:{copies}"


# ---------------------------------------------------------------------------------------
# Token level: RDF/XML
# ---------------------------------------------------------------------------------------

_XML_LITERAL = re.compile(
    r'<(?P<tag>[\w.-]+:[\w.-]+)(?P<attrs>(?:\s+[\w.:-]+="[^"]*")*)\s*>(?P<lex>[^<]*)</(?P=tag)>')
_XML_IRI = re.compile(r'(?P<attr>rdf:(?:about|resource|datatype|nodeID|ID)|xmlns(?::[\w.-]+)?'
                      r'|xml:base)="(?P<val>[^"]*)"')
_XML_NODE = re.compile(r'<(?P<tag>[\w.-]+:[\w.-]+) rdf:about="[^"]*">.*?</(?P=tag)>', re.DOTALL)


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") \
        .replace('"', "&quot;")


def _xml_literal(tag: str, lexical: str, datatype: str) -> str:
    return f'<{tag} rdf:datatype="{_xml_escape(datatype)}">{_xml_escape(lexical)}</{tag}>'


def _doctype(entities: str) -> str:
    return f"<!DOCTYPE rdf:RDF [\n{entities}\n]>\n"


def _insert_doctype(text: str, doctype: str) -> str:
    end = text.find("?>")
    cut = end + 2 if text.startswith("<?xml") and end >= 0 else 0
    return text[:cut] + "\n" + doctype + text[cut:]


def mutate_rdfxml_tokens(text: str, rng: random.Random, canary: str,
                         name: str) -> tuple[str, str]:
    op = rng.choice(("odd_lexical", "swap_datatype", "literal_to_bnode", "odd_iri",
                     "deep_nesting", "duplicate_subject", "entity_bomb", "external_entity",
                     "parse_type_literal"))
    literals = list(_XML_LITERAL.finditer(text[:200_000]))
    if op in ("odd_lexical", "swap_datatype", "literal_to_bnode", "parse_type_literal",
              "entity_bomb", "external_entity") and not literals:
        op = "odd_iri"
    if op == "odd_lexical":
        token = rng.choice(literals)
        datatype = re.search(r'rdf:datatype="([^"]*)"', token.group("attrs"))
        keep = datatype is not None and rng.random() < 0.5
        new = _xml_literal(token.group("tag"), odd_lexical(rng),
                           datatype.group(1) if keep and datatype
                           else odd_datatype(rng, core_only=True))
        return _splice(text, token, new), "rdf:odd_lexical"
    if op == "swap_datatype":
        token = rng.choice(literals)
        return _splice(text, token, f'<{token.group("tag")} rdf:datatype="'
                                    f'{_xml_escape(odd_datatype(rng))}">{token.group("lex")}'
                                    f'</{token.group("tag")}>'), "rdf:swap_datatype"
    if op == "literal_to_bnode":
        token = rng.choice(literals)
        tag = token.group("tag")
        new = rng.choice((f'<{tag} rdf:nodeID="fz1"/>', f'<{tag} rdf:parseType="Resource"/>',
                          f"<{tag}><rdf:Description/></{tag}>",
                          f'<{tag} rdf:parseType="Collection"/>'))
        return _splice(text, token, new), "rdf:literal_to_bnode"
    if op == "parse_type_literal":
        token = rng.choice(literals)
        tag, depth = token.group("tag"), rng.choice(DEEP_LEVELS)
        inner = "<a>" * depth + "x" + "</a>" * depth
        return _splice(text, token, f'<{tag} rdf:parseType="Literal">{inner}</{tag}>'), \
            f"rdf:parse_type_literal:{depth}"
    if op == "entity_bomb":
        levels = rng.choice((2, 4, 6, 8, 10))
        entities = ['<!ENTITY e0 "aaaaaaaaaa">'] + [
            f'<!ENTITY e{i} "{f"&e{i - 1};" * 10}">' for i in range(1, levels + 1)]
        token = rng.choice(literals)
        text = _splice(text, token, f"<{token.group('tag')}>&e{levels};</{token.group('tag')}>")
        return _insert_doctype(text, _doctype("\n".join(entities))), \
            f"rdf:entity_bomb:{levels}"
    if op == "external_entity":
        target = rng.choice(("file:///etc/passwd", "/etc/hostname", "../../../../etc/hostname",
                             f"http://{canary}/{name}", "/dev/zero", "/dev/random"))
        kind = rng.choice(("SYSTEM", "PUBLIC \"-//fz//x\""))
        token = rng.choice(literals)
        text = _splice(text, token, f"<{token.group('tag')}>&ext;</{token.group('tag')}>")
        return _insert_doctype(text, _doctype(f'<!ENTITY ext {kind} "{target}">')), \
            "rdf:external_entity"
    if op == "odd_iri":
        iris = list(_XML_IRI.finditer(text[:200_000]))
        token = rng.choice(iris)
        odd = rng.choice(odd_iris(canary, name))
        return (text[:token.start("val")] + _xml_escape(odd) + text[token.end("val"):],
                "rdf:odd_iri")
    if op == "deep_nesting":
        depth = rng.choice(DEEP_LEVELS)
        tag = "gkg:subject"
        body = ('<rdf:Description rdf:about="http://example.org/fz/deep">'
                + f'<{tag} rdf:parseType="Resource">' * depth + f"</{tag}>" * depth
                + "</rdf:Description>\n")
        if "xmlns:gkg=" not in text:
            body = body.replace("<rdf:Description", f'<rdf:Description xmlns:gkg="{GKG}"', 1)
        return text.replace("</rdf:RDF>", body + "</rdf:RDF>"), f"rdf:deep_nesting:{depth}"
    # duplicate_subject: a node again, with one literal changed; or a literal twice
    nodes = list(_XML_NODE.finditer(text[:200_000]))
    if nodes and rng.random() < 0.5:
        node = rng.choice(nodes)
        block = node.group()
        inner = list(_XML_LITERAL.finditer(block))
        if inner:
            token = rng.choice(inner)
            block = _splice(block, token, _xml_literal(token.group("tag"), odd_lexical(rng),
                                                       odd_datatype(rng, True)))
        return text[:node.end()] + "\n" + block + text[node.end():], "rdf:duplicate_subject"
    token = rng.choice(literals) if literals else None
    if token is None:
        return text, "rdf:noop"
    twin = _xml_literal(token.group("tag"), odd_lexical(rng), odd_datatype(rng, True))
    return text[:token.end()] + twin + text[token.end():], "rdf:duplicate_value"


# ---------------------------------------------------------------------------------------
# JSON: JSON-LD terms and FHIR structure
# ---------------------------------------------------------------------------------------

_RAW = "\u0000FZRAW{}\u0000"
_DUP = "\u0000FZDUP\u0000"


class _JsonText:
    """A JSON tree, plus raw text spliced in where json.dumps cannot write it (duplicate
    keys, numbers beyond Python's digit limits, nestings deeper than the recursion
    limit)."""

    def __init__(self, tree: object) -> None:
        self.tree = tree
        self.raw: list[str] = []

    def raw_value(self, text: str) -> str:
        self.raw.append(text)
        return _RAW.format(len(self.raw) - 1)

    def dumps(self, rng: random.Random) -> str:
        text = json.dumps(self.tree, indent=rng.choice((None, 2)))
        text = text.replace(json.dumps(_DUP)[:-1], '"')
        for i, raw in enumerate(self.raw):
            text = text.replace(json.dumps(_RAW.format(i)), raw)
        return text


def _containers(tree: object) -> list[tuple[object, object]]:
    """(container, key or index) for every value under the root, iteratively."""
    found: list[tuple[object, object]] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                found.append((node, key))
                todo.append(value)
        elif isinstance(node, list):
            for index, value in enumerate(node):
                found.append((node, index))
                todo.append(value)
    return found


def _dicts(tree: object) -> list[dict]:
    return [c for c, _ in _containers(tree) if isinstance(c, dict)] + \
        ([tree] if isinstance(tree, dict) else [])


def _deep_json(rng: random.Random) -> str:
    depth = rng.choice(DEEP_LEVELS)
    style = rng.choice(("list", "object", "extension"))
    if style == "list":
        return "[" * depth + "1" + "]" * depth
    if style == "object":
        return '{"a": ' * depth + "{}" + "}" * depth
    return ('{"url": "http://example.org/x", "extension": [' * depth + "{}"
            + "]}" * depth)


def _wrong_type(value: object, rng: random.Random, doc: _JsonText) -> object:
    choices = [
        [value], {"value": value}, None, True, 0, -1, "", {}, [], "null",
        str(value) if not isinstance(value, dict | list) else json.dumps(value),
        doc.raw_value(_odd_number_text(rng)),
    ]
    if isinstance(value, int | float) and not isinstance(value, bool):
        choices += [str(value), -value, value * 10**20, float("nan"), float("inf")]
    return rng.choice(choices)


_DATE_KEYS = re.compile(r"(?i)date|time|start|end|onset|issued|authoredOn|recorded|period")
ODD_DATES = ("2026-13-45", "", "-0", "0000-00-00", "2026-02-30", "2026-09-01T25:00:00Z",
             "9999-99-99", "2026", "2026-09", "1800-01-01", "3000-01-01", "yesterday",
             "2026-09-01T10:00:00+25:00", "2026-09-01T10:00:00", "+2026-09-01", "20260901",
             "2026-W36", "2026-09-01/2026-09-02", "\u0000", "1e400")
ODD_UNITS = ("mg/kg", "mg", "cGy", "Gy", "[lb_av]", "kg", "g", "mL", "%", "", "mg/m2",
             "mg/m\u00b2", "\u00b5g", "ug", "1", "{score}", "mg/kg/d", "MG", "mmol/L", "kg/m2")
RESOURCE_TYPES = ("Foo", "", "patient", "Bundle", "Parameters", "Basic", "Patient",
                  "Observation", "MedicationRequest", "OperationOutcome", "DomainResource")


def mutate_json(text: str, rng: random.Random, canary: str, name: str,  # noqa: C901 - one branch per mutation
                jsonld: bool) -> tuple[str, str]:
    try:
        tree = json.loads(text)
    except (ValueError, RecursionError):
        return text, "json:unparsable"
    doc = _JsonText(tree)
    ops = ["drop_key", "duplicate_key", "wrong_type", "huge_number", "deep_nesting",
           "odd_date", "odd_unit", "negative_dose", "unknown_resource_type", "odd_reference",
           "duplicate_entry", "wrap_root"]
    if jsonld:
        ops += ["ld_odd_lexical", "ld_swap_datatype", "ld_literal_to_bnode", "ld_odd_iri",
                "ld_context", "ld_duplicate_subject"] * 2
    op = rng.choice(ops)
    places = _containers(tree)
    dicts = _dicts(tree)
    if not places:
        return text, "json:empty"

    def pick(predicate) -> tuple[object, object] | None:
        chosen = [(c, k) for c, k in places if predicate(c, k)]
        return rng.choice(chosen) if chosen else None

    done = op
    if op == "drop_key":
        place = pick(lambda c, k: isinstance(c, dict))
        if place:
            del place[0][place[1]]
    elif op == "duplicate_key":
        place = pick(lambda c, k: isinstance(c, dict))
        if place:
            container, key = place
            twin = _wrong_type(container[key], rng, doc) if rng.random() < 0.7 \
                else copy.deepcopy(container[key])
            container[_DUP + key] = twin
    elif op == "wrong_type":
        container, key = rng.choice(places)
        container[key] = _wrong_type(container[key], rng, doc)
    elif op == "huge_number":
        place = pick(lambda c, k: isinstance(c[k], int | float) and not isinstance(c[k], bool)) \
            or rng.choice(places)
        place[0][place[1]] = doc.raw_value(_odd_number_text(rng))
    elif op == "deep_nesting":
        container, key = rng.choice(places)
        container[key] = doc.raw_value(_deep_json(rng))
    elif op == "odd_date":
        place = pick(lambda c, k: isinstance(k, str) and _DATE_KEYS.search(k)
                     and isinstance(c[k], str)) or rng.choice(places)
        place[0][place[1]] = rng.choice(ODD_DATES)
    elif op == "odd_unit":
        quantities = [d for d in dicts if "value" in d and ("unit" in d or "code" in d)]
        if quantities:
            quantity = rng.choice(quantities)
            for key in ("unit", "code"):
                if key in quantity or rng.random() < 0.3:
                    quantity[key] = rng.choice(ODD_UNITS)
            if rng.random() < 0.3:
                quantity["system"] = rng.choice(("http://unitsofmeasure.org", "", "urn:x",
                                                 f"http://{canary}/{name}"))
        else:
            done = "odd_unit:none"
    elif op == "negative_dose":
        numbers = [(c, k) for c, k in places if k in ("value", "@value", "valueInteger",
                                                      "valueDecimal")
                   and isinstance(c[k], int | float | str)]
        if numbers:
            container, key = rng.choice(numbers)
            container[key] = rng.choice((-120, -0.0, 0, -1e-9, -(10**20), -120.5, "-120"))
        else:
            done = "negative_dose:none"
    elif op == "unknown_resource_type":
        typed = [d for d in dicts if "resourceType" in d] or dicts
        target = rng.choice(typed)
        target["resourceType"] = rng.choice((*RESOURCE_TYPES, None, 123, ["Patient"], {}))
    elif op == "odd_reference":
        refs = [(c, k) for c, k in places if k in ("reference", "fullUrl", "@id", "url")]
        if refs:
            container, key = rng.choice(refs)
            container[key] = rng.choice((*odd_iris(canary, name), "Patient/",
                                         "Patient/../../etc/passwd", "#", "Observation/x"))
        else:
            done = "odd_reference:none"
    elif op == "duplicate_entry":
        lists = [c for c, _ in places if isinstance(c, list) and c]
        if lists:
            target = rng.choice(lists)
            index = rng.randrange(len(target))
            twin = copy.deepcopy(target[index])
            inner = _containers(twin)
            if inner and rng.random() < 0.6:
                container, key = rng.choice(inner)
                container[key] = _wrong_type(container[key], rng, doc)
            for _ in range(rng.choice((1, 1, 3, 50))):
                target.insert(index + 1, copy.deepcopy(twin))
        else:
            done = "duplicate_entry:none"
    elif op == "wrap_root":
        doc.tree = rng.choice(([tree], {"resourceType": "Bundle", "entry": tree},
                               {"@graph": tree}, [tree, tree], "text", None, 12))
    elif op.startswith("ld_"):
        done = _mutate_jsonld(op, doc, places, dicts, rng, canary, name)
    return doc.dumps(rng), f"json:{done}"


def _compact_datatype(dicts: list[dict], datatype: str) -> str:
    has_xsd = any(isinstance(d.get("@context"), dict) and "xsd" in d["@context"] for d in dicts)
    if has_xsd and datatype.startswith(XSD):
        return "xsd:" + datatype[len(XSD):]
    return datatype


def _mutate_jsonld(op: str, doc: _JsonText, places: list, dicts: list[dict],  # noqa: C901 - one branch per mutation
                   rng: random.Random, canary: str, name: str) -> str:
    values = [d for d in dicts if "@value" in d]
    if op in ("ld_odd_lexical", "ld_swap_datatype") and values:
        value = rng.choice(values)
        if op == "ld_odd_lexical":
            value["@value"] = (odd_lexical(rng) if rng.random() < 0.8
                               else _wrong_type(value["@value"], rng, doc))
            if "@type" not in value or rng.random() < 0.5:
                value["@type"] = _compact_datatype(dicts, odd_datatype(rng, core_only=True))
        else:
            value["@type"] = _compact_datatype(dicts, odd_datatype(rng))
        return op
    if op == "ld_literal_to_bnode" and values:
        target = rng.choice(values)
        target.clear()
        target.update(rng.choice(({"@id": "_:fz1"}, {"@id": "_:"}, {},
                                  {"@type": GKG + "Patient"}, {"@list": [1, {"@id": "_:b"}]})))
        return op
    if op == "ld_odd_iri":
        ids = [(c, k) for c, k in places if k in ("@id", "@type", "@vocab", "@base")
               and isinstance(c[k], str)]
        if ids:
            container, key = rng.choice(ids)
            container[key] = rng.choice(odd_iris(canary, name))
            return op
    if op == "ld_context":
        contexts = [d for d in dicts if isinstance(d.get("@context"), dict)]
        holder = rng.choice(contexts) if contexts else rng.choice(dicts)
        context = holder.get("@context")
        if not isinstance(context, dict):
            context = holder["@context"] = {}
        change = rng.choice(("base", "import", "vocab", "version", "nested", "protected",
                             "term", "list"))
        url = f"http://{canary}/{name}"
        if change == "base":
            context["@base"] = rng.choice(("file:///etc/", url, "", "urn:x", "_:x"))
        elif change == "import":
            context["@import"] = rng.choice((url, "file:///etc/passwd", "ctx.jsonld"))
        elif change == "vocab":
            context["@vocab"] = rng.choice((GKG, "", url, "_:", "xsd:"))
        elif change == "version":
            context["@version"] = rng.choice((1.1, 2.0, "1.1", None))
        elif change == "nested":
            node = rng.choice(dicts)
            node["@context"] = rng.choice(({"@import": url}, [{"@vocab": GKG}, {"x": url}],
                                           {"@propagate": False}, None))
        elif change == "protected":
            context["@protected"] = True
            context["gkg"] = GKG + "x#"
        elif change == "term":
            context[rng.choice(("gkg", "xsd", "ex", "@type", "code"))] = rng.choice(
                ({"@id": GKG, "@type": "@id"}, {"@reverse": GKG + "subject"}, url, None, 1))
        else:
            holder["@context"] = [context, rng.choice(({"@vocab": GKG}, None, {}))]
        return f"ld_context:{change}"
    graph = None
    for d in dicts:
        if isinstance(d.get("@graph"), list):
            graph = d["@graph"]
    if graph is None and isinstance(doc.tree, list):
        graph = doc.tree
    if graph:
        node = copy.deepcopy(rng.choice(graph))
        inner = [d for d in _dicts(node) if "@value" in d]
        if inner:
            target = rng.choice(inner)
            target["@value"] = odd_lexical(rng)
        graph.append(node)
        return "ld_duplicate_subject"
    return f"{op}:none"


# ---------------------------------------------------------------------------------------
# The mutants of a campaign
# ---------------------------------------------------------------------------------------


@dataclass
class Mutant:
    name: str
    fmt: str
    seed_file: str
    operations: list[str]
    data: bytes

    @property
    def suffix(self) -> str:
        return FORMATS[self.fmt]


def seed_files(fmt: str, seeds_dir: Path = SEEDS_DIR) -> list[Path]:
    suffix = FORMATS[fmt]
    return sorted(p for p in seeds_dir.iterdir() if p.is_file() and p.suffix == suffix)


def mutate(fmt: str, index: int, seed: int, seeds_dir: Path = SEEDS_DIR,
           canary: str = DEFAULT_CANARY) -> Mutant:
    """Input ``index`` of ``fmt`` under ``seed``: the same bytes every time."""
    rng = random.Random(f"{seed}:{fmt}:{index}")
    seeds = seed_files(fmt, seeds_dir)
    if not seeds:
        raise FileNotFoundError(f"no {FORMATS[fmt]} seed in {seeds_dir}")
    source = rng.choice(seeds)
    data = source.read_bytes()
    name = f"{fmt}-{seed}-{index:05d}"
    operations: list[str] = []
    roll = rng.random()
    structured = 1 if roll < 0.25 else (2 if roll < 0.35 else 0)  # 0: structure, 1: bytes
    if structured != 1:
        text = data.decode("utf-8")
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            if fmt in ("ttl", "nt"):
                text, op = mutate_turtle_tokens(text, rng, fmt, canary, name)
            elif fmt == "rdf":
                text, op = mutate_rdfxml_tokens(text, rng, canary, name)
            else:
                text, op = mutate_json(text, rng, canary, name, jsonld=fmt == "jsonld")
            operations.append(op)
        data = text.encode("utf-8", "surrogatepass")
    if structured != 0:
        for _ in range(rng.choice((1, 1, 2, 3))):
            data, op = mutate_bytes(data, rng)
            operations.append(op)
    return Mutant(name=name, fmt=fmt, seed_file=source.name, operations=operations,
                  data=data[:MAX_MUTANT_BYTES])


def corpus(formats: Sequence[str], per_format: int, seed: int, seeds_dir: Path = SEEDS_DIR,
           canary: str = DEFAULT_CANARY) -> list[Mutant]:
    """The inputs, formats interleaved (a campaign stopped early has tried each alike)."""
    return [mutate(fmt, i, seed, seeds_dir, canary) for i in range(per_format)
            for fmt in formats]


def write_mutants(mutants: Sequence[Mutant], folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for mutant in mutants:
        path = folder / (mutant.name + mutant.suffix)
        path.write_bytes(mutant.data)
        paths[mutant.name] = path
    return paths


def tasks_for(mutants: Sequence[Mutant], paths: dict[str, Path],
              recommend_every: int) -> list[dict]:
    """Every input through validate; every ``recommend_every``-th also through recommend
    (0: none)."""
    tasks = []
    seen: Counter[str] = Counter()  # the input's rank within its format
    for mutant in mutants:
        rank = seen[mutant.fmt]
        seen[mutant.fmt] += 1
        tasks.append({"name": mutant.name, "path": str(paths[mutant.name]),
                      "command": "validate"})
        if recommend_every and rank % recommend_every == 0:
            tasks.append({"name": mutant.name, "path": str(paths[mutant.name]),
                          "command": "recommend"})
    return tasks


# =======================================================================================
# Workers: run_one in child processes, so a crash or a hang is one finding, not the end
# =======================================================================================


class CanaryListener:
    """A TCP listener on 127.0.0.1 whose address the mutator puts into IRIs, contexts and
    external entities: a connection to it is network access, whatever code made it."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.address = f"127.0.0.1:{self.server.getsockname()[1]}"
        self.hits: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(1.0)
                try:
                    request = conn.recv(4096).decode("latin-1")
                except OSError:
                    request = ""
                self.hits.append(request.split("\r\n", 1)[0] or "(connection, no request)")
                with contextlib.suppress(OSError):
                    conn.sendall(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.server.close()


def _warm_up() -> None:
    """The first run imports and caches everything: not to be timed as a fuzz input."""
    seed = next(iter(seed_files("ttl")), None)
    if seed is not None:
        for command in ("validate", "recommend"):
            run_one(seed, command)


def worker_main(tasks_file: str, results_file: str, start: int, max_tasks: int,
                memory_limit_mb: int) -> int:
    """A worker process: run tasks ``start`` on, writing a "start" line before each run and
    its outcome after it; leave (to be replaced) after ``max_tasks`` runs."""
    import faulthandler
    import resource

    faulthandler.enable(file=sys.__stderr__)
    if memory_limit_mb:
        limit = memory_limit_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    tasks = json.loads(Path(tasks_file).read_text())
    install_audit_hook()
    _warm_up()
    with open(results_file, "a", encoding="utf-8") as results:
        end = min(len(tasks), start + max_tasks) if max_tasks else len(tasks)
        for index in range(start, end):
            task = tasks[index]
            results.write(json.dumps({"start": index}) + "\n")
            results.flush()
            outcome = run_one(task["path"], task["command"],
                              run_parent=Path(results_file).parent)
            results.write(json.dumps({"index": index, **asdict(outcome)}) + "\n")
            results.flush()
        if end < len(tasks):
            results.write(json.dumps({"recycle": end}) + "\n")
            results.flush()
    return 0


WORKER_START_SECONDS = 120.0  # a worker's imports and warm-up, before its first task


@dataclass
class _Worker:
    process: subprocess.Popen
    tasks: list[dict]
    results_file: Path
    log_file: Path
    log_offset: int  # where this process's output begins in the log
    next_index: int
    offset: int = 0
    buffer: str = ""
    started: float = 0.0  # when the process, then its current task, started
    running: bool = False  # past its warm-up: a task has started
    recycled_at: int | None = None  # the worker left on purpose before this index


def _crash_text(worker: _Worker) -> str:
    """What the dead worker printed: its first lines (the reason: "memory allocation of
    ... failed", "Fatal Python error") and its last ones."""
    with contextlib.suppress(OSError), open(worker.log_file, "rb") as log:
        log.seek(worker.log_offset)
        lines = [line.strip() for line in log.read().decode("utf-8", "replace").splitlines()
                 if line.strip()]
        shown = lines if len(lines) <= 4 else [*lines[:2], "...", *lines[-2:]]
        return " | ".join(shown)[:600]
    return ""


def run_tasks(tasks: Sequence[dict], *, jobs: int = 1,  # noqa: C901 - the worker loop; to split
              hard_timeout: float = HARD_TIMEOUT_SECONDS, memory_limit_mb: int = 4096,
              recycle: int = 1000, work_dir: Path | None = None,
              progress: bool = False, deadline: float | None = None) -> list[Outcome | None]:
    """Run the tasks in ``jobs`` worker processes (each calls :func:`run_one`); a worker
    that dies on an input, or takes longer than ``hard_timeout`` on one, is reported as a
    ``crash`` or ``hang`` outcome for that input and replaced. The workers' address space
    is limited to ``memory_limit_mb``. At ``deadline`` (time.monotonic()) the workers are
    stopped: the tasks not run then are None."""
    own_dir = work_dir is None
    folder = Path(tempfile.mkdtemp(prefix="guidelinekg-fuzz-workers-")) if own_dir \
        else work_dir
    folder.mkdir(parents=True, exist_ok=True)
    shards = [list(tasks[j::jobs]) for j in range(jobs)]
    outcomes: list[Outcome | None] = [None] * len(tasks)
    workers: dict[int, _Worker] = {}

    def start(j: int, index: int) -> None:
        tasks_file = folder / f"tasks-{j}.json"
        if not tasks_file.exists():
            tasks_file.write_text(json.dumps(shards[j]))
        results_file = folder / f"results-{j}.jsonl"
        log_file = folder / f"worker-{j}.log"
        results_file.touch()
        with open(log_file, "ab") as log:
            log_offset = log.tell()
            process = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--worker", str(tasks_file),
                 str(results_file), "--start", str(index), "--recycle", str(recycle),
                 "--memory-limit-mb", str(memory_limit_mb)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=os.getcwd())
        old = workers.get(j)
        workers[j] = _Worker(process, shards[j], results_file, log_file, log_offset, index,
                             offset=old.offset if old else 0, started=time.monotonic())

    def read_results(j: int) -> None:
        worker = workers[j]
        with open(worker.results_file, encoding="utf-8") as handle:
            handle.seek(worker.offset)
            chunk = handle.read()
            worker.offset = handle.tell()
        worker.buffer += chunk
        *lines, worker.buffer = worker.buffer.split("\n")
        for line in lines:
            record = json.loads(line) if line.strip() else {}
            if "start" in record:
                worker.started, worker.running = time.monotonic(), True
            elif "recycle" in record:
                worker.recycled_at = record["recycle"]
            elif "index" in record:
                index = record.pop("index")
                outcomes[j + index * jobs] = Outcome(**record)
                worker.next_index = index + 1

    def fail_current(j: int, kind: str) -> None:
        worker = workers[j]
        index = worker.next_index
        if index >= len(worker.tasks):
            return
        task = worker.tasks[index]
        outcomes[j + index * jobs] = Outcome(
            path=task["path"], command=task["command"], exit_code=None, traceback=False,
            elapsed=round(time.monotonic() - worker.started, 2),
            crash=f"{kind}: {_crash_text(worker)}")
        worker.next_index = index + 1

    reported = 0
    try:
        for j in range(jobs):
            if shards[j]:
                start(j, 0)
        while workers:
            time.sleep(0.05)
            if deadline is not None and time.monotonic() > deadline:
                for j in list(workers):
                    workers[j].process.kill()
                    workers[j].process.wait()
                    read_results(j)
                    del workers[j]
                break
            for j in list(workers):
                worker = workers[j]
                code = worker.process.poll()
                read_results(j)
                if code is None:
                    limit = hard_timeout + (0 if worker.running else WORKER_START_SECONDS)
                    if time.monotonic() - worker.started <= limit:
                        continue
                    worker.process.kill()
                    worker.process.wait()
                    read_results(j)
                    fail_current(j, f"hang (killed after {hard_timeout:.0f} s)")
                elif worker.next_index < len(worker.tasks) and not (
                        code == 0 and worker.recycled_at == worker.next_index):
                    fail_current(j, f"crash (exit {code})")
                if worker.process.poll() is not None:
                    if worker.next_index < len(worker.tasks):
                        start(j, worker.next_index)
                    else:
                        del workers[j]
            if progress:
                done = sum(o is not None for o in outcomes)
                if done // 500 > reported // 500:
                    print(f"  {done}/{len(tasks)} runs", file=sys.stderr, flush=True)
                reported = done
    finally:
        for worker in workers.values():
            if worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait()
        if own_dir:
            shutil.rmtree(folder, ignore_errors=True)
    if deadline is not None:
        return outcomes
    return [o if o is not None else Outcome(path=t["path"], command=t["command"],
                                            exit_code=None, traceback=False, elapsed=0.0,
                                            crash="crash: no result")
            for o, t in zip(outcomes, tasks, strict=True)]


# =======================================================================================
# The campaign
# =======================================================================================


def _p95(values: Sequence[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def summarize(mutants: Sequence[Mutant], tasks: Sequence[dict],
              outcomes: Sequence[Outcome | None], canary_hits: Sequence[str],
              slow: float) -> dict:
    """Per format: inputs tried, runs, exit codes, findings by class, max and p95 time
    (tasks not run, None, are left out)."""
    by_name = {m.name: m for m in mutants}
    per_format: dict[str, dict] = {}
    for fmt in dict.fromkeys(m.fmt for m in mutants):
        per_format[fmt] = {"inputs": set(), "runs": 0, "exit_codes": Counter(),
                           "findings": Counter(), "times": [], "warnings": 0}
    failing = []
    for task, outcome in zip(tasks, outcomes, strict=True):
        if outcome is None:
            continue
        mutant = by_name[task["name"]]
        stats = per_format[mutant.fmt]
        stats["inputs"].add(mutant.name)
        stats["runs"] += 1
        stats["warnings"] += outcome.python_warning
        stats["exit_codes"][str(outcome.exit_code)] += 1
        stats["times"].append(outcome.elapsed)
        if any(f"/{mutant.name}" in hit for hit in canary_hits):
            outcome.network.append("canary listener reached: " + next(
                hit for hit in canary_hits if f"/{mutant.name}" in hit))
        found = outcome.findings(slow)
        for kind in found:
            stats["findings"][kind] += 1
        if found:
            failing.append((mutant, task, outcome, found))
    unattributed = [hit for hit in canary_hits
                    if not any(f"/{m.name}" in hit for m in mutants)]
    summary = {"formats": {}, "unattributed_canary_hits": unattributed}
    for fmt, stats in per_format.items():
        summary["formats"][fmt] = {
            "inputs": len(stats["inputs"]), "runs": stats["runs"],
            "exit_codes": dict(sorted(stats["exit_codes"].items())),
            "findings": {k: stats["findings"][k] for k in FINDING_CLASSES
                         if stats["findings"][k]},
            "max_seconds": round(max(stats["times"], default=0.0), 3),
            "p95_seconds": round(_p95(stats["times"]), 3),
            # not a finding: runs whose stderr shows a Python warning (file:line: ...Warning)
            "python_warning_on_stderr": stats["warnings"],
        }
    return summary | {"failing": failing}


def print_summary(summary: dict, file=sys.stdout) -> None:
    header = (f"{'format':7} {'inputs':>6} {'runs':>5}  exit codes{'':22} findings"
              f"{'':34} {'max s':>6} {'p95 s':>6}")
    print(header, file=file)
    for fmt, stats in summary["formats"].items():
        codes = " ".join(f"{k}:{v}" for k, v in stats["exit_codes"].items())
        found = " ".join(f"{k}:{v}" for k, v in stats["findings"].items()) or "none"
        print(f"{fmt:7} {stats['inputs']:>6} {stats['runs']:>5}  {codes:32} {found:42} "
              f"{stats['max_seconds']:>6.2f} {stats['p95_seconds']:>6.2f}", file=file)
    if summary["unattributed_canary_hits"]:
        print(f"canary hits not attributed to an input: {summary['unattributed_canary_hits']}",
              file=file)


def campaign(args: argparse.Namespace) -> int:
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        print(f"unknown formats {unknown}; known: {', '.join(FORMATS)}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    canary = CanaryListener()
    work = Path(tempfile.mkdtemp(prefix="guidelinekg-fuzz-"))
    try:
        started = time.monotonic()
        mutants = corpus(formats, args.per_format, args.seed, Path(args.seeds), canary.address)
        paths = write_mutants(mutants, work / "inputs")
        tasks = tasks_for(mutants, paths, args.recommend_every)
        print(f"{len(mutants)} inputs, {len(tasks)} runs, {args.jobs} workers; canary "
              f"{canary.address}", file=sys.stderr)
        deadline = time.monotonic() + args.time_budget if args.time_budget else None
        outcomes = run_tasks(tasks, jobs=args.jobs, hard_timeout=args.hard_timeout,
                             memory_limit_mb=args.memory_limit_mb, recycle=args.recycle,
                             work_dir=work / "workers", progress=True, deadline=deadline)
        not_run = sum(o is None for o in outcomes)
        if not_run:
            print(f"time budget spent: {not_run} of {len(tasks)} runs not made",
                  file=sys.stderr)
        time.sleep(0.3)  # let the canary's thread note a late connection
        summary = summarize(mutants, tasks, outcomes, canary.hits, args.slow)
        failing = summary.pop("failing")
        examples: dict[str, list[str]] = {}
        for mutant, task, outcome, found in failing:
            folder = out / mutant.fmt
            folder.mkdir(exist_ok=True)
            target = folder / (mutant.name + mutant.suffix)
            target.write_bytes(mutant.data)
            report = {"input": str(target), "seed_file": mutant.seed_file,
                      "operations": mutant.operations, "findings": found,
                      "outcome": asdict(outcome)}
            (folder / f"{mutant.name}.{task['command']}.json").write_text(
                json.dumps(report, indent=2))
            for kind in found:
                examples.setdefault(kind, [])
                if len(examples[kind]) < 5:
                    examples[kind].append(f"{target} [{task['command']}] "
                                          f"{outcome.stderr_first_line or outcome.crash or ''}"
                                          [:400])
        summary.update(seed=args.seed, per_format=args.per_format, format_list=formats,
                       recommend_every=args.recommend_every, slow_seconds=args.slow,
                       wall_seconds=round(time.monotonic() - started, 1),
                       failing_runs=len(failing), examples=examples)
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        print_summary(summary)
        print(f"{len(failing)} failing runs written to {out} (summary.json); "
              f"{summary['wall_seconds']} s")
        return 1 if failing else 0
    finally:
        canary.close()
        if not args.keep_inputs:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-format", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--out", default="fuzz-findings")
    parser.add_argument("--seeds", default=str(SEEDS_DIR))
    parser.add_argument("--recommend-every", type=int, default=5,
                        help="every N-th input also through recommend (0: never)")
    parser.add_argument("--jobs", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    parser.add_argument("--slow", type=float, default=SLOW_SECONDS,
                        help="a run longer than this is a finding (seconds)")
    parser.add_argument("--hard-timeout", type=float, default=HARD_TIMEOUT_SECONDS,
                        help="a worker stuck this long on one input is killed (seconds)")
    parser.add_argument("--memory-limit-mb", type=int, default=4096)
    parser.add_argument("--recycle", type=int, default=1000,
                        help="a worker is replaced after this many runs")
    parser.add_argument("--keep-inputs", action="store_true")
    parser.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                        help="stop the runs after this long and report what was run (the "
                             "formats are interleaved, so each is tried alike)")
    parser.add_argument("--replay", metavar="FILE",
                        help="run one input in this process and print its outcome")
    parser.add_argument("--command", default="validate", choices=("validate", "recommend"))
    parser.add_argument("--worker", nargs=2, metavar=("TASKS", "RESULTS"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main(args.worker[0], args.worker[1], args.start, args.recycle,
                           args.memory_limit_mb)
    if args.replay:
        _warm_up()
        outcome = run_one(args.replay, args.command)
        print(json.dumps(asdict(outcome) | {"findings": outcome.findings(args.slow)},
                         indent=2))
        return 1 if outcome.findings(args.slow) else 0
    return campaign(args)


if __name__ == "__main__":
    sys.exit(main())
