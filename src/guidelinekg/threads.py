"""Threads a process keeps for work run side by side: pyoxigraph plans and evaluates a query
without holding Python's lock, so a query runs on another core while Python goes on."""

from __future__ import annotations

import os
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import ParamSpec, TypeVar

_P = ParamSpec("_P")
_T = TypeVar("_T")

_POOLS: dict[str, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _forget_pools_in_child() -> None:
    """A forked process (a cohort worker) has none of its parent's threads, and may have
    been forked while another thread held the lock: it starts with no pools and a new lock."""
    global _POOLS_LOCK
    _POOLS.clear()
    _POOLS_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_pools_in_child)


def run_beside(pool: str, workers: int, task: Callable[_P, _T], *args: _P.args,
               **kwargs: _P.kwargs) -> Future[_T]:
    """``task(*args, **kwargs)`` on a thread of this process's pool called ``pool`` (of
    ``workers`` threads). A task must not wait on a task of its own pool: nested work takes
    a pool of its own."""
    return process_threads(pool, workers).submit(_detached, partial(task, *args, **kwargs))


def _detached(task: Callable[[], _T]) -> _T:
    """``task``, raising its error without the frames it went through (their text is kept
    as a note). Those frames hold pyoxigraph's query iterators, which must be freed on the
    thread that made them; kept in a traceback, they would be freed by whichever thread
    collects the traceback, which pyoxigraph refuses (and leaks them)."""
    try:
        return task()
    except Exception as error:
        error.add_note("".join(traceback.format_tb(error.__traceback__)).rstrip())
        raise error.with_traceback(None) from None


def process_threads(name: str, workers: int) -> ThreadPoolExecutor:
    """This process's pool called ``name`` (made at the first call, with ``workers``
    threads)."""
    with _POOLS_LOCK:
        if name not in _POOLS:
            _POOLS[name] = ThreadPoolExecutor(max_workers=workers,
                                              thread_name_prefix=f"guidelinekg-{name}")
        return _POOLS[name]


def cores() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1
