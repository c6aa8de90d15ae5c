"""A bare MQTT 3.1.1 connection for cases paho cannot express: nothing is acknowledged by itself,
packets can be malformed, and what the broker sends is read packet by packet."""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, SUBACK = 1, 2, 3, 4, 5, 6, 7, 8, 9
DISCONNECT = 14


def _string(value: str | bytes) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return struct.pack("!H", len(data)) + data


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


@dataclass
class Packet:
    type: int
    flags: int
    body: bytes

    @property
    def packet_id(self) -> int:
        """The packet id of an acknowledgement (PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK)."""
        return int(struct.unpack("!H", self.body[:2])[0])


@dataclass
class Publish:
    topic: str
    payload: bytes
    qos: int
    dup: bool
    packet_id: int | None


class RawClient:
    """One TCP connection speaking MQTT 3.1.1 by hand."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(
        cls, port: int, client_id: str, username: str, password: str, *, clean: bool = True,
        will: tuple[str, bytes] | None = None, keep_alive: int = 60,
    ) -> tuple[RawClient, bool]:  # fmt: skip
        """Open a connection and CONNECT; returns the client and CONNACK's session-present flag."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        flags = 0xC0 | (0x02 if clean else 0) | (0x0C if will else 0)  # will at QoS 1
        body = _string("MQTT") + bytes([4, flags]) + struct.pack("!H", keep_alive) + _string(client_id)
        if will:
            body += _string(will[0]) + _string(will[1])
        body += _string(username) + _string(password)
        await client.send(CONNECT, 0, body)
        connack = await client.read()
        assert connack is not None and connack.type == CONNACK, connack
        assert connack.body[1] == 0, f"CONNACK return code {connack.body[1]}"
        return client, bool(connack.body[0] & 1)

    async def send(self, packet_type: int, flags: int, body: bytes) -> None:
        self.writer.write(bytes([packet_type << 4 | flags]) + _remaining_length(len(body)) + body)
        await self.writer.drain()

    async def read(self, timeout: float = 10) -> Packet | None:
        """The next packet from the broker, or None when the connection ends (or nothing comes in time)."""
        try:
            async with asyncio.timeout(timeout):
                header = await self.reader.readexactly(1)
                length, shift = 0, 0
                while True:
                    digit = (await self.reader.readexactly(1))[0]
                    length += (digit & 0x7F) << shift
                    shift += 7
                    if not digit & 0x80:
                        break
                body = await self.reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            return None
        return Packet(header[0] >> 4, header[0] & 0x0F, body)

    async def closed_by_broker(self, timeout: float = 10) -> bool:
        """True when the broker ends the connection within `timeout` (packets before that are skipped)."""
        async with asyncio.timeout(timeout):
            while True:
                try:
                    if not await self.reader.read(65536):
                        return True
                except ConnectionError:
                    return True

    async def read_publish(self, timeout: float = 10) -> Publish | None:
        """The next PUBLISH (other packets are skipped), or None."""
        while (packet := await self.read(timeout)) is not None:
            if packet.type == PUBLISH:
                qos = (packet.flags >> 1) & 3
                topic_length = struct.unpack("!H", packet.body[:2])[0]
                rest = packet.body[2 + topic_length :]
                packet_id = struct.unpack("!H", rest[:2])[0] if qos else None
                return Publish(packet.body[2 : 2 + topic_length].decode(), rest[2 if qos else 0 :], qos, bool(packet.flags & 8), packet_id)
        return None

    async def subscribe(self, topic_filter: str, qos: int, packet_id: int = 1) -> int:
        """SUBSCRIBE one filter; returns SUBACK's return code."""
        await self.send(SUBSCRIBE, 2, struct.pack("!H", packet_id) + _string(topic_filter) + bytes([qos]))
        while (packet := await self.read()) is not None:
            if packet.type == SUBACK:
                return packet.body[2]
        raise AssertionError("no SUBACK")

    async def publish(self, topic: str | bytes, payload: bytes, qos: int = 0, packet_id: int = 1) -> None:
        body = _string(topic) + (struct.pack("!H", packet_id) if qos else b"") + payload
        await self.send(PUBLISH, qos << 1, body)

    async def ack(self, packet_type: int, packet_id: int) -> None:
        """Send PUBACK, PUBREC, PUBREL or PUBCOMP for `packet_id`."""
        await self.send(packet_type, 2 if packet_type == PUBREL else 0, struct.pack("!H", packet_id))

    async def disconnect(self) -> None:
        """A clean DISCONNECT, then close."""
        await self.send(DISCONNECT, 0, b"")
        self.writer.close()

    def abort(self) -> None:
        """Drop the connection without DISCONNECT (as a crash or lost network does)."""
        self.writer.transport.abort()
