"""Union-find: the one way the project groups what must stay together (patients that
share a node, files that name one patient, nodes of one patient's record)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)


class UnionFind(Generic[Key]):
    """Disjoint sets of keys; a key never joined is its own set. The root of a set is the
    key of it that was made a root first, so the grouping does not depend on hashing."""

    def __init__(self) -> None:
        self.parent: dict[Key, Key] = {}

    def find(self, key: Key) -> Key:
        parent = self.parent
        root = key
        while (up := parent.get(root, root)) != root:
            root = up
        while (up := parent.get(key, key)) != root:  # path compression
            parent[key] = root
            key = up
        return root

    def union(self, first: Key, second: Key) -> None:
        one, other = self.find(first), self.find(second)
        if one != other:
            self.parent[other] = one

    def __eq__(self, other: object) -> bool:
        # The same sets with the same roots, however the parents were compressed.
        return isinstance(other, UnionFind) and self.roots() == other.roots()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def roots(self) -> dict[Key, Key]:
        """Each key that was joined, with the root of its set."""
        return {key: self.find(key) for key in list(self.parent)}


def file_groups(count: int, links: Iterable[tuple[int, int]]) -> list[list[int]]:
    """``count`` items (by index) grouped by their links, direct or through others; each
    group in index order, the groups in the order of their first item."""
    sets: UnionFind[int] = UnionFind()
    for first, second in sorted((min(pair), max(pair)) for pair in links):
        sets.union(first, second)
    grouped: dict[int, list[int]] = {}
    for index in range(count):
        grouped.setdefault(sets.find(index), []).append(index)
    return list(grouped.values())
