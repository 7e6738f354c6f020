"""The SPARQL endpoint's worker pool (guidelinekg.query_workers) stops each worker once, even
when the server closes the pool while a killed worker's replacement is still starting.

Found by CI: both paths closed the same pipe, one of them failed with "Bad file descriptor"
in the server's log, and a descriptor closed twice may by then belong to another file."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from guidelinekg.query_workers import Outcome, PoolLimits, QueryPool, QueryRequest, QueryWorker

GRAPH = "https://example.org/graph"


@pytest.fixture()
def dataset(tmp_path: Path) -> list[tuple[str, str]]:
    path = tmp_path / "graph.nt"
    path.write_text("<https://example.org/s> <https://example.org/p> \"o\" .\n", encoding="utf-8")
    return [(GRAPH, str(path))]


@pytest.fixture()
def thread_errors(monkeypatch: pytest.MonkeyPatch) -> list[BaseException]:
    """What any thread raised, instead of a line on stderr."""
    caught: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook",
                        lambda args: caught.append(args.exc_value or RuntimeError(args)))
    return caught


def _join_new_threads(before: set[threading.Thread]) -> None:
    for thread in set(threading.enumerate()) - before:
        thread.join(60)
        assert not thread.is_alive(), "a replacement thread did not finish"


def test_a_worker_stopped_from_two_threads_at_once_is_stopped_once(dataset, thread_errors):
    pool = QueryPool(dataset, PoolLimits(workers=1, long_queries=1))
    try:
        worker: QueryWorker = pool.idle.get(timeout=5)
        stoppers = [threading.Thread(target=worker.stop) for _ in range(4)]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join(30)
        assert worker.stopped and not worker.process.is_alive()
        assert worker.connection.closed
        assert thread_errors == []
    finally:
        pool.close()


def _pool_with_a_killed_worker(dataset: list[tuple[str, str]]) -> QueryPool:
    pool = QueryPool(dataset, PoolLimits(workers=1, long_queries=1))
    answer = pool.run(QueryRequest(text="ASK { ?s ?p \"o\" }", default_graphs=(), named_graphs=(),
                                   solutions_type="application/sparql-results+json",
                                   graph_type=None))
    assert answer.outcome is Outcome.OK
    pool._discard(pool.idle.get(timeout=5))  # as after a query over its time limit
    return pool


def _close_and_check(pool: QueryPool, before: set[threading.Thread],
                     thread_errors: list[BaseException]) -> None:
    everyone = set(pool.all) | set(pool.starting)
    pool.close()
    _join_new_threads(before)
    everyone |= set(pool.all) | set(pool.starting)
    assert thread_errors == []
    assert pool.all == set() and pool.starting == set()
    assert [w for w in everyone if w.process.is_alive()] == []
    assert all(w.connection.closed for w in everyone)


def test_closing_the_pool_while_a_replacement_starts_stops_it_once(
        dataset, thread_errors, monkeypatch):
    before = set(threading.enumerate())
    starting = QueryWorker.wait_ready
    pools: list[QueryPool] = []

    def close_first(worker: QueryWorker, timeout: float) -> bool:
        if pools and worker in pools[0].starting:
            pools[0].close()  # the server stops just as the replacement waits to be ready
        return starting(worker, timeout)

    monkeypatch.setattr(QueryWorker, "wait_ready", close_first)
    pools.append(_pool_with_a_killed_worker(dataset))
    _close_and_check(pools[0], before, thread_errors)


@pytest.mark.parametrize("delay", [0.0, 0.3, 1.5])
def test_closing_the_pool_around_a_replacement_stops_every_worker_without_error(
        dataset, thread_errors, delay):
    before = set(threading.enumerate())
    pool = _pool_with_a_killed_worker(dataset)
    time.sleep(delay)  # the close lands before, during or after the replacement's start
    _close_and_check(pool, before, thread_errors)
