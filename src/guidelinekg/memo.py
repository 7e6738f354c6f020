"""Values computed once per key and kept across calls, in bounded memory."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedMemo(Generic[K, V]):
    """``compute(key)``, kept for the next call with the same key. Emptied when it holds
    ``limit`` values, so a stream of fresh keys (a cohort's patients) keeps memory bounded;
    a few keys used over and over (a guideline's terms, the shapes' queries) stay."""

    def __init__(self, compute: Callable[[K], V], limit: int) -> None:
        self._compute = compute
        self._limit = limit
        self._kept: dict[K, V] = {}

    def __call__(self, key: K) -> V:
        found = self._kept.get(key)
        if found is None:
            if len(self._kept) >= self._limit:
                self._kept.clear()
            found = self._kept[key] = self._compute(key)
        return found
