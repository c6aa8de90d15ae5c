"""MQTT 3.1.1 rules the embedded broker keeps (issue 23): keep-alive, nothing before CONNECT,
protocol levels, and malformed packets closed without side effects.

Raw packets (tests/raw_mqtt.py) on every broker: a case where Mosquitto 2.0 or nats-server answers differently
says how (`mosquitto=`, `nats=`) and is skipped on that broker; docs/broker.md lists the rules with these tests.
"""

from __future__ import annotations

import asyncio
import json
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from websockets.asyncio.client import connect as ws_connect

from core import topics
from core.settings import Settings
from tests.conftest import EVERY_BROKER
from tests.raw_mqtt import (
    CONNACK,
    CONNECT,
    PINGREQ,
    PINGRESP,
    PUBACK,
    PUBCOMP,
    PUBLISH,
    PUBREC,
    PUBREL,
    SUBSCRIBE,
    UNSUBSCRIBE,
    RawClient,
    connect_body,
    packet,
    string,
)
from tests.support import Account, Inbox, System, service_client, user_client

OFFLINE = b'{"status": "offline"}'
PROBE = b'{"status": "probe"}'


@dataclass(frozen=True)
class Ctx:
    """What a case's bytes are built from: the connecting user and its client id `<user id>-<suffix>`."""

    account: Account
    suffix: str

    @property
    def user(self) -> str:
        return self.account.id

    @property
    def password(self) -> str:
        return self.account.mqtt_password

    @property
    def client_id(self) -> str:
        return f"{self.user}-{self.suffix}"

    @property
    def presence(self) -> str:
        return topics.device_presence(self.user, self.client_id)

    @property
    def marker(self) -> str:
        return topics.device_presence(self.user, f"{self.client_id}-marker")

    @property
    def inbox(self) -> str:
        return topics.user_inbox(self.user)


def pid(n: int) -> bytes:
    return struct.pack("!H", n)


@dataclass(frozen=True)
class Case:
    """One malformed input: its rule, its bytes, and how Mosquitto 2.0 and nats-server differ (None: alike)."""

    name: str
    rule: str
    data: Callable[[Ctx], bytes]
    mosquitto: str | None = None
    nats: str | None = None

    def param(self) -> object:
        return pytest.param(self, id=self.name)


def only_where_alike(system: System, case: Case) -> None:
    if case.mosquitto and system.broker == "mosquitto":
        pytest.skip(f"Mosquitto 2.0 differs: {case.mosquitto}")
    if case.nats and system.broker == "nats":
        pytest.skip(f"nats-server differs: {case.nats}")


def context(account: Account, suffix: str) -> Ctx:
    return Ctx(account, suffix)


async def connect(system: System, ctx: Ctx, **kwargs: object) -> tuple[RawClient, bool]:
    return await RawClient.connect(system.mqtt_port, ctx.client_id, ctx.user, ctx.password, **kwargs)  # type: ignore[arg-type]


def watch_outbox(system: System, ctx: Ctx) -> Inbox:
    """The service account watching everything the user publishes (its outbox, presence included)."""
    return Inbox(service_client(system), [f"chat/users/{ctx.user}/outbox/#"])


async def mark(system: System, ctx: Ctx, watcher: Inbox) -> list[str]:
    """Publish a retained marker from a fresh, valid connection and wait for it: what the watcher saw before
    it was routed is all the broken connection caused. Returns the topics seen, marker excluded."""
    async with user_client(system, ctx.account, f"{ctx.suffix}-marker") as client:
        await client.publish(ctx.marker, b'{"status": "online"}', qos=1, retain=True)
        await watcher.wait_for(1, topic=ctx.marker)
    return [m.topic.value for m in watcher.messages if m.topic.value != ctx.marker]


async def retained_probes(system: System, ctx: Ctx) -> list[bytes]:
    """Retained messages on the user's outbox that carry the probe (the retained marker ends the wait)."""
    async with watch_outbox(system, ctx) as fresh:
        await fresh.wait_for(1, topic=ctx.marker)
        await asyncio.sleep(0.3)
    return [bytes(m.payload) for m in fresh.messages if m.payload == PROBE]  # type: ignore[arg-type]


# -- keep-alive [MQTT-3.1.2-24] --------------------------------------------------------------


@EVERY_BROKER
async def test_silent_connection_is_closed_its_will_sent_and_its_session_kept(system: System, alice: Account) -> None:
    """amqtt ignored keep-alive: a client that went silent (a phone losing its network) stayed connected,
    "online", its Will never sent and its QoS 1 events waiting on a dead socket."""
    ctx = context(alice, "silent")
    # nats-server allows 1.5 x keep-alive rounded down to whole seconds: 1 s for a keep-alive of 1 (docs/broker.md)
    keep_alive = 2 if system.broker == "nats" else 1
    async with watch_outbox(system, ctx) as watcher:
        client, _ = await connect(system.node(1), ctx, clean=False, keep_alive=keep_alive, will=(ctx.presence, OFFLINE))
        assert await client.subscribe(ctx.inbox, 1) == 1
        for _ in range(2):  # a client that talks within its keep-alive stays, past the first 1.5 x keep-alive
            await asyncio.sleep(keep_alive)
            await client.send(PINGREQ, 0, b"")
            answer = await client.read()
            assert answer is not None and answer.type == PINGRESP, "still connected"
        assert await client.closed_by_broker(timeout=10), "closed after 1.5 x keep-alive of silence"
        [will] = await watcher.wait_for(1, topic=ctx.presence)
        assert will == json.loads(OFFLINE)
    async with service_client(system) as service:
        await service.publish(ctx.inbox, b'{"type": "queued"}', qos=1)
    back, present = await connect(system.node(2), ctx, clean=False)
    assert present, "the persistent session outlives the dead connection (on a cluster, resumed through another node)"
    queued = await back.read_publish()
    assert queued is not None and queued.payload == b'{"type": "queued"}'
    await back.disconnect()


_PAHO_DEVICE = """
import json, sys, time
import paho.mqtt.client as mqtt
host, port, user, token, client_id = sys.argv[1:6]
presence = f"chat/users/{user}/outbox/presence/{client_id}"
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
c.username_pw_set(user, token)
c.will_set(presence, json.dumps({"status": "offline"}), qos=1, retain=True)
c.connect(host, int(port), keepalive=2)
c.loop_start()
c.publish(presence, json.dumps({"status": "online"}), qos=1, retain=True).wait_for_publish(10)
c.loop_stop()  # paho neither pings nor reads any more; its socket stays open
print("silent", flush=True)
time.sleep(60)
"""


@EVERY_BROKER
async def test_paho_device_that_stops_pinging_goes_offline(system: System, alice: Account, bob: Account) -> None:
    """A paho device whose network loop stops (socket open, no PINGREQ): its Will is published and the
    bridge's aggregated presence turns offline, through the normal path."""
    presence = topics.user_presence(alice.id)
    async with Inbox(user_client(system, bob, "watch"), [presence]) as watcher:
        device = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _PAHO_DEVICE, "127.0.0.1", str(system.mqtt_port), alice.id, alice.mqtt_password,
            f"{alice.id}-paho", stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            assert device.stdout is not None
            assert (await asyncio.wait_for(device.stdout.readline(), 20)).strip() == b"silent"
            states = await watcher.wait_for(2, topic=presence, timeout=15)
            assert [s["status"] for s in states][-1] == "offline", states
            assert device.returncode is None, "the device process is alive: only its silence ended the connection"
        finally:
            device.kill()
            await device.wait()


# -- before CONNECT [MQTT-3.1.0-1], CONNECT deadline, pending connections per address -------


@EVERY_BROKER
async def test_connection_without_connect_is_closed_after_the_deadline(system: System) -> None:
    """amqtt waited forever for a first packet: an idle socket (or half a CONNECT) stayed open."""
    if system.broker == "mosquitto":
        pytest.skip("Mosquitto 2.0 has no CONNECT deadline of its own (documented in docs/broker.md)")
    deadline = Settings().connect_timeout_ms / 1000
    idle = await RawClient.open(system.mqtt_port)
    partial = await RawClient.open(system.mqtt_port)
    whole = packet(CONNECT, 0, connect_body("half", "someone", "secret"))
    await partial.send_bytes(whole[: len(whole) // 2])
    closed = await asyncio.gather(idle.closed_by_broker(deadline + 4), partial.closed_by_broker(deadline + 4))
    assert closed == [True, True]


@EVERY_BROKER
async def test_pending_connections_per_address_are_capped(system: System, alice: Account) -> None:
    """Unauthenticated sockets held open were a cheap way to exhaust the broker: one address may hold
    MQCHAT_PENDING_CONNECTIONS_PER_ADDRESS of them; one more is closed at once, even with a valid CONNECT."""
    if system.broker in ("mosquitto", "nats"):
        pytest.skip(f"{system.broker} has no per-address cap (documented in docs/broker.md)")
    ctx = context(alice, "capped")
    idle = [await RawClient.open(system.mqtt_port) for _ in range(Settings().pending_connections_per_address)]
    try:
        await asyncio.sleep(0.5)  # every one accepted by the broker
        extra = await RawClient.open(system.mqtt_port)
        await extra.send(CONNECT, 0, connect_body(ctx.client_id, ctx.user, ctx.password))
        assert await extra.packets_until_closed() == [], "closed without CONNACK"
    finally:
        for client in idle:
            client.abort()
    for _ in range(50):  # the broker notices the closed sockets
        try:
            client, _ = await connect(system, ctx)
            await client.disconnect()
            break
        except AssertionError:
            await asyncio.sleep(0.2)
    else:
        raise AssertionError("connections are accepted again once the pending ones are gone")


@EVERY_BROKER
async def test_empty_client_id_with_a_persistent_session_is_rejected(system: System, alice: Account) -> None:
    """CONNACK 0x02 (identifier rejected) and closed [MQTT-3.1.3-8]: kept where the embedded broker
    builds its sessions itself (broker.reliable_delivery.init_from_connect)."""
    ctx = context(alice, "no-id")
    client = await RawClient.open(system.mqtt_port)
    await client.send(CONNECT, 0, connect_body("", ctx.user, ctx.password, clean=False))
    answers = await client.packets_until_closed()
    assert answers is not None and [(p.type, p.body) for p in answers] == [(CONNACK, b"\x00\x02")]


@EVERY_BROKER
async def test_websocket_listener_does_not_compress(system: System) -> None:
    """permessage-deflate, which browsers always offer, cost the embedded broker 50 KB of zlib state per
    connection (docs/benchmarks.md): the offer is declined, as Mosquitto's listener does."""
    ws = await ws_connect(f"ws://127.0.0.1:{system.ws_port}/mqtt", subprotocols=["mqtt"])  # type: ignore[list-item]
    try:
        assert ws.request is not None and "permessage-deflate" in ws.request.headers.get("Sec-WebSocket-Extensions", "")
        assert ws.response is not None and ws.response.headers.get("Sec-WebSocket-Extensions") is None
        assert ws.subprotocol == "mqtt"
    finally:
        await ws.close()


# -- protocol level [MQTT-3.1.2-2] ------------------------------------------------------------

LEVELS = [
    pytest.param("MQTT", 5, True, "Mosquitto 2.0 speaks MQTT 5 and accepts it", id="mqtt-5"),
    pytest.param("MQTT", 0, False, None, id="level-0"),
    pytest.param("MQTT", 3, False, None, id="mqtt-level-3"),
    pytest.param("MQIsdp", 3, False, "Mosquitto 2.0 speaks MQTT 3.1 and accepts it", id="mqtt-3.1"),
]


@EVERY_BROKER
@pytest.mark.parametrize("websocket", [False, True], ids=["tcp", "websocket"])
@pytest.mark.parametrize(("name", "level", "properties", "mosquitto"), LEVELS)
async def test_other_protocol_levels_get_connack_1_and_are_closed(
    system: System, alice: Account, websocket: bool, name: str, level: int, properties: bool, mosquitto: str | None
) -> None:
    """amqtt gave an MQTT 5 CONNECT no answer at all (clients hung instead of falling back to 3.1.1)."""
    if mosquitto and system.broker == "mosquitto":
        pytest.skip(f"Mosquitto 2.0 differs: {mosquitto}")
    ctx = context(alice, f"v{level}")
    port = system.ws_port if websocket else system.mqtt_port
    client = await RawClient.open(port, websocket=websocket)
    await client.send(CONNECT, 0, connect_body(ctx.client_id, ctx.user, ctx.password, name=name, level=level, properties=properties))
    answers = await client.packets_until_closed()
    assert answers is not None, "the connection is closed"
    refusal = [(CONNACK, b"\x00\x01")]
    if system.broker == "nats" and (websocket or name != "MQTT"):
        # nats-server closes an MQTT 3.1 CONNECT (protocol name MQIsdp) without CONNACK, as [MQTT-3.1.2-1] allows, and
        # over WebSocket closes at once, its CONNACK not always sent first (docs/broker.md)
        assert [(p.type, p.body) for p in answers] in ([], refusal), "closed, at most with CONNACK 0x01"
    else:
        assert [(p.type, p.body) for p in answers] == refusal, "CONNACK 0x01, unacceptable protocol version"


# -- malformed CONNECT (the first packet) -----------------------------------------------------

CONNECT_CASES = [
    Case("will-qos-3", "MQTT-3.1.2-14", lambda c: packet(CONNECT, 0, connect_body(
        c.client_id, c.user, c.password, will=(c.presence, OFFLINE), will_qos=3))),
    Case("will-retain-without-will", "MQTT-3.1.2-15", lambda c: packet(CONNECT, 0, connect_body(
        c.client_id, c.user, c.password, flags=0xC2 | 0x20))),
    Case("will-qos-without-will", "MQTT-3.1.2-13", lambda c: packet(CONNECT, 0, connect_body(
        c.client_id, c.user, c.password, flags=0xC2 | 0x08))),
    Case("will-flag-without-will-payload", "MQTT-3.1.2-9", lambda c: packet(CONNECT, 0, connect_body(
        c.client_id, c.user, c.password, flags=0xC2 | 0x0C))),
    Case("reserved-flag", "MQTT-3.1.2-3", lambda c: packet(CONNECT, 0, connect_body(
        c.client_id, c.user, c.password, flags=0xC3))),
    Case("password-without-user-name", "MQTT-3.1.2-22", lambda c: packet(CONNECT, 0, connect_body(c.client_id, None, c.password))),
    Case(
        "nul-in-client-id", "MQTT-1.5.3-2", lambda c: packet(CONNECT, 0, connect_body(c.client_id + "\x00", c.user, c.password)),
        nats="answers CONNACK 0x02 (identifier rejected) before closing",
    ),
    Case("other-protocol-name", "MQTT-3.1.2-1", lambda c: packet(CONNECT, 0, connect_body(c.client_id, c.user, c.password, name="MQTX"))),
    Case("pingreq-first", "MQTT-3.1.0-1", lambda c: packet(PINGREQ, 0, b"")),
    Case("publish-first", "MQTT-3.1.0-1", lambda c: packet(PUBLISH, 3, string(c.presence) + pid(1) + PROBE)),
    Case("subscribe-first", "MQTT-3.1.0-1", lambda c: packet(SUBSCRIBE, 2, pid(1) + string(c.inbox) + b"\x01")),
]


@EVERY_BROKER
@pytest.mark.parametrize("case", [c.param() for c in CONNECT_CASES])
async def test_malformed_first_packet_is_closed_without_connack(system: System, alice: Account, case: Case) -> None:
    """amqtt accepted these CONNECTs (and waited forever after a first packet that was not one)."""
    only_where_alike(system, case)
    ctx = context(alice, "first")
    async with watch_outbox(system, ctx) as watcher:
        client = await RawClient.open(system.mqtt_port)
        await client.send_bytes(case.data(ctx))
        assert await client.packets_until_closed() == [], f"[{case.rule}] closed without CONNACK"
        assert await mark(system, ctx, watcher) == [], "no Will, nothing published"
    client, present = await connect(system, ctx, clean=False)
    assert not present, "no session was created"
    await client.disconnect()


# -- malformed packets on a connected session: closed, Will sent, nothing else happens --------

SESSION_CASES = [
    Case("publish-qos-3", "MQTT-3.3.1-4", lambda c: packet(PUBLISH, 0x06 | 1, string(c.presence) + pid(1) + PROBE)),
    Case("publish-packet-id-0", "MQTT-2.3.1-1", lambda c: packet(PUBLISH, 0x02 | 1, string(c.presence) + pid(0) + PROBE)),
    Case("publish-empty-topic", "MQTT-4.7.3-1", lambda c: packet(PUBLISH, 0x02 | 1, string("") + pid(1) + PROBE)),
    Case(
        "publish-wildcard-topic", "MQTT-3.3.2-2",
        lambda c: packet(PUBLISH, 0x02 | 1, string(f"chat/users/{c.user}/outbox/presence/+") + pid(1) + PROBE),
    ),
    Case("publish-nul-in-topic", "MQTT-1.5.3-2", lambda c: packet(PUBLISH, 0x02 | 1, string(c.presence + "\x00") + pid(1) + PROBE)),
    Case("publish-invalid-utf8-topic", "MQTT-1.5.3-1", lambda c: packet(PUBLISH, 0x02 | 1, string(c.presence.encode() + b"\xff") + pid(1) + PROBE)),
    Case(  # amqtt read the topic on into the next packet's bytes
        "publish-shorter-than-its-topic", "MQTT-4.8.0-1",
        lambda c: bytes([PUBLISH << 4 | 0x02 | 1, 4]) + struct.pack("!H", len(c.presence)) + c.presence[:2].encode()
        + packet(PUBLISH, 0x02 | 1, string(c.presence) + pid(2) + PROBE),
    ),  # fmt: skip
    Case("pubrel-wrong-flags", "MQTT-3.6.1-1", lambda c: packet(PUBLISH, 0x04 | 1, string(c.presence) + pid(1) + PROBE) + packet(PUBREL, 0, pid(1))),
    Case(
        "second-connect", "MQTT-3.1.0-2",
        lambda c: packet(CONNECT, 0, connect_body(c.client_id, c.user, c.password, clean=False))
        + packet(PUBLISH, 0x02 | 1, string(c.presence) + pid(1) + PROBE),
        mosquitto="closes the connection without publishing the Will (against [MQTT-3.1.2-8])",
    ),  # fmt: skip
]


@EVERY_BROKER
@pytest.mark.parametrize("case", [c.param() for c in SESSION_CASES])
async def test_malformed_packet_closes_the_connection_without_side_effects(system: System, alice: Account, case: Case) -> None:
    """amqtt acknowledged and routed these (or read past the packet's end); now: no PUBACK, nothing
    routed or retained, and the connection ends with its Will [MQTT-3.1.2-8]."""
    only_where_alike(system, case)
    ctx = context(alice, "bad")
    async with watch_outbox(system, ctx) as watcher:
        client, _ = await connect(system, ctx, clean=False, will=(ctx.presence, OFFLINE))
        await client.send_bytes(case.data(ctx))
        answers = await client.packets_until_closed()
        assert answers is not None, f"[{case.rule}] the connection is closed"
        assert {p.type for p in answers} <= {PUBREC}, f"no acknowledgement of the bad packet: {answers}"
        assert await mark(system, ctx, watcher) == [ctx.presence], "only the Will was published"
        assert watcher.events(topic=ctx.presence) == [json.loads(OFFLINE)]
    assert await retained_probes(system, ctx) == [], "nothing retained"


# -- malformed SUBSCRIBE / UNSUBSCRIBE --------------------------------------------------------

NATS_BAD_FILTER = "answers a misplaced wildcard with SUBACK 0x80 for that filter, subscribes the others, keeps the connection"
SUBSCRIBE_CASES = [
    Case("subscribe-wrong-flags", "MQTT-3.8.1-1", lambda c: packet(SUBSCRIBE, 0, pid(1) + string(c.inbox) + b"\x01")),
    Case("subscribe-no-filter", "MQTT-3.8.3-3", lambda c: packet(SUBSCRIBE, 2, pid(1))),
    Case("subscribe-qos-3", "MQTT-3-8.3-4", lambda c: packet(SUBSCRIBE, 2, pid(1) + string(c.inbox) + b"\x03")),
    Case("subscribe-reserved-bits", "MQTT-3-8.3-4", lambda c: packet(SUBSCRIBE, 2, pid(1) + string(c.inbox) + b"\x41")),
    Case("subscribe-packet-id-0", "MQTT-2.3.1-1", lambda c: packet(SUBSCRIBE, 2, pid(0) + string(c.inbox) + b"\x01")),
    Case("subscribe-nul-in-filter", "MQTT-1.5.3-2", lambda c: packet(SUBSCRIBE, 2, pid(1) + string(c.inbox + "\x00") + b"\x01")),
    Case(
        "subscribe-misplaced-wildcard", "MQTT-4.7.1-2", lambda c: packet(SUBSCRIBE, 2, pid(1) + string(c.inbox + "#") + b"\x01"),
        nats=NATS_BAD_FILTER,
    ),
    Case(
        "subscribe-bad-filter-after-a-valid-one", "MQTT-4.8.0-1",
        lambda c: packet(SUBSCRIBE, 2, pid(1) + string(c.inbox) + b"\x01" + string("chat/#/x") + b"\x01"),
        mosquitto="subscribes the valid filters before the bad one, then closes", nats=NATS_BAD_FILTER,
    ),  # fmt: skip
]


@EVERY_BROKER
@pytest.mark.parametrize("case", [c.param() for c in SUBSCRIBE_CASES])
async def test_malformed_subscribe_is_closed_without_subscribing(system: System, alice: Account, case: Case) -> None:
    """amqtt answered these with a SUBACK (some with 0x80) and kept the valid filters of the packet."""
    only_where_alike(system, case)
    ctx = context(alice, "sub")
    client, _ = await connect(system, ctx, clean=False)
    await client.send_bytes(case.data(ctx))
    assert await client.packets_until_closed() == [], f"[{case.rule}] closed without SUBACK"
    client, present = await connect(system, ctx, clean=False)
    assert present
    async with service_client(system) as service:
        await service.publish(ctx.inbox, b'{"type": "not subscribed"}', qos=1)
    assert await client.read_publish(timeout=1.5) is None, "no filter of the packet was stored"
    await client.disconnect()


UNSUBSCRIBE_CASES = [
    Case("unsubscribe-wrong-flags", "MQTT-3.10.1-1", lambda c: packet(UNSUBSCRIBE, 0, pid(2) + string(c.inbox))),
    Case("unsubscribe-no-filter", "MQTT-3.10.3-2", lambda c: packet(UNSUBSCRIBE, 2, pid(2))),
    Case("unsubscribe-packet-id-0", "MQTT-2.3.1-1", lambda c: packet(UNSUBSCRIBE, 2, pid(0) + string(c.inbox))),
    Case("unsubscribe-nul-in-filter", "MQTT-1.5.3-2", lambda c: packet(UNSUBSCRIBE, 2, pid(2) + string(c.inbox + "\x00"))),
    Case(
        "unsubscribe-bad-filter-after-a-valid-one", "MQTT-4.8.0-1",
        lambda c: packet(UNSUBSCRIBE, 2, pid(2) + string(c.inbox) + string("chat/\x00")),
        mosquitto="unsubscribes the valid filters before the bad one, then closes",
    ),  # fmt: skip
]


@EVERY_BROKER
@pytest.mark.parametrize("case", [c.param() for c in UNSUBSCRIBE_CASES])
async def test_malformed_unsubscribe_is_closed_keeping_the_subscription(system: System, alice: Account, case: Case) -> None:
    """amqtt acted on these: the session lost its subscription."""
    only_where_alike(system, case)
    ctx = context(alice, "unsub")
    client, _ = await connect(system, ctx, clean=False)
    assert await client.subscribe(ctx.inbox, 1) == 1
    await client.send_bytes(case.data(ctx))
    assert await client.packets_until_closed() == [], f"[{case.rule}] closed without UNSUBACK"
    client, present = await connect(system, ctx, clean=False)
    assert present
    async with service_client(system) as service:
        await service.publish(ctx.inbox, b'{"type": "still subscribed"}', qos=1)
    delivered = await client.read_publish()
    assert delivered is not None and delivered.payload == b'{"type": "still subscribed"}'
    await client.ack(PUBACK, delivered.packet_id)  # type: ignore[arg-type]
    await client.disconnect()


# -- acknowledgements that do not fit the delivery's QoS flow ---------------------------------

ACK_CASES = [
    pytest.param(2, [PUBACK], id="puback-for-qos-2"),
    pytest.param(1, [PUBREC], id="pubrec-for-qos-1"),
    pytest.param(1, [PUBCOMP], id="pubcomp-for-qos-1"),
    pytest.param(2, [PUBCOMP], id="pubcomp-before-pubrec"),
]


@EVERY_BROKER
@pytest.mark.parametrize(("qos", "answers"), ACK_CASES)
async def test_acknowledgement_out_of_flow_closes_and_keeps_the_delivery(
    system: System, alice: Account, qos: int, answers: list[int]
) -> None:
    """amqtt took a wrong acknowledgement as the right one (or ignored it): the delivery was completed
    or stranded. Now the connection is closed and the delivery, still in flight, is resent on resume."""
    if system.broker == "nats":
        pytest.skip("nats-server takes an acknowledgement by packet id whatever the delivery's QoS (docs/broker.md)")
    ctx = context(alice, f"ack{qos}")
    client, _ = await connect(system, ctx, clean=False)
    assert await client.subscribe(ctx.inbox, qos) == qos
    async with service_client(system) as service:
        await service.publish(ctx.inbox, b'{"type": "in flight"}', qos=qos)
    delivered = await client.read_publish()
    assert delivered is not None and delivered.qos == qos and delivered.packet_id is not None
    for answer in answers:
        await client.ack(answer, delivered.packet_id)
    assert await client.packets_until_closed() == [], "the connection is closed"
    client, present = await connect(system, ctx, clean=False)
    assert present
    again = await client.read_publish()
    assert again is not None and (again.payload, again.dup) == (b'{"type": "in flight"}', True), "resent, not completed"
    await client.ack(PUBACK if qos == 1 else PUBREC, again.packet_id)  # type: ignore[arg-type]
    if qos == 2:
        pubrel = await client.read()
        assert pubrel is not None and pubrel.type == PUBREL
        await client.ack(PUBCOMP, again.packet_id)  # type: ignore[arg-type]
    await client.disconnect()
