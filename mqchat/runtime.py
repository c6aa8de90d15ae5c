"""Running one async entry point until SIGINT/SIGTERM; the handlers only set a stop event.

An exception that ends the entry point is logged once as `component.failed` with a
plain-words `cause` (the traceback only at DEBUG), and the exit code is 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal
from collections.abc import Awaitable, Callable

import uvloop

from core.logs import configure_logging
from core.settings import Settings
from mqchat.causes import describe

log = logging.getLogger("mqchat.runtime")

MAX_OPEN_FILES = 1 << 20  # the soft limit asked for when the hard one is unlimited (Linux's default fs.nr_open)


def raise_open_files_limit(wanted: int | None = None) -> int:
    """Raise this process's soft limit of open files to `wanted` (default: the hard limit); the soft limit now.

    A broker holds one file per connection, and the usual soft limit of 1,024 would cap
    it there; the processes this one starts (Mosquitto by `mqchat mosquitto`, the
    components by `mqchat up`) inherit the raised limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = MAX_OPEN_FILES if hard == resource.RLIM_INFINITY else hard
    target = ceiling if wanted is None else min(wanted, ceiling)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):  # the kernel's own ceiling (fs.nr_open) may be lower
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def run_until_signalled(settings: Settings, main: Callable[[asyncio.Event], Awaitable[int | None]]) -> int:
    """Run `main(stop)` in a fresh uvloop event loop, with the open-files limit raised; SIGINT/SIGTERM set `stop`.

    Returns main's exit code (default 0).
    """
    configure_logging(settings.log_level, settings.log_format)
    raise_open_files_limit()

    async def runner() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await main(stop) or 0

    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as loop_runner:
            return loop_runner.run(runner())
    except Exception as exc:
        debug = logging.getLogger().isEnabledFor(logging.DEBUG)
        log.error("component.failed", extra={"cause": describe(exc)}, exc_info=exc if debug else None)
        return 1
