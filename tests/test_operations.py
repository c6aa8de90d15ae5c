"""Running mqchat as an operator: the console on a terminal, JSON on a pipe, start failures that say why
in one line and leave a running instance alone, one instance per data directory (issue 17)."""

from __future__ import annotations

import json
import logging
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mqchat.store import free_port
from tests.support import System

FAILS_WITHIN = 30.0


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """A `mqchat up` whose stderr is a file (not a terminal), with an admin created by the CLI."""
    system = System.on_free_ports(tmp_path_factory.mktemp("ops") / "data")
    system.start()
    system.cli("user", "create", "--email", "ops@example.com", "--password", "ops-password-1", "--role", "admin")
    yield system
    assert system.stop() == 0


def up_log(system: System) -> str:
    return (system.data_dir.parent / f"{system.data_dir.name}-up.log").read_text()


def failed_start(system: System) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run `mqchat up` for a start that must fail: its result and how long it took."""
    began = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "mqchat", "up"], env=system.env, capture_output=True, text=True, timeout=FAILS_WITHIN + 30
    )
    return result, time.monotonic() - began


def assert_still_usable(system: System) -> None:
    """The running instance answers over HTTP and its CLI one-off commands still work."""
    assert httpx.get(f"{system.api_url}/api/health", timeout=10).status_code == 200
    token = system.cli("token", "--email", "ops@example.com").stdout.strip()
    me = httpx.get(f"{system.api_url}/api/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert me.status_code == 200 and me.json()["role"] == "admin"


def assert_one_line_cause(result: subprocess.CompletedProcess[str], took: float, expected: str) -> None:
    assert result.returncode != 0
    assert took < FAILS_WITHIN, f"took {took:.1f}s"
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"mqchat: {expected}", result.stderr
    assert "Traceback" not in result.stderr


def test_logs_are_json_lines_on_a_pipe_and_ready_lists_the_addresses(running: System) -> None:
    lines = up_log(running).splitlines()
    entries = [json.loads(line) for line in lines]  # every line is JSON
    [ready] = [e for e in entries if e["event"] == "up.ready"]
    assert ready["web_client"] == f"http://localhost:{running.api_port}/"
    assert ready["openapi"] == f"http://localhost:{running.api_port}/schema"
    assert ready["mqtt_port"] == running.mqtt_port and ready["ws_port"] == running.ws_port
    assert ready["data_dir"] == str(running.data_dir.resolve())
    events = [e["event"] for e in entries]
    # ready only after the bridge reported it consumes and the API answered its health probe
    assert events.index("bridge.connected") < events.index("up.ready")
    assert events.index("publisher.connected") < events.index("up.ready")
    # the start-up probe speaks MQTT: amqtt no longer warns about a connection without CONNECT
    assert not [e for e in entries if "No data to decode" in e["event"]]


def test_a_second_instance_on_the_same_data_dir_refuses_and_changes_nothing(running: System) -> None:
    store_file = running.data_dir / "store.json"
    before = (store_file.read_bytes(), store_file.stat().st_mtime_ns)
    second = System.on_free_ports(running.data_dir)  # other ports: only the data dir is shared
    result, took = failed_start(second)
    pid = running.process.pid if running.process else None
    assert_one_line_cause(result, took, f"another mqchat is already running on this data directory (pid {pid})")
    assert result.stderr.strip().count("\n") == 0, "nothing but the refusal"
    assert (store_file.read_bytes(), store_file.stat().st_mtime_ns) == before
    assert_still_usable(running)


def test_a_taken_port_ends_the_start_naming_the_component(running: System, tmp_path: Path) -> None:
    clash = System.on_free_ports(tmp_path / "data")
    clash.mqtt_port = running.mqtt_port
    result, took = failed_start(clash)
    assert_one_line_cause(result, took, f"broker failed: port {running.mqtt_port} is already in use")
    assert not (clash.data_dir / "store.json").exists(), "stopped before starting anything"
    assert_still_usable(running)


def test_an_unreachable_mongodb_ends_the_start_naming_the_store(running: System, tmp_path: Path) -> None:
    closed = free_port()
    unreachable = System.on_free_ports(tmp_path / "data", MONGODB_URI=f"mongodb://someone:s3cret@127.0.0.1:{closed}/?authSource=admin")
    result, took = failed_start(unreachable)
    assert_one_line_cause(result, took, f"store failed: cannot reach MongoDB at mongodb://127.0.0.1:{closed}/: connection refused")
    assert "s3cret" not in result.stderr
    assert "component_started" not in result.stderr, "no component was started"
    assert_still_usable(running)


def test_every_response_carries_a_request_id(running: System) -> None:
    plain = httpx.get(f"{running.api_url}/api/health", timeout=10)
    assert re.fullmatch(r"[0-9a-f]{32}", plain.headers["x-request-id"])
    other = httpx.get(f"{running.api_url}/api/health", timeout=10)
    assert other.headers["x-request-id"] != plain.headers["x-request-id"]
    kept = httpx.get(f"{running.api_url}/api/health", headers={"X-Request-ID": "edge-7f3a:42"}, timeout=10)
    assert kept.headers["x-request-id"] == "edge-7f3a:42"
    for insane in ("has spaces", "x" * 129, "<script>"):
        replaced = httpx.get(f"{running.api_url}/api/health", headers={"X-Request-ID": insane}, timeout=10)
        assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["x-request-id"])
    missing = httpx.get(f"{running.api_url}/api/no-such-thing", headers={"X-Request-ID": "r-404"}, timeout=10)
    assert missing.status_code == 404 and missing.headers["x-request-id"] == "r-404"
    refused = httpx.get(f"{running.api_url}/api/auth/me", headers={"X-Request-ID": "r-401"}, timeout=10)
    assert refused.status_code == 401 and refused.headers["x-request-id"] == "r-401"


def test_log_lines_written_while_serving_carry_the_request_id(caplog: pytest.LogCaptureFixture) -> None:
    from litestar import Litestar, get
    from litestar.params import FromPath
    from litestar.testing import TestClient

    from api.request_id import install_log_field, request_id_middleware

    @get("/work/{n:int}", sync_to_thread=False)
    def work(n: FromPath[int]) -> dict[str, int]:
        logging.getLogger("mqchat.api.test").info("work.done", extra={"n": n})
        return {"n": n}

    install_log_field()
    app = Litestar([work], logging_config=None)
    app.asgi_handler = request_id_middleware(app.asgi_handler)
    with caplog.at_level(logging.DEBUG), TestClient(app) as client:
        response = client.get("/work/3", headers={"X-Request-ID": "trace-me"})
    [done] = [r for r in caplog.records if r.getMessage() == "work.done"]
    [access] = [r for r in caplog.records if r.getMessage() == "http.request"]
    assert response.headers["x-request-id"] == "trace-me"
    assert done.request_id == "trace-me" and access.request_id == "trace-me"  # type: ignore[attr-defined]
    assert access.route == "/work/{n:int}" and access.status == 200  # type: ignore[attr-defined]
    outside = logging.getLogger("mqchat.api.test").makeRecord("x", logging.INFO, "f", 1, "outside", (), None)
    assert not hasattr(outside, "request_id")


def test_version() -> None:
    result = subprocess.run([sys.executable, "-m", "mqchat", "--version"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and result.stdout.strip() == "mqchat 0.1.0"


def read_until(fd: int, wanted: list[str], timeout: float) -> str:
    """What a terminal shows until every `wanted` text appeared (fails on time-out)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the other side closed
                break
            seen += chunk
            text = seen.decode(errors="replace")
            if all(w in text for w in wanted):
                return text
    raise AssertionError(f"never showed {wanted}: {seen.decode(errors='replace')[-2000:]}")


def test_a_terminal_gets_a_banner_and_coloured_lines(tmp_path: Path) -> None:
    system = System.on_free_ports(tmp_path / "data")
    main, secondary = pty.openpty()
    env = {**system.env, "COLUMNS": "160", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "mqchat", "up"], env=env, stdin=secondary, stdout=secondary, stderr=secondary, close_fds=True
    )
    os.close(secondary)
    try:
        shown = read_until(main, ["is ready", f"http://localhost:{system.api_port}/schema", "Ctrl-C"], 90)
        assert f"http://localhost:{system.api_port}/" in shown
        assert f"port {system.mqtt_port}" in shown and f"port {system.ws_port}" in shown
        assert "embedded (amqtt)" in shown and "nx-27017" in shown
        assert "\x1b[" in shown, "coloured"
        assert '{"ts"' not in shown, "no JSON lines on a terminal"
        assert "store.started" in shown and "bridge.connected" in shown, "children's lines are shown too"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            deadline = time.monotonic() + 60
            while process.poll() is None and time.monotonic() < deadline:  # keep reading: a full terminal blocks writers
                if select.select([main], [], [], 0.2)[0]:
                    try:
                        os.read(main, 65536)
                    except OSError:
                        break
            assert process.wait(10) == 0
        finally:
            os.close(main)
