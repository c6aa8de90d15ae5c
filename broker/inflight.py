"""A per-connection limit on outgoing QoS 1 and 2 deliveries awaiting their final acknowledgement.

Stock amqtt sends every delivery at once: a subscriber that does not acknowledge runs
the session's 65,535 packet ids out, and later deliveries fail and are lost. With the
window at most `limit` deliveries hold a packet id (from their PUBLISH to their PUBACK
or PUBCOMP); the others wait, in order, for a slot (as Mosquitto's
`max_inflight_messages`). A taker given a slot `start`s its delivery when it runs. When
the connection ends, the deliveries given a slot but not started and then the waiting
ones are handed, in order, to `spill` (the session's offline queue), and so is any
delivery that comes later.

How many wait (`waiting`) is the connection's backlog: SecureBroker makes publishers
wait for a service session's backlog to shrink (`shorter_than`) and closes an ordinary
session whose backlog passes its cap (docs/broker.md, "Back-pressure").
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")


class InflightWindow(Generic[Item]):
    """At most `limit` slots taken at once; takers wait in order; a closed window spills what waits or comes."""

    __slots__ = ("_closed", "_granted", "_in_use", "_limit", "_mark", "_shorter", "_spill", "_waiting")

    def __init__(self, limit: int, in_use: int, spill: Callable[[Item], None]) -> None:
        self._limit = limit
        self._in_use = in_use  # deliveries already in flight (a resumed session's) count against the limit
        self._spill = spill
        self._waiting: deque[tuple[asyncio.Future[bool], Item]] | None = None  # made when a taker first waits (760 bytes)
        self._granted: dict[asyncio.Future[bool], Item] | None = None  # given a slot, not started yet, in order
        self._closed = False
        self._shorter: asyncio.Future[None] | None = None  # set once fewer than `_mark` wait: made while a publisher waits
        self._mark = 0

    @property
    def waiting(self) -> int:
        """Deliveries in line for a slot: the connection's backlog."""
        return len(self._waiting) if self._waiting else 0

    def reserve(self, item: Item) -> asyncio.Future[bool]:
        """Join the line for a slot now (so `waiting` counts it at once): the future says True once the slot is
        given (then `start` it), False when the window closed and `item` was spilled. A taker that gives up calls
        `abandon`."""
        slot: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self._closed:
            self._spill(item)
            slot.set_result(False)
        elif self._in_use < self._limit and not self._waiting:
            self._grant(slot, item)
        else:
            if self._waiting is None:
                self._waiting = deque()
            self._waiting.append((slot, item))
        return slot

    def start(self, slot: asyncio.Future[bool]) -> bool:
        """The taker of a given slot sends its delivery now: False if the window closed meanwhile (it was spilled)."""
        if self._granted is None or self._granted.pop(slot, None) is None:
            return False
        if not self._granted:
            self._granted = None  # an idle connection keeps no empty dict
        return True

    def abandon(self, slot: asyncio.Future[bool]) -> None:
        """The taker of `slot` is gone (cancelled): leave the line, or pass on a slot already given."""
        if not slot.done():
            slot.cancel()
        if slot.cancelled():
            self._waiting = deque(entry for entry in self._waiting or () if entry[0] is not slot)
            self._note_shorter()
        elif self.start(slot):
            self.release()

    def _grant(self, slot: asyncio.Future[bool], item: Item) -> None:
        self._in_use += 1
        if self._granted is None:
            self._granted = {}
        self._granted[slot] = item
        slot.set_result(True)

    def release(self) -> None:
        """Give a slot back (its delivery was acknowledged); the first waiter gets it."""
        self._in_use -= 1
        while self._waiting and self._in_use < self._limit:
            slot, item = self._waiting.popleft()
            if not slot.done():
                self._grant(slot, item)
        self._note_shorter()

    async def shorter_than(self, mark: int) -> None:
        """Return once fewer than `mark` deliveries wait for a slot, or the window is closed."""
        while not self._closed and self.waiting >= mark:
            if self._shorter is None or self._shorter.done():
                self._shorter = asyncio.get_running_loop().create_future()
            self._mark = mark
            await asyncio.shield(self._shorter)  # one waiter's cancellation must not cancel the others' wait

    def close(self) -> None:
        """The connection ended: spill the items given a slot but not started, then the waiting ones, in order;
        later takers are spilled at once."""
        self._closed = True
        for item in (self._granted or {}).values():
            self._spill(item)
        self._granted = None
        while self._waiting:
            slot, item = self._waiting.popleft()
            if not slot.done():
                self._spill(item)
                slot.set_result(False)
        self._note_shorter()

    def _note_shorter(self) -> None:
        if self._shorter is not None and not self._shorter.done() and (self._closed or self.waiting < self._mark):
            self._shorter.set_result(None)
            self._shorter = None
