"""`python -m bench.search`: message search at depth, and what indexing adds to each sent message.

    python -m bench.search                 # 100,000 messages, 3 runs (about 3 minutes here)
    python -m bench.search --quick         # a few seconds, for the smoke test

Starts mqchat on free ports, fills `--messages` messages (made-up words with a few real
ones of several languages at known frequencies) into 50 conversations of 10 users,
then times `GET /api/search/messages` for each query of QUERIES, `--samples` times per
run, rotating users (searches are rate limited per user). Indexing: how fast the
bridge's indexer writes the words of the filled messages, and the CPU microseconds
`index_terms` takes per body. Send-time cost: the store's insert rate of messages
without and with the index of messages waiting for the indexer (`insert_many` of
1,000 documents, like the bridge's batches): the only search work sending does.
Writes JSON and Markdown to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from beanie import PydanticObjectId
from pymongo import ASCENDING, AsyncMongoClient, IndexModel

from bench.measures import percentiles
from bench.output import report_stem, write_report
from core.db import init_db
from core.documents import Message
from core.services.search.folding import index_terms
from core.settings import Settings
from tests.support import Account, System, open_conversation, signup

RESULTS = Path(__file__).parent / "results"
USERS, CONVERSATIONS = 10, 50
# word -> share of messages that contain it
PLANTED = {"refund": 0.05, "order": 0.10, "Café": 0.01, "größe": 0.005, "кофе": 0.005, "東京で": 0.002, "zanzibar": 0.0001}
QUERIES = {
    "rare word": {"q": "zanzibar"},
    "1% word, accent folded": {"q": "cafe"},
    "5% word": {"q": "refund"},
    "10% and 5% words": {"q": "order refund"},
    "word beginning": {"q": "refu"},
    "Cyrillic": {"q": "КОФЕ"},
    "Japanese pair": {"q": "東京"},
    "absent": {"q": "qqqqzz"},
    "5% word, one conversation": {"q": "refund", "conversation": True},
}


def options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.search", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=20, help="searches per query and run")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.messages, args.runs, args.samples = 2_000, 1, 3
    return args


def bodies(count: int, seed: int = 7) -> list[str]:
    """Message bodies of 3 to 25 made-up words (a vocabulary of 5,000), with PLANTED words at their shares."""
    rnd = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ze", "po", "da", "shi", "ter", "bel", "ondo"]
    vocabulary = ["".join(rnd.choice(syllables) for _ in range(rnd.randint(1, 4))) for _ in range(5_000)]
    found = []
    for _ in range(count):
        words = [rnd.choice(vocabulary) for _ in range(rnd.randint(3, 25))]
        for word, share in PLANTED.items():
            if rnd.random() < share:
                words.insert(rnd.randrange(len(words) + 1), word)
        found.append(" ".join(words).capitalize() + rnd.choice([".", "?", "!", ""]))
    return found


async def fill(conversations: list[str], sender_ids: list[str], texts: list[str]) -> float:
    """Insert the messages as the bridge stores them, round-robin over the conversations; documents per second."""
    start, seqs = time.perf_counter(), dict.fromkeys(conversations, 0)
    for offset in range(0, len(texts), 1000):
        batch = []
        for n in range(offset, min(offset + 1000, len(texts))):
            cid = conversations[n % len(conversations)]
            seqs[cid] += 1
            batch.append(Message(
                id=PydanticObjectId(), conversation_id=cid, seq=seqs[cid], sender_id=sender_ids[n % len(sender_ids)],
                client_msg_id=f"b{n}", body=texts[n], reacted=0,
            ).stored_form())  # fmt: skip
        await Message.get_pymongo_collection().insert_many(batch, ordered=True)
    return len(texts) / (time.perf_counter() - start)


async def indexing_rate(count: int) -> float:
    """Messages per second the running bridge's indexer writes the words of, until none is waiting."""
    start = time.perf_counter()
    while await Message.get_pymongo_collection().count_documents({"search_indexed": 0}):
        await asyncio.sleep(0.5)
    return count / (time.perf_counter() - start)


def folding_cost(texts: list[str]) -> dict[str, float]:
    """CPU microseconds `index_terms` spends per message body (median of 5 passes over the sample)."""
    sample = texts[:5_000]
    passes = []
    for _ in range(5):
        start = time.process_time()
        for text in sample:
            index_terms(text)
        passes.append((time.process_time() - start) / len(sample) * 1e6)
    return {"us_per_message": round(statistics.median(passes), 1), "mean_body_chars": round(statistics.mean(map(len, sample)), 1)}


async def insert_cost(uri: str, texts: list[str]) -> dict[str, float]:
    """The store's insert rate (documents/s, insert_many of 1,000) into a fresh collection without and with the pending index."""
    client: AsyncMongoClient = AsyncMongoClient(uri, tz_aware=True)
    found: dict[str, float] = {}
    try:
        db = client[f"bench_insert_{int(time.time())}"]
        sample = [{"conversation_id": "c", "seq": n, "body": text, "search_indexed": 0} for n, text in enumerate(texts[:10_000])]
        for label, indexed in (("without_pending_index", False), ("with_pending_index", True)):
            collection = db[label]
            if indexed:
                await collection.create_indexes([IndexModel([("search_indexed", ASCENDING)], name="pending")])
            start = time.perf_counter()
            for offset in range(0, len(sample), 1000):
                await collection.insert_many([dict(doc) for doc in sample[offset : offset + 1000]])
            found[f"{label}_docs_per_s"] = round(len(sample) / (time.perf_counter() - start))
        await client.drop_database(db.name)
    finally:
        await client.close()
    return found


async def latencies(api: httpx.AsyncClient, users: list[Account], conversation: str, samples: int) -> dict[str, dict]:
    """Each query `samples` times, users in turn; p50/p99 per query, and how many it found on the first page."""
    found: dict[str, dict] = {}
    turn = 0
    for label, query in QUERIES.items():
        times, hits = [], 0
        params = {"q": query["q"], **({"conversation_id": conversation} if query.get("conversation") else {})}
        for _ in range(samples):
            user, turn = users[turn % len(users)], turn + 1
            start = time.perf_counter()
            response = await api.get("/api/search/messages", params=params, headers=user.headers)
            times.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, response.text
            hits = len(response.json()["items"])
        found[label] = {**percentiles(times * 2 if len(times) == 1 else times), "first_page": hits}
    return found


async def bench(args: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="mqchat-bench-search-"))
    system = System.on_free_ports(workdir / "data")
    system.start()
    texts = bodies(args.messages)
    report: dict = {"messages": args.messages, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "queries": QUERIES}
    try:
        async with httpx.AsyncClient(base_url=system.api_url, timeout=60) as api:
            users = [await signup(api) for _ in range(USERS)]
            conversations = [
                (await open_conversation(api, users[0], *users[1:], kind="group", title=f"bench {n}"))["id"] for n in range(CONVERSATIONS)
            ]
            mongo = await init_db(Settings.load({"MQCHAT_DATA_DIR": str(workdir)}, env_file=None), system.store_uri)
            try:
                report["fill_docs_per_s"] = round(await fill(conversations, [u.id for u in users], texts))
                report["indexed_per_s"] = round(await indexing_rate(len(texts)))
                report["send_cost"] = {**folding_cost(texts), **await insert_cost(system.store_uri, texts)}
                runs = []
                for run in range(args.runs):
                    if run:
                        await asyncio.sleep(30)  # the users' search allowance refills (0.5/s)
                    runs.append(await latencies(api, users, conversations[0], args.samples))
                report["runs"] = runs
                report["search"] = {
                    label: {m: round(statistics.median(run[label][m] for run in runs), 1) for m in ("p50_ms", "p99_ms", "first_page")}
                    for label in QUERIES
                }
            finally:
                await mongo.close()
    finally:
        system.stop()
    return report


def markdown(report: dict) -> str:
    cost = report["send_cost"]
    lines = [
        f"# Message search at {report['messages']:,} messages ({report['started']})", "",
        "| query | p50 ms | p99 ms | hits on the first page |", "|---|---|---|---|",
        *(f"| {label} (`{report['queries'][label]['q']}`) | {row['p50_ms']} | {row['p99_ms']} | {row['first_page']:.0f} |"
          for label, row in report["search"].items()),
        "", f"Indexing (the bridge's indexer, after the fill): {report['indexed_per_s']} messages/s; folding {cost['us_per_message']} µs "
        f"of CPU per message (bodies of {cost['mean_body_chars']} characters).",
        f"Send-time cost: store inserts {cost['without_pending_index_docs_per_s']} docs/s without the pending index, "
        f"{cost['with_pending_index_docs_per_s']} with it.",
        f"Fill: {report['fill_docs_per_s']} docs/s. Figures are medians over {len(report['runs'])} runs; every run is in the JSON.",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = options(argv)
    report = asyncio.run(bench(args))
    write_report(report_stem(args.out, "search"), report, markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
