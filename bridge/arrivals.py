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

    def put(self, message: aiomqtt.Message) -> None:
        self._queue.put_nowait(message)

    def __len__(self) -> int:
        return self._queue.qsize()

    def __aiter__(self) -> Arrivals:
        return self

    async def __anext__(self) -> aiomqtt.Message:
        return await self._queue.get()
