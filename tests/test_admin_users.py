"""User management and data rights for admins: find, role change, export, erasure, and the audit log of it all.

The broker-facing effects (signed out everywhere, rights follow the new role or are
withdrawn) run on every broker, the NATS cluster included; the rest on the embedded one.
"""

from __future__ import annotations

import json

import httpx

from core import topics
from tests.conftest import EVERY_BROKER
from tests.support import Account, System, create_staff, granted, open_conversation, refused, signup, user_client
from tests.test_sessions import cut_off


async def _login(api: httpx.AsyncClient, account: Account) -> Account:
    response = await api.post("/api/auth/login", json={"email": account.email, "password": account.password})
    assert response.status_code == 200, response.text
    body = response.json()
    return Account(account.id, account.email, account.password, body["access_token"], body["user"]["role"], body)


async def _audit(api: httpx.AsyncClient, admin: Account, **query: str) -> list[dict]:
    response = await api.get("/api/admin/audit", params=query, headers=admin.headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


@EVERY_BROKER
async def test_role_change_and_erasure_sign_out_everywhere_and_move_broker_rights(system: System, api: httpx.AsyncClient) -> None:
    admin, user = await create_staff(system, api, "admin"), await signup(api)
    async with user_client(system, user, "web") as web:
        assert not granted(await web.subscribe(topics.AGENT_TICKETS, qos=1))
        promoted = await api.patch(f"/api/admin/users/{user.id}", json={"role": "agent"}, headers=admin.headers)
        assert promoted.status_code == 200 and promoted.json()["user"]["role"] == "agent"
        assert await cut_off(web)
    assert (await api.get("/api/auth/me", headers=user.headers)).status_code == 401
    agent = await _login(api, user)
    async with user_client(system.node(1), agent, "web") as web:
        assert granted(await web.subscribe(topics.AGENT_TICKETS, qos=1)), "the new role's rights"
        erased = await api.delete(f"/api/admin/users/{user.id}", headers=admin.headers)
        assert erased.status_code == 200, erased.text
        assert await cut_off(web)
    assert await refused(user_client(system.node(2), agent, "web"))
    assert (await api.post("/api/auth/login", json={"email": user.email, "password": user.password})).status_code == 401
    actions = [e["action"] for e in await _audit(api, admin, target_id=user.id)]
    assert actions == ["user.erased", "user.role_changed"]


async def test_export_then_erase_keeps_others_history_consistent(system: System, api: httpx.AsyncClient, admin: Account) -> None:
    leaver, friend = await signup(api), await signup(api)
    upload = await api.post("/api/attachments", files={"file": ("dot.png", PNG, "image/png")}, headers=leaver.headers)
    assert upload.status_code == 201, upload.text
    chat = await open_conversation(api, leaver, friend)
    sent = []
    for body, extra in (("my address is 1 Main St", {"attachment_ids": [upload.json()["id"]]}), ("thanks", {})):
        answer = await api.post(f"/api/conversations/{chat['id']}/messages", json={"body": body, **extra}, headers=leaver.headers)
        assert answer.status_code == 201, answer.text
        sent.append(answer.json())
    reply = await api.post(f"/api/conversations/{chat['id']}/messages", json={"body": "ok", "reply_to": sent[0]["id"]}, headers=friend.headers)
    ticket = await api.post("/api/tickets", json={"subject": "Refund for order 9", "description": "card 1234"}, headers=leaver.headers)
    assert reply.status_code == 201 and ticket.status_code == 201

    exported = await api.get(f"/api/admin/users/{leaver.id}/export", headers=admin.headers)
    assert exported.status_code == 200 and "attachment" in exported.headers["content-disposition"]
    data = json.loads(exported.content)
    assert data["user"]["email"] == leaver.email and data["user"]["id"] == leaver.id
    assert [m["body"] for m in data["messages"]] == ["my address is 1 Main St", "thanks"]
    assert {c["id"] for c in data["memberships"]} >= {chat["id"], ticket.json()["conversation_id"]}
    assert [t["subject"] for t in data["tickets"]] == ["Refund for order 9"]
    assert [a["id"] for a in data["attachments"]] == [upload.json()["id"]]
    assert "password_hash" not in exported.text and "token_version" not in exported.text

    erased = await api.delete(f"/api/admin/users/{leaver.id}", headers=admin.headers)
    assert erased.status_code == 200, erased.text
    assert {k: erased.json()[k] for k in ("messages", "attachments", "tickets")} == {"messages": 2, "attachments": 1, "tickets": 1}
    assert erased.json()["user"]["user"]["username"] == "Deleted user" and erased.json()["user"]["erased"] is True
    history = (await api.get(f"/api/conversations/{chat['id']}/messages", headers=friend.headers)).json()["items"]
    assert [(m["seq"], m["body"], m["deleted"], m["attachments"]) for m in reversed(history)] == [
        (1, "", True, []), (2, "", True, []), (3, "ok", False, []),
    ]  # fmt: skip
    assert history[0]["reply_to"] == sent[0]["id"], "the reply still points at the tombstone"
    named = await api.get(f"/api/users/{leaver.id}", headers=friend.headers)  # others' history still names them
    assert named.status_code == 200 and (named.json()["username"], named.json()["active"]) == ("Deleted user", False)
    assert "email" not in named.json()
    assert (await api.get(f"/api/attachments/{upload.json()['id']}", headers=friend.headers)).status_code == 404
    shown = (await api.get(f"/api/tickets/{ticket.json()['id']}", headers=admin.headers)).json()
    assert (shown["subject"], shown["description"], shown["number"]) == ("(erased)", "", ticket.json()["number"])
    profile = (await api.get(f"/api/admin/users/{leaver.id}/export", headers=admin.headers)).json()
    assert profile["user"]["email"] is None and profile["user"]["username"] == "Deleted user" and profile["messages"][0]["body"] == ""
    assert leaver.email not in (await api.get(f"/api/admin/users/{leaver.id}/export", headers=admin.headers)).text
    again = await api.delete(f"/api/admin/users/{leaver.id}", headers=admin.headers)
    assert again.status_code == 200 and again.json()["messages"] == 0, "erasing twice changes nothing more"
    assert (await api.patch(f"/api/admin/users/{leaver.id}", json={"active": True}, headers=admin.headers)).status_code == 409
    actions = [e["action"] for e in await _audit(api, admin, target_id=leaver.id)]
    assert actions == ["user.erased", "user.exported", "user.exported", "user.erased", "user.exported"]


async def test_console_finds_deactivated_users_and_the_audit_log_pages(api: httpx.AsyncClient, admin: Account) -> None:
    user = await signup(api, username=f"findme-{admin.id[-6:]}")
    assert (await api.patch(f"/api/admin/users/{user.id}", json={"active": False}, headers=admin.headers)).status_code == 200
    found = (await api.get("/api/admin/users", params={"q": f"findme-{admin.id[-6:]}"}, headers=admin.headers)).json()["items"]
    assert [(u["user"]["id"], u["active"], u["erased"]) for u in found] == [(user.id, False, False)]
    by_email = (await api.get("/api/admin/users", params={"q": user.email, "active": "false"}, headers=admin.headers)).json()["items"]
    assert [u["user"]["id"] for u in by_email] == [user.id]
    assert (await api.get("/api/users", params={"q": f"findme-{admin.id[-6:]}"}, headers=admin.headers)).json()["items"] == []
    assert (await api.patch(f"/api/admin/users/{user.id}", json={"active": True, "role": "merchant"}, headers=admin.headers)).status_code == 200

    key = await api.post("/api/admin/api-keys", json={"name": "orders"}, headers=admin.headers)
    assert (await api.delete(f"/api/admin/api-keys/{key.json()['id']}", headers=admin.headers)).status_code == 204
    mine = await _audit(api, admin, actor_id=admin.id)
    assert [e["action"] for e in mine[:5]] == ["api_key.revoked", "api_key.created", "user.role_changed", "user.reactivated", "user.deactivated"]
    assert mine[2]["details"] == {"from": "customer", "to": "merchant"} and mine[1]["details"]["name"] == "orders"
    assert mine[0]["at"].endswith("Z") and mine[0]["seq"] > mine[1]["seq"]
    first = (await api.get("/api/admin/audit", params={"actor_id": admin.id, "limit": 2}, headers=admin.headers)).json()
    rest = (await api.get("/api/admin/audit", params={"actor_id": admin.id, "before": first["next_before"]}, headers=admin.headers)).json()
    assert [e["seq"] for e in first["items"] + rest["items"]] == [e["seq"] for e in mine]


BAD_REQUESTS = [
    ("patch", "/api/admin/users/{other}", {}, 400),
    ("patch", "/api/admin/users/{other}", {"role": "owner"}, 400),
    ("patch", "/api/admin/users/{other}", {"active": False, "extra": 1}, 400),
    ("patch", "/api/admin/users/{other}", {"role": {"$ne": None}}, 400),
    ("patch", "/api/admin/users/{self}", {"role": "customer"}, 403),
    ("delete", "/api/admin/users/{self}", None, 403),
    ("delete", "/api/admin/users/0123456789abcdef01234567", None, 404),
    ("delete", "/api/admin/users/not-an-id", None, 404),
    ("get", "/api/admin/users/0123456789abcdef01234567/export", None, 404),
    ("get", "/api/admin/audit?before=0", None, 400),
    ("get", "/api/admin/audit?action=%24where", None, 400),
    ("get", "/api/admin/users?active=maybe", None, 400),
]


async def test_bad_admin_requests_change_nothing(api: httpx.AsyncClient, admin: Account, bob: Account) -> None:
    for method, path, body, status in BAD_REQUESTS:
        answer = await api.request(method.upper(), path.format(other=bob.id, self=admin.id), json=body, headers=admin.headers)
        assert answer.status_code == status, (method, path, body, answer.text)
    assert (await api.get("/api/auth/me", headers=bob.headers)).json()["role"] == "customer", "bob is untouched"
    assert (await api.get("/api/auth/me", headers=admin.headers)).status_code == 200


async def test_outsiders_get_no_admin_door(api: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    for method, url in (("GET", "/api/admin/users"), ("GET", f"/api/admin/users/{bob.id}/export"), ("DELETE", f"/api/admin/users/{bob.id}"),
                        ("PATCH", f"/api/admin/users/{bob.id}"), ("GET", "/api/admin/audit")):  # fmt: skip
        assert (await api.request(method, url, json={"active": False}, headers=alice.headers)).status_code == 403
        assert (await api.request(method, url, json={"active": False})).status_code == 401
    assert (await api.get("/api/auth/me", headers=bob.headers)).status_code == 200


PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)
