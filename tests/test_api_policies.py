"""API policies that need their own configuration: auth rate limit, CORS. The app runs in-process on the real store."""

from __future__ import annotations

import secrets
from pathlib import Path

from litestar.testing import AsyncTestClient

from api.app import create_app
from core.settings import Settings
from mqchat.store import free_port
from tests.support import System


def settings_for(system: System, tmp_path: Path, **overrides: object) -> Settings:
    base = Settings.load(
        {"MQCHAT_DATA_DIR": str(tmp_path), "MONGODB_URI": system.store_uri, "JWT_SECRET": system.jwt_secret,
         "MQCHAT_MQTT_PORT": str(system.mqtt_port), "MQCHAT_WS_PORT": str(system.ws_port)},
        env_file=None,
    )  # fmt: skip
    return base.model_copy(update=overrides)


async def test_auth_rate_limit_answers_429_with_retry_after(system: System, tmp_path: Path) -> None:
    app = create_app(settings_for(system, tmp_path, auth_rate_limit=3))
    async with AsyncTestClient(app) as client:
        statuses = [
            (await client.post("/api/auth/login", json={"email": "x@example.com", "password": "whatever-1"})).status_code
            for _ in range(3)
        ]
        assert statuses == [401, 401, 401]
        limited = await client.post("/api/auth/login", json={"email": "x@example.com", "password": "whatever-1"})
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limited"
        assert int(limited.headers["retry-after"]) > 0
        # other endpoints are not limited by the auth budget
        assert (await client.get("/api/users")).status_code == 401


async def test_cors_allows_only_configured_origins(system: System, tmp_path: Path) -> None:
    app = create_app(settings_for(system, tmp_path, cors_origins=("https://shop.example",)))
    async with AsyncTestClient(app) as client:
        preflight = {"Access-Control-Request-Method": "POST"}
        allowed = await client.options("/api/auth/login", headers={"Origin": "https://shop.example", **preflight})
        assert allowed.headers.get("access-control-allow-origin") == "https://shop.example"
        denied = await client.options("/api/auth/login", headers={"Origin": "https://evil.example", **preflight})
        assert denied.headers.get("access-control-allow-origin") is None


async def test_health_names_the_failing_part(system: System, tmp_path: Path) -> None:
    app = create_app(settings_for(system, tmp_path, mqtt_port=free_port()))  # nothing listens there
    async with AsyncTestClient(app) as client:
        response = await client.get("/api/health")
    assert response.status_code == 503
    assert response.json()["store"] == "ok" and response.json()["broker"] == "unavailable"
    assert response.json()["status"] == "unavailable"


async def test_login_attempts_are_limited_per_account(system: System, tmp_path: Path) -> None:
    app = create_app(settings_for(system, tmp_path, account_login_limit=3))
    async with AsyncTestClient(app) as client:
        for _ in range(3):
            assert (await client.post("/api/auth/login", json={"email": "Target@example.com", "password": "guess-123"})).status_code == 401
        limited = await client.post("/api/auth/login", json={"email": "target@EXAMPLE.com", "password": "guess-123"})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert limited.json()["error"]["code"] == "rate_limited"
        other = await client.post("/api/auth/login", json={"email": "someone-else@example.com", "password": "guess-123"})
        assert other.status_code == 401, "other accounts are not affected"


async def test_rest_sends_are_limited_per_user(system: System, tmp_path: Path) -> None:
    from tests.support import open_conversation, signup

    app = create_app(settings_for(system, tmp_path, send_rate=0.5, send_burst=2))
    async with AsyncTestClient(app) as client:
        alice, bob = await signup(client), await signup(client)  # type: ignore[arg-type]
        cid = (await open_conversation(client, alice, bob))["id"]  # type: ignore[arg-type]
        url = f"/api/conversations/{cid}/messages"
        assert [(await client.post(url, json={"body": "hi"}, headers=alice.headers)).status_code for _ in range(2)] == [201, 201]
        limited = await client.post(url, json={"body": "spam"}, headers=alice.headers)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert (await client.post(url, json={"body": "hi"}, headers=bob.headers)).status_code == 201


async def test_limits_kept_in_the_store_hold_for_every_api_process(system: System, tmp_path: Path) -> None:
    """MQCHAT_RATE_LIMITS=store: what one process allowed counts in another (here one started after it:
    two apps cannot share this test's event loop; tests/test_nats.py runs two at once)."""
    settings = settings_for(system, tmp_path, rate_limits="store", account_login_limit=3, auth_rate_limit=5)
    target, other = f"{secrets.token_hex(5)}@example.com", f"{secrets.token_hex(5)}@example.com"
    async with AsyncTestClient(create_app(settings)) as first:
        for _ in range(3):
            assert (await first.post("/api/auth/login", json={"email": target, "password": "guess-123"})).status_code == 401
    async with AsyncTestClient(create_app(settings)) as second:
        limited = await second.post("/api/auth/login", json={"email": target, "password": "guess-123"})
        assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
        assert int(limited.headers["retry-after"]) >= 1
        assert (await second.post("/api/auth/login", json={"email": other, "password": "guess-123"})).status_code == 401
        # five attempts from this address so far, through either process: the sixth is refused, whatever the account
        refused = await second.post("/api/auth/login", json={"email": other, "password": "guess-123"})
        assert refused.status_code == 429 and "address" in refused.json()["error"]["message"]
        assert (await second.get("/api/users")).status_code == 401, "other paths are not limited by the auth budget"


async def test_security_headers_on_every_response(system: System, tmp_path: Path) -> None:
    app = create_app(settings_for(system, tmp_path))
    async with AsyncTestClient(app) as client:
        for response in (await client.get("/api/health"), await client.get("/api/nope"), await client.get("/api/auth/me")):
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["referrer-policy"] == "no-referrer"
            assert response.headers["x-frame-options"] == "DENY"
            assert "default-src 'none'" in response.headers["content-security-policy"]
            assert "strict-transport-security" not in response.headers
        client_page = await client.get("/client/")
        assert client_page.status_code == 200 and "text/html" in client_page.headers["content-type"]
        csp = client_page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and f"connect-src 'self' ws://localhost:{system.ws_port}" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        root = await client.get("/", follow_redirects=False)
        assert root.status_code in (301, 302, 307) and root.headers["location"].endswith("/client/")
    async with AsyncTestClient(app, base_url="https://chat.example") as tls:
        assert "max-age" in (await tls.get("/api/health")).headers["strict-transport-security"]


async def test_closed_signup_leaves_the_platform_as_the_only_door(system: System, tmp_path: Path, platform) -> None:  # type: ignore[no-untyped-def]
    settings = settings_for(
        system, tmp_path, signup="closed", platform_jwt_secret=platform.secret, platform_claim_user_id="userId",
        platform_role_map=(("buyer", "customer"),),
    )  # fmt: skip
    app = create_app(settings)
    async with AsyncTestClient(app) as client:
        refused = await client.post(
            "/api/auth/signup", json={"email": "new@example.com", "username": "new", "password": "long-enough-1"}
        )
        assert refused.status_code == 403 and "sign-up is closed" in refused.json()["error"]["message"]
        exchanged = await client.post("/api/auth/exchange", json={"token": platform.hs256("closed-door-1", "buyer", iss=None, aud=None)})
        assert exchanged.status_code == 200, exchanged.text
        assert exchanged.json()["user"]["external_id"] == "closed-door-1"
