"""Blocking over REST, enforced on MQTT and REST writes on both brokers; staff cannot be blocked."""

from __future__ import annotations

import asyncio
import json

import httpx

from core import topics
from tests.conftest import EVERY_BROKER
from tests.support import Account, System, create_staff, device, open_conversation, signup

pytestmark = EVERY_BROKER


async def send(api: httpx.AsyncClient, author: Account, cid: str, body: str = "hi") -> httpx.Response:
    return await api.post(f"/api/conversations/{cid}/messages", json={"body": body}, headers=author.headers)


async def test_a_blocked_user_can_no_longer_reach_the_blocker(system: System, api: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    carol = await signup(api)
    direct = (await open_conversation(api, alice, bob))["id"]
    group = (await open_conversation(api, alice, bob, carol, kind="group", title="book club"))["id"]
    mid = (await send(api, alice, direct, "before")).json()["id"]

    blocked = await api.post("/api/blocks", json={"user_id": bob.id}, headers=alice.headers)
    assert blocked.status_code == 201 and blocked.json()["user_id"] == bob.id and blocked.json()["enforced"] is True
    again = await api.post("/api/blocks", json={"user_id": bob.id}, headers=alice.headers)
    assert again.status_code == 200 and again.json() == blocked.json()
    assert [b["user_id"] for b in (await api.get("/api/blocks", headers=alice.headers)).json()["items"]] == [bob.id]
    assert (await api.get("/api/blocks", headers=bob.headers)).json()["items"] == [], "each sees only their own blocks"

    async with device(system, alice) as alice_web, device(system, bob) as bob_web:
        outbox = topics.user_outbox(bob.id, "send")
        await bob_web.client.publish(outbox, json.dumps({"conversation_id": direct, "client_msg_id": "b-1", "body": "hey"}).encode(), qos=1)
        await bob_web.client.publish(topics.user_outbox(bob.id, "react"), json.dumps({"message_id": mid, "emoji": "👍"}).encode(), qos=1)
        await bob_web.client.publish(topics.user_outbox(bob.id, "typing"), json.dumps({"conversation_id": direct, "typing": True}).encode(), qos=1)
        errors = {e["action"]: e for e in await bob_web.wait_for(3, "error")}  # in any order with two bridge workers (NATS)
        assert {action: e["error"]["code"] for action, e in errors.items()} == {"send": "forbidden", "react": "forbidden", "typing": "forbidden"}
        assert errors["send"]["client_msg_id"] == "b-1" and "does not accept" in errors["send"]["error"]["message"]
        # groups are not affected: bob still talks to the book club
        await bob_web.client.publish(outbox, json.dumps({"conversation_id": group, "client_msg_id": "b-2", "body": "chapter 3?"}).encode(), qos=1)
        [created] = await alice_web.wait_for(1, "message.created")
        assert created["message"]["conversation_id"] == group
        assert alice_web.events("message.reactions") == [] and len(alice_web.events("message.created")) == 1

    refused = await send(api, bob, direct)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert (await send(api, alice, direct)).status_code == 403, "like WhatsApp: unblock to write to them"
    for creator, other in ((bob, alice), (alice, bob)):
        opened = await api.post("/api/conversations", json={"participant_ids": [other.id]}, headers=creator.headers)
        assert opened.status_code == 403, "no new direct conversation either way"
    history = (await api.get(f"/api/conversations/{direct}/messages", headers=alice.headers)).json()["items"]
    assert [m["body"] for m in history] == ["before"] and history[0]["reactions"] == []

    assert (await api.delete(f"/api/blocks/{bob.id}", headers=alice.headers)).status_code == 204
    assert (await api.delete(f"/api/blocks/{bob.id}", headers=alice.headers)).status_code == 404
    assert (await send(api, bob, direct, "sorry")).status_code == 201


async def test_staff_blocks_are_recorded_not_enforced_and_bad_input_is_refused(
    system: System, api: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    agent = await create_staff(system, api, "agent")
    cid = (await open_conversation(api, agent, alice, context={"type": "order", "id": "o-77", "title": "Order 77"}))["id"]
    recorded = await api.post("/api/blocks", json={"user_id": agent.id}, headers=alice.headers)
    assert recorded.status_code == 201 and recorded.json()["enforced"] is False
    assert (await send(api, agent, cid, "your parcel left")).status_code == 201, "a shop can still reach its customer"
    assert (await send(api, alice, cid, "thanks")).status_code == 201

    listed = (await api.get("/api/admin/blocks", headers=admin.headers)).json()["items"]
    assert {"blocker_id": alice.id, "blocked_id": agent.id, "enforced": False} in [
        {k: b[k] for k in ("blocker_id", "blocked_id", "enforced")} for b in listed
    ]
    assert (await api.get("/api/admin/blocks", headers=alice.headers)).status_code == 403
    assert (await api.get("/api/admin/blocks")).status_code == 401

    for body, status in [({"user_id": alice.id}, 400), ({"user_id": "0" * 24}, 404), ({"user_id": {"$ne": ""}}, 400),
                         ({"user_id": "x"}, 400), ({}, 400), ({"user_id": agent.id, "extra": 1}, 400)]:  # fmt: skip
        response = await api.post("/api/blocks", json=body, headers=alice.headers)
        assert response.status_code == status, (body, response.text)
    assert (await api.delete("/api/blocks/not-an-id", headers=alice.headers)).status_code == 404
    assert (await api.post("/api/blocks", json={"user_id": agent.id})).status_code == 401
    assert [b["user_id"] for b in (await api.get("/api/blocks", headers=alice.headers)).json()["items"]] == [agent.id]


async def block_holds_for_the_next_mqtt_messages(system: System, api: httpx.AsyncClient, rounds: int = 1, pace: float = 0.0) -> None:
    """Bob writes to alice over MQTT (the bridge now keeps the conversation and who may write in it), alice
    blocks him over REST: his next messages are refused; she unblocks him: they pass. `rounds` messages
    per step, so that with several bridge workers each of them has served the conversation, `pace`
    seconds apart (within a low send rate limit)."""
    alice, bob = await signup(api), await signup(api)
    direct = (await open_conversation(api, alice, bob))["id"]
    async with device(system, alice) as alice_web, device(system, bob) as bob_web:

        async def send_over_mqtt(step: str) -> list[str]:
            sent = [f"{step}-{n}" for n in range(rounds)]
            for client_msg_id in sent:
                request = {"conversation_id": direct, "client_msg_id": client_msg_id, "body": client_msg_id}
                await bob_web.client.publish(topics.user_outbox(bob.id, "send"), json.dumps(request).encode(), qos=1)
                await asyncio.sleep(pace)
            return sent

        before = await send_over_mqtt("before")
        await alice_web.wait_for(rounds, "message.created")
        assert (await api.post("/api/blocks", json={"user_id": bob.id}, headers=alice.headers)).status_code == 201
        blocked = await send_over_mqtt("blocked")
        errors = await bob_web.wait_for(rounds, "error")
        assert sorted((e["client_msg_id"], e["error"]["code"]) for e in errors) == [(m, "forbidden") for m in blocked]
        assert (await api.delete(f"/api/blocks/{bob.id}", headers=alice.headers)).status_code == 204
        after = await send_over_mqtt("after")
        created = await alice_web.wait_for(2 * rounds, "message.created")
        assert sorted(e["message"]["client_msg_id"] for e in created) == sorted(before + after)
    history = (await api.get(f"/api/conversations/{direct}/messages", headers=alice.headers)).json()["items"]
    assert sorted(m["body"] for m in history) == sorted(before + after), "nothing of the blocked stretch was stored"


async def test_a_block_made_over_rest_holds_for_the_bridge_at_once(system: System, api: httpx.AsyncClient) -> None:
    await block_holds_for_the_next_mqtt_messages(system, api)
