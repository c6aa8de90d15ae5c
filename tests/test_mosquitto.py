"""Mosquitto as the production broker: its provisioned security, persistence, and scale-out bridge workers."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import httpx
import pytest
from pymongo import AsyncMongoClient

from bridge.affinity import worker_of
from core import topics
from tests.conftest import BROKERS
from tests.support import (
    System,
    collect,
    device,
    granted,
    healthy,
    mqtt_client,
    open_conversation,
    refused,
    service_client,
    signup,
    spawn_component,
    stored_up_to,
    user_client,
    wait_stored,
    wait_until,
)

assert "mosquitto" in BROKERS




async def test_provisioned_rights(mosquitto_system: System) -> None:
    system = mosquitto_system
    async with httpx.AsyncClient(base_url=system.api_url, timeout=30) as api:
        alice, bob = await signup(api), await signup(api)
        assert alice.mqtt_password != alice.token, "Mosquitto gets a derived broker password, not the JWT"
        assert await refused(mqtt_client(system, alice.id, "wrong", f"{alice.id}-x"))
        assert await refused(mqtt_client(system, alice.id, alice.token, f"{alice.id}-x"))
        assert await refused(mqtt_client(system, alice.id, bob.mqtt_password, f"{alice.id}-x"))

        async with user_client(system, alice) as client:
            assert granted(await client.subscribe(topics.user_inbox(alice.id), qos=1))
            assert granted(await client.subscribe(topics.user_presence(bob.id), qos=1))
            for forbidden in (topics.user_inbox(bob.id), "chat/#", "chat/presence/+", topics.AGENT_TICKETS,
                              topics.user_outbox(bob.id, "send"), topics.conversation("0" * 24, "messages")):  # fmt: skip
                assert not granted(await client.subscribe(forbidden, qos=1)), forbidden

        # a Will or a publish outside one's own outbox never reaches anyone
        async with service_client(system) as watcher:
            await watcher.subscribe("chat/#", qos=1)
            forged = aiomqtt.Will(topics.user_presence(bob.id), b'{"status": "online"}', qos=1)
            rogue = await asyncio.create_subprocess_exec(
                "python", "-c", _ROGUE, str(system.mqtt_port), alice.id, alice.mqtt_password, topics.user_presence(bob.id),
                stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            assert rogue.stdout is not None and await rogue.stdout.readline()
            rogue.kill()
            await rogue.wait()
            async with user_client(system, alice, "pub", will=forged) as client:
                await client.publish(topics.user_inbox(bob.id), b'{"type": "spoof"}', qos=1)
            seen = {m.topic.value for m in await collect(watcher, 1.5) if not m.retain}
        assert seen.isdisjoint({topics.user_presence(bob.id), topics.user_inbox(bob.id)}), seen


_ROGUE = """
import sys, time
import paho.mqtt.client as mqtt
port, user, password, will = sys.argv[1:5]
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=user + "-rogue", protocol=mqtt.MQTTv311)
c.username_pw_set(user, password)
c.will_set(will, b'{"status": "online"}', qos=1)
c.connect("127.0.0.1", int(port))
c.loop_start(); time.sleep(0.5); print("up", flush=True); time.sleep(60)
"""


async def test_admin_reads_everything_read_only(mosquitto_system: System) -> None:
    from tests.support import create_staff

    system = mosquitto_system
    async with httpx.AsyncClient(base_url=system.api_url, timeout=30) as api:
        admin, alice = await create_staff(system, api, "admin"), await signup(api)
        async with user_client(system, admin, "ops") as ops:
            assert granted(await ops.subscribe("chat/#", qos=1))
            async with user_client(system, alice) as client:
                await client.publish(topics.user_outbox(alice.id, "typing"), b'{"probe": 1}', qos=1)
            seen = {m.topic.value for m in await collect(ops, 2) if not m.retain}
            assert topics.user_outbox(alice.id, "typing") in seen
            async with user_client(system, alice, "inbox") as alice_inbox:
                await alice_inbox.subscribe(topics.user_inbox(alice.id), qos=1)
                await ops.publish(topics.user_inbox(alice.id), b'{"type": "spoof"}', qos=1)
                assert await collect(alice_inbox, 1) == []


async def test_queued_messages_survive_a_broker_restart(tmp_path: Path) -> None:
    system = System.on_free_ports(tmp_path / "data", broker="mosquitto")
    system.start()
    try:
        async with httpx.AsyncClient(base_url=system.api_url, timeout=30) as api:
            alice, bob = await signup(api), await signup(api)
            cid = (await open_conversation(api, alice, bob))["id"]
            async with device(system, bob, "phone", clean_session=False):
                pass
            for n in range(20):
                sent = await api.post(f"/api/conversations/{cid}/messages", json={"body": f"while away {n}"}, headers=alice.headers)
                assert sent.status_code == 201
            await asyncio.sleep(1.0)  # the events are queued for bob's phone

            system.stop_mosquitto()
            system.start_mosquitto()
            wait_until(lambda: healthy(system), 60, "services reconnected to the restarted broker")

            async with device(system, bob, "phone", clean_session=False) as phone:
                events = await phone.wait_for(20, "message.created", timeout=20)
            assert [e["message"]["seq"] for e in events] == list(range(1, 21))
            # and the system works on after the restart
            async with device(system, alice) as alice_web:
                request = {"conversation_id": cid, "client_msg_id": "after-restart", "body": "still here"}
                await alice_web.client.publish(topics.user_outbox(alice.id, "send"), json.dumps(request), qos=1)
                [ack] = await alice_web.wait_for(1, "message.created")
            assert ack["message"]["seq"] == 21
    finally:
        assert system.stop() == 0


BURST = 2000  # long enough that the worker is killed with requests in flight, queued and still to come


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[System, dict]]:
    """Mosquitto, the store, the API and two bridge workers as separate processes."""
    system = System.on_free_ports(tmp_path / "data", broker="mosquitto", MQCHAT_BRIDGE_WORKERS="2")
    system.start_mosquitto()
    processes = {"store": spawn_component(system, "store")}
    wait_until(lambda: (system.data_dir / "store.json").exists(), 30, "the store")
    processes["api"] = spawn_component(system, "api")
    for n in (1, 2):
        processes[f"worker-{n}"] = _worker(system, n)
    wait_until(lambda: healthy(system), 60, "the api")
    yield system, processes
    for process in processes.values():
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    system.stop_mosquitto()


def _worker(system: System, n: int):  # type: ignore[no-untyped-def]
    system.extra_env["MQCHAT_BRIDGE_INSTANCE"] = f"worker-{n}"
    try:
        return spawn_component(system, "bridge")
    finally:
        del system.extra_env["MQCHAT_BRIDGE_INSTANCE"]


async def test_two_workers_survive_a_sigkill_of_the_one_serving_a_burst(two_workers: tuple[System, dict]) -> None:
    system, processes = two_workers
    async with httpx.AsyncClient(base_url=system.api_url, timeout=30) as api:
        alice, bob = await signup(api), await signup(api)
        cid = (await open_conversation(api, alice, bob))["id"]
    mongo: AsyncMongoClient = AsyncMongoClient(system.store_uri_from_file())
    try:
        async with user_client(system, alice, "burst") as client:
            async def burst() -> None:
                for n in range(BURST):
                    request = {"conversation_id": cid, "client_msg_id": f"b{n}", "body": f"message {n}"}
                    await client.publish(topics.user_outbox(alice.id, "send"), json.dumps(request), qos=1)

            sending = asyncio.create_task(burst())
            while not await stored_up_to(mongo.mqchat.messages, cid, BURST // 3):
                await asyncio.sleep(0.05)
            owner = worker_of(cid, 2) + 1  # the worker that handles the conversation (bridge.affinity)
            processes[f"worker-{owner}"].kill()
            processes[f"worker-{owner}"].wait()
            killed_at = await mongo.mqchat.messages.count_documents({"conversation_id": cid})
            await sending
            processes[f"worker-{owner}"] = _worker(system, owner)
            await wait_stored(mongo.mqchat.messages, cid, BURST, timeout=90)
            await asyncio.sleep(1.5)
        stored = await mongo.mqchat.messages.find({"conversation_id": cid}).sort("seq", 1).to_list()
    finally:
        await mongo.close()
    assert 0 < killed_at < BURST
    assert len(stored) == BURST, "nothing lost, nothing duplicated"
    assert [m["seq"] for m in stored] == list(range(1, BURST + 1)), "seq contiguous"
    assert {m["client_msg_id"] for m in stored} == {f"b{n}" for n in range(BURST)}
    workers_log = "".join((system.data_dir.parent / f"{system.data_dir.name}-bridge.log").read_text())
    assert "worker-2" in workers_log and "worker-1" in workers_log
