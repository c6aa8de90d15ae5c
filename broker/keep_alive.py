"""Keep-alive on the embedded broker: a connection silent for 1.5 times its keep-alive is closed [MQTT-3.1.2-24].

A time-out around each packet read (what the reader did first) set and cancelled a
timer per packet received, half of the broker's timers per chat message. Here a
connection has one timer at a time: the reader notes when it starts waiting for a
packet and when one arrived (two clock reads), and the timer, when due, either
re-arms itself for the deadline of the wait in progress or, if that wait outlasted
the deadline, cancels the reader. A busy connection re-arms it about once per deadline.
"""

from __future__ import annotations

import asyncio


class SilenceWatch:
    """Cancels `reader` (the task reading a connection) once a wait for a packet has lasted `deadline` seconds.

    The reader calls `waiting()` before each read and `heard()` after it; `expired` tells a
    cancellation by the watch from any other; `stop()` when the reader ends. No deadline: no timer.
    """

    def __init__(self, deadline: float | None, reader: asyncio.Task[None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._deadline = deadline
        self._reader = reader
        self._since: float | None = None  # when the wait in progress started; None while a packet is handled
        self.expired = False
        self._timer = None if deadline is None else self._loop.call_at(self._loop.time() + deadline, self._due)

    def waiting(self) -> None:
        """The reader starts waiting for the next packet."""
        self._since = self._loop.time()

    def heard(self) -> None:
        """A packet arrived: the time the reader spends handling it is not silence."""
        self._since = None

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _due(self) -> None:
        assert self._deadline is not None
        now = self._loop.time()
        started = now if self._since is None else self._since  # while a packet is handled, silence starts later at the earliest
        if now < started + self._deadline:
            self._timer = self._loop.call_at(started + self._deadline, self._due)
            return
        self.expired = True
        self._timer = None
        self._reader.cancel()
