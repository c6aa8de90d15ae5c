"""Outsiders, hostile and malformed requests: clear errors, nothing stored, the bridge keeps running."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from core import topics
from tests.conftest import EVERY_BROKER
from tests.support import Account, System, device, granted, open_conversation, signup

# Refusals that involve the broker run on every broker, and so do the bridge's answers to bad requests: on the
# NATS cluster they come through the request queue (bridge/request_queue.py), a path of their own. The API's
# answers to bad payloads do not depend on the broker, and run on the two single brokers only (the suite's time).

async def stored_bodies(api: httpx.AsyncClient, cid: str, member: Account) -> list[str]:
    response = await api.get(f"/api/conversations/{cid}/messages", headers=member.headers)
    return [m["body"] for m in response.json()["items"]]


@EVERY_BROKER
async def test_outsider_can_neither_read_nor_write(system: System, api: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    mallory = await signup(api)
    cid = (await open_conversation(api, alice, bob))["id"]
    first = (await api.post(f"/api/conversations/{cid}/messages", json={"body": "private"}, headers=alice.headers)).json()

    for path in (f"/api/conversations/{cid}", f"/api/conversations/{cid}/messages"):
        assert (await api.get(path, headers=mallory.headers)).status_code == 404
    writes = [
        api.post(f"/api/conversations/{cid}/messages", json={"body": "intrude"}, headers=mallory.headers),
        api.post(f"/api/conversations/{cid}/read", json={"message_id": first["id"]}, headers=mallory.headers),
        api.patch(f"/api/messages/{first['id']}", json={"body": "x"}, headers=mallory.headers),
        api.delete(f"/api/messages/{first['id']}", headers=mallory.headers),
        api.post(f"/api/conversations/{cid}/members", json={"user_id": mallory.id}, headers=mallory.headers),
    ]
    for response in await asyncio.gather(*writes):
        assert response.status_code == 404, response.text
    assert cid not in {c["id"] for c in (await api.get("/api/conversations", headers=mallory.headers)).json()["items"]}

    async with device(system, mallory) as spy:
        for channel in ("messages", "receipts", "typing", "#"):
            topic = f"chat/conversations/{cid}/{channel}"
            assert not granted(await spy.client.subscribe(topic, qos=1)), topic
        intrusion = {"conversation_id": cid, "client_msg_id": "m1", "body": "intrude"}
        await spy.client.publish(topics.user_outbox(mallory.id, "send"), json.dumps(intrusion), qos=1)
        await spy.client.publish(topics.user_outbox(mallory.id, "delete"), json.dumps({"message_id": first["id"]}), qos=1)
        errors = await spy.wait_for(2, "error")
        assert {(e["action"], e["error"]["code"]) for e in errors} == {("send", "not_found"), ("delete", "not_found")}
        assert errors[0]["client_msg_id"] == "m1"
        await api.post(f"/api/conversations/{cid}/messages", json={"body": "still private"}, headers=bob.headers)
        await asyncio.sleep(0.5)
        assert spy.events("message.created") == []
    assert await stored_bodies(api, cid, alice) == ["still private", "private"]


HOSTILE = [
    ("send", b"{not json", "invalid_input"),
    ("send", b"", "invalid_input"),
    ("send", b"[]", "invalid_input"),
    ("send", b'{"conversation_id": {"$ne": null}, "client_msg_id": "h1", "body": "x"}', "invalid_input"),
    ("send", b'{"conversation_id": "CID", "client_msg_id": {"$gt": ""}, "body": "x"}', "invalid_input"),
    ("send", b'{"conversation_id": "CID", "client_msg_id": "h2", "body": 42}', "invalid_input"),
    ("send", b'{"conversation_id": "CID", "client_msg_id": "h3"}', "invalid_input"),
    ("send", b'{"conversation_id": "CID", "client_msg_id": "h4", "body": "x", "$where": "1"}', "invalid_input"),
    ("send", b'{"conversation_id": "CID", "client_msg_id": "h5", "body": "   "}', "invalid_input"),
    ("send", json.dumps({"conversation_id": "CID", "client_msg_id": "h6", "body": "x" * 10_001}).encode(), "payload_too_large"),
    ("send", json.dumps({"conversation_id": "CID", "client_msg_id": "h7", "body": "x" * 70_000}).encode(), "payload_too_large"),
    ("send", b'{"conversation_id": "000000000000000000000000", "client_msg_id": "h8", "body": "x"}', "not_found"),
    ("send", b'{"conversation_id": "CID", "client_msg_id": "h9", "body": "x", "reply_to": "000000000000000000000000"}', "invalid_input"),
    ("send", b'{"conversation_id": "CID", "client_msg_id": "h10", "body": "x", "attachment_ids": ["000000000000000000000000"]}', "invalid_input"),
    ("send", b'{"conversation_id": "CID", "client_msg_id": "h11", "body": "x", "kind": "sticker"}', "invalid_input"),
    ("edit", b'{"message_id": "000000000000000000000000", "body": "x"}', "not_found"),
    ("delete", b'{"message_id": "not-an-id"}', "invalid_input"),
    ("read", b'{"conversation_id": "CID"}', "invalid_input"),
    ("launch-missiles", b"{}", "invalid_input"),
]


@EVERY_BROKER
@pytest.mark.parametrize(("action", "raw", "code"), HOSTILE)
async def test_hostile_requests_get_an_error_and_store_nothing(
    system: System, api: httpx.AsyncClient, alice: Account, bob: Account, action: str, raw: bytes, code: str
) -> None:
    cid = (await open_conversation(api, alice, bob))["id"]
    async with device(system, alice) as alice_web:
        await alice_web.client.publish(topics.user_outbox(alice.id, action), raw.replace(b"CID", cid.encode()), qos=1)
        [error] = await alice_web.wait_for(1, "error")
        assert error["action"] == action and error["error"]["code"] == code and error["error"]["message"]
        # the bridge is still up and serves the next request
        ok = json.dumps({"conversation_id": cid, "client_msg_id": f"ok-{action}-{len(raw)}", "body": "fine"})
        await alice_web.client.publish(topics.user_outbox(alice.id, "send"), ok, qos=1)
        [ack] = await alice_web.wait_for(1, "message.created")
    assert ack["message"]["body"] == "fine"
    bodies = await stored_bodies(api, cid, alice)
    assert "fine" in bodies and all(body == "fine" for body in bodies)


@EVERY_BROKER
async def test_rest_send_validation(system: System, api: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    cid = (await open_conversation(api, alice, bob))["id"]
    url = f"/api/conversations/{cid}/messages"
    cases = [
        ({"body": "x" * 10_001}, 413, "payload_too_large"),
        ({"body": ""}, 400, "invalid_input"),
        ({"body": {"$ne": ""}}, 400, "invalid_input"),
        ({"body": "x", "reply_to": "0" * 24}, 400, "invalid_input"),
        ({"body": "x", "attachment_ids": ["0" * 24]}, 400, "invalid_input"),
        ({"body": "x", "client_msg_id": "$bad"}, 400, "invalid_input"),
    ]
    for body, status, code in cases:
        response = await api.post(url, json=body, headers=alice.headers)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), body
    assert (await api.post("/api/conversations/0123456789abcdef01234567/messages", json={"body": "x"}, headers=alice.headers)).status_code == 404
    assert await stored_bodies(api, cid, alice) == []
    for bad in ({"participant_ids": [alice.id]}, {"participant_ids": [bob.id, "x"]}, {"participant_ids": ["0" * 24]},
                {"participant_ids": [bob.id, alice.id, "1" * 24], "kind": "direct"}, {"participant_ids": {"$ne": []}}):  # fmt: skip
        assert (await api.post("/api/conversations", json=bad, headers=alice.headers)).status_code == 400, bad


@EVERY_BROKER
async def test_membership_changes_apply_to_mqtt_sends_at_once(
    system: System, api: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    """The bridge keeps conversations cached; a removal or an addition must not wait for its TTL."""
    carol = await signup(api)
    cid = (await open_conversation(api, alice, bob, carol, kind="group", title="crew"))["id"]
    send = topics.user_outbox(carol.id, "send")
    # a connection per step: the NATS cluster cuts a removed member's connections (its rights are per connection)
    async with device(system, carol) as phone:
        await phone.client.publish(send, json.dumps({"conversation_id": cid, "client_msg_id": "c1", "body": "member"}), qos=1)
        await phone.wait_for(1, "message.created")  # the bridge has the conversation cached now

    removed = await api.delete(f"/api/conversations/{cid}/members/{carol.id}", headers=alice.headers)
    assert removed.status_code == 200, removed.text
    async with device(system, carol) as phone:
        await phone.client.publish(send, json.dumps({"conversation_id": cid, "client_msg_id": "c2", "body": "removed"}), qos=1)
        [error] = await phone.wait_for(1, "error")
        assert (error["client_msg_id"], error["error"]["code"]) == ("c2", "not_found")

    added = await api.post(f"/api/conversations/{cid}/members", json={"user_id": carol.id}, headers=alice.headers)
    assert added.status_code == 200, added.text
    async with device(system, carol) as phone:
        await phone.client.publish(send, json.dumps({"conversation_id": cid, "client_msg_id": "c3", "body": "back"}), qos=1)
        await phone.wait_for(1, "message.created")
    assert await stored_bodies(api, cid, alice) == ["back", "member"]
