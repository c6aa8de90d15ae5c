"""A per-connection limit on outgoing QoS 1 and 2 deliveries awaiting their final acknowledgement.

Stock amqtt sends every delivery at once: a subscriber that does not acknowledge runs
the session's 65,535 packet ids out, and later deliveries fail and are lost. With the
window at most `limit` deliveries hold a packet id (from their PUBLISH to their PUBACK
or PUBCOMP); the others wait, in order, for a slot (as Mosquitto's
`max_inflight_messages`). When the connection ends, the deliveries given a slot but not
started and then the waiting ones are handed, in order, to `spill` (the session's offline
queue), and so is any delivery that comes later.

A delivery joins the line (`reserve`) when it is created, and its task `take`s the slot
when it runs. Slots are handed on in order: a taker is told that its slot is given only
once the one given before it has started. Telling every taker at once reordered
deliveries: a task created just before a release, its first step already queued, found
its slot given when it ran and sent before the older takers woken by that release (the
bridge stored burst-222 before burst-215, tests/test_bridge_crash.py).

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
        self._granted: deque[tuple[asyncio.Future[bool], Item]] | None = None  # given a slot, not started yet, in order
        self._closed = False
        self._shorter: asyncio.Future[None] | None = None  # set once fewer than `_mark` wait: made while a publisher waits
        self._mark = 0

    @property
    def waiting(self) -> int:
        """Deliveries in line for a slot: the connection's backlog."""
        return len(self._waiting) if self._waiting else 0

    def reserve(self, item: Item) -> asyncio.Future[bool]:
        """Join the line for a slot now (so `waiting` counts it at once); the delivery's task then `take`s it."""
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

    async def take(self, slot: asyncio.Future[bool]) -> bool:
        """Wait for `slot`'s turn: True to send the delivery now (every delivery given a slot before it has
        started), False when the window closed and the item was spilled. A cancelled taker leaves the line,
        or passes on a slot already given."""
        try:
            given = await slot
        except asyncio.CancelledError:
            self._abandon(slot)
            raise
        return given and self._start(slot)

    def _start(self, slot: asyncio.Future[bool]) -> bool:
        """The first given slot's taker sends now; the next given slot's taker is told."""
        if not self._granted or self._granted[0][0] is not slot:
            return False  # the window closed meanwhile: the item was spilled
        self._granted.popleft()
        self._hand_on()
        return True

    def _abandon(self, slot: asyncio.Future[bool]) -> None:
        """The taker of `slot` is gone (cancelled): it leaves the line, or passes on the slot it was given."""
        if not slot.done():
            slot.cancel()
        if not slot.cancelled():
            if self._start(slot):  # told, but gone: the slot goes to the next waiter
                self.release()
        elif any(entry[0] is slot for entry in self._waiting or ()):
            self._waiting = deque(entry for entry in self._waiting or () if entry[0] is not slot)
            self._note_shorter()
        elif any(entry[0] is slot for entry in self._granted or ()):
            self._granted = deque(entry for entry in self._granted or () if entry[0] is not slot)
            self._hand_on()
            self.release()

    def _grant(self, slot: asyncio.Future[bool], item: Item) -> None:
        self._in_use += 1
        if self._granted is None:
            self._granted = deque()
        self._granted.append((slot, item))
        self._hand_on()

    def _hand_on(self) -> None:
        """Tell the taker of the first given slot, if not yet told (a cancelled one is told nothing: it leaves)."""
        if not self._granted:
            self._granted = None  # an idle connection keeps no empty deque
        elif not self._granted[0][0].done():
            self._granted[0][0].set_result(True)

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
        for slot, item in self._granted or ():
            self._spill(item)
            if not slot.done():
                slot.set_result(False)
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
