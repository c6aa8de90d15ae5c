"""Stopping background tasks: a swallowed cancellation must not hang a shutdown."""

from __future__ import annotations

import asyncio

from core.tasks import cancel_and_wait, stop_if_cancelled


async def test_cancel_and_wait_cancels_again_when_a_cancellation_is_swallowed() -> None:
    async def stubborn() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass  # as Python 3.11's wait_for does when its future completes at the same moment
        await asyncio.sleep(3600)

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait(task), 10)
    assert task.cancelled()


async def test_cancel_and_wait_keeps_the_task_error_to_itself() -> None:
    async def failing() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            raise RuntimeError("while stopping")

    task = asyncio.create_task(failing())
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert isinstance(task.exception(), RuntimeError)


async def test_cancel_and_wait_returns_once_the_task_signals_it_stopped() -> None:
    stopped = asyncio.Event()
    cancels_seen = 0

    async def reader_loop() -> None:  # shaped like amqtt's packet reader
        nonlocal cancels_seen
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancels_seen += 1
                if cancels_seen == 1:
                    continue  # the first cancellation is swallowed
                break
        stopped.set()
        await asyncio.sleep(3600)  # clean-up after the signal is not waited for

    task = asyncio.create_task(reader_loop())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait(task, stopped=stopped), 10)
    assert cancels_seen == 2 and stopped.is_set() and not task.done()
    await cancel_and_wait(task)


async def test_a_loop_ends_when_what_it_awaited_swallowed_the_cancellation() -> None:
    """Python 3.11's wait_for returns normally when the cancellation comes with its result (the event set and the
    task cancelled in the same loop iteration): a loop until cancelled ends only because it checks every round."""
    rounds = {"plain": 0, "checked": 0}

    async def waiting(kind: str, woken: asyncio.Event) -> None:
        while True:
            if kind == "checked":
                stop_if_cancelled()
            await asyncio.wait_for(woken.wait(), 3600)
            woken.clear()
            rounds[kind] += 1

    for kind in rounds:
        woken = asyncio.Event()
        task = asyncio.create_task(waiting(kind, woken))
        await asyncio.sleep(0)
        woken.set()
        task.cancel()
        await asyncio.wait({task}, timeout=0.5)
        assert task.done() == (kind == "checked") and rounds[kind] == 1, (kind, rounds)
        await cancel_and_wait(task)
