"""`python -m bench --measure history`: history pages and `after_seq` catch-up at depth, alone (issue 26, item 8).

    python -m bench --measure history --history-depth 1000000 --runs 3

One system and one conversation filled to the depth once (straight into the store,
not through the bridge: the fill is not what is measured), indexed for search by the
lead bridge worker as sent messages are (measured once that is done), then `runs` rounds of
`bench.measures.history_latency` (pages `before` cursors at several depths, catch-up
with `after_seq` near the end), each flagged when it started on a loaded machine.
The API serves each page with one query (`docs/benchmarks.md`, "History requests,
counted"); this measures what that query costs as the conversation grows.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench import calibration
from bench.measures import LONG_TOKENS, fill_history, history_latency, search_indexed
from bench.rounds import components, cpu_use
from core.db import init_db
from core.settings import Settings
from tests.support import System, open_conversation, signup


async def measure_history(broker: str, depth: int, runs: int, samples: int, settle: float = 0.0) -> dict:
    """Fill one conversation to `depth` messages, then `runs` rounds of `samples` pages and catch-ups, each
    waiting up to `settle` seconds for a quiet machine (calibration.settled_load)."""
    workdir = Path(tempfile.mkdtemp(prefix="mqchat-bench-history-"))
    system = System.on_free_ports(workdir / "data", broker=broker, **LONG_TOKENS)
    system.start()
    report: dict = {"depth": depth, "samples": samples, "runs": []}
    try:
        async with httpx.AsyncClient(base_url=system.api_url, timeout=60) as api:
            sender, receiver = await signup(api), await signup(api)
            cid = (await open_conversation(api, sender, receiver))["id"]
            mongo = await init_db(Settings.load({"MQCHAT_DATA_DIR": str(workdir)}, env_file=None), system.store_uri)
            try:
                started = time.perf_counter()
                report["fill_docs_per_s"] = round(await fill_history(cid, sender.id, depth))
                report["fill_s"] = round(time.perf_counter() - started, 1)
                report["indexed_s"] = round(await search_indexed(), 1)
                processes = {role: process for role, process in components(system).items() if role in ("api", "store")}
                for run in range(runs):
                    load_before = await calibration.settled_load(settle)
                    cpu_before = cpu_use(processes)
                    result = await history_latency(api, receiver.headers, cid, depth, samples)
                    used = cpu_use(processes, cpu_before)  # 2 requests a sample: a page and a catch-up
                    result["cpu_ms_per_request"] = {role: round(used[role] * 1000 / (2 * samples), 2) for role in used}
                    result.update(run=run, load_before=load_before, flags=calibration.round_flags(load_before))
                    report["runs"].append(result)
            finally:
                await mongo.close()
    finally:
        system.stop()
    chosen = calibration.comparable(report["runs"])
    report["median_of"] = "unflagged" if chosen is not report["runs"] else "all"
    for kind in ("page", "after_seq"):
        report[kind] = {cut: round(statistics.median(run[kind][cut] for run in chosen), 2) for cut in ("p50_ms", "p99_ms")}
    report["cpu_ms_per_request"] = {role: round(statistics.median(run["cpu_ms_per_request"][role] for run in chosen), 2)
                                    for role in ("api", "store")}  # fmt: skip
    return report


def markdown(report: dict) -> str:
    """One row per round, then the medians."""
    lines = [
        f"# History at depth ({report['broker']}, {report['started']})", "",
        f"One conversation of {report['depth']:,} messages, filled at {report['fill_docs_per_s']:,} docs/s "
        f"({report['fill_s']} s), indexed for search {report['indexed_s']} s later; "
        f"{report['samples']} pages (`limit=50`, `before` cursors at several depths) "
        "and as many `after_seq` catch-ups per round.", "",
        "| round | load before | flags | page p50 ms | page p99 ms | after_seq p50 ms | after_seq p99 ms | API CPU ms/req | store CPU ms/req |",
        "|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for row in report["runs"]:
        lines.append(
            f"| {row['run'] + 1} | {row['load_before']} | {'; '.join(row['flags']) or '-'} | {row['page']['p50_ms']} "
            f"| {row['page']['p99_ms']} | {row['after_seq']['p50_ms']} | {row['after_seq']['p99_ms']} "
            f"| {row['cpu_ms_per_request']['api']} | {row['cpu_ms_per_request']['store']} |"
        )
    flagged = "" if report["median_of"] == "unflagged" else " (every round flagged: the median of all, not quotable)"
    cpu = report["cpu_ms_per_request"]
    lines += ["", f"Median page p99 **{report['page']['p99_ms']} ms**, after_seq p99 **{report['after_seq']['p99_ms']} ms**{flagged}; "
              f"CPU per request (pages and catch-ups alike): API {cpu['api']} ms, store {cpu['store']} ms"]
    return "\n".join(lines) + "\n"
