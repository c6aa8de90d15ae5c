"""The bridge killed with SIGKILL in the middle of a burst loses nothing and duplicates nothing."""

from __future__ import annotations

import asyncio
import json

import httpx
from pymongo import AsyncMongoClient

from core import topics
from tests.support import (
    System,
    open_conversation,
    signup,
    spawn_component,
    user_client,
)

BURST = 2000


async def test_sigkill_during_burst_loses_and_duplicates_nothing(split_system: tuple[System, dict]) -> None:
    system, processes = split_system
    async with httpx.AsyncClient(base_url=system.api_url, timeout=30) as api:
        alice, bob = await signup(api), await signup(api)
        cid = (await open_conversation(api, alice, bob))["id"]

        async with user_client(system, alice, "burst") as client:
            async def burst() -> None:
                for n in range(BURST):
                    request = {"conversation_id": cid, "client_msg_id": f"burst-{n}", "body": f"message {n}"}
                    await client.publish(topics.user_outbox(alice.id, "send"), json.dumps(request), qos=1)

            sending = asyncio.create_task(burst())
            mongo: AsyncMongoClient = AsyncMongoClient(system.store_uri_from_file())
            try:
                while await mongo.mqchat.messages.count_documents({"conversation_id": cid}) < BURST // 4:
                    await asyncio.sleep(0.05)
                processes["bridge"].kill()  # SIGKILL mid-burst
                processes["bridge"].wait()
                killed_at = await mongo.mqchat.messages.count_documents({"conversation_id": cid})
                await sending
                processes["bridge"] = spawn_component(system, "bridge")
                for _ in range(600):
                    if await mongo.mqchat.messages.count_documents({"conversation_id": cid}) >= BURST:
                        break
                    await asyncio.sleep(0.1)
                await asyncio.sleep(1.0)  # anything still redelivered must be absorbed, not stored twice
                stored = await mongo.mqchat.messages.find({"conversation_id": cid}).sort("seq", 1).to_list()
            finally:
                await mongo.close()

    assert 0 < killed_at < BURST, "the bridge was killed in the middle of the burst"
    assert len(stored) == BURST
    assert [m["seq"] for m in stored] == list(range(1, BURST + 1))
    assert sorted(m["client_msg_id"] for m in stored) == sorted(f"burst-{n}" for n in range(BURST))
    assert [m["client_msg_id"] for m in stored] == [f"burst-{n}" for n in range(BURST)], "order kept"


async def test_presence_survives_bridge_restarts(split_system: tuple[System, dict]) -> None:
    from tests.support import crashable_device, device

    system, processes = split_system
    async with httpx.AsyncClient(base_url=system.api_url, timeout=30) as api:
        alice, bob = await signup(api), await signup(api)

        async def presence_of(user_id: str) -> str:
            return (await api.get(f"/api/users/{user_id}", headers=bob.headers)).json()["presence"]["status"]

        phone = await crashable_device(system, alice, "phone")
        async with device(system, bob, "web", topics.user_presence(alice.id)) as watcher:
            await watcher.wait_for(1, topic=topics.user_presence(alice.id))
        assert await presence_of(alice.id) == "online"

        # the bridge dies and comes back: alice is still online (rebuilt from retained device states)
        processes["bridge"].kill()
        processes["bridge"].wait()
        processes["bridge"] = spawn_component(system, "bridge")
        await asyncio.sleep(4)  # longer than the bridge's settle time before it reconciles
        assert await presence_of(alice.id) == "online"

        # the phone crashes while the bridge is down: the restarted bridge marks alice offline
        processes["bridge"].kill()
        processes["bridge"].wait()
        phone.kill()
        await phone.wait()
        processes["bridge"] = spawn_component(system, "bridge")
        async with device(system, bob, "web2", topics.user_presence(alice.id)) as watcher:
            for _ in range(100):
                states = [e["status"] for e in watcher.events(topic=topics.user_presence(alice.id))]
                if states and states[-1] == "offline":
                    break
                await asyncio.sleep(0.1)
        assert states[-1] == "offline"
        assert await presence_of(alice.id) == "offline"
