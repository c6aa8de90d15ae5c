"""Stopping background tasks reliably."""

from __future__ import annotations

import asyncio

RETRY_CANCEL_AFTER = 1.0


async def cancel_and_wait(task: asyncio.Task[object]) -> None:
    """Cancel `task` and wait until it has ended, cancelling again if a cancellation was swallowed.

    Python 3.11's `asyncio.wait_for` drops a cancellation that arrives just as the
    awaited future completes (as aiomqtt's CONNACK wait does at start-up), and the
    task then goes on as if nothing happened; a single cancel() could wait forever.
    The task's own outcome (result, error, cancellation) is not raised.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=RETRY_CANCEL_AFTER)
    if not task.cancelled():
        task.exception()  # retrieved: nothing to report at shutdown
