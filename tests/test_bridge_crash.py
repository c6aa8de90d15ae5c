"""The bridge killed with SIGKILL in the middle of a burst loses nothing, duplicates nothing, and
recipients still get every message live (issue 24, item 5)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient

from core import topics
from tests.support import (
    Inbox,
    System,
    create_staff,
    device,
    kill_bridge_as_stored,
    logged_events,
    open_conversation,
    signup,
    spawn_component,
    user_client,
    wait_stored,
)

BURST = 2000  # long enough that each kill lands mid-burst, with a batch stored and its events not yet published
KILLS_AT = (0.2, 0.45, 0.7)  # fractions of the burst stored when the bridge is SIGKILLed


@pytest.mark.timeout(400)  # three bridge restarts and a 2,000-message burst on a 2-core machine
async def test_sigkills_during_burst_lose_and_duplicate_nothing(split_system: tuple[System, dict]) -> None:
    """Killed right after storing a batch, the bridge has not yet published its events: the restarted
    bridge gets the requests again and must announce them to every member, not only to the sender."""
    system, processes = split_system
    async with httpx.AsyncClient(base_url=system.api_url, timeout=30) as api:
        alice, bob = await signup(api), await signup(api)
        cid = (await open_conversation(api, alice, bob))["id"]

        async with user_client(system, alice, "burst") as client, device(system, bob, "web") as bob_web:
            async def burst() -> None:
                for n in range(BURST):
                    request = {"conversation_id": cid, "client_msg_id": f"burst-{n}", "body": f"message {n}"}
                    await client.publish(topics.user_outbox(alice.id, "send"), json.dumps(request), qos=1)

            sending = asyncio.create_task(burst())
            mongo: AsyncMongoClient = AsyncMongoClient(system.store_uri_from_file())
            messages = mongo.mqchat.messages
            try:
                killed_at = await kill_bridge_as_stored(system, processes, messages, cid, BURST, KILLS_AT)
                await sending
                await wait_stored(messages, cid, BURST, timeout=60)
                for _ in range(300):  # every stored message must also reach bob live
                    if len(received_ids(bob_web)) >= BURST:
                        break
                    await asyncio.sleep(0.1)
                await asyncio.sleep(1.0)  # anything still redelivered must be absorbed, not stored twice
                stored = await messages.find({"conversation_id": cid}).sort("seq", 1).to_list()
            finally:
                await mongo.close()

    assert all(0 < count < BURST for count in killed_at), f"killed in the middle of the burst: {killed_at}"
    # each restarted bridge re-subscribed at once, its session's backlog queued: none timed out and reconnected
    # (the first may have tried before the broker listened: the deployment's processes start together)
    connected = logged_events(system, "bridge", "bridge.connected")
    assert [e for e in logged_events(system, "bridge", "bridge.disconnected") if e["ts"] > connected[0]["ts"]] == []
    assert len(connected) == 1 + len(KILLS_AT)
    assert len(stored) == BURST
    assert [m["seq"] for m in stored] == list(range(1, BURST + 1))
    assert [m["client_msg_id"] for m in stored] == [f"burst-{n}" for n in range(BURST)], "order kept"
    missed = {str(m["_id"]) for m in stored} - received_ids(bob_web)
    assert not missed, f"{len(missed)} stored messages never reached the recipient live"


def received_ids(inbox: Inbox) -> set[str]:
    """Ids of the messages announced to the inbox (clients de-duplicate by id)."""
    return {event["message"]["id"] for event in inbox.events("message.created")}


async def test_presence_survives_bridge_restarts(split_system: tuple[System, dict]) -> None:
    from tests.support import crashable_device

    system, processes = split_system
    async with httpx.AsyncClient(base_url=system.api_url, timeout=30) as api:
        alice, bob = await signup(api), await create_staff(system, api, "admin")  # bob also watches the desk
        carol = await create_staff(system, api, "agent")

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

        # the phone crashes while the bridge is down: the restarted bridge marks alice offline (from her Will);
        # carol, an agent the store shows online with no device left, is marked offline by the reconciliation,
        # and the desk hears that she no longer takes tickets
        processes["bridge"].kill()
        processes["bridge"].wait()
        phone.kill()
        await phone.wait()
        mongo: AsyncMongoClient = AsyncMongoClient(system.store_uri_from_file())
        try:
            await mongo.mqchat.users.update_one({"_id": ObjectId(carol.id)}, {"$set": {"presence_status": "online"}})
        finally:
            await mongo.close()
        async with device(system, bob, "web2", topics.user_presence(alice.id), topics.AGENT_TICKETS) as watcher:
            processes["bridge"] = spawn_component(system, "bridge")  # the desk listens before the bridge is back
            for _ in range(100):
                states = [e["status"] for e in watcher.events(topic=topics.user_presence(alice.id))]
                if states and states[-1] == "offline":
                    break
                await asyncio.sleep(0.1)
            assert states[-1] == "offline"
            desk = await watcher.wait_for(1, "agent.availability", topics.AGENT_TICKETS)
        assert desk[-1]["agent"] | {"username": None} == {
            "user_id": carol.id, "username": None, "availability": "online", "presence": "offline", "status": "offline"}
        assert await presence_of(alice.id) == "offline"
        assert await presence_of(carol.id) == "offline"
