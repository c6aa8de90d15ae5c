"""The embedded broker's authentication and topic rules, over real sockets; on every broker: connecting over
TCP and WebSocket, the refusals of a CONNECT (bad credentials, foreign Wills, take-overs, disabled users),
retained messages behind the ACL (the rest of the topic rules are also cases of tests/test_acl.py's matrix,
which runs on every broker).

Includes regression tests for the holes of stock amqtt 0.12.1 that
broker/secure_broker.py closes (session wipe before auth, foreign Wills,
retained messages without the ACL, fan-out lost to another user's churn).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import shutil
import subprocess
import time

import aiomqtt
import httpx
import jwt
import pytest

from core import topics
from tests.conftest import EVERY_BROKER
from tests.support import (
    Account,
    System,
    collect,
    granted,
    mqtt_client,
    payload,
    refused,
    service_client,
    signup,
    user_client,
)


@EVERY_BROKER
async def test_user_connects_with_token_over_tcp_and_websocket(system: System, alice: Account) -> None:
    for node, transport in enumerate(("tcp", "websockets")):
        async with user_client(system.node(node), alice, f"dev-{transport}", transport=transport) as client:
            assert granted(await client.subscribe(topics.user_inbox(alice.id), qos=1))


CLIENT_IDS_NOT_TIED = "Mosquitto's dynamic security ties no client id to its user: another user's CONNECT takes it over (docs/deploy.md)"
# Where a broker accepts the CONNECT and drops the Will later, if it is outside the client's rights when it fires
WILLS_CHECKED_WHEN_THEY_FIRE = {
    "mosquitto": "Mosquitto 2.0 does not check Wills at CONNECT (docs/deploy.md)",
    "nats": "nats-server checks a Will against the client's permissions when it fires (docs/broker.md, tests/test_nats.py)",
}


@EVERY_BROKER
async def test_bad_credentials_refused(system: System, alice: Account, bob: Account) -> None:
    now = int(time.time())
    expired = jwt.encode({"sub": alice.id, "typ": "access", "exp": now - 5}, system.jwt_secret, algorithm="HS256")
    forged = jwt.encode({"sub": alice.id, "typ": "access", "exp": now + 60}, "f" * 48, algorithm="HS256")
    cases = {
        "expired": (alice.id, expired, f"{alice.id}-a"),
        "forged": (alice.id, forged, f"{alice.id}-a"),
        "someone else's password": (alice.id, bob.mqtt_password, f"{alice.id}-a"),
        "garbage password": (alice.id, "password", f"{alice.id}-a"),
        "foreign client id": (alice.id, alice.mqtt_password, f"{bob.id}-a"),
        "client id without prefix": (alice.id, alice.mqtt_password, "web-1"),
        "wildcard client id": (alice.id, alice.mqtt_password, f"{alice.id}/#"),
        "service name with user password": ("mqchat-bridge", alice.mqtt_password, "mqchat-bridge-x"),
    }
    if system.broker == "mosquitto":  # CLIENT_IDS_NOT_TIED
        cases = {name: case for name, case in cases.items() if "client id" not in name}
    for name, (username, password, client_id) in cases.items():
        assert await refused(mqtt_client(system, username, password, client_id)), name
    assert not await refused(user_client(system, alice))


@EVERY_BROKER
async def test_foreign_will_refused(system: System, alice: Account, bob: Account) -> None:
    if system.broker in WILLS_CHECKED_WHEN_THEY_FIRE:
        pytest.skip(WILLS_CHECKED_WHEN_THEY_FIRE[system.broker])
    own = topics.device_presence(alice.id, f"{alice.id}-web")
    offline = json.dumps({"status": "offline"})
    for topic in (
        topics.device_presence(bob.id, f"{bob.id}-web"),
        topics.user_outbox(bob.id, "send"),
        topics.user_presence(alice.id),
        topics.user_presence(bob.id),
        topics.device_presence(alice.id, f"{alice.id}-other-device"),
        topics.user_inbox(bob.id),
    ):
        will = aiomqtt.Will(topic, offline, qos=1, retain=True)
        assert await refused(user_client(system, alice, will=will)), topic
    assert not await refused(user_client(system, alice, will=aiomqtt.Will(own, offline, qos=1, retain=True)))


@EVERY_BROKER
async def test_refused_connect_leaves_victims_session_and_queue_intact(system: System, alice: Account, bob: Account) -> None:
    if system.broker == "mosquitto":
        pytest.skip(CLIENT_IDS_NOT_TIED)
    victim_id = f"{alice.id}-phone"
    inbox = topics.user_inbox(alice.id)
    async with user_client(system, alice, "phone", clean_session=False) as victim:
        assert granted(await victim.subscribe(inbox, qos=1))
    # the victim is offline with a persistent session; three events are queued for it
    async with service_client(system) as service:
        for n in range(3):
            await service.publish(inbox, json.dumps({"type": "test", "n": n}), qos=1)
    await asyncio.sleep(0.3)

    # attackers try to take over or wipe the session, with clean and persistent sessions
    for clean in (True, False):
        assert await refused(mqtt_client(system, bob.id, bob.token, victim_id, clean_session=clean))
        assert await refused(mqtt_client(system, alice.id, "wrong-password", victim_id, clean_session=clean))
        assert await refused(mqtt_client(system, alice.id, bob.token, victim_id, clean_session=clean))

    async with user_client(system, alice, "phone", clean_session=False) as victim:
        received = await collect(victim, 5, stop_after=3)
    assert [payload(m)["n"] for m in received] == [0, 1, 2]


@EVERY_BROKER
async def test_refused_connect_does_not_kick_a_live_session(system: System, alice: Account, bob: Account) -> None:
    if system.broker == "mosquitto":
        pytest.skip(CLIENT_IDS_NOT_TIED)
    inbox = topics.user_inbox(alice.id)
    async with user_client(system, alice, "laptop") as victim:
        assert granted(await victim.subscribe(inbox, qos=1))
        assert await refused(mqtt_client(system, bob.id, bob.token, f"{alice.id}-laptop"))
        assert await refused(mqtt_client(system, alice.id, "nope", f"{alice.id}-laptop"))
        async with service_client(system) as service:
            await service.publish(inbox, b'{"type": "still-here"}', qos=1)
        received = await collect(victim, 5, stop_after=1)
    assert [payload(m)["type"] for m in received] == ["still-here"]


@EVERY_BROKER
async def test_retained_messages_pass_the_acl(system: System, alice: Account, bob: Account) -> None:
    alice_device = topics.device_presence(alice.id, f"{alice.id}-web")
    async with user_client(system.node(1), alice, "web") as client:
        await client.publish(alice_device, b'{"status": "online"}', qos=1, retain=True)
    async with service_client(system) as service:
        await service.publish(topics.user_presence(alice.id), b'{"status": "online"}', qos=1, retain=True)
    await asyncio.sleep(0.3)

    # Bob subscribes to his own inbox only: no retained message of anyone else may arrive,
    # not even those matching other clients' subscriptions (through another node of a cluster).
    async with user_client(system.node(2), bob, "web") as client:
        assert granted(await client.subscribe(topics.user_inbox(bob.id), qos=1))
        assert not granted(await client.subscribe(alice_device, qos=1))
        assert await collect(client, 1.5) == []
        # what the contract lets any user read does arrive: the positive control
        assert granted(await client.subscribe(topics.user_presence(alice.id), qos=1))
        received = await collect(client, 5, stop_after=1)
    assert [m.topic.value for m in received] == [topics.user_presence(alice.id)]


@pytest.mark.parametrize(
    "topic_filter",
    ["#", "chat/#", "chat/presence/+", "chat/users/+/inbox", "chat/users/{bob}/#", "chat/+/{alice}/inbox", "+/+/+"],
)
async def test_non_admin_wildcards_refused(system: System, alice: Account, bob: Account, topic_filter: str) -> None:
    async with user_client(system, alice) as client:
        assert not granted(await client.subscribe(topic_filter.format(alice=alice.id, bob=bob.id), qos=1))


async def test_topic_rights(system: System, alice: Account, bob: Account) -> None:
    async with user_client(system, alice) as client:
        assert granted(await client.subscribe(topics.user_inbox(alice.id), qos=1))
        assert granted(await client.subscribe(topics.user_presence(bob.id), qos=1))
        for forbidden in (
            topics.user_inbox(bob.id),
            topics.user_outbox(bob.id, "send"),
            topics.user_outbox(alice.id, "send"),
            topics.AGENT_TICKETS,
            topics.conversation("0" * 24, "messages"),
            "chat/unknown",
            "$SYS/broker/uptime",
        ):
            assert not granted(await client.subscribe(forbidden, qos=1)), forbidden


async def test_agents_may_read_the_ticket_queue(system: System, api: httpx.AsyncClient) -> None:
    from tests.support import create_staff

    agent = await create_staff(system, api, "agent")
    async with user_client(system, agent) as client:
        assert granted(await client.subscribe(topics.AGENT_TICKETS, qos=1))
        assert not granted(await client.subscribe("chat/#", qos=1))


async def test_publishing_outside_own_outbox_is_dropped(system: System, alice: Account, bob: Account, admin: Account) -> None:
    spoofed = [
        topics.user_outbox(bob.id, "send"),
        topics.user_inbox(bob.id),
        topics.user_presence(bob.id),
        topics.AGENT_TICKETS,
        topics.device_presence(alice.id, f"{alice.id}-not-me"),
        topics.MEMBERSHIP_CONTROL,
    ]
    async with user_client(system, admin, "spy") as spy, user_client(system, bob) as bob_client:
        assert granted(await spy.subscribe("chat/#", qos=1))
        assert granted(await bob_client.subscribe(topics.user_inbox(bob.id), qos=1))
        async with user_client(system, alice) as client:
            for topic in spoofed:
                await client.publish(topic, b'{"body": "spoofed"}', qos=1)
            await client.publish(topics.user_outbox(alice.id, "typing"), b'{"body": "mine"}', qos=1)
        seen = await collect(spy, 2)
        assert await collect(bob_client, 0.5) == []
    live = {m.topic.value for m in seen if not m.retain}  # chat/# also replays other tests' retained presence
    assert topics.user_outbox(alice.id, "typing") in live
    assert live.isdisjoint(spoofed)


async def test_admin_publishes_only_to_own_outbox(system: System, admin: Account, bob: Account) -> None:
    async with user_client(system, bob) as bob_client:
        assert granted(await bob_client.subscribe(topics.user_inbox(bob.id), qos=1))
        async with user_client(system, admin) as client:
            await client.publish(topics.user_inbox(bob.id), b'{"type": "spoof"}', qos=1)
        assert await collect(bob_client, 1) == []


async def test_oversized_packet_ends_the_connection(system: System, alice: Account, admin: Account) -> None:
    async with user_client(system, admin, "spy") as spy:
        assert granted(await spy.subscribe("chat/#", qos=1))
        with pytest.raises(aiomqtt.MqttError):
            async with user_client(system, alice, "big") as client:
                await client.publish(topics.user_outbox(alice.id, "send"), b"x" * (1024 * 1024 + 1), qos=1, timeout=5)
                await collect(client, 2)
        assert [m for m in await collect(spy, 1) if not m.retain] == []


@pytest.mark.skipif(shutil.which("mosquitto_sub") is None, reason="mosquitto-clients not installed (apt-get install mosquitto-clients)")
async def test_mosquitto_sub_with_admin_token_sees_chat(system: System, api: httpx.AsyncClient, alice: Account) -> None:
    admin_email = f"ops-{alice.id[-6:]}@example.com"
    await asyncio.to_thread(system.cli, "user", "create", "--email", admin_email, "--password", "ops-password-1", "--role", "admin")
    token = (await asyncio.to_thread(system.cli, "token", "--email", admin_email)).stdout.strip()
    admin_id = jwt.decode(token, options={"verify_signature": False})["sub"]
    sub = await asyncio.create_subprocess_exec(
        "mosquitto_sub", "-h", "127.0.0.1", "-p", str(system.mqtt_port), "-u", admin_id, "-P", token,
        "-i", f"{admin_id}-cli", "-t", "chat/#", "-v", "-R", "-C", "1", "-W", "15",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    await asyncio.sleep(1.0)
    async with user_client(system, alice) as client:
        await client.publish(topics.user_outbox(alice.id, "typing"), b'{"probe": true}', qos=1)
    out, err = await asyncio.wait_for(sub.communicate(), 20)
    assert sub.returncode == 0, err.decode()
    assert out.decode().startswith(topics.user_outbox(alice.id, "typing"))


@EVERY_BROKER
async def test_disabled_user_refused(system: System, api: httpx.AsyncClient) -> None:
    if system.broker == "mosquitto":
        pytest.skip("Mosquitto learns of a disabled user from the API's revocation (disableClient, core/broker_rights.py), not from the store")
    from pymongo import AsyncMongoClient

    account = await signup(api)
    mongo: AsyncMongoClient = AsyncMongoClient(system.store_uri)
    try:
        await mongo.mqchat.users.update_one({"email": account.email}, {"$set": {"active": 0}})
    finally:
        await mongo.close()
    assert await refused(user_client(system, account))
    assert (await api.get("/api/auth/me", headers=account.headers)).status_code == 401


FANOUT_MESSAGES = 3000


async def test_subscription_churn_loses_no_fan_out(system: System, api: httpx.AsyncClient, admin: Account) -> None:
    """amqtt walked its live subscription tables while awaiting each delivery's ACL check (issue 24, item 1).

    One user subscribing and unsubscribing new filters ("dictionary changed size during
    iteration": the rest of a message's fan-out dropped) and clean sessions leaving (the
    subscriber list shifted under the loop: the next subscriber skipped) made watchers
    lose PUBACKed messages.
    """
    alice, bob = await signup(api), await signup(api)
    inbox = topics.user_inbox(alice.id)
    seen: dict[str, set[int]] = {"alice": set(), "admin": set()}

    async def count(client: aiomqtt.Client, name: str) -> None:
        async for message in client.messages:
            seen[name].add(payload(message)["n"])

    async with contextlib.AsyncExitStack() as stack:
        leaving = []
        for n in range(30):  # subscribed ahead of the watchers; they leave during the burst
            client = await stack.enter_async_context(user_client(system, alice, f"leaving{n}"))
            assert granted(await client.subscribe(inbox, qos=1))
            leaving.append(client)
        watcher = await stack.enter_async_context(user_client(system, alice, "watcher"))
        assert granted(await watcher.subscribe(inbox, qos=1))
        admin_watcher = await stack.enter_async_context(user_client(system, admin, "watcher"))
        assert granted(await admin_watcher.subscribe(f"chat/users/{alice.id}/+", qos=1))  # a filter after the inbox's
        churner = await stack.enter_async_context(user_client(system, bob, "churn"))
        service = await stack.enter_async_context(service_client(system))
        service.pending_calls_threshold = 1000
        readers = [asyncio.create_task(count(watcher, "alice")), asyncio.create_task(count(admin_watcher, "admin"))]
        bursting = True

        async def churn_subscriptions() -> None:
            while bursting:
                presence = topics.user_presence(secrets.token_hex(12))
                await churner.subscribe(presence, qos=1)
                await churner.unsubscribe(presence)

        async def churn_sessions() -> None:
            for client in leaving:
                if bursting:
                    await client.__aexit__(None, None, None)
                    await asyncio.sleep(0.1)

        churn = [asyncio.create_task(churn_subscriptions()), asyncio.create_task(churn_sessions())]
        for start in range(0, FANOUT_MESSAGES, 100):
            burst = (service.publish(inbox, json.dumps({"type": "probe", "n": n}), qos=1) for n in range(start, start + 100))
            await asyncio.gather(*burst)  # each PUBACKed
        bursting = False
        await asyncio.gather(*churn)
        # PUBACK means queued for fan-out: on a busy machine the broker may still be delivering.
        # Wait while anything still arrives; stop after 10 s without progress.
        arrived, idle = -1, 0.0
        while idle < 10 and arrived < 2 * FANOUT_MESSAGES:
            now = sum(len(numbers) for numbers in seen.values())
            idle = idle + 0.2 if now == arrived else 0.0
            arrived = now
            await asyncio.sleep(0.2)
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    assert {name: FANOUT_MESSAGES - len(numbers) for name, numbers in seen.items()} == {"alice": 0, "admin": 0}
