"""Chat scenarios end to end: real broker, bridge, store and API; clients act like apps."""

from __future__ import annotations

import asyncio
import json

import httpx

from core import topics
from tests.support import Account, System, device, open_conversation, signup, user_client


def send_payload(conversation_id: str, client_msg_id: str, body: str, **extra: object) -> bytes:
    return json.dumps({"conversation_id": conversation_id, "client_msg_id": client_msg_id, "body": body, **extra}).encode()


async def test_two_users_chat_both_ways_over_mqtt_and_rest(system: System, api: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    conversation = await open_conversation(api, alice, bob, context={"type": "product", "id": "sku-1", "title": "Blue mug"})
    cid = conversation["id"]
    assert conversation["participant_ids"] == [alice.id, bob.id] and conversation["context"]["title"] == "Blue mug"
    again = await open_conversation(api, bob, alice, context={"type": "product", "id": "sku-1", "title": "Blue mug"})
    assert again["id"] == cid, "a direct conversation is unique per pair and context"
    other_context = await open_conversation(api, alice, bob, context={"type": "order", "id": "o-9", "title": "Order 9"})
    assert other_context["id"] != cid

    async with device(system, alice) as alice_web, device(system, bob, "phone", f"chat/conversations/{cid}/#") as bob_phone:
        await alice_web.client.publish(topics.user_outbox(alice.id, "send"), send_payload(cid, "a-1", "Is it in stock?"), qos=1)
        [ack] = await alice_web.wait_for(1, "message.created")
        [received] = await bob_phone.wait_for(1, "message.created", topics.user_inbox(bob.id))
        [on_topic] = await bob_phone.wait_for(1, "message.created", topics.conversation(cid, "messages"))
        assert ack["message"] == received["message"] == on_topic["message"]
        message = ack["message"]
        assert (message["seq"], message["sender_id"], message["client_msg_id"], message["body"]) == (1, alice.id, "a-1", "Is it in stock?")
        assert message["deleted"] is False and message["edited_at"] is None and message["attachments"] == []

        reply = await api.post(f"/api/conversations/{cid}/messages", json={"body": "Yes, 3 left", "client_msg_id": "b-1"}, headers=bob.headers)
        assert reply.status_code == 201 and reply.json()["seq"] == 2
        _, over_mqtt = await alice_web.wait_for(2, "message.created", topics.user_inbox(alice.id))
        assert over_mqtt["message"] == reply.json()

    history = await api.get(f"/api/conversations/{cid}/messages", headers=alice.headers)
    assert [m["body"] for m in history.json()["items"]] == ["Yes, 3 left", "Is it in stock?"]
    assert history.json()["next_before"] is None


async def test_group_of_three(system: System, api: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    carol = await signup(api, role="designer")
    async with device(system, bob) as bob_web, device(system, carol) as carol_web:
        conversation = await open_conversation(api, alice, bob, carol, kind="group", title="Custom design")
        cid = conversation["id"]
        for inbox in (bob_web, carol_web):
            [created] = await inbox.wait_for(1, "conversation.created")
            assert created["conversation"]["id"] == cid and created["conversation"]["title"] == "Custom design"
        async with device(system, alice) as alice_web:
            await alice_web.client.publish(topics.user_outbox(alice.id, "send"), send_payload(cid, "g-1", "hi all"), qos=1)
            await alice_web.wait_for(1, "message.created")
        for inbox in (bob_web, carol_web):
            [event] = await inbox.wait_for(1, "message.created")
            assert event["message"]["body"] == "hi all"
    listed = await api.get("/api/conversations", headers=carol.headers)
    item = next(c for c in listed.json()["items"] if c["id"] == cid)
    assert item["kind"] == "group" and item["unread_count"] == 1 and item["last_message"]["body"] == "hi all"


async def test_resends_store_one_message(system: System, api: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    cid = (await open_conversation(api, alice, bob))["id"]
    async with device(system, alice) as alice_web, device(system, bob) as bob_web:
        for _ in range(3):
            await alice_web.client.publish(topics.user_outbox(alice.id, "send"), send_payload(cid, "same-1", "once"), qos=1)
        acks = await alice_web.wait_for(3, "message.created")
        assert len({a["message"]["id"] for a in acks}) == 1
        rest = await api.post(f"/api/conversations/{cid}/messages", json={"body": "once", "client_msg_id": "same-1"}, headers=alice.headers)
        assert rest.status_code == 200 and rest.json()["id"] == acks[0]["message"]["id"]
        await asyncio.sleep(0.5)
        assert len(bob_web.events("message.created")) == 1, "recipients see a message once"
    history = await api.get(f"/api/conversations/{cid}/messages", headers=bob.headers)
    assert [m["client_msg_id"] for m in history.json()["items"]] == ["same-1"]
