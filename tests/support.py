"""Test helpers: a real `mqchat up` on free ports, REST users and MQTT clients."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import httpx

from core.security import issue_service_token
from mqchat.store import free_port

START_TIMEOUT = 90.0


@dataclass
class System:
    """A running `mqchat up` with its own data dir and ports."""

    data_dir: Path
    api_port: int
    mqtt_port: int
    ws_port: int
    store_port: int
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MQCHAT_") and k not in ("MONGODB_URI", "JWT_SECRET")}
        env.update(
            MQCHAT_DATA_DIR=str(self.data_dir),
            MQCHAT_API_PORT=str(self.api_port),
            MQCHAT_MQTT_PORT=str(self.mqtt_port),
            MQCHAT_WS_PORT=str(self.ws_port),
            MQCHAT_STORE_PORT=str(self.store_port),
            MQCHAT_AUTH_RATE_LIMIT="100000",
            MQCHAT_LOG_LEVEL="INFO",
        )
        env.update(self.extra_env)
        return env

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def store_uri(self) -> str:
        return os.environ.get("MONGODB_URI") or f"mongodb://127.0.0.1:{self.store_port}"

    @property
    def jwt_secret(self) -> str:
        return (self.data_dir / "jwt_secret").read_text().strip()

    @classmethod
    def on_free_ports(cls, data_dir: Path, **extra_env: str) -> System:
        return cls(data_dir, free_port(), free_port(), free_port(), free_port(), extra_env)

    def start(self) -> None:
        """Start `mqchat up` and wait until /api/health says ok."""
        log = open(self.data_dir.parent / f"{self.data_dir.name}-up.log", "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "mqchat", "up"], env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mqchat up exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.api_url}/api/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("mqchat up did not become healthy")

    def stop(self) -> int:
        """SIGTERM `mqchat up` and return its exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        finally:
            if self.process.poll() is None:
                self.process.kill()

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `mqchat <args>` against this system's data dir."""
        return subprocess.run(
            [sys.executable, "-m", "mqchat", *args], env=self.env, capture_output=True, text=True, timeout=120, check=check
        )

    def service_token(self, account: str = "mqchat-bridge") -> str:
        return issue_service_token(account, self.jwt_secret)


@dataclass
class Account:
    """A signed-up user with the login response."""

    id: str
    email: str
    password: str
    token: str
    role: str
    body: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def signup(api: httpx.AsyncClient, role: str = "customer", **fields: Any) -> Account:
    """Sign up a fresh user over REST."""
    email = f"{secrets.token_hex(5)}@example.com"
    payload = {"email": email, "username": f"user-{email[:6]}", "password": "correct-horse-1", "role": role, **fields}
    response = await api.post("/api/auth/signup", json=payload)
    assert response.status_code == 201, response.text
    body = response.json()
    return Account(body["user"]["id"], email, payload["password"], body["access_token"], role, body)


async def create_staff(system: System, api: httpx.AsyncClient, role: str) -> Account:
    """Create an agent or admin with the CLI and log in over REST."""
    email = f"{role}-{secrets.token_hex(4)}@example.com"
    password = "staff-password-1"
    created = await asyncio.to_thread(system.cli, "user", "create", "--email", email, "--password", password, "--role", role)
    response = await api.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"]["id"] == created.stdout.strip()
    return Account(body["user"]["id"], email, password, body["access_token"], role, body)


def mqtt_client(
    system: System,
    username: str,
    password: str,
    client_id: str | None = None,
    *,
    clean_session: bool = True,
    will: aiomqtt.Will | None = None,
    transport: str = "tcp",
) -> aiomqtt.Client:
    """An MQTT 3.1.1 client of the system's broker (TCP, or WebSocket at /mqtt)."""
    return aiomqtt.Client(
        "127.0.0.1",
        system.ws_port if transport == "websockets" else system.mqtt_port,
        username=username,
        password=password,
        identifier=client_id or f"{username}-{secrets.token_hex(3)}",
        clean_session=clean_session,
        will=will,
        transport=transport,  # type: ignore[arg-type]
        websocket_path="/mqtt" if transport == "websockets" else None,
        protocol=aiomqtt.ProtocolVersion.V311,
        timeout=10,
    )


def user_client(system: System, account: Account, suffix: str = "web", **kwargs: Any) -> aiomqtt.Client:
    """An MQTT client for a signed-up user with client id `<id>-<suffix>`."""
    return mqtt_client(system, account.id, account.token, f"{account.id}-{suffix}", **kwargs)


def service_client(system: System, suffix: str | None = None) -> aiomqtt.Client:
    """An MQTT client with the bridge's service account (publishes events like the bridge does)."""
    return mqtt_client(system, "mqchat-bridge", system.service_token(), f"mqchat-bridge-test-{suffix or secrets.token_hex(3)}")


async def collect(client: aiomqtt.Client, seconds: float, stop_after: int | None = None) -> list[aiomqtt.Message]:
    """Messages the client receives within `seconds` (or until `stop_after` arrived)."""
    received: list[aiomqtt.Message] = []

    async def read() -> None:
        async for message in client.messages:
            received.append(message)
            if stop_after is not None and len(received) >= stop_after:
                return

    try:
        await asyncio.wait_for(read(), seconds)
    except TimeoutError:
        pass
    return received


def granted(result: Any) -> bool:
    """True when a SUBACK result granted the (single) subscription."""
    code = result[0]
    value = code.value if hasattr(code, "value") else code
    return value < 0x80


def payload(message: aiomqtt.Message) -> Any:
    return json.loads(message.payload)  # type: ignore[arg-type]
