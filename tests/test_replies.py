"""Replies: a message quoting another of its conversation carries a preview of it, live and in history."""

from __future__ import annotations

import json

import httpx

from core import topics
from tests.conftest import EVERY_BROKER
from tests.support import Account, System, device, open_conversation, signup

pytestmark = EVERY_BROKER


async def test_replies_show_a_preview_of_the_quoted_message(system: System, api: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    mallory = await signup(api)
    cid = (await open_conversation(api, alice, bob))["id"]
    foreign = (await open_conversation(api, mallory, bob))["id"]
    long_body = "Is the blue mug still in stock? " * 10
    quoted = (await api.post(f"/api/conversations/{cid}/messages", json={"body": long_body}, headers=alice.headers)).json()
    elsewhere = (await api.post(f"/api/conversations/{foreign}/messages", json={"body": "hers"}, headers=mallory.headers)).json()

    async with device(system, alice) as alice_web, device(system, bob, "phone") as bob_phone:
        send = {"conversation_id": cid, "client_msg_id": "r-1", "body": "Yes, 3 left", "reply_to": quoted["id"]}
        await bob_phone.client.publish(topics.user_outbox(bob.id, "send"), json.dumps(send), qos=1)
        [live] = await alice_web.wait_for(1, "message.created")
        preview = live["message"]["reply_preview"]
        assert live["message"]["reply_to"] == quoted["id"]
        assert preview == {"id": quoted["id"], "seq": quoted["seq"], "sender_id": alice.id, "kind": "text",
                           "body": long_body[:99] + "…", "deleted": False}  # fmt: skip

        # bad quotes over MQTT: another conversation's message, an unknown one, an operator; nothing stored
        for n, reply_to in enumerate([elsewhere["id"], "0" * 24, {"$ne": None}]):
            bad = {"conversation_id": cid, "client_msg_id": f"bad-{n}", "body": "x", "reply_to": reply_to}
            await bob_phone.client.publish(topics.user_outbox(bob.id, "send"), json.dumps(bad), qos=1)
        errors = await bob_phone.wait_for(3, "error")
        assert sorted((e["client_msg_id"], e["error"]["code"]) for e in errors) == [(f"bad-{n}", "invalid_input") for n in range(3)]
        # an outsider cannot quote into the conversation
        intrusion = {"conversation_id": cid, "client_msg_id": "m-1", "body": "x", "reply_to": quoted["id"]}
        async with device(system, mallory) as spy:
            await spy.client.publish(topics.user_outbox(mallory.id, "send"), json.dumps(intrusion), qos=1)
            [refused] = await spy.wait_for(1, "error")
        assert refused["error"]["code"] == "not_found"

        # the quoted message deleted: its replies show so (live on the delete event, in history on reload)
        assert (await api.delete(f"/api/messages/{quoted['id']}", headers=alice.headers)).status_code == 200
        [deleted] = await bob_phone.wait_for(1, "message.deleted")
        assert deleted["message"]["id"] == quoted["id"]
    rest_reply = await api.post(f"/api/conversations/{cid}/messages", json={"body": "ok", "reply_to": live["message"]["id"]}, headers=alice.headers)
    assert rest_reply.status_code == 201 and rest_reply.json()["reply_preview"]["body"] == "Yes, 3 left"
    for bad in ({"body": "x", "reply_to": elsewhere["id"]}, {"body": "x", "reply_to": {"$ne": None}}, {"body": "x", "reply_to": "zz"}):
        refused = await api.post(f"/api/conversations/{cid}/messages", json=bad, headers=alice.headers)
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_input", bad
    outsider = await api.post(f"/api/conversations/{cid}/messages", json={"body": "x", "reply_to": quoted["id"]}, headers=mallory.headers)
    assert outsider.status_code == 404

    history = (await api.get(f"/api/conversations/{cid}/messages", headers=bob.headers)).json()["items"]
    assert [m["body"] for m in history] == ["ok", "Yes, 3 left", ""]
    assert history[0]["reply_preview"]["id"] == live["message"]["id"] and history[2]["reply_preview"] is None
    assert history[1]["reply_preview"] == {**preview, "body": "", "deleted": True}
    assert (await api.get(f"/api/conversations/{foreign}/messages", headers=mallory.headers)).json()["items"][0]["body"] == "hers"
