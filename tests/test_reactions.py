"""Reactions over MQTT (`outbox/react`) and REST, on both brokers: counts, who, events, limits, bad input."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from core import topics
from tests.conftest import EVERY_BROKER
from tests.support import Account, System, device, open_conversation, signup

pytestmark = EVERY_BROKER

EMOJI = ["👍", "❤️", "😂", "😮", "😢", "🙏", "🎉", "🔥", "👏", "🤔", "👀", "✅", "💯", "🚀", "😍", "🙌", "🤝", "🇫🇷", "1️⃣", "👨‍👩‍👧"]


def react_payload(message_id: Any, emoji: Any, on: Any = True) -> bytes:
    return json.dumps({"message_id": message_id, "emoji": emoji, "on": on}).encode()


async def post_message(api: httpx.AsyncClient, author: Account, cid: str, body: str = "hello") -> dict[str, Any]:
    response = await api.post(f"/api/conversations/{cid}/messages", json={"body": body}, headers=author.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def reactions_in_history(api: httpx.AsyncClient, viewer: Account, cid: str, message_id: str) -> list[dict[str, Any]]:
    page = (await api.get(f"/api/conversations/{cid}/messages", headers=viewer.headers)).json()["items"]
    return next(m for m in page if m["id"] == message_id)["reactions"]


async def test_reactions_over_mqtt_and_rest_reach_every_member_with_counts_and_who(
    system: System, api: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    carol = await signup(api)  # an outsider
    cid = (await open_conversation(api, alice, bob))["id"]
    message = await post_message(api, alice, cid)
    mid = message["id"]
    assert message["reactions"] == []
    async with device(system, alice, "web", f"chat/conversations/{cid}/messages") as alice_web, device(system, bob) as bob_web, \
            device(system, carol) as carol_web:  # fmt: skip
        await bob_web.client.publish(topics.user_outbox(bob.id, "react"), react_payload(mid, "👍"), qos=1)
        [event] = await alice_web.wait_for(1, "message.reactions", topics.user_inbox(alice.id))
        assert event == {"type": "message.reactions", "conversation_id": cid, "message_id": mid, "user_id": bob.id,
                         "emoji": "👍", "on": True, "reactions": [{"emoji": "👍", "count": 1, "user_ids": [bob.id]}]}  # fmt: skip
        await alice_web.wait_for(1, "message.reactions", topics.conversation(cid, "messages"))
        await bob_web.wait_for(1, "message.reactions")

        both = await api.post(f"/api/messages/{mid}/reactions", json={"emoji": "👍"}, headers=alice.headers)
        assert both.status_code == 200
        assert both.json() == {"message_id": mid, "conversation_id": cid,
                               "reactions": [{"emoji": "👍", "count": 2, "user_ids": [bob.id, alice.id]}]}  # fmt: skip
        again = await api.post(f"/api/messages/{mid}/reactions", json={"emoji": "👍", "on": True}, headers=alice.headers)
        assert again.json() == both.json(), "one reaction per user per emoji"
        await bob_web.client.publish(topics.user_outbox(bob.id, "react"), react_payload(mid, "❤️"), qos=1)
        await bob_web.wait_for(3, "message.reactions")  # before the next: two bridge workers (NATS) may take them in either order
        await bob_web.client.publish(topics.user_outbox(bob.id, "react"), react_payload(mid, "👍", on=False), qos=1)
        *_, last = await bob_web.wait_for(4, "message.reactions")
        assert last["on"] is False and last["reactions"] == [
            {"emoji": "👍", "count": 1, "user_ids": [alice.id]}, {"emoji": "❤️", "count": 1, "user_ids": [bob.id]}
        ]

        # an outsider learns nothing and changes nothing, over either door
        await carol_web.client.publish(topics.user_outbox(carol.id, "react"), react_payload(mid, "😂"), qos=1)
        [refused] = await carol_web.wait_for(1, "error")
        assert refused["action"] == "react" and refused["error"]["code"] == "not_found"
        outsider = await api.post(f"/api/messages/{mid}/reactions", json={"emoji": "😂"}, headers=carol.headers)
        assert outsider.status_code == 404
        # bad input over MQTT: each refused with an error event to the sender, nothing stored
        bad = [react_payload({"$gt": ""}, "👍"), react_payload(mid, {"$set": 1}), react_payload(mid, "👍", on="yes"),
               react_payload(mid, "ab"), react_payload(mid, "👍👍"), react_payload(mid, "$inc"), react_payload(mid, "x" * 65),
               react_payload("0" * 24, "👍"), b"{not json", json.dumps({"message_id": mid, "emoji": "👍", "extra": 1}).encode()]  # fmt: skip
        for n, raw in enumerate(bad, start=1):  # one at a time: with two bridge workers (NATS) answers may cross
            await bob_web.client.publish(topics.user_outbox(bob.id, "react"), raw, qos=1)
            errors = await bob_web.wait_for(n, "error")
        assert [e["error"]["code"] for e in errors] == ["invalid_input"] * 7 + ["not_found", "invalid_input", "invalid_input"]
        assert len(alice_web.events("message.reactions", topics.user_inbox(alice.id))) == 4, "refusals announce nothing"
    assert await reactions_in_history(api, bob, cid, mid) == last["reactions"]


async def test_concurrent_reactions_all_count_and_limits_hold(system: System, api: httpx.AsyncClient, alice: Account) -> None:
    members = await asyncio.gather(*(signup(api) for _ in range(8)))
    cid = (await open_conversation(api, alice, *members, kind="group", title="launch"))["id"]
    mid = (await post_message(api, alice, cid, "we shipped"))["id"]

    async def react(account: Account, emoji: str, on: bool = True) -> httpx.Response:
        return await api.post(f"/api/messages/{mid}/reactions", json={"emoji": emoji, "on": on}, headers=account.headers)

    answers = await asyncio.gather(*(react(member, "🎉") for member in members))
    assert all(answer.status_code == 200 for answer in answers)
    [party] = await reactions_in_history(api, alice, cid, mid)
    assert party["count"] == 8 and sorted(party["user_ids"]) == sorted(m.id for m in members)

    # at most MQCHAT_REACTIONS_PER_MESSAGE (20) different emoji; existing ones stay open to everybody
    for emoji in EMOJI[:19]:
        if emoji != "🎉":
            assert (await react(alice, emoji)).status_code == 200, emoji
    assert (await react(alice, EMOJI[19])).status_code == 200
    too_many = await react(members[0], "🐙")
    assert too_many.status_code == 409 and too_many.json()["error"]["code"] == "conflict"
    assert (await react(members[0], "👍")).status_code == 200, "an emoji already there can still be added"
    shown = await reactions_in_history(api, alice, cid, mid)
    assert len(shown) == 20 and "🐙" not in {r["emoji"] for r in shown}

    for body, status in [({"emoji": ""}, 400), ({"emoji": "a"}, 400), ({"emoji": "🎉", "on": 1}, 400), ({"emoji": "🎉", "extra": 1}, 400),
                         ({"emoji": {"$ne": 1}}, 400), ({"emoji": "x" * 1000}, 400)]:  # fmt: skip
        response = await api.post(f"/api/messages/{mid}/reactions", json=body, headers=alice.headers)
        assert response.status_code == status and response.json()["error"]["code"] == "invalid_input", body
    for unknown in ["0" * 24, "not-an-id"]:
        response = await api.post(f"/api/messages/{unknown}/reactions", json={"emoji": "👍"}, headers=alice.headers)
        assert response.status_code == 404
    assert await reactions_in_history(api, alice, cid, mid) == shown, "nothing stored by refused requests"

    # a deleted message loses its reactions and takes no new ones
    assert (await api.delete(f"/api/messages/{mid}", headers=alice.headers)).status_code == 200
    assert await reactions_in_history(api, alice, cid, mid) == []
    assert (await react(members[1], "🎉")).status_code == 409
