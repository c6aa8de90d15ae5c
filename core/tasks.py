"""Stopping background tasks reliably."""

from __future__ import annotations

import asyncio

RETRY_CANCEL_AFTER = 1.0


def stop_if_cancelled() -> None:
    """Raise CancelledError if the running task was cancelled and what it awaited swallowed the cancellation.

    Python 3.11's `asyncio.wait_for` returns normally when a cancellation arrives just as
    the awaited future completes, and so does everything waiting through it or through a
    task of its own: nats-py's `next_msg`, hence a JetStream `fetch`, swallowed most
    cancellations that arrived during a burst (measured). The request stays counted in
    `Task.cancelling()`. A loop that runs until cancelled calls this on every round, or it
    goes on for ever, and so does the TaskGroup that cancelled it and waits for it to end.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def cancel_and_wait(task: asyncio.Task[object], stopped: asyncio.Event | None = None) -> None:
    """Cancel `task` and wait until it has ended (or set `stopped`), cancelling again if a cancellation was swallowed.

    Python 3.11's `asyncio.wait_for` drops a cancellation that arrives just as the
    awaited future completes (as aiomqtt's CONNACK wait and amqtt's packet reader
    do), and the task then goes on as if nothing happened; a single cancel() could
    wait forever. `stopped` is for a task that signals it has stopped before it
    ends (its clean-up after the signal is then left to finish). The task's own
    outcome (result, error, cancellation) is not raised.
    """
    signalled = asyncio.ensure_future((stopped or asyncio.Event()).wait())
    try:
        while not task.done() and not signalled.done():
            task.cancel()
            await asyncio.wait({task, signalled}, timeout=RETRY_CANCEL_AFTER, return_when=asyncio.FIRST_COMPLETED)
    finally:
        signalled.cancel()
    if task.done() and not task.cancelled():
        task.exception()  # retrieved: nothing to report at shutdown
