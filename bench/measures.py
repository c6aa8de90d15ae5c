"""The measurements other than message load: history at depth and logins (idle connections: bench.idle)."""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from datetime import timedelta

import httpx
from beanie import PydanticObjectId

from core.clock import utcnow
from core.documents import Message
from core.services.messages.send import _max_seq

# Access tokens that outlive a long run: the accounts are made at its start, and filling 1M messages
# or a full report's load rounds take longer than the shipped 15 minutes.
LONG_TOKENS = {"MQCHAT_ACCESS_TOKEN_TTL": str(24 * 3600)}


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
                    client_msg_id=f"h{base + n}", body=f"history {n}", created_at=now - timedelta(seconds=depth - n),
                    reacted=0)  # as sent
            for n in range(offset, min(offset + batch, depth))
        ]  # fmt: skip
        await Message.get_pymongo_collection().insert_many([doc.stored_form() for doc in docs])
    return depth / (time.perf_counter() - start)


async def search_indexed(poll: float = 2.0) -> float:
    """Wait until the search indexer (the lead bridge worker's) has indexed every message; the seconds it took.

    Filled history is indexed after it is stored, and indexing takes the store's one
    thread for minutes at 1M messages: pages measured meanwhile measure the indexer."""
    started = time.perf_counter()
    while await Message.get_pymongo_collection().find_one({"search_indexed": 0}, projection={"_id": 1}) is not None:
        await asyncio.sleep(poll)
    return time.perf_counter() - started


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
        assert response.status_code == 200 and len(response.json()["items"]) == 50, response.text[:300]
        t0 = time.perf_counter()
        response = await api.get(url, params={"limit": 50, "after_seq": max(depth - 200 + n % 100, 0)}, headers=headers)
        catch_up.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, response.text[:300]
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
