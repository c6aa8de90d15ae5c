"""Bounded in-memory collections: every long-lived map in a process uses cachetools' TTLCache/LRUCache
(or LRUSet below, a set on top of LRUCache), its bound a setting, so memory stays within a bound
whatever the traffic. Forgetting an entry must only cost work (a reload, a duplicate), never correctness.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableSet

from cachetools import LRUCache


class LRUSet(MutableSet[str]):
    """A set of at most `maxsize` strings; adding to a full set forgets the least recently added."""

    def __init__(self, maxsize: int) -> None:
        self._items: LRUCache[str, None] = LRUCache(maxsize)

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def maxsize(self) -> int:
        """The bound."""
        return int(self._items.maxsize)

    def add(self, value: str) -> None:
        """Remember `value` (refreshing it if already present)."""
        self._items[value] = None

    def discard(self, value: str) -> None:
        """Forget `value` if present."""
        self._items.pop(value, None)

    def clear(self) -> None:
        """Forget everything."""
        self._items.clear()
