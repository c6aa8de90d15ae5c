"""Fault injection: the store and the broker die and come back while clients work."""

from __future__ import annotations

import asyncio
import json
import os
import signal

import httpx
from pymongo import AsyncMongoClient

from core import topics
from tests.support import (
    System,
    device,
    healthy,
    open_conversation,
    signup,
    spawn_component,
    user_client,
    wait_until,
)

COUNT = 300


async def health(system: System) -> tuple[int, dict]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{system.api_url}/api/health")
    return response.status_code, response.json()


async def test_store_killed_and_restarted_while_clients_send(split_system: tuple[System, dict]) -> None:
    system, processes = split_system
    async with httpx.AsyncClient(base_url=system.api_url, timeout=30) as api:
        alice, bob = await signup(api), await signup(api)
        cid = (await open_conversation(api, alice, bob))["id"]
    mongo: AsyncMongoClient = AsyncMongoClient(system.store_uri_from_file(), serverSelectionTimeoutMS=1000)
    async with device(system, alice) as alice_web:
        async def send_all() -> None:
            for n in range(COUNT):
                request = {"conversation_id": cid, "client_msg_id": f"f{n}", "body": f"message {n}"}
                await alice_web.client.publish(topics.user_outbox(alice.id, "send"), json.dumps(request), qos=1)
                await asyncio.sleep(0.005)

        sending = asyncio.create_task(send_all())
        while await mongo.mqchat.messages.count_documents({"conversation_id": cid}) < 50:
            await asyncio.sleep(0.05)
        store_pid = json.loads((system.data_dir / "store.json").read_text())["pid"]
        os.kill(store_pid, signal.SIGKILL)  # the store (nx-27017) crashes mid-stream...
        processes["store"].kill()  # ...and so does the `mqchat store` process that ran it
        processes["store"].wait()
        status, body = await health(system)
        assert status == 503 and body["store"] == "unavailable" and body["broker"] == "ok"
        await sending  # the broker keeps accepting; the bridge stops acknowledging and retries
        await asyncio.sleep(1.0)
        processes["store"] = spawn_component(system, "store")
        wait_until(lambda: healthy(system), 60, "the store to come back")
        acks = await alice_web.wait_for(COUNT, "message.created", timeout=90)
    try:
        stored = await mongo.mqchat.messages.find({"conversation_id": cid}).sort("seq", 1).to_list()
    finally:
        await mongo.close()
    assert len(stored) == COUNT, "every accepted message stored exactly once"
    assert [m["seq"] for m in stored] == list(range(1, COUNT + 1))
    assert {m["client_msg_id"] for m in stored} == {f"f{n}" for n in range(COUNT)}
    assert {a["message"]["client_msg_id"] for a in acks} == {f"f{n}" for n in range(COUNT)}


async def test_broker_restart_services_reconnect_by_themselves(split_system: tuple[System, dict]) -> None:
    system, processes = split_system
    async with httpx.AsyncClient(base_url=system.api_url, timeout=30) as api:
        alice, bob = await signup(api), await signup(api)
        cid = (await open_conversation(api, alice, bob))["id"]
        processes["broker"].send_signal(signal.SIGTERM)
        processes["broker"].wait(30)
        status, body = await health(system)
        assert status == 503 and body["broker"] == "unavailable" and body["store"] == "ok"
        # REST keeps working for reads and writes (events wait for the broker or are caught up later)
        assert (await api.get(f"/api/conversations/{cid}/messages", headers=alice.headers)).status_code == 200

        processes["broker"] = spawn_component(system, "broker")
        wait_until(lambda: healthy(system), 60, "the broker to come back")
        async with device(system, bob) as bob_web:
            for _ in range(30):  # the bridge reconnects with backoff; the client resends until acked
                async with user_client(system, alice, "again") as client:
                    request = {"conversation_id": cid, "client_msg_id": "after-restart", "body": "back again"}
                    await client.publish(topics.user_outbox(alice.id, "send"), json.dumps(request), qos=1)
                if bob_web.events("message.created"):
                    break
                await asyncio.sleep(1.0)
            [event] = await bob_web.wait_for(1, "message.created", timeout=20)
        assert event["message"]["body"] == "back again"
        sent = await api.post(f"/api/conversations/{cid}/messages", json={"body": "over REST"}, headers=alice.headers)
        assert sent.status_code == 201 and sent.json()["seq"] == 2
