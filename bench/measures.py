"""The measurements other than message load: history at depth, logins, idle connections."""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from datetime import timedelta

import aiomqtt
import httpx
import psutil
from beanie import PydanticObjectId

from core.clock import utcnow
from core.documents import Message
from core.services.messages.send import _max_seq


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"p50_ms": round(cuts[49], 2), "p99_ms": round(cuts[98], 2), "max_ms": round(ordered[-1], 2)}


async def fill_history(conversation_id: str, sender_id: str, depth: int, batch: int = 1000) -> float:
    """Insert `depth` messages directly (batched); returns documents per second."""
    start, base, now = time.perf_counter(), await _max_seq(conversation_id), utcnow()
    for offset in range(0, depth, batch):
        docs = [
            Message(id=PydanticObjectId(), conversation_id=conversation_id, seq=base + n + 1, sender_id=sender_id,
                    client_msg_id=f"h{base + n}", body=f"history {n}", created_at=now - timedelta(seconds=depth - n))
            for n in range(offset, min(offset + batch, depth))
        ]  # fmt: skip
        await Message.insert_many(docs)
    return depth / (time.perf_counter() - start)


async def history_latency(api: httpx.AsyncClient, headers: dict, conversation_id: str, depth: int, samples: int) -> dict:
    """`?limit=50` pages at several depths (`before` cursors) and `after_seq` catch-up near the end.

    The conversation holds exactly `depth` messages (seq 1..depth).
    """
    url = f"/api/conversations/{conversation_id}/messages"
    cursors = []
    for seq in sorted({s for s in (depth, depth // 2, depth // 10, 100) if s > 50}, reverse=True):
        message = await Message.find_one({"conversation_id": conversation_id, "seq": seq})
        if message is not None:
            cursors.append(str(message.id))
    pages, catch_up = [], []
    for n in range(samples):
        t0 = time.perf_counter()
        response = await api.get(url, params={"limit": 50, "before": cursors[n % len(cursors)]}, headers=headers)
        pages.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200 and len(response.json()["items"]) == 50
        t0 = time.perf_counter()
        response = await api.get(url, params={"limit": 50, "after_seq": max(depth - 200 + n % 100, 0)}, headers=headers)
        catch_up.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200
    return {"depth": depth, "page": percentiles(pages), "after_seq": percentiles(catch_up), "samples": samples}


async def login_throughput(api: httpx.AsyncClient, email: str, password: str, seconds: float, concurrency: int = 8) -> dict:
    """Successful logins per second with `concurrency` clients, and the argon2 parameters that make them slow."""
    done = 0
    stop_at = time.perf_counter() + seconds
    params = ""

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop_at:
            response = await api.post("/api/auth/login", json={"email": email, "password": password})
            assert response.status_code == 200, response.text
            done += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    from core.documents import User

    user = await User.find_one({"email": email})
    if user is not None:
        match = re.match(r"\$argon2(\w+)\$v=\d+\$(m=\d+,t=\d+,p=\d+)", user.password_hash)
        params = f"argon2{match.group(1)} {match.group(2)}" if match else "argon2"
    return {"logins_per_s": round(done / seconds, 1), "concurrency": concurrency, "hash": params}


async def _connect(client: aiomqtt.Client, topic: str) -> None:
    await client.__aenter__()
    await client.subscribe(topic, qos=1)


async def idle_connections(make_client, inbox: str, broker_pid: int, target: int, step: int = 50) -> dict:  # type: ignore[no-untyped-def]
    """Open authenticated clients subscribed to their inbox until `target` (or failure); memory per connection.

    `step` connect at once: all from one address, so below the embedded broker's
    MQCHAT_PENDING_CONNECTIONS_PER_ADDRESS (64 unauthenticated connections per address).
    """
    process = psutil.Process(broker_pid)
    baseline = process.memory_info().rss
    clients: list[aiomqtt.Client] = []
    error = None
    try:
        while len(clients) < target:
            batch = [make_client(len(clients) + n) for n in range(min(step, target - len(clients)))]
            results = await asyncio.gather(*(_connect(client, inbox) for client in batch), return_exceptions=True)
            for client, result in zip(batch, results, strict=True):
                if isinstance(result, BaseException):
                    error = repr(result)
                else:
                    clients.append(client)
            if error:
                break
        await asyncio.sleep(1.0)
        rss = process.memory_info().rss
    finally:
        await asyncio.gather(*(client.__aexit__(None, None, None) for client in clients), return_exceptions=True)
    held = len(clients)
    return {"target": target, "held": held, "error": error,
            "rss_mb": round(rss / 2**20, 1), "kb_per_connection": round((rss - baseline) / 1024 / max(held, 1), 1)}  # fmt: skip
