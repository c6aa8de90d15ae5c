"""Open-loop load: messages at a fixed offered rate, latency from the scheduled send to arrival.

The same generator drives both paths, with the same client library (aiomqtt):
- e2e: users publish to their outbox; the bridge stores and fans out; the
  receiver's `message.created` (persisted before delivery) is the arrival;
- raw: a service client publishes straight to the receiver's inbox (broker relay only).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import asdict, dataclass

import aiomqtt

from core import topics

DRAIN = 5.0


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

    def as_dict(self) -> dict:
        return asdict(self)


def summarize(path: str, rate: int, sent: int, latencies: list[float], elapsed: float) -> LoadResult:
    ms = sorted(x * 1000 for x in latencies) or [float("nan")]
    cuts = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else ms * 99
    return LoadResult(
        path=path, offered_rate=rate, sent=sent, received=len(latencies), lost=sent - len(latencies),
        achieved_rate=round(len(latencies) / elapsed, 1), p50_ms=round(cuts[49], 2), p95_ms=round(cuts[94], 2),
        p99_ms=round(cuts[98], 2), max_ms=round(ms[-1], 2),
    )  # fmt: skip


async def _receive(client: aiomqtt.Client, latencies: list[float], expected: int, e2e: bool) -> None:
    async for message in client.messages:
        event = json.loads(bytes(message.payload))  # type: ignore[arg-type]
        if event.get("type") != ("message.created" if e2e else "bench"):
            continue  # other events on the inbox (a late one from an earlier round, an error)
        body = event["message"]["body"] if e2e else event["body"]
        latencies.append(time.perf_counter() - float(body.split("|", 1)[0]))
        if len(latencies) >= expected:
            return


async def run_load(
    pairs: list[tuple[aiomqtt.Client, str, str, aiomqtt.Client, str]], rate: int, duration: float, e2e: bool
) -> LoadResult:
    """pairs: (sender client, sender id, conversation id, receiver client, receiver id), all connected.

    Receivers must already be subscribed to their inbox.
    """
    total = int(rate * duration)
    latencies: list[float] = []
    receivers = [asyncio.create_task(_receive(pair[3], latencies, total, e2e)) for pair in pairs[:1]]
    for pair in pairs[1:]:
        receivers.append(asyncio.create_task(_receive(pair[3], latencies, total, e2e)))
    start = time.perf_counter()
    pending: list[asyncio.Task[None]] = []
    for n in range(total):
        due = start + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sender, sender_id, cid, _, receiver_id = pairs[n % len(pairs)]
        stamp = f"{due}|{n}"
        if e2e:
            topic, payload = topics.user_outbox(sender_id, "send"), {"conversation_id": cid, "client_msg_id": f"b{n}-{start}", "body": stamp}
        else:
            topic, payload = topics.user_inbox(receiver_id), {"type": "bench", "body": stamp}
        pending.append(asyncio.create_task(sender.publish(topic, json.dumps(payload), qos=1)))
    await asyncio.gather(*pending, return_exceptions=True)
    sent_at = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.gather(*receivers), DRAIN + duration)
    except TimeoutError:
        pass
    for task in receivers:
        task.cancel()
    elapsed = max(sent_at - start, 1e-6)
    return summarize("e2e" if e2e else "raw", rate, total, latencies, elapsed)
