"""REST auth and users against the running system: happy paths and hostile input."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest

from tests.support import Account, System, create_staff, signup


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]


async def test_signup_login_me(api: httpx.AsyncClient, system: System) -> None:
    account = await signup(api, role="merchant", username="Shop Owner")
    body = account.body
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    assert body["user"] == {
        "id": account.id,
        "email": account.email,
        "username": "Shop Owner",
        "role": "merchant",
        "created_at": body["user"]["created_at"],
        "presence": {"status": "offline", "last_seen": None},
        "preferences": {"email_notifications": True},
    }
    assert body["user"]["created_at"].endswith("Z") and len(body["user"]["created_at"]) == 24
    assert body["mqtt"] == {
        "host": "localhost",
        "port": system.mqtt_port,
        "ws_url": f"ws://localhost:{system.ws_port}/mqtt",
        "username": account.id,
        "password": account.token,
        "client_id_prefix": account.id,
    }

    login = await api.post("/api/auth/login", json={"email": account.email.upper(), "password": account.password})
    assert login.status_code == 200
    me = await api.get("/api/auth/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"})
    assert me.status_code == 200 and me.json()["id"] == account.id


@pytest.mark.parametrize("role", ["agent", "admin"])
async def test_no_self_signup_as_staff(api: httpx.AsyncClient, role: str) -> None:
    response = await api.post(
        "/api/auth/signup", json={"email": f"{role}@evil.example", "username": "x", "password": "password-123", "role": role}
    )
    assert_error(response, 403, "forbidden")
    login = await api.post("/api/auth/login", json={"email": f"{role}@evil.example", "password": "password-123"})
    assert login.status_code == 401, "nothing may have been stored"


async def test_duplicate_email_conflicts(api: httpx.AsyncClient, alice: Account) -> None:
    response = await api.post(
        "/api/auth/signup", json={"email": alice.email.upper(), "username": "again", "password": "password-123"}
    )
    assert_error(response, 409, "conflict")


async def test_unknown_email_and_wrong_password_look_the_same(api: httpx.AsyncClient, alice: Account) -> None:
    wrong_password = await api.post("/api/auth/login", json={"email": alice.email, "password": "not-the-password"})
    unknown_email = await api.post("/api/auth/login", json={"email": "nobody@example.com", "password": "not-the-password"})
    assert_error(wrong_password, 401, "unauthorized")
    assert wrong_password.status_code == unknown_email.status_code
    assert wrong_password.json() == unknown_email.json()


@pytest.mark.parametrize(
    "raw",
    [
        b'{"email": "a@b.co", "password": ',  # truncated JSON
        b"not json at all",
        b'{"email": {"$ne": null}, "password": "x"}',  # operator injection
        b'{"email": "a@b.co", "password": {"$gt": ""}}',
        b'{"email": "a@b.co"}',  # missing field
        b'{"email": 42, "password": "password-123"}',  # wrong type
        b'["email", "password"]',
        b'{"email": "a@b.co", "password": "password-123", "$where": "1"}',  # unknown field
    ],
)
async def test_malformed_login_bodies_get_invalid_input(api: httpx.AsyncClient, raw: bytes) -> None:
    response = await api.post("/api/auth/login", content=raw, headers={"content-type": "application/json"})
    assert_error(response, 400, "invalid_input")


@pytest.mark.parametrize(
    "body",
    [
        {"email": "no-at-sign", "username": "x", "password": "password-123"},
        {"email": "ok@example.com", "username": "x", "password": "short"},
        {"email": "ok@example.com", "username": "", "password": "password-123"},
        {"email": {"$gt": ""}, "username": "x", "password": "password-123"},
        {"email": "ok@example.com", "username": "x", "password": "password-123", "role": "superuser"},
    ],
)
async def test_invalid_signup_stores_nothing(api: httpx.AsyncClient, body: dict) -> None:
    response = await api.post("/api/auth/signup", json=body)
    assert_error(response, 400, "invalid_input")


async def test_oversized_body_refused(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/api/auth/signup", json={"email": "big@example.com", "username": "x", "password": "p" * 200_000}
    )
    assert_error(response, 413, "payload_too_large")


def _token(system: System, **claims: object) -> str:
    base = {"sub": "000000000000000000000000", "typ": "access", "iat": int(time.time()), "exp": int(time.time()) + 60}
    base.update(claims)
    return jwt.encode(base, system.jwt_secret, algorithm="HS256")


async def test_bad_tokens_refused(api: httpx.AsyncClient, system: System, alice: Account) -> None:
    forged = jwt.encode({"sub": alice.id, "typ": "access", "exp": int(time.time()) + 60}, "x" * 48, algorithm="HS256")
    candidates = {
        "forged": forged,
        "expired": _token(system, sub=alice.id, exp=int(time.time()) - 5),
        "service token": system.service_token("mqchat-api"),
        "unknown user": _token(system),
        "alg none": jwt.encode({"sub": alice.id, "typ": "access", "exp": int(time.time()) + 60}, None, algorithm="none"),
        "garbage": "not-a-token",
    }
    for name, token in candidates.items():
        response = await api.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, name
        assert response.json()["error"]["code"] == "unauthorized"
    assert (await api.get("/api/auth/me", headers=alice.headers)).status_code == 200


async def test_users_directory_hides_emails_of_others(api: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    listed = await api.get("/api/users", params={"q": bob.body["user"]["username"][:8]}, headers=alice.headers)
    assert listed.status_code == 200
    found = {item["id"]: item for item in listed.json()["items"]}
    assert bob.id in found and "email" not in found[bob.id]
    one = await api.get(f"/api/users/{bob.id}", headers=alice.headers)
    assert one.status_code == 200 and "email" not in one.json() and "preferences" not in one.json()
    own = await api.get(f"/api/users/{alice.id}", headers=alice.headers)
    assert own.json()["email"] == alice.email
    assert (await api.get("/api/users", headers={})).status_code == 401


async def test_users_query_is_not_a_pattern(api: httpx.AsyncClient, alice: Account) -> None:
    response = await api.get("/api/users", params={"q": ".*", "limit": 5}, headers=alice.headers)
    assert response.status_code == 200 and response.json()["items"] == []
    by_role = await api.get("/api/users", params={"role": "customer", "limit": 500}, headers=alice.headers)
    assert by_role.status_code == 200
    assert 0 < len(by_role.json()["items"]) <= 100
    assert {item["role"] for item in by_role.json()["items"]} == {"customer"}


@pytest.mark.parametrize("user_id", ["000000000000000000000000", "not-an-id", "{\"$ne\":1}"])
async def test_unknown_user_is_404(api: httpx.AsyncClient, alice: Account, user_id: str) -> None:
    assert_error(await api.get(f"/api/users/{user_id}", headers=alice.headers), 404, "not_found")


async def test_admin_creates_staff_and_others_cannot(api: httpx.AsyncClient, admin: Account, alice: Account) -> None:
    body = {"email": "agent-smith@example.com", "username": "Smith", "password": "agent-pass-1", "role": "agent"}
    assert_error(await api.post("/api/admin/users", json=body, headers=alice.headers), 403, "forbidden")
    created = await api.post("/api/admin/users", json=body, headers=admin.headers)
    assert created.status_code == 201, created.text
    assert created.json()["user"]["role"] == "agent" and created.json()["user"]["email"] == body["email"]
    login = await api.post("/api/auth/login", json={"email": body["email"], "password": body["password"]})
    assert login.status_code == 200 and login.json()["user"]["role"] == "agent"
    # admins see everyone's email
    seen = await api.get(f"/api/users/{alice.id}", headers=admin.headers)
    assert seen.json()["email"] == alice.email


async def test_errors_keep_the_shape(api: httpx.AsyncClient) -> None:
    assert_error(await api.get("/api/does-not-exist"), 404, "not_found")
    assert_error(await api.delete("/api/health"), 405, "method_not_allowed")


async def test_health_and_schema(api: httpx.AsyncClient) -> None:
    health = await api.get("/api/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "store": "ok", "broker": "ok", "version": health.json()["version"], "restarts": {}}
    schema = await api.get("/schema/openapi.json")
    assert schema.status_code == 200 and "/api/auth/login" in schema.json()["paths"]


async def test_users_search_matches_emails_for_admins_only(api: httpx.AsyncClient, alice: Account, admin: Account) -> None:
    victim = await signup(api)  # its username does not start with its email
    for query in (victim.email[:8], victim.email):
        found = await api.get("/api/users", params={"q": query}, headers=alice.headers)
        assert found.status_code == 200
        assert victim.id not in [item["id"] for item in found.json()["items"]], "an email prefix finds nobody for a customer"
    by_admin = await api.get("/api/users", params={"q": victim.email[:8]}, headers=admin.headers)
    assert [item["email"] for item in by_admin.json()["items"] if item["id"] == victim.id] == [victim.email]
    by_name = await api.get("/api/users", params={"q": victim.body["user"]["username"]}, headers=alice.headers)
    assert victim.id in [item["id"] for item in by_name.json()["items"]]


async def test_users_search_is_rate_limited_per_user(api: httpx.AsyncClient, alice: Account) -> None:
    searcher = await signup(api)
    answers = [await api.get("/api/users", params={"q": f"x{i}"}, headers=searcher.headers) for i in range(40)]
    assert answers[0].status_code == 200
    limited = [answer for answer in answers if answer.status_code == 429]
    assert limited, "40 searches in a row must hit the per-user limit"
    assert_error(limited[0], 429, "rate_limited")
    assert int(limited[0].headers["Retry-After"]) >= 1
    assert (await api.get("/api/users", params={"q": "x"}, headers=alice.headers)).status_code == 200, "per user"


INVISIBLE_NAMES = ["evil\u202egnp.exe", "ad\u200bmin", "a\u2066b\u2069", "\ufeffsupport", "zero\u200dwidth", "line\u2028break"]


@pytest.mark.parametrize("name", INVISIBLE_NAMES)
async def test_names_with_control_or_invisible_characters_are_refused(
    api: httpx.AsyncClient, alice: Account, admin: Account, name: str
) -> None:
    signup_body = {"email": "bidi@example.com", "username": name, "password": "password-123"}
    refused_signup = await api.post("/api/auth/signup", json=signup_body)
    assert_error(refused_signup, 400, "invalid_input")
    assert "invisible" in refused_signup.json()["error"]["message"]
    assert (await api.post("/api/auth/login", json={"email": "bidi@example.com", "password": "password-123"})).status_code == 401
    assert_error(await api.patch("/api/auth/me", json={"username": name}, headers=alice.headers), 400, "invalid_input")
    assert (await api.get("/api/auth/me", headers=alice.headers)).json()["username"] == alice.body["user"]["username"]
    staff = {"email": "bidi-agent@example.com", "username": name, "password": "agent-pass-1", "role": "agent"}
    assert_error(await api.post("/api/admin/users", json=staff, headers=admin.headers), 400, "invalid_input")


async def test_visible_unicode_names_are_fine(api: httpx.AsyncClient, alice: Account) -> None:
    renamed = await api.patch("/api/auth/me", json={"username": "  Zoë Ådne 日本  "}, headers=alice.headers)
    assert renamed.status_code == 200 and renamed.json()["username"] == "Zoë Ådne 日本"


async def test_passwords_are_hashed_with_the_configured_argon2_parameters(api: httpx.AsyncClient, system: System) -> None:
    """The API (sign-up) and the CLI (`mqchat user create`) both hash with MQCHAT_ARGON2_*: cheap on the test systems."""
    from bson import ObjectId
    from pymongo import AsyncMongoClient

    customer, agent = await signup(api), await create_staff(system, api, "agent")
    mongo: AsyncMongoClient = AsyncMongoClient(system.store_uri_from_file())
    try:
        for account in (customer, agent):
            stored = await mongo.mqchat.users.find_one({"_id": ObjectId(account.id)})
            assert stored["password_hash"].startswith("$argon2id$v=19$m=1024,t=1,p=1$"), account.role
    finally:
        await mongo.close()
