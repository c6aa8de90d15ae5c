"""Open-loop load: messages at a fixed offered rate, latency from the scheduled send to arrival.

The same generator drives both paths, with the same client (bench.lean_mqtt):
- e2e: users publish to their outbox; the bridge stores and fans out; the
  receiver's `message.created` (persisted before delivery) is the arrival;
- raw: a service client publishes straight to the receiver's inbox (broker relay only).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from bench.lean_mqtt import LeanClient, Received
from core import topics

STALL = 5.0  # after sending, wait while arrivals keep coming; stop after this long without one


@dataclass
class LoadResult:
    path: str
    offered_rate: int
    sent: int
    received: int
    lost: int
    achieved_rate: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # per process, over the round
    load_before: float = 0.0  # 1-minute load average when the round started
    flags: list[str] = field(default_factory=list)  # why the round is not comparable (bench.calibration)
    run: int = 0  # which of the report's runs (passes over every rate) it belongs to

    def as_dict(self) -> dict:
        return asdict(self)


def summarize(path: str, rate: int, sent: int, latencies: list[float], elapsed: float) -> LoadResult:
    """Percentiles of the latencies; `elapsed` runs from the first scheduled send to the last arrival."""
    ms = sorted(x * 1000 for x in latencies) or [float("nan")]
    cuts = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else ms * 99
    return LoadResult(
        path=path, offered_rate=rate, sent=sent, received=len(latencies), lost=sent - len(latencies),
        achieved_rate=round(len(latencies) / elapsed, 1), p50_ms=round(cuts[49], 2), p95_ms=round(cuts[94], 2),
        p99_ms=round(cuts[98], 2), max_ms=round(ms[-1], 2),
    )  # fmt: skip


class _Arrivals:
    """What the receivers got, recorded in their connections' receive callbacks (no task per message)."""

    def __init__(self, expected: int, e2e: bool, on_arrival: Callable[[dict], None] | None, round_id: str) -> None:
        self.latencies: list[float] = []
        self.times: list[float] = []
        self.complete = asyncio.Event()
        self._expected, self._kind, self._e2e, self._on_arrival = expected, "message.created" if e2e else "bench", e2e, on_arrival
        self._round, self._arrived = round_id, set[str]()

    def record(self, message: Received) -> None:
        event = json.loads(message.payload)
        if event.get("type") != self._kind:
            return  # other events on the inbox (an error, a receipt)
        due, number, round_id = (event["message"]["body"] if self._e2e else event["body"]).split("|")
        if round_id != self._round:
            return  # a late arrival of an earlier round (its backlog on an overloaded system)
        if self._on_arrival is not None:
            self._on_arrival(event)
        if number in self._arrived:
            return  # delivered twice: `on_arrival` saw it, but one message lost and one repeated must not add up to none lost
        self._arrived.add(number)
        self.times.append(time.perf_counter())
        self.latencies.append(self.times[-1] - float(due))
        if len(self.latencies) >= self._expected:
            self.complete.set()


async def run_load(
    pairs: list[tuple[LeanClient, str, str, LeanClient, str]], rate: int, duration: float, e2e: bool,
    on_arrival: Callable[[dict], None] | None = None, stall: float = STALL,
) -> LoadResult:
    """pairs: (sender client, sender id, conversation id, receiver client, receiver id), all connected.

    Receivers must already be subscribed to their inbox. `on_arrival` is given every event that counts as an
    arrival (a repeat too); the n-th message sent carries `<scheduled time>|<n>|<round id>` as its body (what
    arrives of other rounds is ignored) and, on the E2E path, the client_msg_id `b<n>-<round start>`. The
    backlog is waited for until nothing arrived for `stall` s.
    """
    total = int(rate * duration)
    round_id = secrets.token_hex(4)
    arrivals = _Arrivals(total, e2e, on_arrival, round_id)
    for pair in pairs:
        pair[3].deliver_to(arrivals.record)
    start = time.perf_counter()
    pending: list[asyncio.Future] = []
    for n in range(total):
        due = start + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sender, sender_id, cid, _, receiver_id = pairs[n % len(pairs)]
        stamp = f"{due}|{n}|{round_id}"
        if e2e:
            topic, payload = topics.user_outbox(sender_id, "send"), {"conversation_id": cid, "client_msg_id": f"b{n}-{start}", "body": stamp}
        else:
            topic, payload = topics.user_inbox(receiver_id), {"type": "bench", "body": stamp}
        pending.append(sender.send(topic, json.dumps(payload).encode()))
    await asyncio.gather(*pending, return_exceptions=True)
    # An overloaded system delivers late, not never: wait for the backlog as long as it moves,
    # so `lost` counts only what stopped arriving (and the next round starts on an idle system).
    received = -1
    while len(arrivals.latencies) < total and len(arrivals.latencies) > received:
        received = len(arrivals.latencies)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(arrivals.complete.wait(), stall)
    elapsed = max(max(arrivals.times, default=start) - start, 1e-6)
    return summarize("e2e" if e2e else "raw", rate, total, arrivals.latencies, elapsed)
