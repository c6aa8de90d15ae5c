"""Test helpers: a real `mqchat up` on free ports, REST users and MQTT clients."""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiomqtt
import httpx

from core import topics
from core.security import broker_password, issue_service_token
from mqchat.probes import NotReady, check_port_free
from mqchat.store import free_port

START_TIMEOUT = 150.0  # a NATS cluster creates its MQTT streams first
NATS_NODES = 3
NATS_API_PROCESSES = 2  # `mqchat up` on NATS runs two API processes, on api_port and api_port + 1


@dataclass
class System:
    """A running `mqchat up` with its own data dir and ports."""

    data_dir: Path
    api_port: int
    mqtt_port: int
    ws_port: int
    store_port: int
    extra_env: dict[str, str] = field(default_factory=dict)
    broker: str = "amqtt"  # or "mosquitto": `mqchat mosquitto` + MQCHAT_BROKER=external; or "nats": a 3-node cluster
    process: subprocess.Popen[bytes] | None = None
    mosquitto: subprocess.Popen[bytes] | None = None
    nats_port: int = 0  # "nats": node i uses each of mqtt_port, ws_port, nats_port, nats_cluster_port + i
    nats_cluster_port: int = 0

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
            MQCHAT_ACCOUNT_LOGIN_LIMIT="100000",
            MQCHAT_SEND_RATE="100000",
            MQCHAT_SEND_BURST="100000",
            # cheap password hashes: the suite signs up thousands of users (the default argon2id costs ~0.2 CPU-s
            # each); tests/test_settings.py checks the default and production's minimum
            MQCHAT_ARGON2_MEMORY_KIB="1024",
            MQCHAT_ARGON2_TIME_COST="1",
            MQCHAT_ARGON2_PARALLELISM="1",
            MQCHAT_LOG_LEVEL="INFO",
        )
        if self.broker == "mosquitto":
            env.update(MQCHAT_BROKER="external", MQTT_HOST="127.0.0.1", MQTT_PORT=str(self.mqtt_port))
        if self.broker == "nats":
            env.update(MQCHAT_BROKER="nats", MQCHAT_NATS_NODES=str(NATS_NODES), MQCHAT_NATS_PORT=str(self.nats_port),
                       MQCHAT_NATS_CLUSTER_PORT=str(self.nats_cluster_port))  # fmt: skip
        env.update(self.extra_env)
        return env

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def api_processes(self) -> int:
        return NATS_API_PROCESSES if self.broker == "nats" else 1

    @property
    def bridge_workers(self) -> int:
        """How many bridge workers `mqchat up` runs here (two on NATS unless told; one otherwise)."""
        return int(self.extra_env.get("MQCHAT_BRIDGE_WORKERS", 2 if self.broker == "nats" else 1))

    def api_url_of(self, instance: int) -> str:
        """The URL of API process `instance` (0, 1, ...: MQCHAT_API_PORT + instance)."""
        return f"http://127.0.0.1:{self.api_port + instance}"

    @property
    def store_uri(self) -> str:
        return os.environ.get("MONGODB_URI") or f"mongodb://127.0.0.1:{self.store_port}"

    def store_uri_from_file(self) -> str:
        """The URI of the embedded store recorded in the data dir (split deployments)."""
        return f"mongodb://127.0.0.1:{json.loads((self.data_dir / 'store.json').read_text())['port']}"

    @property
    def jwt_secret(self) -> str:
        return (self.data_dir / "jwt_secret").read_text().strip()

    @classmethod
    def on_free_ports(cls, data_dir: Path, broker: str = "amqtt", **extra_env: str) -> System:
        if broker == "nats":  # one block, so the four runs of node ports and the API ports cannot overlap
            first = free_ports(4 * NATS_NODES + NATS_API_PROCESSES)
            mqtt, ws, nats, routes, api = (first + NATS_NODES * run for run in range(5))
            return cls(data_dir, api, mqtt, ws, free_port(), extra_env, broker, nats_port=nats, nats_cluster_port=routes)
        return cls(data_dir, free_port(), free_port(), free_port(), free_port(), extra_env, broker)

    @property
    def nodes(self) -> int:
        """How many broker nodes serve MQTT here: the cluster's, or the one broker."""
        return NATS_NODES if self.broker == "nats" else 1

    def node(self, number: int) -> System:
        """This system as seen through broker node `number` modulo `nodes` (its MQTT and WebSocket ports); node 0 is
        the system itself, and so is every node of a single broker: a scenario that spreads its devices over nodes
        runs unchanged there."""
        number %= self.nodes
        return replace(self, mqtt_port=self.mqtt_port + number, ws_port=self.ws_port + number)

    def start_mosquitto(self) -> None:
        """`mqchat mosquitto` on this system's ports, ready when its port answers and it is provisioned."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.mosquitto = spawn_component(self, "mosquitto")
        wait_until(lambda: _logged(self, "mosquitto", "mosquitto.ready"), 30, "mosquitto")

    def stop_mosquitto(self) -> None:
        assert self.mosquitto is not None
        self.mosquitto.send_signal(signal.SIGTERM)
        self.mosquitto.wait(30)
        _log_path(self, "mosquitto").rename(_log_path(self, f"mosquitto-{time.monotonic_ns()}"))

    def start(self) -> None:
        """Start `mqchat up` (after `mqchat mosquitto` for that broker) and wait until /api/health says ok."""
        if self.broker == "mosquitto" and self.mosquitto is None:
            self.start_mosquitto()
        log = open(self.data_dir.parent / f"{self.data_dir.name}-up.log", "ab")  # noqa: SIM115 - the child writes it
        self.process = subprocess.Popen([sys.executable, "-m", "mqchat", "up"], env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mqchat up exited with {self.process.returncode}")
            try:
                if all(httpx.get(f"{self.api_url_of(i)}/api/health", timeout=2).status_code == 200 for i in range(self.api_processes)):
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
            if self.mosquitto is not None:
                self.stop_mosquitto()
                self.mosquitto = None

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `mqchat <args>` against this system's data dir."""
        return subprocess.run(
            [sys.executable, "-m", "mqchat", *args], env=self.env, capture_output=True, text=True, timeout=120, check=check
        )

    def service_token(self, account: str = "mqchat-bridge") -> str:
        return issue_service_token(account, self.jwt_secret)

    def service_password(self, account: str = "mqchat-bridge") -> str:
        """What a service account presents to this system's broker."""
        if self.broker == "mosquitto":
            return broker_password(self.jwt_secret, account)
        return self.service_token(account)


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

    @property
    def mqtt_password(self) -> str:
        """The broker password from the login's `mqtt` block (the token on the embedded broker)."""
        return str(self.body["mqtt"]["password"])


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


def free_ports(count: int) -> int:
    """The first of `count` consecutive TCP ports on 127.0.0.1 that are all free right now, below the
    kernel's ephemeral range (where outgoing connections would take them between this check and the bind)."""
    for _ in range(200):
        first = random.randint(20_000, 32_000 - count)
        try:
            for port in range(first, first + count):
                check_port_free("127.0.0.1", port)
            return first
        except NotReady:
            continue
    raise RuntimeError(f"no {count} consecutive free ports found")


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
    return mqtt_client(system, account.id, account.mqtt_password, f"{account.id}-{suffix}", **kwargs)


def drop(client: aiomqtt.Client) -> None:
    """End a connected client's connection without DISCONNECT, as a crash or a lost network does: the broker sends its Will."""
    client._client.socket().shutdown(socket.SHUT_RDWR)


def service_client(system: System, suffix: str | None = None) -> aiomqtt.Client:
    """An MQTT client with the bridge's service account (publishes events like the bridge does)."""
    return mqtt_client(system, "mqchat-bridge", system.service_password(), f"mqchat-bridge-test-{suffix or secrets.token_hex(3)}")


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


async def open_conversation(api: httpx.AsyncClient, creator: Account, *others: Account, kind: str = "direct", **extra: Any) -> dict[str, Any]:
    """Create (or get) a conversation over REST."""
    response = await api.post(
        "/api/conversations",
        json={"participant_ids": [o.id for o in others], "kind": kind, **extra},
        headers=creator.headers,
    )
    assert response.status_code in (200, 201), response.text
    return response.json()


class Inbox:
    """A connected device of a user that records everything arriving on its subscriptions."""

    def __init__(self, client: aiomqtt.Client, subscriptions: list[str]) -> None:
        self.client = client
        self.subscriptions = subscriptions
        self.messages: list[aiomqtt.Message] = []
        self._task: asyncio.Task[None] | None = None
        self._arrived = asyncio.Condition()

    async def __aenter__(self) -> Inbox:
        await self.client.__aenter__()
        for topic_filter in self.subscriptions:
            assert granted(await self.client.subscribe(topic_filter, qos=1)), topic_filter
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self.client.__aexit__(None, None, None)

    async def _read(self) -> None:
        async for message in self.client.messages:
            async with self._arrived:
                self.messages.append(message)
                self._arrived.notify_all()

    def events(self, event_type: str | None = None, topic: str | None = None) -> list[dict[str, Any]]:
        """Decoded JSON payloads received so far, optionally of one `type` and/or topic."""
        found = []
        for message in self.messages:
            if topic is not None and message.topic.value != topic:
                continue
            try:
                body = payload(message)
            except ValueError:
                continue
            if event_type is None or (isinstance(body, dict) and body.get("type") == event_type):
                found.append(body)
        return found

    async def wait_for(self, count: int, event_type: str | None = None, topic: str | None = None, timeout: float = 10) -> list[dict[str, Any]]:
        """Wait until `count` matching events arrived; returns them (fails the test on time-out)."""
        async def enough() -> None:
            async with self._arrived:
                await self._arrived.wait_for(lambda: len(self.events(event_type, topic)) >= count)

        try:
            await asyncio.wait_for(enough(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"expected {count} {event_type or 'events'}, got {self.events(event_type, topic)}"
            ) from None
        return self.events(event_type, topic)


async def send_numbered(system: System, sender: Account, conversation_id: str, count: int, prefix: str, then: str | None = None) -> None:
    """`count` chat messages in a row over MQTT from a device of their own (`client_msg_id` `<prefix>-<n>`,
    body `<prefix> message <n>`), and `then` after them if given; not waiting for their acknowledgements."""
    bodies = [f"{prefix} message {n}" for n in range(count)] + ([then] if then is not None else [])
    async with user_client(system, sender, f"send-{secrets.token_hex(3)}") as client:
        for n, body in enumerate(bodies):
            request = {"conversation_id": conversation_id, "client_msg_id": f"{prefix}-{n}", "body": body}
            await client.publish(topics.user_outbox(sender.id, "send"), json.dumps(request), qos=1)


def device(system: System, account: Account, suffix: str = "web", *subscriptions: str, **kwargs: Any) -> Inbox:
    """A device of the user subscribed (QoS 1) to its inbox and `subscriptions`; use with `async with`."""
    return Inbox(user_client(system, account, suffix, **kwargs), [f"chat/users/{account.id}/inbox", *subscriptions])


_DEVICE_SCRIPT = """
import json, sys, time
import paho.mqtt.client as mqtt
host, port, user, token, client_id = sys.argv[1:6]
presence = f"chat/users/{user}/outbox/presence/{client_id}"
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
c.username_pw_set(user, token)
c.will_set(presence, json.dumps({"status": "offline"}), qos=1, retain=True)
c.connect(host, int(port), keepalive=30)
c.loop_start()
c.publish(presence, json.dumps({"status": "online"}), qos=1, retain=True).wait_for_publish(10)
print("online", flush=True)
time.sleep(600)
"""


async def crashable_device(system: System, account: Account, suffix: str) -> asyncio.subprocess.Process:
    """A device in its own process that announces itself online (with a Will); kill it to simulate a crash."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _DEVICE_SCRIPT, "127.0.0.1", str(system.mqtt_port), account.id, account.mqtt_password,
        f"{account.id}-{suffix}", stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 20)
    assert line.strip() == b"online"
    return process


@contextmanager
def running(system: System) -> Iterator[System]:
    """`system` started (`mqchat up`, healthy), and stopped afterwards, which must end cleanly (exit 0)."""
    system.start()
    yield system
    assert system.stop() == 0, "mqchat up did not stop cleanly"


@contextmanager
def split_deployment(
    system: System, components: tuple[str, ...] = ("broker", "api", "bridge")
) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """The store and `components` of `system` as separate processes (a split deployment), stopped in reverse order."""
    system.data_dir.mkdir(parents=True)
    processes = {"store": spawn_component(system, "store")}
    wait_until(lambda: (system.data_dir / "store.json").exists(), 30, "the store")
    for name in components:
        processes[name] = spawn_component(system, name)
    wait_until(lambda: healthy(system), 60, "the api and broker")
    try:
        yield processes
    finally:
        for name in reversed(list(processes)):
            if processes[name].poll() is None:
                processes[name].send_signal(signal.SIGTERM)
                processes[name].wait(30)


STORED_PROBE_INTERVAL = 0.002  # between probes of kill_bridge_as_stored: shorter than storing and publishing a batch


async def stored_up_to(messages: Any, cid: str, count: int) -> bool:
    """True once message `count` of conversation `cid` is stored (`messages`: the store's collection).

    Messages are numbered 1, 2, ... in order, so one look-up of the (conversation_id, seq) index answers:
    ~2 ms of the store's CPU where counting 2,000 messages takes ~60 ms (nx-27017, measured)."""
    return await messages.find_one({"conversation_id": cid, "seq": {"$gte": count}}, projection={"_id": 1}) is not None


async def kill_bridge_as_stored(
    system: System, processes: dict[str, subprocess.Popen[bytes]], messages: Any, cid: str, total: int,
    fractions: tuple[float, ...],
) -> list[int]:  # fmt: skip
    """SIGKILL the split system's bridge right after each fraction of `total` messages of `cid` is stored
    (`messages`: the store's collection), restarting it each time; how many were stored at each kill.

    Probed every few ms, the kill lands within a batch's store-then-publish window: the batch is stored,
    its events (written to the broker after the webhook record's round trip) are not all out yet."""
    killed_at = []
    for fraction in fractions:
        while not await stored_up_to(messages, cid, math.ceil(total * fraction)):
            await asyncio.sleep(STORED_PROBE_INTERVAL)
        processes["bridge"].kill()
        processes["bridge"].wait()
        killed_at.append(await messages.count_documents({"conversation_id": cid}))
        processes["bridge"] = spawn_component(system, "bridge")
    return killed_at


async def wait_stored(messages: Any, cid: str, count: int, timeout: float) -> None:
    """Wait until message `count` of conversation `cid` is stored; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not await stored_up_to(messages, cid, count):
        if time.monotonic() > deadline:
            raise AssertionError(f"message {count} of {cid} not stored within {timeout} s")
        await asyncio.sleep(0.1)


def worker_pid(system: System, name: str) -> int:
    """The pid `mqchat up` last logged for the component `name` (e.g. bridge-2)."""
    return [entry["pid"] for entry in logged_events(system, "up", "up.component_started") if entry["component"] == name][-1]


def spawn_component(system: System, component: str) -> subprocess.Popen[bytes]:
    """Start one component (`mqchat store|broker|bridge|api`) of a split deployment on the system's data dir."""
    log = open(system.data_dir.parent / f"{system.data_dir.name}-{component}.log", "ab")  # noqa: SIM115 - the child writes it
    return subprocess.Popen([sys.executable, "-m", "mqchat", component], env=system.env, stdout=log, stderr=log)


def _log_path(system: System, component: str) -> Path:
    return system.data_dir.parent / f"{system.data_dir.name}-{component}.log"


def logged_events(system: System, component: str, event: str) -> list[dict[str, Any]]:
    """The entries of `event` in the log of a split deployment's `component` (all its restarts), in order."""
    path = _log_path(system, component)
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    return [json.loads(line) for line in lines if f'"event": "{event}"' in line]


def _logged(system: System, component: str, event: str) -> bool:
    path = _log_path(system, component)
    return path.exists() and event in path.read_text(errors="replace")


def wait_until(condition: Any, timeout: float, what: str) -> None:
    """Poll a synchronous condition until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


async def eventually(check: Callable[[], Awaitable[Any]], what: str | Callable[[], str] = "the condition", timeout: float = 20) -> Any:
    """Poll an async check every 0.05 s until it returns a truthy value and return that value; fail the test
    after `timeout` seconds, saying `what` it waited for."""
    deadline = time.monotonic() + timeout
    while not (value := await check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
        await asyncio.sleep(0.05)
    return value


async def refused(client: aiomqtt.Client) -> bool:
    """True when the broker refuses the client's CONNECT."""
    try:
        async with client:
            return False
    except aiomqtt.MqttError:
        return True


def healthy(system: System) -> bool:
    """True when the system's /api/health answers 200."""
    try:
        return httpx.get(f"{system.api_url}/api/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
