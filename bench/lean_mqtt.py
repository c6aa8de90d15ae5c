"""A lean MQTT 3.1.1 client for the load generator, so that the generator's own CPU stays out of the figures.

aiomqtt over paho costs the generator 0.25-0.75 ms of CPU per message sent and
received (paho's packet machinery, a thread-safe message queue, a task per call),
about as much as the server it measures. This client is an asyncio Protocol
that parses packets straight from the socket's buffer: a PUBLISH is one
`transport.write`, an incoming QoS 1 PUBLISH is acknowledged in the same
callback that queues it. It speaks only what the bench needs (packets encoded by
tests.raw_mqtt): CONNECT with a username and password, SUBSCRIBE, QoS 1 PUBLISH
out (`send`), QoS 0/1 PUBLISH in (`messages`, or a callback: `deliver_to`),
PINGREQ every half keep-alive, DISCONNECT. `async with`, `subscribe` and
`messages` are used as aiomqtt's are.
"""

from __future__ import annotations

import asyncio
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from tests.raw_mqtt import CONNACK, CONNECT, DISCONNECT, PINGREQ, PUBACK, PUBLISH, SUBACK, SUBSCRIBE, connect_body, packet, string

KEEP_ALIVE = 60


class LeanMqttError(ConnectionError):
    """The connection closed, or the broker refused the CONNECT."""


@dataclass(slots=True)
class Received:
    topic: str
    payload: bytes


class LeanClient(asyncio.Protocol):
    """One MQTT connection; construct with what aiomqtt.Client takes, then `async with`."""

    def __init__(self, host: str, port: int, *, username: str, password: str, identifier: str, clean_session: bool = True) -> None:
        self._address = (host, port)
        self._login = (username, password, identifier)
        self._connect = packet(CONNECT, 0, connect_body(identifier, username, password, clean=clean_session, keep_alive=KEEP_ALIVE))
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._replies: dict[tuple[int, int], asyncio.Future] = {}  # (packet type, packet id) -> awaiting its answer
        self._next_id = 0
        self._received: deque[Received] = deque()
        self._arrived = asyncio.Event()
        self._closed: Exception | None = None
        self._pinger: asyncio.TimerHandle | None = None
        self._callback: Callable[[Received], None] | None = None

    async def __aenter__(self) -> LeanClient:
        loop = asyncio.get_running_loop()
        await loop.create_connection(lambda: self, *self._address)
        code = await self._request(CONNACK, 0, self._connect)
        if code:
            self._transport.close()  # type: ignore[union-attr]
            raise LeanMqttError(f"CONNECT refused with return code {code}")
        self._pinger = loop.call_later(KEEP_ALIVE / 2, self._ping)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._pinger is not None:
            self._pinger.cancel()
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(packet(DISCONNECT, 0, b""))
            self._transport.close()

    def again(self, clean_session: bool) -> LeanClient:
        """A new client of the same broker, user and client id (to reconnect to a persistent session, or wipe it)."""
        username, password, identifier = self._login
        return LeanClient(*self._address, username=username, password=password, identifier=identifier, clean_session=clean_session)

    async def subscribe(self, topic: str, qos: int = 1) -> list[int]:
        """The SUBACK's return code for the one filter (0x80: refused), as a list like aiomqtt's."""
        packet_id = self._take_id()
        return [await self._request(SUBACK, packet_id, packet(SUBSCRIBE, 2, struct.pack("!H", packet_id) + string(topic) + bytes([qos])))]

    def send(self, topic: str, payload: bytes) -> asyncio.Future:
        """Send one QoS 1 PUBLISH now (no task, no await); the future is done when its PUBACK arrives."""
        packet_id = self._take_id()
        return self._request(PUBACK, packet_id, packet(PUBLISH, 2, string(topic) + struct.pack("!H", packet_id) + payload))

    def deliver_to(self, callback: Callable[[Received], None]) -> None:
        """Hand every incoming PUBLISH to `callback` as it is parsed instead of queueing it for `messages`."""
        self._callback = callback

    @property
    def messages(self) -> LeanClient:
        return self

    def __aiter__(self) -> LeanClient:
        return self

    async def __anext__(self) -> Received:
        while not self._received:
            if self._closed is not None:
                raise LeanMqttError("disconnected") from self._closed
            self._arrived.clear()
            await self._arrived.wait()
        return self._received.popleft()

    # --- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = exc or LeanMqttError("closed by the broker")
        for future in self._replies.values():
            if not future.done():
                future.set_exception(LeanMqttError("disconnected"))
        self._replies.clear()
        self._arrived.set()
        if self._pinger is not None:
            self._pinger.cancel()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while len(buffer) >= 2:
            length, multiplier, at = 0, 1, 1
            while True:
                if at >= len(buffer):
                    return  # the remaining length is not complete yet
                digit = buffer[at]
                length += (digit & 0x7F) * multiplier
                multiplier, at = multiplier * 128, at + 1
                if not digit & 0x80:
                    break
            if len(buffer) < at + length:
                return
            first, body = buffer[0], bytes(buffer[at : at + length])
            del buffer[: at + length]
            self._handle(first >> 4, first & 0x0F, body)

    def _handle(self, kind: int, flags: int, body: bytes) -> None:
        if kind == PUBLISH:
            size = struct.unpack_from("!H", body)[0]
            topic, at = body[2 : 2 + size].decode(), 2 + size
            if flags & 0x06:  # QoS 1 (the bench subscribes at 1): acknowledge at once
                self._write(packet(PUBACK, 0, body[at : at + 2]))
                at += 2
            if self._callback is not None:
                self._callback(Received(topic, body[at:]))
            else:
                self._received.append(Received(topic, body[at:]))
                self._arrived.set()
        elif kind in (PUBACK, SUBACK):
            packet_id = struct.unpack_from("!H", body)[0]
            future = self._replies.pop((kind, packet_id), None)
            if future is not None and not future.done():
                future.set_result(body[2] if kind == SUBACK else 0)
        elif kind == CONNACK:
            future = self._replies.pop((CONNACK, 0), None)
            if future is not None and not future.done():
                future.set_result(body[1])

    # --- internals
    def _take_id(self) -> int:
        self._next_id = self._next_id % 0xFFFF + 1
        return self._next_id

    def _write(self, packet: bytes) -> None:
        if self._closed is not None or self._transport is None:
            raise LeanMqttError("disconnected") from self._closed
        self._transport.write(packet)

    def _request(self, answer: int, packet_id: int, packet: bytes) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self._replies[(answer, packet_id)] = future
        self._write(packet)
        return future

    def _ping(self) -> None:
        if self._closed is None and self._transport is not None:
            self._transport.write(packet(PINGREQ, 0, b""))
            self._pinger = asyncio.get_running_loop().call_later(KEEP_ALIVE / 2, self._ping)
