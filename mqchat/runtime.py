"""Running one async entry point until SIGINT/SIGTERM; the handlers only set a stop event.

An exception that ends the entry point is logged once as `component.failed` with a
plain-words `cause` (the traceback only at DEBUG), and the exit code is 1.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

from core.logs import configure_logging
from core.settings import Settings
from mqchat.causes import describe

log = logging.getLogger("mqchat.runtime")


def run_until_signalled(settings: Settings, main: Callable[[asyncio.Event], Awaitable[int | None]]) -> int:
    """Run `main(stop)` in a fresh event loop; SIGINT/SIGTERM set `stop`. Returns main's exit code (default 0)."""
    configure_logging(settings.log_level, settings.log_format)

    async def runner() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await main(stop) or 0

    try:
        return asyncio.run(runner())
    except Exception as exc:
        debug = logging.getLogger().isEnabledFor(logging.DEBUG)
        log.error("component.failed", extra={"cause": describe(exc)}, exc_info=exc if debug else None)
        return 1
