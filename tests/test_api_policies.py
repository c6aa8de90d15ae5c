"""API policies that need their own configuration: auth rate limit, CORS. The app runs in-process on the real store."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from litestar.testing import AsyncTestClient

from api.app import create_app
from core.settings import Settings
from mqchat.store import free_port
from tests.support import System


def settings_for(system: System, tmp_path: Path, **overrides: object) -> Settings:
    base = Settings.load({"MQCHAT_DATA_DIR": str(tmp_path), "MONGODB_URI": system.store_uri}, env_file=None)
    return dataclasses.replace(base, **overrides)


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
