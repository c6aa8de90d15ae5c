"""A bare MQTT 3.1.1 connection for cases paho cannot express: nothing is acknowledged by itself,
packets can be malformed, and what the broker sends is read packet by packet. Over TCP or
WebSocket (binary frames, subprotocol `mqtt`)."""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, SUBACK = 1, 2, 3, 4, 5, 6, 7, 8, 9
UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT = 10, 11, 12, 13, 14


def string(value: str | bytes) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return struct.pack("!H", len(data)) + data


def remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def packet(packet_type: int, flags: int, body: bytes) -> bytes:
    """One whole packet: fixed header (type, flags, remaining length) and body."""
    return bytes([packet_type << 4 | flags]) + remaining_length(len(body)) + body


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
    async def open(cls, port: int, *, websocket: bool = False) -> RawClient:
        """A connection that has sent nothing yet (TCP, or WebSocket at /mqtt when `websocket`)."""
        if not websocket:
            return cls(*await asyncio.open_connection("127.0.0.1", port))
        ws = await ws_connect(f"ws://127.0.0.1:{port}/mqtt", subprotocols=["mqtt"])  # type: ignore[list-item]
        reader = asyncio.StreamReader()
        return cls(reader, _WebSocketWriter(ws, reader))  # type: ignore[arg-type]

    @classmethod
    async def connect(
        cls, port: int, client_id: str, username: str, password: str, *, clean: bool = True,
        will: tuple[str, bytes] | None = None, keep_alive: int = 60, websocket: bool = False,
    ) -> tuple[RawClient, bool]:  # fmt: skip
        """Open a connection and CONNECT; returns the client and CONNACK's session-present flag."""
        client = await cls.open(port, websocket=websocket)
        await client.send(CONNECT, 0, connect_body(client_id, username, password, clean=clean, will=will, keep_alive=keep_alive))
        session_present, code = await client.connack()
        assert code == 0, f"CONNACK return code {code}"
        return client, session_present

    async def connack(self, timeout: float = 10) -> tuple[bool, int]:
        """Read the CONNACK: (session present, return code)."""
        connack = await self.read(timeout)
        assert connack is not None and connack.type == CONNACK and len(connack.body) == 2, connack
        return bool(connack.body[0] & 1), connack.body[1]

    async def send(self, packet_type: int, flags: int, body: bytes) -> None:
        await self.send_bytes(packet(packet_type, flags, body))

    async def send_bytes(self, data: bytes) -> None:
        """Write raw bytes (a packet, several, or part of one)."""
        self.writer.write(data)
        await self.writer.drain()

    async def _remaining_length(self) -> int:
        """The variable-length remaining length that follows a packet's first byte."""
        length, shift = 0, 0
        while True:
            digit = (await self.reader.readexactly(1))[0]
            length += (digit & 0x7F) << shift
            shift += 7
            if not digit & 0x80:
                return length

    async def read(self, timeout: float = 10) -> Packet | None:
        """The next packet from the broker, or None when the connection ends (or nothing comes in time)."""
        try:
            async with asyncio.timeout(timeout):
                header = await self.reader.readexactly(1)
                body = await self.reader.readexactly(await self._remaining_length())
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            return None
        return Packet(header[0] >> 4, header[0] & 0x0F, body)

    async def closed_by_broker(self, timeout: float = 10) -> bool:
        """True when the broker ends the connection within `timeout` (packets before that are skipped), else False."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    try:
                        if not await self.reader.read(65536):
                            return True
                    except ConnectionError:
                        return True
        except TimeoutError:
            return False

    async def packets_until_closed(self, timeout: float = 10) -> list[Packet] | None:
        """Every packet the broker sends until it ends the connection; None if it is still open after `timeout`."""
        packets: list[Packet] = []
        try:
            async with asyncio.timeout(timeout):
                while True:
                    header = await self.reader.read(1)
                    if not header:
                        return packets
                    body = await self.reader.readexactly(await self._remaining_length())
                    packets.append(Packet(header[0] >> 4, header[0] & 0x0F, body))
        except (asyncio.IncompleteReadError, ConnectionError):
            return packets
        except TimeoutError:
            return None

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
        await self.send(SUBSCRIBE, 2, struct.pack("!H", packet_id) + string(topic_filter) + bytes([qos]))
        while (packet := await self.read()) is not None:
            if packet.type == SUBACK:
                return packet.body[2]
        raise AssertionError("no SUBACK")

    async def publish(self, topic: str | bytes, payload: bytes, qos: int = 0, packet_id: int = 1) -> None:
        body = string(topic) + (struct.pack("!H", packet_id) if qos else b"") + payload
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


def connect_body(
    client_id: str, username: str | None = None, password: str | None = None, *, clean: bool = True,
    will: tuple[str, bytes] | None = None, will_qos: int = 1, keep_alive: int = 60,
    name: str = "MQTT", level: int = 4, flags: int | None = None, properties: bool = False,
) -> bytes:  # fmt: skip
    """A CONNECT's variable header and payload; `flags` replaces the computed connect flags,
    `properties` adds MQTT 5's empty property list."""
    computed = (0x80 if username is not None else 0) | (0x40 if password is not None else 0) | (0x02 if clean else 0)
    if will:
        computed |= 0x04 | will_qos << 3
    body = string(name) + bytes([level, computed if flags is None else flags]) + struct.pack("!H", keep_alive)
    body += b"\x00" if properties else b""
    body += string(client_id)
    if will:
        body += (b"\x00" if properties else b"") + string(will[0]) + string(will[1])
    for field in (username, password):
        if field is not None:
            body += string(field)
    return body


class _WebSocketWriter:
    """The writer half of a RawClient over WebSocket: each drain() sends what was written as one binary frame."""

    def __init__(self, ws: ClientConnection, reader: asyncio.StreamReader) -> None:
        self._ws = ws
        self._pending = bytearray()
        self._pump = asyncio.create_task(self._receive(reader))

    async def _receive(self, reader: asyncio.StreamReader) -> None:
        try:
            async for message in self._ws:
                reader.feed_data(message if isinstance(message, bytes) else message.encode())
        except Exception:  # noqa: BLE001 - a closed connection ends the stream either way
            pass
        reader.feed_eof()

    def write(self, data: bytes) -> None:
        self._pending += data

    async def drain(self) -> None:
        data, self._pending = bytes(self._pending), bytearray()
        await self._ws.send(data)

    def close(self) -> None:
        self._closing = asyncio.ensure_future(self._ws.close())  # kept: a task nobody holds may be collected

    @property
    def transport(self) -> Any:
        return self._ws.transport
