"""MQTT 3.1.1 framing and packet rules for the embedded broker (issue 23).

amqtt 0.12.1 decodes each field straight from the socket without holding a packet
to its remaining length (a PUBLISH whose remaining length was shorter than its
topic swallowed the next packet's bytes), and passes on packets that break the
spec's MUSTs: QoS 3, packet id 0, wildcards or U+0000 in a topic name, wrong
fixed-header flags, a SUBSCRIBE without filters, a Will QoS of 3, a Will flag
without Will topic... Here every packet is read whole (`read_frame`), its raw
bytes are checked against those rules (`check_connect` for the first packet,
`check_packet` for the others), and only then are they decoded by amqtt's own
packet classes. A broken rule raises ProtocolViolation naming the rule: the
connection is closed without acting on the packet [MQTT-4.8.0-1].

Rules that depend on the session (an acknowledgement that does not fit the
delivery's QoS flow) are checked by broker.reliable_delivery.ReliableProtocolHandler.
"""

from __future__ import annotations

import asyncio
import struct

from amqtt.adapters import ReaderAdapter
from amqtt.codecs_amqtt import read_or_raise
from amqtt.errors import AMQTTError, MQTTError
from amqtt.mqtt.packet import (
    CONNECT,
    DISCONNECT,
    PINGREQ,
    PUBACK,
    PUBCOMP,
    PUBLISH,
    PUBREC,
    PUBREL,
    SUBSCRIBE,
    UNSUBSCRIBE,
    MQTTFixedHeader,
)

MAX_PACKET_SIZE = 1024 * 1024  # bytes of a packet's body; larger ones end the connection
MALFORMED = "MQTT-4.8.0-1"  # a protocol violation closes the connection (lengths that do not add up)

# Fixed-header flags a client must send; PUBLISH carries DUP/QoS/RETAIN instead [MQTT-2.2.2-1].
_FLAGS = {PUBACK: 0, PUBREC: 0, PUBREL: 2, PUBCOMP: 0, SUBSCRIBE: 2, UNSUBSCRIBE: 2, PINGREQ: 0, DISCONNECT: 0}
_FLAG_RULES = {PUBREL: "MQTT-3.6.1-1", SUBSCRIBE: "MQTT-3.8.1-1", UNSUBSCRIBE: "MQTT-3.10.1-1"}


class ProtocolViolation(MQTTError):
    """A packet broke an MQTT 3.1.1 rule; `rule` is the spec's normative id."""

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(f"[{rule}] {reason}")
        self.rule = rule
        self.reason = reason


class UnacceptableProtocol(ProtocolViolation):
    """A CONNECT of another protocol version (MQTT 5, 3.1...): answered with CONNACK 0x01, then closed [MQTT-3.1.2-2]."""


class PacketTooLarge(AMQTTError):
    """A client announced a packet above the broker's limit."""


async def read_frame(reader: ReaderAdapter, max_size: int = MAX_PACKET_SIZE) -> tuple[MQTTFixedHeader, bytes] | None:
    """The next packet's fixed header and its whole body; None when the stream ends first.

    A body announced above `max_size` bytes raises PacketTooLarge before any of it is read.
    The fixed header is decoded here rather than by amqtt's MQTTFixedHeader.from_stream:
    an idle connection waits in this read, and each coroutine in that wait is kept per
    connection (two fewer here, ~0.5 KB).
    """
    try:
        first = await reader.read(1)
        if not first:
            return None
        length = 0
        for shift in (0, 7, 14, 21):
            byte = await reader.read(1)
            if not byte:
                return None
            length |= (byte[0] & 0x7F) << shift
            if not byte[0] & 0x80:
                break
        else:
            raise ProtocolViolation(MALFORMED, "remaining length longer than 4 bytes")
    except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError):
        return None
    if length > max_size:
        raise PacketTooLarge(f"packet of {length} bytes exceeds {max_size}")
    body = await read_or_raise(reader, length) if length else b""
    return MQTTFixedHeader(first[0] >> 4, first[0] & 0x0F, length), body


class _Body:
    """A cursor over one packet's body: reading past its end is a protocol violation."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._at

    def take(self, n: int, what: str, rule: str = MALFORMED) -> bytes:
        if n > self.remaining:
            raise ProtocolViolation(rule, f"packet ends inside its {what}")
        self._at += n
        return self._data[self._at - n : self._at]

    def byte(self, what: str, rule: str = MALFORMED) -> int:
        return self.take(1, what, rule)[0]

    def uint16(self, what: str, rule: str = MALFORMED) -> int:
        return int(struct.unpack("!H", self.take(2, what, rule))[0])

    def binary(self, what: str, rule: str = MALFORMED) -> bytes:
        return self.take(self.uint16(what, rule), what, rule)

    def string(self, what: str, rule: str = MALFORMED) -> str:
        """A UTF-8 string: well-formed [MQTT-1.5.3-1], without U+0000 [MQTT-1.5.3-2]."""
        raw = self.binary(what, rule)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolViolation("MQTT-1.5.3-1", f"{what} is not valid UTF-8") from None
        if "\x00" in text:
            raise ProtocolViolation("MQTT-1.5.3-2", f"{what} contains U+0000")
        return text

    def end(self, what: str) -> None:
        if self.remaining:
            raise ProtocolViolation(MALFORMED, f"{self.remaining} bytes after the end of the {what}")


def check_connect(header: MQTTFixedHeader, body: bytes) -> None:
    """The first packet of a connection: a well-formed MQTT 3.1.1 CONNECT [MQTT-3.1.0-1]."""
    if header.packet_type != CONNECT:
        raise ProtocolViolation("MQTT-3.1.0-1", f"first packet is of type {header.packet_type}, not CONNECT")
    if header.flags:
        raise ProtocolViolation("MQTT-2.2.2-2", "CONNECT with fixed-header flags set")
    b = _Body(body)
    name = b.string("protocol name")
    level = b.byte("protocol level")
    if (name, level) != ("MQTT", 4):
        if name in ("MQTT", "MQIsdp"):  # MQTT 5 and 0.., or MQTT 3.1: this server speaks 3.1.1 only
            raise UnacceptableProtocol("MQTT-3.1.2-2", f"protocol {name} level {level}")
        raise ProtocolViolation("MQTT-3.1.2-1", f"protocol name {name!r}")
    flags = b.byte("connect flags")
    b.uint16("keep alive")
    will, will_qos, will_retain = flags & 0x04, flags >> 3 & 3, flags & 0x20
    username, password = flags & 0x80, flags & 0x40
    if flags & 0x01:
        raise ProtocolViolation("MQTT-3.1.2-3", "reserved connect flag set")
    if will_qos == 3:
        raise ProtocolViolation("MQTT-3.1.2-14", "Will QoS 3")
    if not will and will_qos:
        raise ProtocolViolation("MQTT-3.1.2-13", "Will QoS without Will flag")
    if not will and will_retain:
        raise ProtocolViolation("MQTT-3.1.2-15", "Will retain without Will flag")
    if password and not username:
        raise ProtocolViolation("MQTT-3.1.2-22", "password without user name")
    b.string("client identifier", "MQTT-3.1.3-3")
    if will:
        _check_topic_name(b.string("Will topic", "MQTT-3.1.2-9"), "Will topic")
        b.binary("Will message", "MQTT-3.1.2-9")
    if username:
        b.string("user name", "MQTT-3.1.2-19")
    if password:
        b.binary("password", "MQTT-3.1.2-21")
    b.end("CONNECT")


def check_packet(header: MQTTFixedHeader, body: bytes) -> None:
    """Any later packet from the client: a client-to-server type, its flags, and a well-formed body."""
    kind = header.packet_type
    if kind == CONNECT:
        raise ProtocolViolation("MQTT-3.1.0-2", "second CONNECT")
    if kind != PUBLISH and kind not in _FLAGS:
        raise ProtocolViolation(MALFORMED, f"packet type {kind} is not sent by clients")
    if kind != PUBLISH and header.flags != _FLAGS[kind]:
        raise ProtocolViolation(_FLAG_RULES.get(kind, "MQTT-2.2.2-2"), f"packet type {kind} with flags {header.flags:#x}")
    b = _Body(body)
    if kind == PUBLISH:
        _check_publish(header.flags, b)
    elif kind in (SUBSCRIBE, UNSUBSCRIBE):
        _check_subscription(kind == SUBSCRIBE, b)
    elif kind in (PUBACK, PUBREC, PUBREL, PUBCOMP):
        b.uint16("packet identifier")
        b.end("acknowledgement")
    else:
        b.end("packet")  # PINGREQ, DISCONNECT: no body


def _check_publish(flags: int, b: _Body) -> None:
    qos = flags >> 1 & 3
    if qos == 3:
        raise ProtocolViolation("MQTT-3.3.1-4", "PUBLISH with QoS 3")
    _check_topic_name(b.string("topic name"), "topic name")
    if qos and b.uint16("packet identifier") == 0:
        raise ProtocolViolation("MQTT-2.3.1-1", "PUBLISH with packet identifier 0")
    # the rest is the payload, of any length


def _check_topic_name(topic: str, what: str) -> None:
    if not topic:
        raise ProtocolViolation("MQTT-4.7.3-1", f"zero-length {what}")
    if "+" in topic or "#" in topic:
        raise ProtocolViolation("MQTT-3.3.2-2", f"wildcard in {what} {topic!r}")


def _check_subscription(subscribe: bool, b: _Body) -> None:
    name = "SUBSCRIBE" if subscribe else "UNSUBSCRIBE"
    if b.uint16("packet identifier") == 0:
        raise ProtocolViolation("MQTT-2.3.1-1", f"{name} with packet identifier 0")
    count = 0
    while b.remaining:
        _check_topic_filter(b.string("topic filter"))
        if subscribe and b.byte("requested QoS") > 2:
            raise ProtocolViolation("MQTT-3-8.3-4", "requested QoS above 2 or reserved bits set")  # sic, the spec's id
        count += 1
    if not count:
        raise ProtocolViolation("MQTT-3.8.3-3" if subscribe else "MQTT-3.10.3-2", f"{name} without topic filter")


def _check_topic_filter(topic_filter: str) -> None:
    if not topic_filter:
        raise ProtocolViolation("MQTT-4.7.3-1", "zero-length topic filter")
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            raise ProtocolViolation("MQTT-4.7.1-2", f"misplaced '#' in {topic_filter!r}")
        if "+" in level and level != "+":
            raise ProtocolViolation("MQTT-4.7.1-3", f"misplaced '+' in {topic_filter!r}")
