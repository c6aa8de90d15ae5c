"""One bridge batch, many senders: a request that cannot be decoded fails alone (issue 24, item 2)."""

from __future__ import annotations

import asyncio
import json

import httpx

from core import topics
from tests.conftest import EVERY_BROKER
from tests.support import Account, System, device, open_conversation, signup

pytestmark = EVERY_BROKER

DEEP = b"[" * 5000 + b"]" * 5000
# (action, payload) pairs msgspec cannot decode: invalid UTF-8 inside strings, nesting far beyond its limit
UNDECODABLE = [
    ("send", b'{"conversation_id": "CID", "client_msg_id": "bad-\xff\xfe", "body": "x"}'),
    ("send", b'{"conversation_id": "CID", "client_msg_id": "bad-body", "body": "\xc3\x28"}'),
    ("send", DEEP),
    ("send", b'{"conversation_id": "CID", "client_msg_id": "deep", "body": "x", "extra": ' + DEEP + b"}"),
    ("edit", b'{"message_id": "\xff", "body": "x"}'),
    ("read", DEEP),
    ("typing", b'{"conversation_id": "CID", "typing": "\xe2\x82"}'),
    ("no-such-action", DEEP),
]
ROUNDS = 5
SENDS_PER_ROUND = 10


async def test_undecodable_requests_fail_alone(system: System, api: httpx.AsyncClient) -> None:
    mallory, partner, bob, carol = [await signup(api) for _ in range(4)]
    hostile_cid = (await open_conversation(api, mallory, partner))["id"]
    cid = (await open_conversation(api, bob, carol))["id"]
    presence = topics.device_presence(mallory.id, f"{mallory.id}-web")

    async with device(system, mallory) as attacker, device(system.node(1), bob) as sender, device(system.node(2), carol) as recipient:

        async def hostile() -> None:
            for action, raw in UNDECODABLE:
                await attacker.client.publish(topics.user_outbox(mallory.id, action), raw.replace(b"CID", hostile_cid.encode()), qos=1)
            await attacker.client.publish(presence, b'{"status": "\xff"}', qos=1)

        async def sends(round_: int) -> None:
            for n in range(SENDS_PER_ROUND):
                request = {"conversation_id": cid, "client_msg_id": f"r{round_}-{n}", "body": f"round {round_} #{n}"}
                await sender.client.publish(topics.user_outbox(bob.id, "send"), json.dumps(request), qos=1)

        for round_ in range(ROUNDS):  # the same moments: the bridge batches them together
            await asyncio.gather(hostile(), sends(round_))

        expected = {f"r{r}-{n}" for r in range(ROUNDS) for n in range(SENDS_PER_ROUND)}
        live = await recipient.wait_for(len(expected), "message.created", timeout=30)
        errors = await attacker.wait_for(ROUNDS * (len(UNDECODABLE) + 1), "error", timeout=30)
        acks = await sender.wait_for(len(expected), "message.created", timeout=30)

    assert {e["message"]["client_msg_id"] for e in live} == expected, "every send reached the recipient live"
    assert {e["message"]["client_msg_id"] for e in acks} == expected
    assert sender.events("error") == [] and recipient.events("error") == []
    assert {e["error"]["code"] for e in errors} == {"invalid_input"}
    assert sorted({e["action"] for e in errors}) == sorted({"presence", *(action for action, _ in UNDECODABLE)})
    assert sorted(await stored_client_msg_ids(api, cid, carol)) == sorted(expected), "each stored once"
    assert await stored_client_msg_ids(api, hostile_cid, partner) == []


async def stored_client_msg_ids(api: httpx.AsyncClient, cid: str, member: Account) -> list[str]:
    page = await api.get(f"/api/conversations/{cid}/messages", params={"limit": 100}, headers=member.headers)
    return [m["client_msg_id"] for m in page.json()["items"]]
