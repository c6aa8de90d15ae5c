"""Exponential backoff for retry and reconnect loops."""

from __future__ import annotations

import asyncio

MAX_DELAY = 10.0


class Backoff:
    """Delays that start at `first` and double after each wait, up to `cap`; `reset` starts over."""

    def __init__(self, first: float, cap: float = MAX_DELAY) -> None:
        self._first, self._cap = first, cap
        self.delay = first

    def reset(self) -> None:
        self.delay = self._first

    async def wait(self) -> None:
        """Sleep for the current delay, then double it."""
        await asyncio.sleep(self.delay)
        self.delay = min(self.delay * 2, self._cap)
