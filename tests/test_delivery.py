"""Delivery guarantees: offline queues, presence across devices, membership cut-off, in-flight redelivery."""

from __future__ import annotations

import asyncio
import json
import socket

import aiomqtt
import httpx
import pytest

from core import mqtt as core_mqtt
from core import topics
from core.settings import Settings
from tests.conftest import EVERY_BROKER
from tests.raw_mqtt import PUBACK, Publish, RawClient
from tests.support import (
    Account,
    System,
    collect,
    crashable_device,
    device,
    drop,
    granted,
    open_conversation,
    payload,
    service_client,
    signup,
    user_client,
)

pytestmark = EVERY_BROKER
# docs/broker.md, the NATS cluster: where it differs
NATS_RESENDS_AFTER_ACK_WAIT = (
    "NATS resends an unacknowledged QoS 1 delivery after its ack_wait (10 s), not on resume, and lets 1,024 wait per subscription"
)


async def test_offline_queue_is_delivered_in_order(system: System, api: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    """A persistent session's QoS 1 queue, filled while it was away, is delivered when it comes back: on the cluster
    through another node than the one it left, and on the others through the same broker."""
    cid = (await open_conversation(api, alice, bob))["id"]
    async with device(system.node(1), bob, "phone", clean_session=False):
        pass  # bob's phone has a persistent session and goes offline
    async with device(system, alice) as alice_web:
        for n in range(30):
            request = {"conversation_id": cid, "client_msg_id": f"q{n}", "body": f"queued {n}"}
            await alice_web.client.publish(topics.user_outbox(alice.id, "send"), json.dumps(request), qos=1)
        await alice_web.wait_for(30, "message.created")
    async with device(system.node(2), bob, "phone", clean_session=False) as bob_phone:
        events = await bob_phone.wait_for(30, "message.created")
    seqs = [e["message"]["seq"] for e in events]
    bodies = [e["message"]["body"] for e in sorted(events, key=lambda e: e["message"]["seq"])]
    assert sorted(seqs) == list(range(1, 31)), "every message once"
    assert sorted(bodies) == sorted(f"queued {n}" for n in range(30))
    if system.bridge_workers == 1:
        assert seqs == list(range(1, 31)) and bodies == [f"queued {n}" for n in range(30)], "in send order"
    # else each worker stores and publishes its share of the requests: they may be numbered in either order and
    # reach the queue out of seq order; recipients order by seq (docs/protocol.md, docs/broker.md)


async def test_presence_is_aggregated_over_devices(system: System, api: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    """Devices on different nodes (on the cluster): the user is online while one is, away while one is away,
    offline once none is left; a device that drops without DISCONNECT goes offline by its Will; every node
    serves the same retained presence."""
    presence_topic = topics.user_presence(alice.id)
    async with device(system, bob, "web", presence_topic) as watcher:
        phone = await crashable_device(system.node(1), alice, "phone")
        [online] = await watcher.wait_for(1, topic=presence_topic)
        assert online["user_id"] == alice.id and online["status"] == "online" and online["last_seen"]

        laptop_presence = topics.device_presence(alice.id, f"{alice.id}-laptop")
        will = aiomqtt.Will(laptop_presence, json.dumps({"status": "offline"}), qos=1, retain=True)
        async with user_client(system.node(2), alice, "laptop", will=will) as laptop:
            await laptop.publish(laptop_presence, json.dumps({"status": "away"}), qos=1, retain=True)
            phone.kill()  # the phone crashes: its Will says offline, but the laptop is still connected
            await phone.wait()
            await asyncio.sleep(1.0)
            assert [e["status"] for e in watcher.events(topic=presence_topic)] == ["online", "away"]
            seen = (await api.get(f"/api/users/{alice.id}", headers=bob.headers)).json()["presence"]
            assert seen["status"] == "away"
            if system.broker != "amqtt":
                # Mosquitto 2.0 and NATS have no disconnect events (clients say offline before a clean disconnect, as
                # the protocol asks; docs/deploy.md): the laptop's network goes, and its Will says offline
                drop(laptop)
            # else the laptop leaves cleanly *without* saying offline: the embedded broker marks it offline
        states = await watcher.wait_for(3, topic=presence_topic)
        assert states[-1]["status"] == "offline" and states[-1]["last_seen"].endswith("Z")
    profile = (await api.get(f"/api/users/{alice.id}", headers=bob.headers)).json()["presence"]
    assert profile == {"status": "offline", "last_seen": states[-1]["last_seen"]}
    for node in range(system.nodes):
        assert await retained(system.node(node), bob, presence_topic, states[-1]) == states[-1], f"node {node}"


async def retained(system: System, reader: Account, topic: str, expected: dict) -> dict | None:
    """The retained value of `topic` a fresh connection of `reader` gets on subscribing: `expected` as soon as one of a
    few subscriptions gets it (a cluster node's cache follows the replicated stream), else the last one got."""
    found = None
    async with user_client(system, reader, "retained") as client:
        for _ in range(10):
            assert granted(await client.subscribe(topic, qos=1))
            found = next((payload(m) for m in await collect(client, 2, stop_after=1) if m.retain), found)
            if found == expected:
                break
            await client.unsubscribe(topic)
    return found


async def test_removed_member_stops_receiving_at_once(system: System, api: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    if system.broker == "nats":
        pytest.skip("NATS cuts a removed member's connections instead of its deliveries (rights per connection, docs/broker.md)")
    carol = await signup(api)
    cid = (await open_conversation(api, alice, bob, carol, kind="group", title="Team"))["id"]
    messages_topic = topics.conversation(cid, "messages")
    async with device(system, carol, "web", messages_topic) as carol_web, device(system, bob, "web", messages_topic) as bob_web:
        first = await api.post(f"/api/conversations/{cid}/messages", json={"body": "before"}, headers=alice.headers)
        await carol_web.wait_for(1, "message.created", messages_topic)
        removed = await api.delete(f"/api/conversations/{cid}/members/{carol.id}", headers=alice.headers)
        assert removed.status_code == 200 and carol.id not in removed.json()["participant_ids"]
        [update] = await carol_web.wait_for(1, "conversation.updated")
        assert carol.id not in update["conversation"]["participant_ids"]
        await api.post(f"/api/conversations/{cid}/messages", json={"body": "after"}, headers=alice.headers)
        await bob_web.wait_for(2, "message.created", messages_topic)
        await asyncio.sleep(0.5)
        assert [e["message"]["body"] for e in carol_web.events("message.created")] == ["before", "before"]
        assert not granted(await carol_web.client.subscribe(messages_topic, qos=1))
    assert first.status_code == 201
    assert (await api.get(f"/api/conversations/{cid}/messages", headers=carol.headers)).status_code == 404

    # adding her back: she is told, and receives again
    assert (await api.post(f"/api/conversations/{cid}/members", json={"user_id": carol.id}, headers=bob.headers)).status_code == 403
    async with device(system, carol, "web2") as carol_again:
        added = await api.post(f"/api/conversations/{cid}/members", json={"user_id": carol.id}, headers=alice.headers)
        assert added.status_code == 200
        await carol_again.wait_for(1, "conversation.created")
        await api.post(f"/api/conversations/{cid}/messages", json={"body": "welcome back"}, headers=alice.headers)
        [event] = await carol_again.wait_for(1, "message.created")
        assert event["message"]["body"] == "welcome back"


async def test_unacknowledged_messages_are_redelivered_on_resume(system: System, alice: Account) -> None:
    """amqtt dropped in-flight QoS 1 messages after 5 s or on disconnect; the embedded broker keeps them. Neither
    they nor the offline queue hold up the resumed session's SUBSCRIBE (amqtt answered it only once the client had
    acknowledged them all: the bridge, which acknowledges what it has handled, timed out re-subscribing after a crash)."""
    if system.broker == "nats":
        pytest.skip(NATS_RESENDS_AFTER_ACK_WAIT)
    inbox = topics.user_inbox(alice.id)
    client = user_client(system, alice, "slow", clean_session=False)
    client._client.manual_ack_set(True)  # receive, but never acknowledge
    async with client:
        assert granted(await client.subscribe(inbox, qos=1))
        async with service_client(system) as service:
            for n in range(5):
                await service.publish(inbox, json.dumps({"type": "probe", "n": n}), qos=1)
        first = await collect(client, 10, stop_after=5)
        assert [payload(m)["n"] for m in first] == [0, 1, 2, 3, 4]
        await asyncio.sleep(6)  # longer than stock amqtt's 5 s PUBACK time-out
    async with service_client(system) as service:
        for n in range(5, 10):  # queued while the session is offline
            await service.publish(inbox, json.dumps({"type": "probe", "n": n}), qos=1)
    again = user_client(system, alice, "slow", clean_session=False)
    again._client.manual_ack_set(True)  # like the bridge: acknowledge only once handled
    async with again:
        resent = await collect(again, 10, stop_after=10)
        assert [payload(m)["n"] for m in resent] == list(range(10))
        assert granted(await again.subscribe(inbox, qos=1)), "re-subscribed while all ten wait for their PUBACK"
        async with service_client(system) as service:
            await service.publish(inbox, json.dumps({"type": "probe", "n": 10}), qos=1)
        [live] = await collect(again, 10, stop_after=1)
        assert payload(live)["n"] == 10
        for message in [*resent, live]:
            again._client.ack(message.mid, message.qos)
    async with user_client(system, alice, "slow", clean_session=False) as third:
        assert await collect(third, 1) == [], "acknowledged messages are not sent again"


async def test_unacknowledged_deliveries_are_capped_and_the_rest_wait_in_order(system: System, alice: Account) -> None:
    """At most 100 QoS 1 deliveries (MQCHAT_MAX_INFLIGHT, Mosquitto's max_inflight_messages) await their PUBACK; the
    rest wait in order, through a lost connection and a resume (amqtt sent them all: at 65,535 the packet ids ran out
    and later deliveries were lost)."""
    if system.broker == "nats":
        pytest.skip(NATS_RESENDS_AFTER_ACK_WAIT)
    inbox = topics.user_inbox(alice.id)
    client_id = f"{alice.id}-window"

    async def publish(numbers: range) -> None:
        async with service_client(system) as service:
            for n in numbers:
                await service.publish(inbox, json.dumps({"type": "probe", "n": n}), qos=1)

    async def receive(client: RawClient, count: int) -> list[Publish]:
        received = [await client.read_publish() for _ in range(count)]
        assert None not in received, f"{received.count(None)} of {count} deliveries missing"
        return received  # type: ignore[return-value]

    def numbers(received: list[Publish]) -> list[int]:
        return [json.loads(p.payload)["n"] for p in received]

    client, _ = await RawClient.connect(system.mqtt_port, client_id, alice.id, alice.mqtt_password, clean=False)
    assert await client.subscribe(inbox, 1) == 1
    await publish(range(150))
    assert numbers(await receive(client, 100)) == list(range(100))
    assert await client.read_publish(timeout=1) is None, "more than 100 deliveries in flight"
    client.abort()  # 100 in flight, 50 waiting
    await publish(range(150, 160))  # queued after them
    again, session_present = await RawClient.connect(system.mqtt_port, client_id, alice.id, alice.mqtt_password, clean=False)
    assert session_present
    resent = await receive(again, 100)
    assert numbers(resent) == list(range(100)) and all(p.dup for p in resent)
    assert await again.read_publish(timeout=1) is None, "more than 100 deliveries in flight after the resume"
    for p in resent:
        await again.ack(PUBACK, p.packet_id)  # type: ignore[arg-type]
    rest = await receive(again, 60)
    assert numbers(rest) == list(range(100, 160)), "the waiting deliveries, in order"
    for p in rest:
        await again.ack(PUBACK, p.packet_id)  # type: ignore[arg-type]
    assert await again.read_publish(timeout=1) is None, "nothing sent twice"
    await again.disconnect()


async def test_service_connections_send_without_delay(system: System) -> None:
    """Nagle off on the bridge's and API's connections: the 2nd and 3rd event of a message otherwise waited for a delayed ACK."""
    async with core_mqtt.service_client(Settings.load(system.env, env_file=None), "mqchat-api") as client:
        connection = client._client.socket()
        assert connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
