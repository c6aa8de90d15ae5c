"""Token lifetime and revocation: rotating refresh tokens, logout, password change, disabled accounts.

Revocation cuts live MQTT connections on every broker (on the NATS cluster, on every node).
"""

from __future__ import annotations

import asyncio

import aiomqtt
import httpx

from core import topics
from tests.conftest import EVERY_BROKER
from tests.support import Account, System, create_staff, refused, signup, user_client

pytestmark = EVERY_BROKER


async def cut_off(client: aiomqtt.Client, timeout: float = 10) -> bool:
    """True when the broker closes this live connection within `timeout`."""
    try:
        async with asyncio.timeout(timeout):
            async for _ in client.messages:
                pass
    except aiomqtt.MqttError:
        return True
    except TimeoutError:
        return False
    return False


async def test_refresh_tokens_rotate_and_reuse_revokes_the_family(system: System, api: httpx.AsyncClient, alice: Account) -> None:
    first = alice.body["refresh_token"]
    assert alice.body["refresh_expires_in"] > alice.body["expires_in"]
    rotated = await api.post("/api/auth/refresh", json={"refresh_token": first})
    assert rotated.status_code == 200
    body = rotated.json()
    assert body["refresh_token"] != first and body["user"]["id"] == alice.id
    assert (await api.get("/api/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})).status_code == 200

    replay = await api.post("/api/auth/refresh", json={"refresh_token": first})
    assert replay.status_code == 401, "a refresh token works once"
    stolen_family = await api.post("/api/auth/refresh", json={"refresh_token": body["refresh_token"]})
    assert stolen_family.status_code == 401, "reusing one revokes its whole family"
    for bad in ("nonsense", "", {"$ne": ""}):
        assert (await api.post("/api/auth/refresh", json={"refresh_token": bad})).status_code in (400, 401)


async def test_refresh_token_replay_revokes_access_tokens_and_cuts_mqtt(system: System, api: httpx.AsyncClient) -> None:
    account = await signup(api)
    rotated = await api.post("/api/auth/refresh", json={"refresh_token": account.body["refresh_token"]})
    assert rotated.status_code == 200
    async with user_client(system, account, "phone") as phone:
        await phone.subscribe(topics.user_inbox(account.id), qos=1)
        replay = await api.post("/api/auth/refresh", json={"refresh_token": account.body["refresh_token"]})
        assert replay.status_code == 401
        assert await cut_off(phone), "a live connection of the replayed token's user is cut"
    for token in (account.token, rotated.json()["access_token"]):
        assert (await api.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})).status_code == 401
    assert await refused(user_client(system, account, "phone")), "the old MQTT credentials are refused"
    again = await api.post("/api/auth/login", json={"email": account.email, "password": account.password})
    assert again.status_code == 200, "the owner signs in again"


async def test_logout_ends_every_session_and_cuts_mqtt(system: System, api: httpx.AsyncClient) -> None:
    account = await signup(api)
    other_device = (await api.post("/api/auth/login", json={"email": account.email, "password": account.password})).json()
    async with user_client(system, account, "phone") as phone:
        await phone.subscribe(topics.user_inbox(account.id), qos=1)
        logout = await api.post("/api/auth/logout", headers=account.headers)
        assert logout.status_code == 204
        assert await cut_off(phone)
    for token in (account.token, other_device["access_token"]):
        assert (await api.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})).status_code == 401
    assert (await api.post("/api/auth/refresh", json={"refresh_token": other_device["refresh_token"]})).status_code == 401
    assert await refused(user_client(system, account, "phone"))
    again = await api.post("/api/auth/login", json={"email": account.email, "password": account.password})
    assert again.status_code == 200
    fresh = Account(account.id, account.email, account.password, again.json()["access_token"], account.role, again.json())
    assert not await refused(user_client(system, fresh, "phone"))


async def test_password_change(system: System, api: httpx.AsyncClient) -> None:
    account = await signup(api)
    wrong = await api.post("/api/auth/password", json={"current_password": "nope", "new_password": "brand-new-pass-1"}, headers=account.headers)
    assert wrong.status_code == 401
    short = await api.post("/api/auth/password", json={"current_password": account.password, "new_password": "x"}, headers=account.headers)
    assert short.status_code == 400
    changed = await api.post(
        "/api/auth/password", json={"current_password": account.password, "new_password": "brand-new-pass-1"}, headers=account.headers
    )
    assert changed.status_code == 200
    assert (await api.get("/api/auth/me", headers=account.headers)).status_code == 401, "the old token is revoked"
    assert (await api.get("/api/auth/me", headers={"Authorization": f"Bearer {changed.json()['access_token']}"})).status_code == 200
    assert (await api.post("/api/auth/login", json={"email": account.email, "password": account.password})).status_code == 401
    assert (await api.post("/api/auth/login", json={"email": account.email, "password": "brand-new-pass-1"})).status_code == 200


async def test_disabled_user_is_refused_at_once(system: System, api: httpx.AsyncClient) -> None:
    admin, account = await create_staff(system, api, "admin"), await signup(api)
    assert (await api.patch(f"/api/admin/users/{account.id}", json={"active": False}, headers=account.headers)).status_code == 403
    async with user_client(system, account, "web") as web:
        await web.subscribe(topics.user_inbox(account.id), qos=1)
        disabled = await api.patch(f"/api/admin/users/{account.id}", json={"active": False}, headers=admin.headers)
        assert disabled.status_code == 200
        assert await cut_off(web)
    assert (await api.get("/api/auth/me", headers=account.headers)).status_code == 401
    assert (await api.post("/api/auth/login", json={"email": account.email, "password": account.password})).status_code == 401
    assert await refused(user_client(system, account, "web"))

    assert (await api.patch(f"/api/admin/users/{account.id}", json={"active": True}, headers=admin.headers)).status_code == 200
    assert (await api.post("/api/auth/login", json={"email": account.email, "password": account.password})).status_code == 200
