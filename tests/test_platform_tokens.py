"""Platform-issued JWTs: exchange for mqchat tokens, then chat over MQTT as the platform's users.

The session's systems trust tests.platform_support.Platform: an HS256 secret, an RSA
PEM key and a JWKS served over HTTP; user ids in `userId`, roles buyer/seller/employee.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import httpx
import jwt

from core import topics
from tests.conftest import EVERY_BROKER
from tests.platform_support import ISSUER, Platform, account_of, exchange, provisioned, public_pem
from tests.support import Account, System, device, open_conversation


def platform_id() -> str:
    return f"user_{secrets.token_hex(5)}"


@EVERY_BROKER
async def test_buyer_and_seller_from_the_platform_chat_over_mqtt(
    system: System, api: httpx.AsyncClient, platform: Platform
) -> None:
    buyer_id, seller_id = platform_id(), platform_id()
    buyer_body = await exchange(api, platform.hs256(buyer_id, "buyer", name="Ana Buyer", email="Ana@Shop.test"))
    seller_body = await exchange(api, platform.rs256(seller_id, "seller", name="Sam Seller"))
    assert set(buyer_body) >= {"user", "access_token", "refresh_token", "expires_in", "mqtt", "token_type"}
    assert buyer_body["user"]["external_id"] == buyer_id and buyer_body["user"]["role"] == "customer"
    assert buyer_body["user"]["email"] == "ana@shop.test" and buyer_body["user"]["username"] == "Ana Buyer"
    assert seller_body["user"]["role"] == "merchant" and seller_body["mqtt"]["username"] == seller_body["user"]["id"]
    again = await exchange(api, platform.hs256(buyer_id, "buyer", name="Ana Buyer"))
    assert again["user"]["id"] == buyer_body["user"]["id"], "one account per platform user, found again by its id"

    buyer, seller = account_of(buyer_body), account_of(seller_body)
    me = await api.get("/api/auth/me", headers=buyer.headers)
    assert me.status_code == 200 and me.json()["external_id"] == buyer_id
    conversation = await open_conversation(api, buyer, seller, context={"type": "order", "id": "o-77", "title": "Order 77"})
    cid = conversation["id"]
    async with device(system, buyer) as buyer_phone, device(system, seller) as seller_web:
        send = b'{"conversation_id": "%s", "client_msg_id": "p-1", "body": "Where is my order?"}' % cid.encode()
        await buyer_phone.client.publish(topics.user_outbox(buyer.id, "send"), send, qos=1)
        [received] = await seller_web.wait_for(1, "message.created", topics.user_inbox(seller.id))
        assert received["message"]["sender_id"] == buyer.id and received["message"]["body"] == "Where is my order?"
        reply = b'{"conversation_id": "%s", "client_msg_id": "s-1", "body": "Shipped today"}' % cid.encode()
        await seller_web.client.publish(topics.user_outbox(seller.id, "send"), reply, qos=1)
        answers = await buyer_phone.wait_for(2, "message.created", topics.user_inbox(buyer.id))
        assert [m["message"]["body"] for m in answers] == ["Where is my order?", "Shipped today"]


async def test_claims_refresh_the_account_on_every_exchange(api: httpx.AsyncClient, platform: Platform) -> None:
    uid = platform_id()
    first = await exchange(api, platform.hs256(uid, "buyer", name="Old Name", email="old@shop.test"))
    second = await exchange(api, platform.hs256(uid, "seller", name="New Name", email="new@shop.test"))
    assert second["user"]["id"] == first["user"]["id"]
    assert (second["user"]["username"], second["user"]["role"], second["user"]["email"]) == ("New Name", "merchant", "new@shop.test")
    listed = await api.get("/api/auth/me", headers={"Authorization": f"Bearer {second['access_token']}"})
    assert listed.json()["username"] == "New Name"
    hidden = await exchange(api, platform.hs256(uid, "seller", name="Ana\u202egnp.exe"))
    assert hidden["user"]["username"] == uid, "an unusable name claim falls back to the platform id"


async def test_a_jwks_key_rotation_needs_no_restart(api: httpx.AsyncClient, platform: Platform) -> None:
    uid = platform_id()
    old_kid = next(iter(platform.jwks_keys))
    old_token = platform.rs256(uid, "buyer", kid=old_kid)
    await exchange(api, old_token)
    new_kid = platform.rotate()
    await asyncio.sleep(1.1)  # mqchat fetches the key set again at most once a second
    body = await exchange(api, platform.rs256(uid, "buyer", kid=new_kid))
    assert body["user"]["external_id"] == uid
    refused = await exchange(api, old_token, status=401)
    assert "unknown signing key" in refused["error"]["message"], "the retired key is gone with the new key set"


async def test_a_pem_public_key_verifies_tokens_without_kid(api: httpx.AsyncClient, platform: Platform) -> None:
    uid = platform_id()
    body = await exchange(api, platform.rs256(uid, "employee", kid=""))
    assert body["user"]["role"] == "agent"


def _refusals(platform: Platform, uid: str) -> dict[str, tuple[str, int, str]]:
    """name -> (token, status, words of the reason)."""
    now = int(time.time())
    claims = platform.claims(uid)
    unsigned = jwt.encode(claims, None, algorithm="none")
    return {
        "bad signature": (jwt.encode(claims, "another-secret-of-sufficient-length-0123456789", algorithm="HS256"), 401, "bad signature"),
        "alg none": (unsigned, 401, "not accepted"),
        "public key as HMAC secret": (_hmac_signed_with(public_pem(platform.pem_key), claims), 401, "bad signature"),
        "expired": (platform.hs256(uid, exp=now - 60), 401, "expired"),
        "not yet valid": (platform.hs256(uid, nbf=now + 600), 401, "not yet valid"),
        "wrong issuer": (platform.hs256(uid, iss="https://evil.test"), 401, "issuer"),
        "wrong audience": (platform.hs256(uid, aud="someone-else"), 401, "audience"),
        "no issuer": (platform.hs256(uid, iss=None), 401, "iss"),
        "missing user id": (platform.hs256(None, sub=uid), 401, "userId"),
        "user id with a slash": (platform.hs256(uid + "/inbox"), 401, "usable user id"),
        "user id with a wildcard": (platform.hs256(uid + "#"), 401, "usable user id"),
        "unmapped role": (platform.hs256(uid, "guest"), 403, "not mapped"),
        "admin without a mapping": (platform.hs256(uid, "admin"), 403, "not mapped"),
        "no role": (platform.hs256(uid, None), 403, "not mapped"),
        "garbage": ("not-a-jwt", 401, "malformed"),
    }


def _hmac_signed_with(secret: str, claims: dict[str, Any]) -> str:
    """An HS256 token keyed with `secret` even when it is a PEM public key (pyjwt itself refuses that)."""
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + b"." + b64(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + b64(signature)).decode()


async def test_every_bad_platform_token_is_refused_and_provisions_nothing(
    system: System, api: httpx.AsyncClient, platform: Platform
) -> None:
    for name, (token, status, reason) in _refusals(platform, uid := platform_id()).items():
        body = await exchange(api, token, status=status)
        assert body["error"]["code"] == ("unauthorized" if status == 401 else "forbidden"), name
        assert reason in body["error"]["message"], (name, body)
    assert await provisioned(system, uid) == 0
    assert await provisioned(system, uid + "/inbox") == 0
    boss = await exchange(api, platform.hs256(platform_id(), "boss"))
    assert boss["user"]["role"] == "admin", "admin only through an explicit mapping (boss=admin)"


async def test_a_deactivated_platform_user_stays_refused(
    api: httpx.AsyncClient, admin: Account, platform: Platform
) -> None:
    uid = platform_id()
    body = await exchange(api, platform.hs256(uid, "buyer"))
    disabled = await api.patch(f"/api/admin/users/{body['user']['id']}", json={"active": False}, headers=admin.headers)
    assert disabled.status_code == 200, disabled.text
    refused = await exchange(api, platform.hs256(uid, "buyer", name="Changed"), status=401)
    assert "disabled" in refused["error"]["message"]
    old = await api.get("/api/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert old.status_code == 401


async def test_platform_users_have_no_password(api: httpx.AsyncClient, platform: Platform) -> None:
    uid = platform_id()
    body = await exchange(api, platform.hs256(uid, "buyer", email="pw@shop.test"))
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    change = await api.post("/api/auth/password", json={"current_password": "", "new_password": "new-password-1"}, headers=headers)
    assert change.status_code == 403 and "platform" in change.json()["error"]["message"]
    for email in ("pw@shop.test", f"platform {ISSUER} {uid}"):
        login = await api.post("/api/auth/login", json={"email": email, "password": ""})
        assert login.status_code == 401 and login.json()["error"]["message"] == "invalid email or password"
    refresh = await api.post("/api/auth/refresh", json={"refresh_token": body["refresh_token"]})
    assert refresh.status_code == 200, "a platform session renews like any other"


async def test_many_exchanges_of_a_new_user_provision_one_account(
    system: System, api: httpx.AsyncClient, platform: Platform
) -> None:
    uid = platform_id()
    bodies = await asyncio.gather(*(exchange(api, platform.hs256(uid, "buyer")) for _ in range(8)))
    assert len({body["user"]["id"] for body in bodies}) == 1
    assert await provisioned(system, uid) == 1
