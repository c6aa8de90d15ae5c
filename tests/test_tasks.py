"""Stopping background tasks: a swallowed cancellation must not hang a shutdown."""

from __future__ import annotations

import asyncio

from core.tasks import cancel_and_wait


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
