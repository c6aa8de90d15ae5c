"""Session rules every broker keeps alike (issue 24, item 7): take-over (on the NATS cluster through another
node), QoS 2 resume, delivery QoS, and connections that publish to `$` or empty topics.

Raw packets (tests/raw_mqtt.py) where paho acknowledges by itself or refuses the case.
"""

from __future__ import annotations

import pytest

from core import topics
from tests.conftest import EVERY_BROKER
from tests.raw_mqtt import PUBCOMP, PUBREC, PUBREL, RawClient
from tests.support import Account, Inbox, System, collect, granted, payload, service_client, user_client

pytestmark = EVERY_BROKER


async def connect(system: System, account: Account, suffix: str, **kwargs: object) -> tuple[RawClient, bool]:
    """A raw connection of `account` with client id `<id>-<suffix>`; returns it and CONNACK's session-present."""
    return await RawClient.connect(system.mqtt_port, f"{account.id}-{suffix}", account.id, account.mqtt_password, **kwargs)  # type: ignore[arg-type]


async def test_persistent_connect_taking_over_a_clean_session_keeps_its_queue(system: System, alice: Account) -> None:
    """amqtt resumed the live clean session and kept it clean: the queue was lost once it disconnected."""
    inbox = topics.user_inbox(alice.id)
    clean, present = await connect(system, alice, "tablet", clean=True)
    assert not present and await clean.subscribe(inbox, 1) == 1
    persistent, present = await connect(system.node(1), alice, "tablet", clean=False)
    assert not present, "a clean session is never resumed"
    assert await clean.closed_by_broker(), "the older connection is taken over"
    assert await persistent.subscribe(inbox, 1) == 1
    await persistent.disconnect()
    async with service_client(system) as service:
        await service.publish(inbox, b'{"type": "queued"}', qos=1)
    back, present = await connect(system.node(2), alice, "tablet", clean=False)
    assert present
    queued = await back.read_publish()
    assert queued is not None and queued.payload == b'{"type": "queued"}'
    await back.disconnect()


async def test_taken_over_persistent_session_keeps_receiving_live(system: System, alice: Account) -> None:
    """amqtt's old connection, once taken over, marked the shared session disconnected: live messages were only queued."""
    inbox = topics.user_inbox(alice.id)
    old, _ = await connect(system, alice, "phone", clean=False)
    assert await old.subscribe(inbox, 1) == 1
    new, present = await connect(system.node(1), alice, "phone", clean=False)
    assert present
    assert await old.closed_by_broker()
    async with service_client(system) as service:
        await service.publish(inbox, b'{"type": "live"}', qos=1)
    live = await new.read_publish()
    assert live is not None and live.payload == b'{"type": "live"}'
    await new.disconnect()


async def test_unacknowledged_qos2_deliveries_are_resent_on_resume(system: System, alice: Account) -> None:
    """[MQTT-4.4.0-1]: PUBLISH (with DUP) before its PUBREC, PUBREL after it; amqtt resent neither."""
    if system.broker == "nats":
        pytest.skip("nats-server does not resend an unacknowledged delivery on resume, only after its ack_wait (docs/broker.md)")
    inbox = topics.user_inbox(alice.id)
    client, _ = await connect(system, alice, "q2", clean=False)
    assert await client.subscribe(inbox, 2) == 2
    async with service_client(system) as service:
        await service.publish(inbox, b'{"n": 1}', qos=2)
        first = await client.read_publish()
        assert first is not None and first.qos == 2 and not first.dup
        client.abort()  # no PUBREC

        client, present = await connect(system, alice, "q2", clean=False)
        assert present
        again = await client.read_publish()
        assert again is not None and (again.payload, again.qos, again.dup, again.packet_id) == (b'{"n": 1}', 2, True, first.packet_id)
        await client.ack(PUBREC, first.packet_id)  # type: ignore[arg-type]
        pubrel = await client.read()
        assert pubrel is not None and (pubrel.type, pubrel.packet_id) == (PUBREL, first.packet_id)
        await client.ack(PUBCOMP, first.packet_id)  # type: ignore[arg-type]

        await service.publish(inbox, b'{"n": 2}', qos=2)
        second = await client.read_publish()
        assert second is not None and second.payload == b'{"n": 2}'
        await client.ack(PUBREC, second.packet_id)  # type: ignore[arg-type]
        pubrel = await client.read()
        assert pubrel is not None and pubrel.type == PUBREL
        client.abort()  # no PUBCOMP

    client, present = await connect(system, alice, "q2", clean=False)
    assert present
    resent = await client.read()
    assert resent is not None and (resent.type, resent.packet_id) == (PUBREL, second.packet_id), "only the PUBREL again"
    await client.ack(PUBCOMP, second.packet_id)  # type: ignore[arg-type]
    assert await client.read(timeout=1) is None, "nothing else is resent"
    await client.disconnect()


async def test_delivery_qos_is_the_lower_of_publish_and_subscription(system: System, alice: Account) -> None:
    """amqtt delivered at the subscription's QoS: a QoS 0 publish arrived as QoS 1."""
    inbox = topics.user_inbox(alice.id)
    async with user_client(system, alice, "qos") as client:
        assert granted(await client.subscribe(inbox, qos=1))
        async with service_client(system) as service:
            for qos in (0, 1, 2):
                await service.publish(inbox, f'{{"published": {qos}}}', qos=qos)
        received = await collect(client, 10, stop_after=3)
    assert {payload(m)["published"]: m.qos for m in received} == {0: 0, 1: 1, 2: 1}


@pytest.mark.parametrize("topic", ["$SYS/mqchat/probe", ""])
async def test_publish_to_a_dollar_or_empty_topic_ends_the_connection_with_its_will(
    system: System, alice: Account, admin: Account, topic: str
) -> None:
    """amqtt left its message loop but kept the connection: later publishes were acknowledged, never routed, and no Will came.

    Mosquitto 2.0 here closes a connection on any refused PUBLISH (with `max_queued_messages 0`); nats-server
    drops a PUBLISH to a `$` topic, as any outside the client's permissions, and keeps the connection, whose later
    publishes are routed (docs/broker.md).
    """
    client_id = f"{alice.id}-bad-topic"
    presence, after = topics.device_presence(alice.id, client_id), topics.user_outbox(alice.id, "typing")
    kept = system.broker == "nats" and topic.startswith("$")
    async with Inbox(user_client(system, admin, "watch"), [f"chat/users/{alice.id}/outbox/#"]) as watcher:
        client, _ = await connect(system, alice, "bad-topic", will=(presence, b'{"status": "offline"}'))
        await client.publish(topic, b'{"probe": "bad"}', qos=1, packet_id=1)
        await client.publish(after, b'{"probe": "after"}', qos=1, packet_id=2)
        if kept:
            await watcher.wait_for(1, topic=after)
            client.abort()
        else:
            assert await client.closed_by_broker()
        [will] = await watcher.wait_for(1, topic=presence)
        assert will == {"status": "offline"}
    routed = [after, presence] if kept else [presence]
    assert [m.topic.value for m in watcher.messages] == routed, "nothing published to the bad topic went anywhere"
