"""In-process token buckets: how many actions a key (user, account) may take, refilling over time.

Each process limits on its own (several API processes behind a balancer each
allow the configured rate; see docs/security.md).
"""

from __future__ import annotations

import time
from collections import OrderedDict

MAX_KEYS = 100_000


class TokenBucket:
    """`rate` actions per second on average, bursts of up to `burst`."""

    def __init__(self, rate: float, burst: int, clock=time.monotonic) -> None:  # type: ignore[no-untyped-def]
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._state: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str) -> float | None:
        """Spend one token for `key`; None if allowed, else the seconds until one is available."""
        now = self._clock()
        tokens, stamp = self._state.pop(key, (float(self._burst), now))
        tokens = min(float(self._burst), tokens + (now - stamp) * self._rate)
        if tokens >= 1:
            self._remember(key, (tokens - 1, now))
            return None
        self._remember(key, (tokens, now))
        return (1 - tokens) / self._rate

    def _remember(self, key: str, state: tuple[float, float]) -> None:
        self._state[key] = state
        if len(self._state) > MAX_KEYS:  # forget the least recently used keys
            self._state.popitem(last=False)
