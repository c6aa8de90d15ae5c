"""Chat scenarios end to end: real broker, bridge, store and API; clients act like apps."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import httpx
from bson import ObjectId
from pymongo import AsyncMongoClient

from core import topics
from tests.conftest import EVERY_BROKER
from tests.support import (
    Account,
    System,
    device,
    granted,
    open_conversation,
    signup,
    user_client,
)

pytestmark = EVERY_BROKER


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


async def test_history_pages_both_directions(system: System, api: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    cid = (await open_conversation(api, alice, bob, context={"type": "order", "id": "hist", "title": "History"}))["id"]
    ids = []
    for n in range(1, 8):
        sender = alice if n % 2 else bob
        response = await api.post(f"/api/conversations/{cid}/messages", json={"body": f"m{n}"}, headers=sender.headers)
        assert response.status_code == 201 and response.json()["seq"] == n
        ids.append(response.json()["id"])
    unseen = (await api.get(f"/api/conversations/{cid}/messages", params={"before": ids[2]}, headers=alice.headers)).json()
    assert [m["seq"] for m in unseen["items"]] == [2, 1], "a cursor no page has shown yet is looked up"

    first = (await api.get(f"/api/conversations/{cid}/messages", params={"limit": 3}, headers=alice.headers)).json()
    assert [m["seq"] for m in first["items"]] == [7, 6, 5] and first["next_before"] == first["items"][-1]["id"]
    second = (await api.get(f"/api/conversations/{cid}/messages", params={"limit": 3, "before": first["next_before"]}, headers=alice.headers)).json()
    assert [m["seq"] for m in second["items"]] == [4, 3, 2]
    last = (await api.get(f"/api/conversations/{cid}/messages", params={"limit": 3, "before": second["next_before"]}, headers=alice.headers)).json()
    assert [m["seq"] for m in last["items"]] == [1] and last["next_before"] is None

    catch_up = (await api.get(f"/api/conversations/{cid}/messages", params={"after_seq": 4}, headers=bob.headers)).json()
    assert [m["seq"] for m in catch_up["items"]] == [5, 6, 7] and "next_before" not in catch_up
    limited = (await api.get(f"/api/conversations/{cid}/messages", params={"after_seq": 0, "limit": 2}, headers=bob.headers)).json()
    assert [m["seq"] for m in limited["items"]] == [1, 2]
    clamped = await api.get(f"/api/conversations/{cid}/messages", params={"limit": 5000}, headers=bob.headers)
    assert clamped.status_code == 200 and len(clamped.json()["items"]) == 7
    bad_cursor = await api.get(f"/api/conversations/{cid}/messages", params={"before": "0" * 24}, headers=bob.headers)
    assert bad_cursor.status_code == 400
    elsewhere = (await open_conversation(api, alice, bob, context={"type": "order", "id": "hist-2", "title": "Other"}))["id"]
    foreign = await api.get(f"/api/conversations/{elsewhere}/messages", params={"before": first["next_before"]}, headers=alice.headers)
    assert foreign.status_code == 400, "a cursor already paged past in another conversation is still refused"
    outsider = await signup(api)  # a non-member learns nothing, whatever the cursor
    for params in ({}, {"before": "0" * 24}, {"before": first["next_before"]}, {"after_seq": 0}):
        refused = await api.get(f"/api/conversations/{cid}/messages", params=params, headers=outsider.headers)
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found", params


async def test_unread_counts_and_receipts(system: System, api: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    cid = (await open_conversation(api, alice, bob, context={"type": "order", "id": "unread", "title": "Unread"}))["id"]
    sent = [
        (await api.post(f"/api/conversations/{cid}/messages", json={"body": f"u{n}"}, headers=alice.headers)).json()
        for n in range(3)
    ]
    unread = (await api.get("/api/unread", headers=bob.headers)).json()
    assert unread["by_conversation"][cid] == 3 and unread["total"] >= 3
    assert cid not in (await api.get("/api/unread", headers=alice.headers)).json()["by_conversation"], "own messages are read"

    async with device(system, alice, "web", f"chat/conversations/{cid}/receipts") as alice_web, device(system, bob) as bob_web:
        marked = await api.post(f"/api/conversations/{cid}/read", json={"message_id": sent[1]["id"]}, headers=bob.headers)
        assert marked.status_code == 200 and marked.json() == {"unread_count": 1}
        [receipt] = await alice_web.wait_for(1, "receipt.read", topics.user_inbox(alice.id))
        assert {k: receipt[k] for k in ("conversation_id", "user_id", "message_id", "seq")} == {
            "conversation_id": cid, "user_id": bob.id, "message_id": sent[1]["id"], "seq": 2,
        }
        assert receipt["at"].endswith("Z")
        await alice_web.wait_for(1, "receipt.read", topics.conversation(cid, "receipts"))

        # over MQTT, up to the last message; an older watermark afterwards changes nothing
        await bob_web.client.publish(topics.user_outbox(bob.id, "read"), json.dumps({"conversation_id": cid, "message_id": sent[2]["id"]}), qos=1)
        await alice_web.wait_for(2, "receipt.read", topics.user_inbox(alice.id))
        await bob_web.client.publish(topics.user_outbox(bob.id, "read"), json.dumps({"conversation_id": cid, "message_id": sent[0]["id"]}), qos=1)
        await asyncio.sleep(0.5)
        assert len(alice_web.events("receipt.read", topics.user_inbox(alice.id))) == 2
        assert bob_web.events("receipt.read") == [], "readers do not get their own receipts"

    assert cid not in (await api.get("/api/unread", headers=bob.headers)).json()["by_conversation"]
    history = (await api.get(f"/api/conversations/{cid}/messages", headers=alice.headers)).json()["items"]
    assert all(m["read_by"] == [bob.id] for m in history)


async def test_unread_counts_stop_at_the_cap(system: System, api: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    cid = (await open_conversation(api, alice, bob, context={"type": "order", "id": "flood", "title": "Flood"}))["id"]
    first = (await api.post(f"/api/conversations/{cid}/messages", json={"body": "m1"}, headers=alice.headers)).json()
    mongo: AsyncMongoClient = AsyncMongoClient(system.store_uri, tz_aware=True)
    try:  # 1,004 more unread messages, stored as the bridge stores them
        template = await mongo.mqchat.messages.find_one({"_id": ObjectId(first["id"])})
        copies = [{**template, "_id": ObjectId(), "seq": n, "client_msg_id": f"flood-{n}"} for n in range(2, 1006)]
        await mongo.mqchat.messages.insert_many(copies)
    finally:
        await mongo.close()
    assert (await api.get("/api/unread", headers=bob.headers)).json()["by_conversation"][cid] == 1000
    [listed] = [c for c in (await api.get("/api/conversations", headers=bob.headers)).json()["items"] if c["id"] == cid]
    assert listed["unread_count"] == 1000 and listed["last_message"]["seq"] == 1005
    middle = str(copies[-11]["_id"])  # seq 995: ten messages remain unread, counted exactly
    marked = await api.post(f"/api/conversations/{cid}/read", json={"message_id": middle}, headers=bob.headers)
    assert marked.json() == {"unread_count": 10}


async def test_a_burst_over_several_conversations_resolves_taken_seqs_and_resends(
    system: System, api: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    """One bridge batch spans conversations: a seq taken behind the record in one and resent requests among new ones
    in another must neither reorder, renumber nor lose anything in the others."""
    a, b, c = [(await open_conversation(api, alice, bob, context={"type": "order", "id": f"burst-{n}", "title": n}))["id"] for n in "abc"]
    first_b = (await api.post(f"/api/conversations/{b}/messages", json={"body": "b0"}, headers=alice.headers)).json()
    stored_c = [
        (await api.post(f"/api/conversations/{c}/messages", json={"body": body, "client_msg_id": key}, headers=alice.headers)).json()
        for key, body in (("c-dup", "c0"), ("c-dup2", "c0b"))
    ]
    mongo: AsyncMongoClient = AsyncMongoClient(system.store_uri, tz_aware=True)
    try:  # another writer took b's seq 2 without moving the conversation's last_seq
        template = await mongo.mqchat.messages.find_one({"_id": ObjectId(first_b["id"])})
        await mongo.mqchat.messages.insert_one({**template, "_id": ObjectId(), "seq": 2, "client_msg_id": "elsewhere", "body": "b-other"})
    finally:
        await mongo.close()

    burst = [(a, "a-1", "a1"), (b, "b-1", "b1"), (c, "c-dup", "c0 again"), (c, "c-1", "c1"), (c, "c-dup2", "c0b again"),
             (a, "a-2", "a2"), (b, "b-2", "b2"), (c, "c-2", "c2")]  # fmt: skip
    async with device(system, alice) as alice_web:
        outbox = topics.user_outbox(alice.id, "send")
        await asyncio.gather(*(alice_web.client.publish(outbox, send_payload(cid, key, body), qos=1) for cid, key, body in burst))
        acks = {e["message"]["client_msg_id"]: e["message"] for e in await alice_web.wait_for(len(burst), "message.created")}

    assert [acks["c-dup"], acks["c-dup2"]] == [{**stored, "read_by": []} for stored in stored_c], "a resent request gets the original"
    seqs = {key: acks[key]["seq"] for key in ("a-1", "a-2", "b-1", "b-2", "c-1", "c-2")}
    one_worker = system.bridge_workers == 1
    if one_worker:
        assert seqs == {"a-1": 1, "a-2": 2, "b-1": 3, "b-2": 4, "c-1": 3, "c-2": 4}
    else:  # requests published at once may be stored by either worker first (docs/broker.md): numbered, not ordered
        assert {seqs["a-1"], seqs["a-2"]} == {1, 2} and {seqs["b-1"], seqs["b-2"]} == {3, 4} and {seqs["c-1"], seqs["c-2"]} == {3, 4}
    for cid, bodies in ((a, ["a1", "a2"]), (b, ["b0", "b-other", "b1", "b2"]), (c, ["c0", "c0b", "c1", "c2"])):
        page = (await api.get(f"/api/conversations/{cid}/messages", params={"after_seq": 0}, headers=bob.headers)).json()["items"]
        assert [m["seq"] for m in page] == list(range(1, len(bodies) + 1))
        stored = [m["body"] for m in page]
        assert stored == bodies if one_worker else sorted(stored) == sorted(bodies)
    listed = {item["id"]: item for item in (await api.get("/api/conversations", headers=bob.headers)).json()["items"]}
    assert [listed[cid]["last_message"]["seq"] for cid in (a, b, c)] == [2, 4, 4]


async def test_edit_and_delete_rules(system: System, api: httpx.AsyncClient, alice: Account, bob: Account, admin: Account) -> None:
    cid = (await open_conversation(api, alice, bob, context={"type": "listing", "id": "edit", "title": "Edit"}))["id"]
    first = (await api.post(f"/api/conversations/{cid}/messages", json={"body": "helo"}, headers=alice.headers)).json()
    second = (await api.post(f"/api/conversations/{cid}/messages", json={"body": "old"}, headers=alice.headers)).json()

    async with device(system, bob) as bob_web, device(system, alice) as alice_web:
        assert (await api.patch(f"/api/messages/{first['id']}", json={"body": "hacked"}, headers=bob.headers)).status_code == 403
        edited = await api.patch(f"/api/messages/{first['id']}", json={"body": "hello"}, headers=alice.headers)
        assert edited.status_code == 200 and edited.json()["body"] == "hello" and edited.json()["edited_at"]
        [update] = await bob_web.wait_for(1, "message.updated")
        assert update["message"]["body"] == "hello" and update["message"]["seq"] == first["seq"]

        await alice_web.client.publish(topics.user_outbox(alice.id, "edit"), json.dumps({"message_id": first["id"], "body": "hello!"}), qos=1)
        await bob_web.wait_for(2, "message.updated")

        assert (await api.delete(f"/api/messages/{first['id']}", headers=bob.headers)).status_code == 403
        deleted = await api.delete(f"/api/messages/{first['id']}", headers=alice.headers)
        assert deleted.status_code == 200
        assert (deleted.json()["deleted"], deleted.json()["body"], deleted.json()["id"]) == (True, "", first["id"])
        [tombstone] = await bob_web.wait_for(1, "message.deleted")
        assert tombstone["message"]["deleted"] is True and tombstone["message"]["body"] == ""
        assert (await api.patch(f"/api/messages/{first['id']}", json={"body": "back"}, headers=alice.headers)).status_code == 409

        # an admin may delete anyone's message, even outside the conversation
        assert (await api.delete(f"/api/messages/{second['id']}", headers=admin.headers)).status_code == 200
        await bob_web.wait_for(2, "message.deleted")

    # the edit window: a message older than the window can no longer be edited
    third = (await api.post(f"/api/conversations/{cid}/messages", json={"body": "late"}, headers=alice.headers)).json()
    mongo: AsyncMongoClient = AsyncMongoClient(system.store_uri, tz_aware=True)
    try:
        stored = await mongo.mqchat.messages.find_one({"_id": ObjectId(third["id"])})
        stored["created_at"] = stored["created_at"] - timedelta(minutes=16)
        await mongo.mqchat.messages.replace_one({"_id": stored["_id"]}, stored)
    finally:
        await mongo.close()
    late = await api.patch(f"/api/messages/{third['id']}", json={"body": "too late"}, headers=alice.headers)
    assert late.status_code == 403 and "window" in late.json()["error"]["message"]

    history = (await api.get(f"/api/conversations/{cid}/messages", headers=bob.headers)).json()["items"]
    assert [(m["seq"], m["deleted"], m["body"]) for m in history] == [(3, False, "late"), (2, True, ""), (1, True, "")]


async def test_typing_reaches_members_only(system: System, api: httpx.AsyncClient, alice: Account, bob: Account, admin: Account) -> None:
    outsider = await signup(api)
    cid = (await open_conversation(api, alice, bob, context={"type": "product", "id": "typing", "title": "Typing"}))["id"]
    typing_topic = topics.conversation(cid, "typing")
    async with device(system, bob, "web", typing_topic) as bob_web, device(system, outsider) as spy:
        assert not granted(await spy.client.subscribe(typing_topic, qos=0))
        async with user_client(system, alice) as alice_client:
            await alice_client.publish(topics.user_outbox(alice.id, "typing"), json.dumps({"conversation_id": cid, "typing": True}), qos=0)
            # an outsider's typing in someone else's conversation is refused with an error event
            await spy.client.publish(topics.user_outbox(outsider.id, "typing"), json.dumps({"conversation_id": cid, "typing": True}), qos=0)
            [indicator] = await bob_web.wait_for(1, topic=typing_topic)
            assert indicator["user_id"] == alice.id and indicator["typing"] is True and indicator["at"].endswith("Z")
            [refusal] = await spy.wait_for(1, "error")
            assert refusal["action"] == "typing" and refusal["error"]["code"] == "not_found"
        await asyncio.sleep(0.3)
        assert len(bob_web.events(topic=typing_topic)) == 1
        assert spy.events(topic=typing_topic) == []
    history = (await api.get(f"/api/conversations/{cid}/messages", headers=bob.headers)).json()["items"]
    assert history == [], "typing is never stored"


async def test_conversation_list_follows_activity(system: System, api: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    carol = await signup(api)
    older = (await open_conversation(api, alice, bob))["id"]
    newer = (await open_conversation(api, alice, carol))["id"]
    order = [c["id"] for c in (await api.get("/api/conversations", headers=alice.headers)).json()["items"]]
    assert order.index(newer) < order.index(older)
    await api.post(f"/api/conversations/{older}/messages", json={"body": "bump"}, headers=bob.headers)
    listed = (await api.get("/api/conversations", headers=alice.headers)).json()["items"]
    assert [c["id"] for c in listed][:2] == [older, newer]
    assert listed[0]["last_message"]["body"] == "bump" and listed[0]["unread_count"] == 1
    assert listed[1]["last_message"] is None and listed[1]["unread_count"] == 0
    assert (await api.get(f"/api/conversations/{older}", headers=alice.headers)).json()["updated_at"] == listed[0]["updated_at"]
