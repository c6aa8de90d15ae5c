"""Rate limits kept in the store, so that every process using it enforces one allowance per key.

A limit of `burst` actions refilling at `rate` a second becomes `burst` actions per window of
`burst / rate` seconds, counted with a sliding-window counter: the actions of this window plus
those of the previous window weighted by how much of it still lies within one window of now.
Each window is one document (`RateWindow`): its count grows by a conditional `$inc` upsert whose
filter (`n` below the room left) makes a full window refuse atomically, whichever process asks;
a full window's upsert collides with the existing `_id` (DuplicateKeyError). An allowed action
costs two round trips (the previous window's count, then the `$inc`); windows are aligned on the
wall clock, so processes on different hosts count in the same ones.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, PyMongoError

from core.documents import RateWindow

log = logging.getLogger("mqchat.rate_windows")

SWEEP_SECONDS = 60.0


class SharedWindow:
    """`burst` actions per `burst / rate` seconds for each key, counted in the store under the limit's `name`."""

    def __init__(self, name: str, rate: float, burst: int, clock: Callable[[], float] = time.time) -> None:
        self._name = name
        self._burst = burst
        self._window_ms = max(1, round(burst / rate * 1000))
        self._clock = clock

    async def take(self, key: str) -> float | None:
        """Count one action of `key`; None if allowed, else the seconds until one would be."""
        window, into = divmod(int(self._clock() * 1000), self._window_ms)
        windows = RateWindow.get_pymongo_collection()
        previous = await _count(windows, self._id(key, window - 1))
        # this window may count up to `room` (integer arithmetic: no rounding at the boundaries)
        room = (self._burst * self._window_ms - previous * (self._window_ms - into)) // self._window_ms
        current_id = self._id(key, window)
        current = room
        if room >= 1:
            update = {"$inc": {"n": 1}, "$set": {"until_ms": (window + 2) * self._window_ms}}  # counts as previous until then
            for _ in range(2):  # a window created by another process at the same moment: once more
                try:
                    await windows.update_one({"_id": current_id, "n": {"$lt": room}}, update, upsert=True)
                    return None
                except DuplicateKeyError:
                    current = await _count(windows, current_id)
                    if current >= room:
                        break
        return self._wait(previous, current, into)

    def _id(self, key: str, window: int) -> str:
        return f"{self._name}|{key}|{window}"

    def _wait(self, previous: int, current: int, into: int) -> float:
        """Seconds from `into` (ms into this window) until `previous * overlap + current + 1 <= burst`."""
        if current + 1 <= self._burst and previous > 0:  # later in this window, as the previous one slides out
            at = self._window_ms * (1 - (self._burst - current - 1) / previous)
            return max(at - into, 1.0) / 1000
        at = self._window_ms * (1 - (self._burst - 1) / max(current, 1))  # in the next window, where this one slides out
        return (self._window_ms - into + at) / 1000


async def _count(windows: AsyncCollection, window_id: str) -> int:
    found = await windows.find_one({"_id": window_id}, {"n": 1})
    return int(found["n"]) if found else 0


async def sweep(now_ms: int | None = None) -> int:
    """Delete the windows that no longer count; how many."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    deleted = await RateWindow.get_pymongo_collection().delete_many({"until_ms": {"$lt": now_ms}})
    return deleted.deleted_count


async def keep_sweeping() -> None:
    """Sweep every SWEEP_SECONDS until cancelled (each process sharing the store may do it: it is idempotent)."""
    while True:
        await asyncio.sleep(SWEEP_SECONDS)
        try:
            await sweep()
        except PyMongoError as exc:
            log.warning("rate_windows.sweep_failed", extra={"error": str(exc)})
