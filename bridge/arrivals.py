"""What a bridge worker consumes on NATS, kept apart from the nats client (bridge.request_queue), which only
workers on that broker import."""

from __future__ import annotations

import asyncio

import aiomqtt


class QueueLost(Exception):
    """The connection to the request queue closed; the worker connects again."""


class Arrivals:
    """What a worker consumes, in arrival order: its MQTT deliveries and the requests pulled from the queue."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[aiomqtt.Message] = asyncio.Queue()
        self._taken = asyncio.Event()  # set whenever the worker takes one

    def put(self, message: aiomqtt.Message) -> None:
        self._queue.put_nowait(message)

    def __len__(self) -> int:
        return self._queue.qsize()

    def __aiter__(self) -> Arrivals:
        return self

    async def __anext__(self) -> aiomqtt.Message:
        message = await self._queue.get()
        self._taken.set()
        return message

    async def below(self, size: int) -> None:
        """Wait until fewer than `size` arrivals wait for the worker."""
        while self._queue.qsize() >= size:
            self._taken.clear()
            await self._taken.wait()
