"""In-process token buckets: how many actions a key (user, account) may take, refilling over time.

Each process limits on its own (several API processes behind a balancer each
allow the configured rate; see docs/security.md).
"""

from __future__ import annotations

import time

from cachetools import LRUCache

MAX_KEYS = 100_000  # default of MQCHAT_RATE_LIMIT_KEYS


class TokenBucket:
    """`rate` actions per second on average, bursts of up to `burst`, for at most `max_keys` keys.

    Past `max_keys` the least recently used key is forgotten: it starts again with a full bucket.
    """

    def __init__(self, rate: float, burst: int, clock=time.monotonic, max_keys: int = MAX_KEYS) -> None:  # type: ignore[no-untyped-def]
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._state: LRUCache[str, tuple[float, float]] = LRUCache(max_keys)

    def __len__(self) -> int:
        """Keys remembered now."""
        return len(self._state)

    def take(self, key: str) -> float | None:
        """Spend one token for `key`; None if allowed, else the seconds until one is available."""
        now = self._clock()
        tokens, stamp = self._state.get(key, (float(self._burst), now))
        tokens = min(float(self._burst), tokens + (now - stamp) * self._rate)
        if tokens >= 1:
            self._state[key] = (tokens - 1, now)
            return None
        self._state[key] = (tokens, now)
        return (1 - tokens) / self._rate
