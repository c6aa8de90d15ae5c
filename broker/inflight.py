"""A per-connection limit on outgoing QoS 1 and 2 deliveries awaiting their final acknowledgement.

Stock amqtt sends every delivery at once: a subscriber that does not acknowledge runs
the session's 65,535 packet ids out, and later deliveries fail and are lost. With the
window at most `limit` deliveries hold a packet id (from their PUBLISH to their PUBACK
or PUBCOMP); the others wait, in order, for a slot (as Mosquitto's
`max_inflight_messages`). When the connection ends, the waiting ones are handed, in
order, to `spill` (the session's offline queue), and so is any delivery that comes later.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")


class InflightWindow(Generic[Item]):
    """At most `limit` slots taken at once; takers wait in order; a closed window spills what waits or comes."""

    def __init__(self, limit: int, in_use: int, spill: Callable[[Item], None]) -> None:
        self._limit = limit
        self._in_use = in_use  # deliveries already in flight (a resumed session's) count against the limit
        self._spill = spill
        self._waiting: deque[tuple[asyncio.Future[bool], Item]] | None = None  # made when a taker first waits (760 bytes)
        self._closed = False

    async def take(self, item: Item) -> bool:
        """Take a slot for `item`: True once taken, False when the window closed and `item` was spilled."""
        if self._closed:
            self._spill(item)
            return False
        if self._in_use < self._limit and not self._waiting:
            self._in_use += 1
            return True
        slot: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self._waiting is None:
            self._waiting = deque()
        self._waiting.append((slot, item))
        try:
            return await slot
        except asyncio.CancelledError:
            if slot.cancelled():
                self._waiting = deque(entry for entry in self._waiting or () if entry[0] is not slot)
            elif slot.result():
                self.release()  # granted, but its taker is gone: pass the slot on
            raise

    def release(self) -> None:
        """Give a slot back (its delivery was acknowledged); the first waiter gets it."""
        self._in_use -= 1
        while self._waiting and self._in_use < self._limit:
            slot, _ = self._waiting.popleft()
            if not slot.done():
                self._in_use += 1
                slot.set_result(True)

    def close(self) -> None:
        """The connection ended: spill the waiting items in order; later takers are spilled at once."""
        self._closed = True
        while self._waiting:
            slot, item = self._waiting.popleft()
            if not slot.done():
                self._spill(item)
                slot.set_result(False)
