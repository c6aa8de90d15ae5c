"""Back-pressure on the embedded broker (issue 26, item 7; docs/broker.md, "Back-pressure").

A user's message to a service connection (the bridge) that has `MQCHAT_BACKLOG_HIGH_WATER` deliveries
waiting gets its PUBACK only once that backlog has shrunk; a user's connection with `MQCHAT_BACKLOG_LIMIT`
waiting is closed instead of holding anyone up. Small limits, so a few dozen messages show it: a system of
its own (the session's keeps the defaults).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from broker.inflight import InflightWindow
from core import topics
from tests.raw_mqtt import PUBACK, RawClient
from tests.support import Account, System, device, open_conversation, running, signup

IN_FLIGHT, HIGH_WATER, LIMIT = 5, 10, 20
LIMITS = {
    "MQCHAT_MAX_INFLIGHT": str(IN_FLIGHT), "MQCHAT_BACKLOG_HIGH_WATER": str(HIGH_WATER), "MQCHAT_BACKLOG_LIMIT": str(LIMIT),
    "MQCHAT_SEND_RATE": "1000", "MQCHAT_SEND_BURST": "1000",  # the flood below is not refused by the bridge's rate limit
}  # fmt: skip


@pytest.fixture(scope="module")
def pressed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    with running(System.on_free_ports(tmp_path_factory.mktemp("mqchat-backpressure") / "data", **LIMITS)) as system:
        yield system


@pytest.fixture
async def rest(pressed: System) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=pressed.api_url, timeout=30) as client:
        yield client


async def raw_user(system: System, account: Account, suffix: str, *, clean: bool = True) -> RawClient:
    client, _ = await RawClient.connect(system.mqtt_port, f"{account.id}-{suffix}", account.id, account.mqtt_password, clean=clean)
    return client


async def raw_service(system: System) -> RawClient:
    client_id = f"mqchat-bridge-test-{secrets.token_hex(3)}"
    client, _ = await RawClient.connect(system.mqtt_port, client_id, "mqchat-bridge", system.service_password())
    return client


async def publish_all(client: RawClient, topic: str, payloads: list[bytes]) -> None:
    """QoS 1 PUBLISHes sent back to back (packet ids 1..n), then their PUBACKs read."""
    for packet_id, data in enumerate(payloads, start=1):
        await client.publish(topic, data, qos=1, packet_id=packet_id)
    assert await pubacks(client, len(payloads)) == list(range(1, len(payloads) + 1))


async def pubacks(client: RawClient, count: int, timeout: float = 10) -> list[int]:
    """The packet ids of the next `count` PUBACKs (other packets skipped)."""
    acked: list[int] = []
    while len(acked) < count and (packet := await client.read(timeout)) is not None:
        if packet.type == PUBACK:
            acked.append(packet.packet_id)
    return acked


def probes(count: int, start: int = 0) -> list[bytes]:
    return [json.dumps({"type": "probe", "n": n}).encode() for n in range(start, start + count)]


def send_request(cid: str, tag: str, n: int) -> bytes:
    return json.dumps({"conversation_id": cid, "client_msg_id": f"{tag}-{n}", "body": f"{tag} {n}"}).encode()


async def receive_and_ack(client: RawClient) -> list[dict]:
    """Every delivery until none comes for a second, each acknowledged as it comes; their JSON payloads."""
    received = []
    while (publish := await client.read_publish(timeout=1)) is not None:
        received.append(json.loads(publish.payload))
        await client.ack(PUBACK, publish.packet_id)  # type: ignore[arg-type]
    return received


def numbers(received: list[dict]) -> list[int]:
    return [event["n"] for event in received if event.get("type") == "probe"]


async def stored_bodies(rest: httpx.AsyncClient, reader: Account, cid: str, count: int) -> list[str]:
    """The bodies stored in the conversation, by seq, once `count` are (or after 10 s)."""
    for _ in range(100):
        items = (await rest.get(f"/api/conversations/{cid}/messages", params={"limit": 100}, headers=reader.headers)).json()["items"]
        if len(items) >= count:
            break
        await asyncio.sleep(0.1)
    return [item["body"] for item in sorted(items, key=lambda item: item["seq"])]


async def test_a_user_waits_for_a_slow_service_and_nothing_is_lost(pressed: System, rest: httpx.AsyncClient) -> None:
    """A service connection with HIGH_WATER deliveries waiting holds back the PUBACK of a user's message to it until
    it catches up; then every message arrives once, in order, and is stored."""
    alice, bob = await signup(rest), await signup(rest)
    cid = (await open_conversation(rest, alice, bob))["id"]
    slow = await raw_service(pressed)  # a service that reads but does not acknowledge (yet)
    assert await slow.subscribe(topics.user_inbox(alice.id), 1, packet_id=1) == 1
    assert await slow.subscribe(topics.user_outbox(alice.id, "#"), 1, packet_id=2) == 1
    await publish_all(await raw_service(pressed), topics.user_inbox(alice.id), probes(IN_FLIGHT + HIGH_WATER))  # services never wait

    sender = await raw_user(pressed, alice, "sender")
    for n in range(3):
        await sender.publish(topics.user_outbox(alice.id, "send"), send_request(cid, "held", n), qos=1, packet_id=n + 1)
    assert await pubacks(sender, 1, timeout=1.5) == [], "acknowledged while the service was HIGH_WATER behind"
    assert await stored_bodies(rest, alice, cid, 0) == [], "routed to the bridge while the service was HIGH_WATER behind"

    in_flight = [await slow.read_publish() for _ in range(IN_FLIGHT)]
    await slow.publish(topics.user_inbox(alice.id), probes(1, IN_FLIGHT + HIGH_WATER)[0], qos=1, packet_id=1)
    assert await pubacks(slow, 1) == [1], "a service never waits, not even for its own backlog"
    for publish in in_flight:
        await slow.ack(PUBACK, publish.packet_id)  # type: ignore[union-attr,arg-type]
    received = [json.loads(p.payload) for p in in_flight if p is not None] + await receive_and_ack(slow)
    assert await pubacks(sender, 3) == [1, 2, 3]
    assert numbers(received) == list(range(IN_FLIGHT + HIGH_WATER + 1)), "every probe once, in order"
    assert [event["body"] for event in received if "body" in event] == ["held 0", "held 1", "held 2"], "after them, in order"
    assert await stored_bodies(rest, alice, cid, 3) == ["held 0", "held 1", "held 2"], "stored once each, in order"


async def test_a_stalled_user_is_cut_off_and_holds_nobody_up(pressed: System, rest: httpx.AsyncClient) -> None:
    """A member who receives and never acknowledges: the bridge does not wait for him, the others' messages flow,
    and past LIMIT waiting deliveries his connection is closed; his persistent session keeps them, in order."""
    alice, bob, carol = await signup(rest), await signup(rest), await signup(rest)
    cid = (await open_conversation(rest, alice, bob, carol, kind="group", title="Stall"))["id"]
    stalled = await raw_user(pressed, carol, "stalled", clean=False)
    assert await stalled.subscribe(topics.user_inbox(carol.id), 1) == 1
    first = IN_FLIGHT + LIMIT - 5
    await publish_all(await raw_service(pressed), topics.user_inbox(carol.id), probes(first))  # 5 short of the limit
    async with device(pressed, alice) as alice_web, device(pressed, bob) as bob_web:
        for n in range(10):  # each one more delivery for carol: she passes the limit on the way
            await alice_web.client.publish(topics.user_outbox(alice.id, "send"), send_request(cid, "flow", n), qos=1)
        assert [e["message"]["body"] for e in await bob_web.wait_for(10, "message.created")] == [f"flow {n}" for n in range(10)]
        assert await stalled.closed_by_broker(), "the stalled connection is closed"
        await alice_web.client.publish(topics.user_outbox(alice.id, "send"), send_request(cid, "flow", 10), qos=1)
        await bob_web.wait_for(11, "message.created")

    again = await raw_user(pressed, carol, "stalled", clean=False)
    received = await receive_and_ack(again)
    assert numbers(received) == list(range(first)), "the probes, in order"
    bodies = [event["message"]["body"] for event in received if event.get("type") == "message.created"]
    assert bodies == [f"flow {n}" for n in range(11)], "every message once, in order, none lost"
    await again.disconnect()


async def test_the_bridge_keeps_working_under_a_flood(pressed: System, rest: httpx.AsyncClient) -> None:
    """Users pipelining requests far past HIGH_WATER: the bridge, which publishes events while its own requests wait,
    never waits on itself; every request is acknowledged, stored once and delivered, in each sender's order."""
    senders, count = 4, 40
    pairs = [(await signup(rest), await signup(rest)) for _ in range(senders)]
    cids = [(await open_conversation(rest, a, b))["id"] for a, b in pairs]
    floods = [await raw_user(pressed, a, "flood") for a, _ in pairs]
    async with device(pressed, pairs[0][1]) as watcher:
        await asyncio.gather(*(
            publish_all(client, topics.user_outbox(a.id, "send"), [send_request(cid, "flood", n) for n in range(count)])
            for client, (a, _), cid in zip(floods, pairs, cids, strict=True)
        ))  # fmt: skip
        events = await watcher.wait_for(count, "message.created", timeout=30)
    assert [e["message"]["body"] for e in events] == [f"flood {n}" for n in range(count)]
    for (a, _), cid in zip(pairs, cids, strict=True):
        assert await stored_bodies(rest, a, cid, count) == [f"flood {n}" for n in range(count)]


async def test_a_closed_window_spills_in_order_what_was_not_sent() -> None:
    """Deliveries given a slot whose tasks had not sent when the connection ended are spilled, before those still
    waiting, and their tasks send nothing (one went out on the dead connection and, resent only on a later resume,
    reached the bridge after newer requests: tests/test_bridge_crash.py saw 316 stored before 310)."""
    spilled: list[int] = []
    window: InflightWindow[int] = InflightWindow(3, 1, spilled.append)
    given, waiting = [window.reserve(n) for n in (1, 2)], [window.reserve(n) for n in (3, 4)]
    assert window.waiting == 2
    window.close()
    assert spilled == [1, 2, 3, 4]
    assert [await window.take(slot) for slot in given + waiting] == [False] * 4
    assert window.reserve(5).result() is False and spilled == [1, 2, 3, 4, 5]


async def test_slots_are_taken_in_the_order_given() -> None:
    """A delivery created just before a release, its task not yet run, sends after the older ones that release
    wakes, not before (the bridge stored burst-222 before burst-215: tests/test_bridge_crash.py, 1 run in 6);
    a taker cancelled before its turn passes its slot on, in order."""
    window: InflightWindow[int] = InflightWindow(4, 4, lambda item: None)  # 4 deliveries in flight
    sent: list[int] = []

    async def deliver(n: int, slot: asyncio.Future[bool]) -> None:
        if await window.take(slot):
            sent.append(n)

    def delivery(n: int) -> asyncio.Task[None]:
        return asyncio.create_task(deliver(n, window.reserve(n)))  # as SecureBroker starts one

    older = [delivery(1), delivery(2), delivery(3)]
    await asyncio.sleep(0)  # their tasks wait for a slot
    newer = delivery(4)  # its task not yet run
    window.release()  # one in flight acknowledged: 1 gets a slot
    window.release()  # 2 gets one, behind 1
    older[1].cancel()  # 2 is gone before its turn
    window.release()  # 3 gets a slot
    window.release()  # 4 gets one: all four acknowledged at once
    await asyncio.gather(*older, newer, return_exceptions=True)
    assert sent == [1, 3, 4]
    assert window.reserve(5).done() and window.waiting == 0, "every slot of a gone taker was passed on"
