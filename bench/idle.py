"""Idle connections: how many a broker holds, and what each costs it in resident memory.

    python -m bench --measure idle --broker amqtt --connections 5000 --runs 3
    python -m bench --measure idle --broker mosquitto --connections 10000 --runs 3

Every connection is what an idle web or app client is to the broker: an authenticated
CONNECT (MQTT 3.1.1, clean session, keep-alive 60 s, the user's token as password, a
client id of its own), then a QoS 1 SUBSCRIBE to the user's inbox; after that it only
answers keep-alive (a PINGREQ every 30 s). They are opened `STEP` at a time from one
address: below the embedded broker's MQCHAT_PENDING_CONNECTIONS_PER_ADDRESS (64
connections not yet through CONNECT and authentication).

The generator speaks MQTT itself over plain asyncio transports (~2 KB a connection in
this process, against ~100 KB for an aiomqtt client): 10,000 aiomqtt clients would take
this process a minute and a GB, and the bytes the broker sees are the same.

Cost per connection = (broker RSS with every connection open and settled - broker RSS
before the first) / connections held. Each run of `--measure idle` starts a fresh
system: a broker reuses the memory that closed connections leave behind, so a second
batch on the same broker reads as nearly free. The report gives each run, with the
load average before it (runs started above bench.calibration.MAX_LOAD are flagged),
and the median of the unflagged runs (of all, when every run is flagged).
"""

from __future__ import annotations

import asyncio
import statistics
import struct
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from bench import calibration
from bench.rounds import components
from mqchat.runtime import raise_open_files_limit
from tests.raw_mqtt import CONNECT, PINGREQ, SUBSCRIBE, connect_body, packet, string
from tests.support import Account, System, signup

STEP = 50  # connections opened at once
KEEP_ALIVE = 60  # seconds, as a browser client (mqtt.js) asks
PING_EVERY = 30.0
SETTLE = 2.0  # seconds after the last SUBACK before the broker's memory is read
CONNECT_TIMEOUT = 30.0


def connect_packet(client_id: str, username: str, password: str, keep_alive: int = KEEP_ALIVE) -> bytes:
    """An MQTT 3.1.1 CONNECT: clean session, user name and password, no Will."""
    return packet(CONNECT, 0, connect_body(client_id, username, password, keep_alive=keep_alive))


def subscribe_packet(topic: str, packet_id: int = 1) -> bytes:
    """A SUBSCRIBE of one filter at QoS 1."""
    return packet(SUBSCRIBE, 2, struct.pack("!H", packet_id) + string(topic) + b"\x01")


CONNACK_OK = b"\x20\x02\x00\x00"
SUBACK_QOS1 = b"\x90\x03\x00\x01\x01"
PING = packet(PINGREQ, 0, b"")


class IdleClient(asyncio.Protocol):
    """One idle MQTT client: `ready` resolves once CONNACK and SUBACK came (or fails); later bytes are dropped."""

    def __init__(self, hello: bytes) -> None:
        self._hello = hello
        self._received = b""
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self._hello)

    def data_received(self, data: bytes) -> None:
        if self.ready.done():
            return  # PINGRESPs
        self._received += data
        expected = CONNACK_OK + SUBACK_QOS1
        if not expected.startswith(self._received[: len(expected)]):
            self.ready.set_exception(ConnectionError(f"refused: {self._received.hex()}"))
        elif len(self._received) >= len(expected):
            self.ready.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed after {self._received.hex() or 'nothing'}: {exc}"))
        self.transport = None


async def _open(port: int, account: Account, index: int, topic: str) -> IdleClient:
    loop = asyncio.get_running_loop()
    client = IdleClient(connect_packet(f"{account.id}-idle-{index}", account.id, account.mqtt_password) + subscribe_packet(topic))
    await loop.create_connection(lambda: client, "127.0.0.1", port)
    await asyncio.wait_for(client.ready, CONNECT_TIMEOUT)
    return client


async def _keep_alive(clients: list[IdleClient]) -> None:
    while True:
        await asyncio.sleep(PING_EVERY)
        for client in clients:
            if client.transport is not None:
                client.transport.write(PING)


async def hold_idle(system: System, account: Account, broker: psutil.Process, target: int, step: int = STEP) -> dict:
    """Open up to `target` idle connections of `account`, `step` at a time (stopping at the first failure);
    the broker's memory per connection."""
    limit = raise_open_files_limit(target + 256)
    topic = f"chat/users/{account.id}/inbox"
    baseline = broker.memory_info().rss
    clients: list[IdleClient] = []
    pinging = asyncio.create_task(_keep_alive(clients))
    error, started = None, time.perf_counter()
    try:
        while len(clients) < target and error is None:
            results = await asyncio.gather(
                *(_open(system.mqtt_port, account, len(clients) + n, topic) for n in range(min(step, target - len(clients)))),
                return_exceptions=True,
            )
            for result in results:
                if isinstance(result, BaseException):
                    error = error or repr(result)
                else:
                    clients.append(result)
        connect_s = time.perf_counter() - started
        await asyncio.sleep(SETTLE)
        rss = broker.memory_info().rss
        still_open = sum(1 for client in clients if client.transport is not None)
    finally:
        pinging.cancel()
        for client in clients:
            if client.transport is not None:
                client.transport.close()
    held = len(clients)
    return {"target": target, "held": held, "still_open": still_open, "error": error, "open_files_limit": limit,
            "connects_per_s": round(held / max(connect_s, 1e-9), 1), "rss_before_mb": round(baseline / 2**20, 1),
            "rss_mb": round(rss / 2**20, 1), "kb_per_connection": round((rss - baseline) / 1024 / max(held, 1), 2)}  # fmt: skip


async def measure_idle(broker: str, target: int, runs: int) -> dict:
    """`runs` fresh systems, each holding up to `target` idle connections; every run and the median."""
    report: dict = {"target": target, "runs": []}
    for run in range(runs):
        workdir = Path(tempfile.mkdtemp(prefix="mqchat-bench-idle-"))
        system = System.on_free_ports(workdir / "data", broker=broker)
        system.start()
        try:
            async with httpx.AsyncClient(base_url=system.api_url, timeout=60) as api:
                account = await signup(api)
            load_before = calibration.load_average()
            result = await hold_idle(system, account, components(system)["broker"], target)
        finally:
            system.stop()
        result.update(run=run, load_before=load_before, flags=calibration.round_flags(load_before))
        report["runs"].append(result)
    chosen = calibration.comparable(report["runs"])
    report.update(
        median_of="unflagged" if chosen is not report["runs"] else "all",
        kb_per_connection=round(statistics.median(run["kb_per_connection"] for run in chosen), 2),
        held=min(run["held"] for run in report["runs"]),
    )
    return report


def markdown(report: dict) -> str:
    """One row per run, then the median."""
    lines = [
        f"# Idle connections ({report['broker']}, {report['started']})", "",
        f"Target {report['target']} connections per run, each run on a fresh system; "
        f"broker RSS growth / connections held.", "",
        "| run | load before | flags | held | still open at the reading | connects/s | broker RSS MB before / after | KB per connection | error |",
        "|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for row in report["runs"]:
        lines.append(
            f"| {row['run'] + 1} | {row['load_before']} | {'; '.join(row['flags']) or '-'} | {row['held']} | {row['still_open']} "
            f"| {row['connects_per_s']} | {row['rss_before_mb']} / {row['rss_mb']} | {row['kb_per_connection']} | {row['error'] or '-'} |"
        )
    flagged = "" if report["median_of"] == "unflagged" else " (every run flagged: the median of all, not quotable)"
    lines += ["", f"Held in every run: **{report['held']}**; median KB per connection: **{report['kb_per_connection']}**{flagged}"]
    return "\n".join(lines) + "\n"
