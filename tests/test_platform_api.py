"""The server API (`/api/platform/*`) as a platform's backend uses it, with an admin's API key."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import httpx

from core import topics
from tests.conftest import EVERY_BROKER
from tests.platform_support import account_of
from tests.support import Account, System, create_staff, device
from tests.test_tickets import set_status


def platform_id() -> str:
    return f"shop-{secrets.token_hex(5)}"


def key_headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def new_key(api: httpx.AsyncClient, admin: Account, name: str = "orders service") -> dict[str, Any]:
    response = await api.post("/api/admin/api-keys", json={"name": name}, headers=admin.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def upsert(api: httpx.AsyncClient, key: str, external_id: str, status: int = 201, **fields: Any) -> dict[str, Any]:
    body = {"name": f"Name {external_id}", "role": "customer", **fields}
    response = await api.put(f"/api/platform/users/{external_id}", json=body, headers=key_headers(key))
    assert response.status_code == status, response.text
    return response.json()


async def tokens_for(api: httpx.AsyncClient, key: str, external_id: str) -> Account:
    response = await api.post(f"/api/platform/users/{external_id}/tokens", headers=key_headers(key))
    assert response.status_code == 200, response.text
    return account_of(response.json())


async def test_api_keys_are_admin_only_shown_once_and_never_listed(
    api: httpx.AsyncClient, admin: Account, alice: Account
) -> None:
    created = await new_key(api, admin)
    assert created["key"].startswith("mqk_") and created["prefix"] == created["key"][:12]
    listed = await api.get("/api/admin/api-keys", headers=admin.headers)
    mine = [k for k in listed.json()["items"] if k["id"] == created["id"]]
    assert mine and "key" not in mine[0] and created["key"] not in listed.text
    for request in (
        api.post("/api/admin/api-keys", json={"name": "x"}, headers=alice.headers),
        api.get("/api/admin/api-keys", headers=alice.headers),
        api.delete(f"/api/admin/api-keys/{created['id']}", headers=alice.headers),
    ):
        assert (await request).status_code == 403


async def test_keys_reach_only_the_server_api_and_user_tokens_never_do(
    api: httpx.AsyncClient, admin: Account, alice: Account
) -> None:
    key = (await new_key(api, admin))["key"]
    assert (await api.get("/api/auth/me", headers=key_headers(key))).status_code == 401
    assert (await api.get("/api/conversations", headers=key_headers(key))).status_code == 401
    as_user = await api.put(f"/api/platform/users/{platform_id()}", json={"name": "X", "role": "customer"}, headers=admin.headers)
    assert as_user.status_code == 401 and "API key" in as_user.json()["error"]["message"]
    unknown = await api.put(f"/api/platform/users/{platform_id()}", json={"name": "X", "role": "customer"},
                            headers=key_headers("mqk_" + secrets.token_urlsafe(32)))  # fmt: skip
    assert unknown.status_code == 401
    no_auth = await api.post("/api/platform/tickets", json={})
    assert no_auth.status_code == 401


async def test_a_revoked_key_is_refused_at_once(api: httpx.AsyncClient, admin: Account) -> None:
    created = await new_key(api, admin)
    await upsert(api, created["key"], platform_id())
    revoked = await api.delete(f"/api/admin/api-keys/{created['id']}", headers=admin.headers)
    assert revoked.status_code == 204
    refused = await api.put(f"/api/platform/users/{platform_id()}", json={"name": "X", "role": "customer"},
                            headers=key_headers(created["key"]))  # fmt: skip
    assert refused.status_code == 401
    again = await api.delete(f"/api/admin/api-keys/{created['id']}", headers=admin.headers)
    assert again.status_code == 404


async def test_users_are_upserted_by_the_platforms_id(api: httpx.AsyncClient, admin: Account) -> None:
    key = (await new_key(api, admin))["key"]
    uid = platform_id()
    created = await upsert(api, key, uid, name="Ana", email="ana@shop.test")
    assert created["external_id"] == uid and created["email"] == "ana@shop.test" and created["role"] == "customer"
    updated = await upsert(api, key, uid, status=200, name="Ana B.", role="merchant")
    assert updated["id"] == created["id"] and (updated["username"], updated["role"]) == ("Ana B.", "merchant")
    for bad_id in ("a%2Fb", "%24sys", "x" * 129):
        response = await api.put(f"/api/platform/users/{bad_id}", json={"name": "X", "role": "customer"}, headers=key_headers(key))
        assert response.status_code in (400, 404), (bad_id, response.text)
    bidi = await api.put(f"/api/platform/users/{platform_id()}", json={"name": "evil\u202eliame", "role": "customer"}, headers=key_headers(key))
    assert bidi.status_code == 400, "display names refuse invisible formatting characters, as for password users"
    bad_role = await api.put(f"/api/platform/users/{platform_id()}", json={"name": "X", "role": "owner"}, headers=key_headers(key))
    assert bad_role.status_code == 400
    missing = await api.post(f"/api/platform/users/{platform_id()}/tokens", headers=key_headers(key))
    assert missing.status_code == 404


@EVERY_BROKER
async def test_an_orders_conversation_gets_a_live_system_message_and_a_ticket(
    system: System, api: httpx.AsyncClient, admin: Account
) -> None:
    key = (await new_key(api, admin))["key"]
    buyer_id, seller_id = platform_id(), platform_id()
    await upsert(api, key, buyer_id, name="Buyer", role="customer")
    await upsert(api, key, seller_id, name="Seller", role="merchant")
    buyer = await tokens_for(api, key, buyer_id)
    assert buyer.body["mqtt"]["username"] == buyer.id and buyer.body["user"]["external_id"] == buyer_id

    order = {"type": "order", "id": "o-1001", "title": "Order 1001"}
    body = {"members": [buyer_id, seller_id], "kind": "direct", "context": order}
    opened = await api.post("/api/platform/conversations", json=body, headers=key_headers(key))
    assert opened.status_code == 201, opened.text
    cid = opened.json()["id"]
    assert opened.json()["participant_ids"] == [buyer.id, opened.json()["participant_ids"][1]]
    again = await api.post("/api/platform/conversations", json=body, headers=key_headers(key))
    assert again.status_code == 200 and again.json()["id"] == cid, "the order's chat is one conversation"

    async with device(system.node(1), buyer, "phone", f"chat/conversations/{cid}/messages") as phone:
        notice = {"body": "Your order has shipped", "client_msg_id": "order-1001-shipped"}
        posted = await api.post(f"/api/platform/conversations/{cid}/messages", json=notice, headers=key_headers(key))
        assert posted.status_code == 201, posted.text
        message = posted.json()
        assert (message["kind"], message["sender_id"], message["seq"]) == ("system", None, 1)
        [live] = await phone.wait_for(1, "message.created", topics.user_inbox(buyer.id))
        [on_topic] = await phone.wait_for(1, "message.created", topics.conversation(cid, "messages"))
        assert live["message"] == on_topic["message"] == message
        repeated = await api.post(f"/api/platform/conversations/{cid}/messages", json=notice, headers=key_headers(key))
        assert repeated.status_code == 200 and repeated.json()["id"] == message["id"]

        ticket = await api.post(
            "/api/platform/tickets",
            json={"customer": buyer_id, "subject": "Damaged parcel", "description": "The box arrived crushed",
                  "category": "shipping", "context": order},
            headers=key_headers(key),
        )  # fmt: skip
        assert ticket.status_code == 201, ticket.text
        assert ticket.json()["customer_id"] == buyer.id and ticket.json()["order_id"] == "o-1001"
        [created] = await phone.wait_for(1, "ticket.created", topics.user_inbox(buyer.id))
        assert created["ticket"]["id"] == ticket.json()["id"]

    history = await api.get(f"/api/conversations/{cid}/messages", headers=buyer.headers)
    assert [(m["kind"], m["body"]) for m in history.json()["items"]] == [("system", "Your order has shipped")]
    unread = await api.get("/api/unread", headers=buyer.headers)
    assert unread.json()["by_conversation"].get(cid) == 1
    mine = await api.get("/api/tickets", headers=buyer.headers)
    assert ticket.json()["id"] in [t["id"] for t in mine.json()["items"]]

    # no agent was online: the ticket waits in the queue. The NATS cluster is the session's, shared with
    # tests/test_tickets.py, whose agents must find the queue empty: see it through to closed
    agent, tid = await create_staff(system, api, "agent"), ticket.json()["id"]
    assert (await api.post(f"/api/tickets/{tid}/assign", json={"agent_id": agent.id}, headers=admin.headers)).status_code == 200
    for actor, status in ((agent, "in_progress"), (agent, "resolved"), (buyer, "closed")):
        assert (await set_status(api, actor, tid, status)).status_code == 200, status


async def test_server_api_refusals(api: httpx.AsyncClient, admin: Account, alice: Account, bob: Account) -> None:
    key = (await new_key(api, admin))["key"]
    a, b = platform_id(), platform_id()
    await upsert(api, key, a)
    await upsert(api, key, b)
    headers = key_headers(key)
    unknown_member = await api.post("/api/platform/conversations", json={"members": [a, platform_id()]}, headers=headers)
    assert unknown_member.status_code == 404
    three_direct = await api.post("/api/platform/conversations", json={"members": [a, b, a + "x"], "kind": "direct"}, headers=headers)
    assert three_direct.status_code in (400, 404)
    unknown_conversation = await api.post(
        f"/api/platform/conversations/{'0' * 24}/messages", json={"body": "x", "client_msg_id": "c-1"}, headers=headers
    )
    assert unknown_conversation.status_code == 404
    injected = await api.post("/api/platform/conversations", json={"members": [{"$ne": None}, b]}, headers=headers)
    assert injected.status_code == 400
    opened = await api.post("/api/platform/conversations", json={"members": [a, b], "kind": "group", "title": "G"}, headers=headers)
    cid = opened.json()["id"]
    too_long = await api.post(f"/api/platform/conversations/{cid}/messages", json={"body": "x" * 10_001, "client_msg_id": "c-2"}, headers=headers)
    assert too_long.status_code == 413
    staff_ticket = await upsert(api, key, agent_id := platform_id(), role="agent")
    assert staff_ticket["role"] == "agent"
    refused = await api.post("/api/platform/tickets", json={"customer": agent_id, "subject": "s", "description": "d"}, headers=headers)
    assert refused.status_code == 403
    # the platform's backend is trusted like an admin: it may post into any conversation
    private = await api.post("/api/conversations", json={"participant_ids": [bob.id]}, headers=alice.headers)
    foreign = await api.post(
        f"/api/platform/conversations/{private.json()['id']}/messages", json={"body": "x", "client_msg_id": "c-3"}, headers=headers
    )
    assert foreign.status_code == 201 and foreign.json()["kind"] == "system"


async def test_each_key_is_rate_limited(api: httpx.AsyncClient, admin: Account) -> None:
    key = (await new_key(api, admin))["key"]
    responses = await asyncio.gather(
        *(api.post(f"/api/platform/users/{platform_id()}/tokens", headers=key_headers(key)) for _ in range(100))
    )
    statuses = {r.status_code for r in responses}
    assert statuses == {404, 429}, statuses
    limited = next(r for r in responses if r.status_code == 429)
    assert limited.json()["error"]["code"] == "rate_limited" and "Retry-After" in limited.headers
    other = (await new_key(api, admin, "another service"))["key"]
    assert (await api.post(f"/api/platform/users/{platform_id()}/tokens", headers=key_headers(other))).status_code == 404


async def test_the_cli_creates_a_key_that_works(system: System, api: httpx.AsyncClient) -> None:
    created = await asyncio.to_thread(system.cli, "api-key", "create", "--name", "from the cli")
    key = created.stdout.strip()
    assert key.startswith("mqk_") and "\n" not in key
    await upsert(api, key, platform_id())
