"""The `mqchat` command as an operator uses it: production refusal, offline user admin, restarts."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import httpx
import jwt

from tests.support import System


def test_production_refuses_default_secret(fresh_data_dir: Path) -> None:
    system = System.on_free_ports(fresh_data_dir, MQCHAT_ENV="production", JWT_SECRET="change-me")
    result = subprocess.run(
        [sys.executable, "-m", "mqchat", "up"], env=system.env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "JWT_SECRET" in result.stderr
    assert not fresh_data_dir.exists() or not any(fresh_data_dir.iterdir()), "nothing may have been started"


def test_users_and_data_survive_restarts(fresh_data_dir: Path) -> None:
    system = System.on_free_ports(fresh_data_dir)
    # user admin works with nothing running: the CLI starts a private store for the command
    created = system.cli("user", "create", "--email", "Root@Example.com", "--password", "root-password-1", "--role", "admin")
    admin_id = created.stdout.strip()
    token = system.cli("token", "--email", "root@example.com").stdout.strip()
    assert token.count(".") == 2 and "\n" not in token
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == admin_id

    duplicate = system.cli("user", "create", "--email", "root@example.com", "--password", "another-pass-1", check=False)
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr
    unknown = system.cli("token", "--email", "nobody@example.com", check=False)
    assert unknown.returncode == 1 and unknown.stdout == ""

    system.start()
    try:
        me = httpx.get(f"{system.api_url}/api/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["role"] == "admin"
        signup = httpx.post(
            f"{system.api_url}/api/auth/signup",
            json={"email": "kept@example.com", "username": "kept", "password": "kept-password-1"},
        )
        assert signup.status_code == 201
        # the CLI finds the running store and sees the new user
        assert system.cli("token", "--email", "kept@example.com").stdout.strip()
    finally:
        assert system.stop() == 0

    system.start()
    try:
        login = httpx.post(f"{system.api_url}/api/auth/login", json={"email": "kept@example.com", "password": "kept-password-1"})
        assert login.status_code == 200
        # tokens issued before the restart stay valid: the development secret is kept in the data dir
        me = httpx.get(f"{system.api_url}/api/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200
    finally:
        assert system.stop() == 0


def test_killing_up_leaves_no_orphans(fresh_data_dir: Path) -> None:
    import socket
    import time

    system = System.on_free_ports(fresh_data_dir)
    system.start()
    assert system.process is not None
    system.process.kill()  # SIGKILL: no chance to stop its children itself
    system.process.wait()

    def listening(port: int) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    ports = (system.api_port, system.mqtt_port, system.store_port)
    deadline = time.monotonic() + 20
    while any(listening(port) for port in ports) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(listening(port) for port in ports), "children must end with mqchat up"


def test_every_component_raises_its_open_files_limit(fresh_data_dir: Path) -> None:
    """A broker connection is an open file: a component started under a soft limit of 256 runs with the hard limit
    (mqchat.runtime; `mqchat up`'s components and the Mosquitto it launches inherit it)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    code = (
        "import resource\nfrom core.settings import Settings\nfrom mqchat.runtime import run_until_signalled\n"
        "async def main(stop):\n    print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n"
        "run_until_signalled(Settings.load(), main)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env={**System.on_free_ports(fresh_data_dir).env}, capture_output=True, text=True, timeout=60,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard)), check=True,
    )  # fmt: skip
    assert int(result.stdout.strip().splitlines()[-1]) == min(hard, 1 << 20) > 256
