"""A flood at the broker's limit: is anything the broker acknowledged lost, and does it push back instead?

Closed loop, not a fixed rate: every publisher keeps `window` QoS 1 PUBLISHes
unacknowledged and sends the next one as soon as a PUBACK comes back, for
`duration` seconds, so the broker (or whatever is slowest) sets the pace. Every
message carries its publisher and a sequence number; the subscribers record
every (publisher, number) that arrives, and once the flood stops they are given
as long as arrivals keep coming. Then, counted on the subscriber side:

- `missing`: acknowledged (PUBACK received) and never delivered: must be 0;
- `duplicates`: delivered more than once (allowed by QoS 1, counted);
- `backlog_at_stop`: acknowledged but not yet delivered when the flood stopped:
  what the broker took on without pushing back (a broker that applies
  back-pressure delays its PUBACKs and keeps this bounded), with the
  broker's resident memory before and at the stop.

The receivers are persistent sessions (clean session 0), as chat clients keep: a
receiver too far behind is closed by the embedded broker (MQCHAT_BACKLOG_LIMIT
deliveries waiting: a slow user must not hold the broker's memory or anyone's
messages), its waiting deliveries go to its offline queue, and the receiver
reconnects to them at once (`receiver_reconnects`). A clean session's would be
gone with the connection, by MQTT's definition; a client catches up through history.
Their sessions are wiped after each flood.

Paths: `raw` publishes straight to the receivers' inboxes with a service account
(the broker alone); `e2e` publishes users' outbox requests, stored and fanned out
by the bridge, and counts the receiver's `message.created` events.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import psutil

from bench import calibration
from bench.lean_mqtt import LeanClient, LeanMqttError
from bench.rounds import components, connected, cpu_use, make_pairs
from core import topics
from tests.support import System

STALL = 20.0  # after the flood, wait while deliveries keep coming; stop after this long without one (a 45 s flood paused 5 s)


@dataclass
class FloodResult:
    path: str
    duration_s: float
    window: int
    publishers: int
    sent: int = 0
    acknowledged: int = 0
    unacknowledged: int = 0  # PUBLISHes whose PUBACK never came (failed or still pending when given up)
    delivered: int = 0  # distinct (publisher, number) received
    missing: int = 0  # acknowledged, never delivered
    duplicates: int = 0
    receiver_reconnects: int = 0  # receivers closed by the broker (too far behind) that reconnected to their session
    backlog_at_stop: int = 0  # acknowledged but not yet delivered when the flood stopped
    ack_rate: float = 0.0  # PUBACKs per second during the flood
    delivery_rate: float = 0.0  # deliveries per second, from the start to the last delivery
    drain_s: float = 0.0  # from the flood's stop to the last delivery
    broker_rss_mb: dict[str, float] = field(default_factory=dict)  # before, at the stop, after the drain
    missing_examples: list[str] = field(default_factory=list)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    machine_busy: float = 0.0  # share of the machine's CPU in use during the round, everyone's
    load_before: float = 0.0
    flags: list[str] = field(default_factory=list)
    run: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


async def _publisher(client: LeanClient, index: int, topic_of, payload_of, window: int, stop_at: float,  # type: ignore[no-untyped-def]
                     acked: set[tuple[int, int]], sent: list[int]) -> None:  # fmt: skip
    """Publish numbered messages with at most `window` unacknowledged until `stop_at`; record every PUBACKed one."""
    slots = asyncio.Semaphore(window)
    pending: set[asyncio.Task[None]] = set()

    async def one(number: int) -> None:
        try:
            await client.send(topic_of(index), payload_of(index, number).encode())
            acked.add((index, number))
        except LeanMqttError:
            pass  # not acknowledged: not counted as missing
        finally:
            slots.release()

    number = 0
    while time.perf_counter() < stop_at:
        await slots.acquire()
        task = asyncio.create_task(one(number))
        pending.add(task)
        task.add_done_callback(pending.discard)
        number += 1
    sent[index] = number
    await asyncio.gather(*pending, return_exceptions=True)


async def _subscriber(receivers: list[LeanClient], index: int, e2e: bool, seen: Counter, arrivals: list[float], result: FloodResult) -> None:
    """Record every arrival at receiver `index`; reconnect to its session whenever the broker closes it
    (`receivers[index]` is the client in use)."""
    while True:
        try:
            async for message in receivers[index].messages:
                event = json.loads(message.payload)
                if event.get("type") != ("message.created" if e2e else "flood"):
                    continue
                body = event["message"]["body"] if e2e else event["body"]
                publisher, number = body.split("|")
                seen[(int(publisher), int(number))] += 1
                arrivals.append(time.perf_counter())
        except LeanMqttError:
            result.receiver_reconnects += 1
            while True:
                receivers[index] = receivers[index].again(clean_session=False)
                try:
                    await receivers[index].__aenter__()
                    break
                except (LeanMqttError, OSError):
                    await asyncio.sleep(0.2)


async def _wipe_sessions(receivers: list[LeanClient]) -> None:
    """Close the receivers and wipe their persistent sessions (a later flood's messages must not queue for them)."""
    for client in receivers:
        await client.__aexit__()
        async with client.again(clean_session=True):
            pass


async def run_flood(
    pairs: list[tuple[LeanClient, str, str, LeanClient, str]], duration: float, window: int, e2e: bool, broker: psutil.Process
) -> FloodResult:
    """pairs: (publisher, sender id, conversation id, receiver client subscribed to its inbox, receiver id), connected."""
    result = FloodResult("e2e" if e2e else "raw", duration, window, len(pairs))
    seen: Counter = Counter()
    arrivals: list[float] = []
    acked: set[tuple[int, int]] = set()
    sent = [0] * len(pairs)
    run_tag = time.monotonic_ns()

    def topic_of(index: int) -> str:
        _, sender_id, _, _, receiver_id = pairs[index]
        return topics.user_outbox(sender_id, "send") if e2e else topics.user_inbox(receiver_id)

    def payload_of(index: int, number: int) -> str:
        body = f"{index}|{number}"
        if e2e:
            return json.dumps({"conversation_id": pairs[index][2], "client_msg_id": f"f{run_tag}-{index}-{number}", "body": body})
        return json.dumps({"type": "flood", "body": body})

    result.broker_rss_mb["before"] = round(broker.memory_info().rss / 2**20, 1)
    clients = [pair[3] for pair in pairs]
    receivers = [asyncio.create_task(_subscriber(clients, n, e2e, seen, arrivals, result)) for n in range(len(pairs))]
    start = time.perf_counter()
    stop_at = start + duration
    await asyncio.gather(*(_publisher(pair[0], n, topic_of, payload_of, window, stop_at, acked, sent) for n, pair in enumerate(pairs)))
    stopped = time.perf_counter()
    result.broker_rss_mb["at_stop"] = round(broker.memory_info().rss / 2**20, 1)
    result.backlog_at_stop = len(acked - set(seen))
    delivered = -1
    while len(seen) > delivered and not acked <= set(seen):
        delivered = len(seen)
        await asyncio.sleep(STALL)
    for task in receivers:
        task.cancel()
    await asyncio.gather(*receivers, return_exceptions=True)
    await _wipe_sessions(clients)
    result.broker_rss_mb["after_drain"] = round(broker.memory_info().rss / 2**20, 1)
    missing = sorted(acked - set(seen))
    result.sent, result.acknowledged, result.unacknowledged = sum(sent), len(acked), sum(sent) - len(acked)
    result.delivered, result.missing, result.missing_examples = len(seen), len(missing), [f"{p}|{n}" for p, n in missing[:10]]
    result.duplicates = sum(count - 1 for count in seen.values())
    result.ack_rate = round(len(acked) / (stopped - start), 1)
    last = max(arrivals, default=start)
    result.delivery_rate = round(len(seen) / max(last - start, 1e-6), 1)
    result.drain_s = round(max(last - stopped, 0.0), 2)
    return result


async def measure_flood(
    broker: str, paths: list[str], duration: float, window: int, runs: int, pairs: int, settle: float = 0.0
) -> dict:
    """`runs` floods of each path on one system, a calibration after each run; every flood's figures. Each flood
    waits up to `settle` seconds for a quiet machine (calibration.settled_load)."""
    workdir = Path(tempfile.mkdtemp(prefix="mqchat-bench-flood-"))
    system = System.on_free_ports(workdir / "data", broker=broker)
    system.start()
    report: dict = {"paths": paths, "duration_s": duration, "window": window, "pairs": pairs, "floods": []}
    points = [calibration.calibrate()]
    try:
        async with httpx.AsyncClient(base_url=system.api_url, timeout=60) as api:
            made, _ = await make_pairs(system, api, pairs)
            for run in range(runs):
                started = len(report["floods"])
                for path in paths:
                    load_before = await calibration.settled_load(settle)
                    async with connected(system, made, f"flood{run}", path == "e2e", persistent=True) as clients:
                        processes = components(system)
                        before = cpu_use(processes)
                        psutil.cpu_percent()
                        result = await run_flood(clients, duration, window, path == "e2e", processes["broker"])
                        result.machine_busy = round(psutil.cpu_percent() / 100, 2)
                        result.cpu_seconds = cpu_use(processes, before)
                    result.run, result.load_before, result.flags = run, load_before, calibration.round_flags(load_before)
                    report["floods"].append(result.as_dict())
                points.append(calibration.calibrate())
                for row in report["floods"][started:]:
                    row["flags"] += calibration.drift_flags(points[-2], points[-1])
    finally:
        system.stop()
    report["calibration"] = calibration.summary(points)
    return report


def markdown(report: dict) -> str:
    """One row per flood, then what was met."""
    lines = [
        f"# Flood at the broker's limit ({report['broker']}, {report['started']})", "",
        f"{report['pairs']} publishers x {report['window']} unacknowledged QoS 1 PUBLISHes, {report['duration_s']} s per flood; "
        f"calibration {report['calibration']['points_ms']} (drifts {report['calibration']['drifts']})", "",
        "| run | path | load before | flags | sent | acked | acked/s | delivered/s | missing | duplicates | receivers reconnected | backlog at stop "
        "| drain s | broker RSS MB before / stop / drained | broker CPU s | machine busy |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for row in report["floods"]:
        rss = row["broker_rss_mb"]
        lines.append(
            f"| {row['run'] + 1} | {row['path']} | {row['load_before']} | {'; '.join(row['flags']) or '-'} | {row['sent']} "
            f"| {row['acknowledged']} | {row['ack_rate']} | {row['delivery_rate']} | {row['missing']} | {row['duplicates']} "
            f"| {row.get('receiver_reconnects', 0)} | {row['backlog_at_stop']} | {row['drain_s']} "
            f"| {rss['before']} / {rss['at_stop']} / {rss['after_drain']} | {row['cpu_seconds'].get('broker')} | {row['machine_busy']:.0%} |"
        )
    missing = sum(row["missing"] for row in report["floods"])
    lines += ["", f"Acknowledged and never delivered, all floods: **{missing}**"
              + (f" (e.g. {next(row['missing_examples'] for row in report['floods'] if row['missing'])})" if missing else "")]  # fmt: skip
    return "\n".join(lines) + "\n"
