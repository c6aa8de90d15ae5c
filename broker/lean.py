"""An asyncio queue and event for per-connection state, which cost next to nothing until used, and lighter streams.

An idle connection on the embedded broker held four asyncio.Queues and three
asyncio.Events of amqtt's: each Queue four deques and each Event one, and an empty
deque takes 760 bytes (one 64-slot block), 13 KB per connection for nothing queued
(docs/benchmarks.md, "Memory per idle connection"). These hold two slots until an
item or a waiter comes, and give their deque back once empty again.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable
from typing import Generic, TypeVar

from amqtt.adapters import ReaderAdapter

Item = TypeVar("Item")


class LeanQueue(Generic[Item]):
    """The part of an unbounded asyncio.Queue that amqtt and the broker use, for one consumer at a time.

    `close()` ends it: once what was put before (or after) is taken, `get()` returns None.
    A producer may wait for it to be `shorter_than` a size (one producer at a time).
    """

    __slots__ = ("_closed", "_getter", "_items", "_size", "_taker")

    def __init__(self) -> None:
        self._items: deque[Item] | None = None
        self._getter: asyncio.Future[None] | None = None
        self._closed = False
        self._taker: asyncio.Future[None] | None = None  # set once fewer than `_size` items are left: while a producer waits
        self._size = 0

    @property
    def closed(self) -> bool:
        return self._closed

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: Item) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        self._wake()

    async def put(self, item: Item) -> None:
        self.put_nowait(item)

    def get_nowait(self) -> Item:
        if not self._items:
            raise asyncio.QueueEmpty
        item = self._items.popleft()
        if not self._items:
            self._items = None
        if self._taker is not None and not self._taker.done() and self.qsize() < self._size:
            self._taker.set_result(None)
        return item

    async def get(self) -> Item | None:
        """The next item, waiting for one; None once the queue is closed and empty."""
        while not self._items:
            if self._closed:
                return None
            if self._getter is not None:
                raise RuntimeError("LeanQueue has one consumer at a time")
            self._getter = asyncio.get_running_loop().create_future()
            try:
                await self._getter
            finally:
                self._getter = None
        return self.get_nowait()

    async def shorter_than(self, size: int) -> None:
        """Return once fewer than `size` items are queued, or the queue is closed."""
        while not self._closed and self.qsize() >= size:
            if self._taker is not None:
                raise RuntimeError("LeanQueue has one producer waiting at a time")
            self._size = size
            self._taker = asyncio.get_running_loop().create_future()
            try:
                await self._taker
            finally:
                self._taker = None

    def close(self) -> None:
        """No more waiting: `get()` returns None once the queue is empty, `shorter_than()` at once."""
        self._closed = True
        self._wake()
        if self._taker is not None and not self._taker.done():
            self._taker.set_result(None)

    def _wake(self) -> None:
        if self._getter is not None and not self._getter.done():
            self._getter.set_result(None)


class LeanEvent:
    """asyncio.Event's set/is_set/wait, with a future only while someone waits."""

    __slots__ = ("_set", "_waiter")

    def __init__(self) -> None:
        self._set = False
        self._waiter: asyncio.Future[None] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self) -> bool:
        if not self._set:
            if self._waiter is None or self._waiter.done():
                self._waiter = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._waiter)  # one waiter's cancellation must not cancel the others' wait
        return True


def lighten_stream(writer: asyncio.StreamWriter) -> None:
    """Give the stream's protocol a list for its drain waiters instead of a deque (760 bytes, nearly always empty).

    asyncio's StreamReaderProtocol only appends to, removes from and iterates over it (3.11 to 3.13).
    """
    protocol = writer.transport.get_protocol()
    waiters = getattr(protocol, "_drain_waiters", None)
    if isinstance(waiters, deque) and not waiters:
        protocol._drain_waiters = []  # type: ignore[attr-defined]  # noqa: SLF001 - no public way


class StreamReading(ReaderAdapter):
    """amqtt's StreamReaderAdapter, whose `read` hands over the stream's own awaitable rather than awaiting it
    in a coroutine of its own: one frame (~0.25 KB) less in every idle connection's wait for its next packet."""

    __slots__ = ("_reader",)

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    def read(self, n: int = -1) -> Awaitable[bytes]:  # type: ignore[override]
        return self._reader.read(n) if n == -1 else self._reader.readexactly(n)

    def feed_eof(self) -> None:
        self._reader.feed_eof()
