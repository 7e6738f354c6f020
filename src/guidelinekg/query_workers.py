"""The SPARQL endpoint's query workers: processes with a time limit, a memory cap and two lanes.

pyoxigraph can neither interrupt a running query nor bound what it allocates, so every query
runs in a worker process that can be killed:

- Each worker loads its own in-memory store of the published graphs (one named graph per
  ontology IRI; the default graph is their union) and caps its address space as it starts
  (``RLIMIT_AS``, ``serve --query-memory-mb``, default 1024). A query that needs more makes an
  allocation fail: the worker aborts (or answers MemoryError), the query ends in 503 and the
  worker is replaced.
- A query still running at ``--query-timeout`` is stopped: its worker is killed and replaced.
- Two lanes. Whether a query is heavy cannot be told before it runs, so it is classed by how
  long it has run: every query starts on any idle worker, and one still running after
  ``QUICK_SECONDS`` becomes a *long* query that must hold one of ``--long-queries`` slots
  (default: workers - 1). When every slot is taken it is stopped with 503 (busy, retry). So
  ``workers - long_queries`` workers are never held by one query for much more than
  ``QUICK_SECONDS``: short queries keep being answered while long ones run, instead of
  queueing behind them. A query text that has run long before (whitespace aside; the last
  ``KNOWN_LONG`` are kept) is long from the start: it waits for a slot before it takes a
  worker, so a heavy query sent again and again does not hold the quick lane each time.
  (A heavy query that is new each time still does, for ``QUICK_SECONDS`` each.)
- A killed worker's place is taken at once by a spare worker kept started (one more process),
  and a new spare is started in the background.
- A request waits at most ``QUEUE_WAIT`` seconds for an idle worker, then gets 503 (busy,
  retry): waiting requests cannot pile up behind a flood.
- An answer larger than ``MAX_RESULT_BYTES`` is refused in the worker: it would otherwise be
  copied whole into the server process, whose memory is not capped.

Worst case memory: about ``workers x query-memory-mb`` for the workers, plus the server and the
idle spare (about 45 MB each).

Only pyoxigraph and the standard library are imported here: a worker is a fresh interpreter
(spawn) that imports this module, so a replacement is ready in well under a second.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import io
import multiprocessing
import os
import queue
import resource
import signal
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import TypeVar

from guidelinekg import oxigraph as ox

QUICK_SECONDS = 1.0
QUEUE_WAIT = 3.0
MAX_RESULT_BYTES = 64 * 1024 * 1024
DEFAULT_QUERY_TIMEOUT = 10.0
DEFAULT_MEMORY_MB = 1024
# Below this a worker cannot even start Python and load the graphs.
MIN_MEMORY_MB = 128
START_TIMEOUT = 120.0
KNOWN_LONG = 256
_T = TypeVar("_T")

SOLUTION_FORMATS: dict[str, ox.QueryResultsFormat] = {
    "application/sparql-results+json": ox.QueryResultsFormat.JSON,
    "application/sparql-results+xml": ox.QueryResultsFormat.XML,
    "text/csv": ox.QueryResultsFormat.CSV,
    "text/tab-separated-values": ox.QueryResultsFormat.TSV,
}
GRAPH_FORMATS: dict[str, ox.RdfFormat] = {
    "text/turtle": ox.RdfFormat.TURTLE,
    "application/n-triples": ox.RdfFormat.N_TRIPLES,
    "application/rdf+xml": ox.RdfFormat.RDF_XML,
    "application/ld+json": ox.RdfFormat.JSON_LD,
}


class Outcome(enum.StrEnum):
    OK = "ok"
    SYNTAX = "syntax"  # the parser's message
    ERROR = "error"  # the query failed while running
    NOT_ACCEPTABLE = "not-acceptable"  # message: "solutions" or "graph"
    TOO_LARGE = "too-large"
    MEMORY = "memory"  # over the memory cap; the worker is replaced
    TIMEOUT = "timeout"  # over the time limit; the worker is replaced
    LONG_BUSY = "long-busy"  # ran past QUICK_SECONDS with every long-query slot taken
    BUSY = "busy"  # no idle worker within QUEUE_WAIT
    CRASHED = "crashed"  # the worker died for another reason; it is replaced


# A worker that gave one of these answers is in a known state and serves the next query.
REUSABLE = {Outcome.OK, Outcome.SYNTAX, Outcome.ERROR, Outcome.NOT_ACCEPTABLE, Outcome.TOO_LARGE}


@dataclass(frozen=True)
class QueryRequest:
    text: str
    default_graphs: tuple[str, ...]
    named_graphs: tuple[str, ...]
    # The negotiated media type for each kind of result (None: nothing acceptable); the
    # server negotiates, as only it knows the Accept header and the aliases of types.
    solutions_type: str | None
    graph_type: str | None


@dataclass(frozen=True)
class Answer:
    outcome: Outcome
    media_type: str = ""
    body: bytes = b""
    message: str = ""


@dataclass(frozen=True)
class PoolLimits:
    workers: int
    long_queries: int
    memory_mb: int = DEFAULT_MEMORY_MB
    query_timeout: float = DEFAULT_QUERY_TIMEOUT
    quick_seconds: float = QUICK_SECONDS
    queue_wait: float = QUEUE_WAIT


def default_workers() -> int:
    """One worker per core (2 to 8: each holds a store and may use its memory cap) plus one."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return min(max(cores, 2), 8) + 1


POOL_HELP = f"""\
SPARQL queries run in --workers processes, each with its own copy of the graphs
and an address-space cap of --query-memory-mb. A query still running after {QUICK_SECONDS:g} s
is a long query and takes one of --long-queries slots (default: workers - 1);
when they are all taken it is stopped with 503 (retry later). The other workers
stay free for short queries, which are answered while long ones run. A query
text that ran long before waits for a slot without taking a worker (503 after
{QUEUE_WAIT:g} s). A query over --query-timeout or over the memory cap is stopped with 503
and its worker replaced; a request that finds no idle worker within {QUEUE_WAIT:g} s gets
503 (busy, retry). SERVICE and FROM are refused (400): nothing is fetched over
the network. Cross-origin reads (CORS) are off unless --cors-origin names one.
"""


def describe_failure(answer: Answer, limits: PoolLimits) -> tuple[int, str, bool]:
    """The HTTP status and message of a query that gave no result, and whether to retry."""
    outcome = answer.outcome
    if outcome is Outcome.SYNTAX:
        return 400, f"SPARQL syntax error: {answer.message}", False
    if outcome is Outcome.NOT_ACCEPTABLE:
        formats = GRAPH_FORMATS if answer.message == "graph" else SOLUTION_FORMATS
        return 406, "the result can be sent as: " + ", ".join(formats), False
    if outcome is Outcome.TOO_LARGE:
        return 503, (f"the result is larger than {MAX_RESULT_BYTES // 2**20} MB: narrow the "
                     "query or add a LIMIT"), False
    if outcome is Outcome.TIMEOUT:
        return 503, (f"the query was stopped: it ran longer than the time limit of "
                     f"{limits.query_timeout:g} s"), False
    if outcome is Outcome.MEMORY:
        return 503, (f"the query was stopped: it needed more memory than the limit of "
                     f"{limits.memory_mb} MB per query"), False
    if outcome is Outcome.LONG_BUSY:
        return 503, (f"the query was stopped after {limits.quick_seconds:g} s: the server is "
                     f"already running {limits.long_queries} long queries, its limit; retry "
                     "later"), True
    if outcome is Outcome.BUSY:
        return 503, "every query worker is busy; retry in a few seconds", True
    if outcome is Outcome.CRASHED:
        return 500, f"the query engine failed ({answer.message}); it was restarted", False
    return 400, f"the query failed: {answer.message}", False


class WorkerStartError(RuntimeError):
    """The worker processes did not start (for example a memory cap too small to load)."""


# ---------------------------------------------------------------------------------------
# In the worker process
# ---------------------------------------------------------------------------------------


class _ResultTooLarge(Exception):
    pass


class _CappedOutput(io.BytesIO):
    """A binary output for ``serialize`` that stops the serialisation past a size."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def write(self, data: bytes) -> int:  # type: ignore[override]  # pyoxigraph writes bytes
        size = memoryview(data).nbytes
        if self.tell() + size > self.limit:
            raise _ResultTooLarge
        return super().write(data)

    @property
    def buffer(self) -> bytes:
        return self.getvalue()


def _cap_memory(memory_bytes: int) -> None:
    # The hard limit may already be lower (ulimit -v): setrlimit refuses to raise it.
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        memory_bytes = min(memory_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, hard))


def _worker_main(connection: Connection, dataset: list[tuple[str, str]],
                 memory_bytes: int) -> None:
    """A worker process: cap memory, load the graphs, answer queries until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it
    # Out of memory, Rust aborts with one line; a backtrace would be noise in the server's
    # log (and needs memory it cannot get).
    os.environ["RUST_BACKTRACE"] = "0"
    _cap_memory(memory_bytes)
    store = ox.Store()
    for graph_iri, path in dataset:
        store.load(path=path, format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(graph_iri))
    connection.send(("ready", len(store)))
    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):
            return
        answer = _answer(store, request)
        try:
            connection.send(answer)
        except MemoryError:  # pickling copies the body: that copy can be the one too many
            connection.send(Answer(Outcome.MEMORY))
            return


def _answer(store: ox.Store, request: QueryRequest) -> Answer:
    try:
        result = store.query(
            request.text,
            use_default_graph_as_union=not request.default_graphs,
            default_graph=[ox.NamedNode(iri) for iri in request.default_graphs] or None,
            named_graphs=[ox.NamedNode(iri) for iri in request.named_graphs] or None,
        )
        output = _CappedOutput(MAX_RESULT_BYTES)
        if isinstance(result, ox.QueryTriples):
            if request.graph_type is None:
                return Answer(Outcome.NOT_ACCEPTABLE, message="graph")
            result.serialize(output, format=GRAPH_FORMATS[request.graph_type])
            return Answer(Outcome.OK, request.graph_type, bytes(output.buffer))
        if request.solutions_type is None:
            return Answer(Outcome.NOT_ACCEPTABLE, message="solutions")
        result.serialize(output, format=SOLUTION_FORMATS[request.solutions_type])
        return Answer(Outcome.OK, request.solutions_type, bytes(output.buffer))
    except SyntaxError as error:
        return Answer(Outcome.SYNTAX, message=str(error))
    except _ResultTooLarge:
        return Answer(Outcome.TOO_LARGE)
    except MemoryError:
        return Answer(Outcome.MEMORY)
    except (OSError, ValueError, TypeError, RuntimeError) as error:
        return Answer(Outcome.ERROR, message=str(error))


# ---------------------------------------------------------------------------------------
# One query with a time limit, for the command line (guidelinekg query --query-timeout)
# ---------------------------------------------------------------------------------------


class QueryStopped(Exception):
    """A query run by :func:`call_with_time_limit` that gave no answer: ``answer`` says why
    (TIMEOUT, MEMORY or CRASHED), its message as the endpoint words it."""

    def __init__(self, answer: Answer, seconds: float) -> None:
        self.answer = answer
        _, message, _ = describe_failure(answer, PoolLimits(1, 1, query_timeout=seconds))
        super().__init__(message)


def _call_and_send(function: Callable[[], object], connection: Connection) -> None:
    """In the worker: the function's value, or the exception it raised, to the parent."""
    try:
        outcome: tuple[str, object] = ("value", function())
    except Exception as error:  # handed to the parent, which raises it
        outcome = ("raised", error)
    try:
        connection.send(outcome)
    except Exception as error:  # an unpicklable value or exception: said in words
        connection.send(("raised", RuntimeError(f"{type(error).__name__}: {error}")))


def call_with_time_limit(function: Callable[[], _T], seconds: float) -> _T:
    """``function()`` run in a worker process that is killed at ``seconds``, as the
    endpoint's workers are (pyoxigraph cannot interrupt a query): its value, the exception
    it raised, or :class:`QueryStopped`. The worker is forked, so the function needs no
    pickling and the graphs already read are not read again; only the value is sent back.
    For a single-threaded caller (the command line), which forking requires."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    sys.stdout.flush()  # the worker's exit flushes its copy of any buffered output
    sys.stderr.flush()
    process = context.Process(target=_call_and_send, args=(function, sender), daemon=True)
    process.start()
    sender.close()
    try:
        if not receiver.poll(seconds):
            raise QueryStopped(Answer(Outcome.TIMEOUT), seconds)
        try:
            kind, value = receiver.recv()
        except (EOFError, OSError):
            process.join(2)
            code = process.exitcode
            died = (Answer(Outcome.MEMORY) if code in (-signal.SIGABRT, -signal.SIGKILL)
                    else Answer(Outcome.CRASHED, message=f"exit code {code}"))
            raise QueryStopped(died, seconds) from None
    finally:
        if process.is_alive():
            process.kill()
        process.join(5)
        receiver.close()
    if kind == "raised":
        assert isinstance(value, BaseException)
        raise value
    return value  # what function returned


# ---------------------------------------------------------------------------------------
# In the server process
# ---------------------------------------------------------------------------------------


class QueryWorker:
    def __init__(self, context: SpawnContext, dataset: list[tuple[str, str]],
                 memory_bytes: int) -> None:
        self.connection, child = context.Pipe()
        self.process: SpawnProcess = context.Process(
            target=_worker_main, args=(child, dataset, memory_bytes), daemon=True)
        self.process.start()
        child.close()
        self.stop_lock = threading.Lock()
        self.stopped = False

    def wait_ready(self, timeout: float) -> bool:
        try:
            return self.connection.poll(timeout) and self.connection.recv()[0] == "ready"
        except (EOFError, OSError):  # it died while starting, or was killed
            return False

    def send(self, request: QueryRequest) -> bool:
        try:
            self.connection.send(request)
        except (OSError, ValueError):
            return False
        return True

    def receive(self, timeout: float) -> Answer | None:
        """The answer; None while the query still runs; for a dead worker, why it died."""
        try:
            if not self.connection.poll(timeout):
                return None
            return self.connection.recv()
        except (EOFError, OSError):
            pass
        self.process.join(2)
        code = self.process.exitcode
        # Rust aborts (SIGABRT) when an allocation fails under the cap; SIGKILL while we
        # were still waiting is the kernel's out-of-memory killer.
        if code in (-signal.SIGABRT, -signal.SIGKILL):
            return Answer(Outcome.MEMORY)
        return Answer(Outcome.CRASHED, message=f"exit code {code}")

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()

    def stop(self) -> None:
        # Once only, whoever calls: two threads closing one pipe could close a descriptor
        # number the process has since given to another file.
        with self.stop_lock:
            if self.stopped:
                return
            self.stopped = True
            self.kill()
            self.process.join(5)
            self.connection.close()


def _query_key(text: str) -> str:
    # Whitespace does not change what a query does: resent reformatted, it is still known.
    return hashlib.blake2b(" ".join(text.split()).encode(), digest_size=16).hexdigest()


class _Slot:
    """A query's long-query slot: taken at most once, released once."""

    def __init__(self, slots: threading.BoundedSemaphore) -> None:
        self.slots = slots
        self.held = False

    def take(self, timeout: float) -> bool:
        if timeout > 0:
            self.held = self.slots.acquire(timeout=timeout)
        else:
            self.held = self.slots.acquire(blocking=False)
        return self.held

    def release(self) -> None:
        if self.held:
            self.held = False
            self.slots.release()


class QueryPool:
    """The workers and the two lanes (see the module docstring)."""

    def __init__(self, dataset: list[tuple[str, str]], limits: PoolLimits) -> None:
        self.dataset = dataset
        self.limits = limits
        self.memory_bytes = limits.memory_mb * 1024 * 1024
        self.context = multiprocessing.get_context("spawn")
        self.idle: queue.Queue[QueryWorker] = queue.Queue()
        self.long_slots = threading.BoundedSemaphore(limits.long_queries)
        self.all: set[QueryWorker] = set()
        self.starting: set[QueryWorker] = set()
        self.known_long: OrderedDict[str, None] = OrderedDict()
        self.lock = threading.Lock()
        self.closed = False
        self.spare: QueryWorker | None = None
        workers = [self._start() for _ in range(limits.workers + 1)]
        for worker in workers:
            if not worker.wait_ready(START_TIMEOUT):
                self.close()
                raise WorkerStartError(
                    f"a SPARQL worker process did not start (memory cap {limits.memory_mb} MB)")
        self.spare = workers.pop()  # started, not serving: it replaces a killed worker at once
        for worker in workers:
            self.idle.put(worker)

    def _start(self) -> QueryWorker:
        worker = QueryWorker(self.context, self.dataset, self.memory_bytes)
        with self.lock:
            self.all.add(worker)
        return worker

    def _discard(self, worker: QueryWorker) -> None:
        """Kill the worker now; start its replacement in the background."""
        worker.kill()
        threading.Thread(target=self._replace, args=(worker,), daemon=True).start()

    def _release(self, worker: QueryWorker) -> None:
        """Stop the worker unless close() has taken it to stop itself."""
        with self.lock:
            owned = worker in self.all
            self.all.discard(worker)
        if owned:
            worker.stop()

    def _replace(self, worker: QueryWorker) -> None:
        with self.lock:
            spare, self.spare = self.spare, None
        # The spare takes over at once: a start takes about a second on a busy machine, a
        # second in which the quick lane would otherwise be one worker short.
        if spare is not None and not self.closed:
            self.idle.put(spare)
        self._release(worker)
        fresh = self._start_replacement()
        if fresh is None:
            return
        with self.lock:
            kept_as_spare = self.spare is None
            if kept_as_spare:
                self.spare = fresh
        if not kept_as_spare:
            self.idle.put(fresh)

    def _start_replacement(self) -> QueryWorker | None:
        """A started worker, registered in the pool; None once the pool is closed.

        Until it is registered the worker belongs to this thread alone: close() only kills a
        starting worker (a signal), so its pipe is closed once, here, never from two threads.
        """
        try:
            fresh = QueryWorker(self.context, self.dataset, self.memory_bytes)
        except Exception:
            # The pool was closed while the replacement started (the server stopping just
            # after a worker was killed): none is needed, and none is said to have failed.
            if self.closed:
                return None
            raise
        with self.lock:
            self.starting.add(fresh)
        ready = not self.closed and fresh.wait_ready(START_TIMEOUT)
        with self.lock:
            self.starting.discard(fresh)
            registered = ready and not self.closed
            if registered:
                self.all.add(fresh)
        if registered:
            return fresh
        fresh.stop()
        if not self.closed:  # the pool is one worker short from now on: say so
            print("a SPARQL worker process did not restart", file=sys.stderr, flush=True)
        return None

    def run(self, request: QueryRequest) -> Answer:
        key = _query_key(request.text)
        slot = _Slot(self.long_slots)
        if self._known_long(key) and not slot.take(self.limits.queue_wait):
            return Answer(Outcome.LONG_BUSY)
        try:
            try:
                worker = self.idle.get(timeout=self.limits.queue_wait)
            except queue.Empty:
                return Answer(Outcome.BUSY)
            if not worker.send(request):
                self._discard(worker)
                return Answer(Outcome.CRASHED, message="the worker was not running")
            answer = self._wait(worker, slot, key)
            if answer.outcome in REUSABLE:
                self.idle.put(worker)
            else:
                self._discard(worker)
            return answer
        finally:
            # After _wait killed an overrunning worker: it never runs beside its successor.
            slot.release()

    def _wait(self, worker: QueryWorker, slot: _Slot, key: str) -> Answer:
        """The worker's answer, in the quick lane and then a long-query slot."""
        started = time.monotonic()
        limit = self.limits.query_timeout
        if not slot.held:
            answer = worker.receive(min(self.limits.quick_seconds, limit))
            if answer is not None:
                return answer
            self._remember_long(key)
            if not slot.take(0):
                worker.kill()
                return Answer(Outcome.LONG_BUSY)
        answer = worker.receive(max(limit - (time.monotonic() - started), 0.0))
        if answer is None:
            worker.kill()
            return Answer(Outcome.TIMEOUT)
        return answer

    def _known_long(self, key: str) -> bool:
        with self.lock:
            return key in self.known_long

    def _remember_long(self, key: str) -> None:
        with self.lock:
            self.known_long[key] = None
            self.known_long.move_to_end(key)
            while len(self.known_long) > KNOWN_LONG:
                self.known_long.popitem(last=False)

    def close(self) -> None:
        with self.lock:
            self.closed = True
            workers = list(self.all)
            self.all.clear()
            starting = list(self.starting)
        for worker in starting:  # its starting thread closes its pipe
            worker.kill()
        for worker in workers:
            with contextlib.suppress(OSError):
                worker.stop()
