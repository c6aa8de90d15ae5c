"""Running one async entry point until SIGINT/SIGTERM; the handlers only set a stop event."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

from core.logs import configure_logging
from core.settings import Settings


def run_until_signalled(settings: Settings, main: Callable[[asyncio.Event], Awaitable[int | None]]) -> int:
    """Run `main(stop)` in a fresh event loop; SIGINT/SIGTERM set `stop`. Returns main's exit code (default 0)."""
    configure_logging(settings.log_level)

    async def runner() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await main(stop) or 0

    return asyncio.run(runner())
