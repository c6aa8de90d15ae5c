"""`python -m bench.reports`: the desk reports (`/api/admin/analytics/...`) over a store holding many tickets.

    python -m bench.reports                    # 100,000 tickets over 90 days, 5 runs of each report
    python -m bench.reports --tickets 20000 --runs 3
    python -m bench.reports --quick            # a few hundred tickets, for the smoke test

Starts mqchat on free ports (embedded store, nx-27017, unless MONGODB_URI is set),
fills tickets and CSAT ratings straight into the store (20 agents, 4 teams, 80 %
answered, 60 % resolved, 30 % rated), counts them into the desk counters as
`mqchat desk-rollups` does after an upgrade (timed), then times each report over
REST as an admin: the median, min and max of the runs, written as JSON and Markdown
to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from beanie import PydanticObjectId

from bench import calibration
from bench.output import report_stem, write_report
from core.clock import to_ms, utcnow
from core.db import init_db
from core.documents import CsatRating, Ticket
from core.services import rollups
from core.settings import Settings
from tests.support import System, create_staff

RESULTS = Path(__file__).parent / "results"
DAY_MS = 86_400_000
AGENTS, TEAMS = 20, 4
REPORTS = {  # name -> (path, query)
    "tickets, 30 days by day": ("tickets", {}),
    "tickets, 90 days by week, per agent": ("tickets", {"days": 90, "interval": "week", "group_by": "agent"}),
    "first response, 30 days, per team": ("first-response", {"group_by": "team"}),
    "resolution, 30 days, one agent": ("resolution", {"agent": True}),
    "csat, 90 days by week, per agent": ("csat", {"days": 90, "interval": "week", "group_by": "agent"}),
    "tickets, 30 days by day in Europe/Berlin, per team": ("tickets", {"tz": "Europe/Berlin", "group_by": "team"}),
    "csat, 30 days by day in Asia/Kolkata": ("csat", {"tz": "Asia/Kolkata"}),
}


def options(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.reports", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90, help="the tickets are spread over this many days until now")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny settings for a smoke run")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.tickets, args.runs = 300, 1
    return args


async def fill(count: int, days: int, agent_ids: list[str], seed: int = 7) -> float:
    """Insert `count` tickets (and CSAT ratings for 30 % of them) in batches, as stored before the desk counters
    (uncounted, `rollups.backfill` counts them); returns tickets per second."""
    rng, now_ms, started = random.Random(seed), to_ms(utcnow()), time.perf_counter()
    tickets, ratings = Ticket.get_pymongo_collection(), CsatRating.get_pymongo_collection()
    for offset in range(0, count, 1000):
        docs, rated = [], []
        for number in range(offset, min(offset + 1000, count)):
            created_ms = now_ms - rng.randrange(days * DAY_MS)
            agent, team = rng.choice(agent_ids), f"team-{rng.randrange(TEAMS)}"
            answered, resolved = rng.random() < 0.8, rng.random() < 0.6
            ticket = Ticket(
                id=PydanticObjectId(), number=1_000_000 + number, customer_id="c" * 24, assignee_id=agent, subject="Where is my parcel?",
                description="bench", category="general", priority="normal", status="resolved" if resolved else "in_progress",
                conversation_id="0" * 24, created_at=datetime.fromtimestamp(created_ms / 1000, UTC), created_ms=created_ms,
                first_response_ms=created_ms + rng.randrange(60_000, 4 * 3_600_000) if answered else None,
                resolved_ms=min(now_ms, created_ms + rng.randrange(600_000, 3 * DAY_MS)) if resolved else None,
            )  # fmt: skip
            docs.append({**ticket.model_dump(by_alias=True, exclude={"revision_id", "rollup", "rollup_due"}), "team_id": team})
            if resolved and rng.random() < 0.5:
                rated.append({"ticket_id": str(ticket.id), "agent_id": agent, "team_id": team, "rating": rng.randint(1, 5),
                              "created_ms": ticket.resolved_ms})  # fmt: skip
        await tickets.insert_many(docs)
        if rated:
            await ratings.insert_many(rated)
    return count / (time.perf_counter() - started)


async def time_reports(api: httpx.AsyncClient, headers: dict, agent_id: str, runs: int) -> dict[str, dict]:
    """Each report `runs` times: median, min and max milliseconds, and what the last answer counted."""
    results = {}
    for name, (path, spec) in REPORTS.items():
        query = {k: v for k, v in spec.items() if k in ("interval", "group_by", "tz")}
        if spec.get("agent"):
            query["agent_id"] = agent_id
        end = utcnow()
        query["from"] = datetime.fromtimestamp((to_ms(end) - spec.get("days", 30) * DAY_MS) / 1000, UTC).isoformat()
        samples, body, load_before = [], {}, calibration.load_average()
        for _ in range(runs):
            started = time.perf_counter()
            response = await api.get(f"/api/admin/analytics/{path}", params=query, headers=headers)
            samples.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
            body = response.json()
        results[name] = {
            "median_ms": round(statistics.median(samples), 1), "min_ms": round(min(samples), 1), "max_ms": round(max(samples), 1),
            "buckets": len(body["series"]), "groups": len(body["groups"]), "total": body["total"], "load_before": round(load_before, 2),
        }  # fmt: skip
    return results


async def bench(args: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="mqchat-bench-reports-"))
    system = System.on_free_ports(workdir / "data")
    system.start()
    report: dict = {"tickets": args.tickets, "days": args.days, "runs": args.runs, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        async with httpx.AsyncClient(base_url=system.api_url, timeout=300) as api:
            admin = await create_staff(system, api, "admin")
            mongo = await init_db(Settings.load({"MQCHAT_DATA_DIR": str(workdir)}, env_file=None), system.store_uri)
            try:
                agent_ids = [str(PydanticObjectId()) for _ in range(AGENTS)]
                report["fill_tickets_per_s"] = round(await fill(args.tickets, args.days, agent_ids))
                report["csat_ratings"] = await CsatRating.get_pymongo_collection().estimated_document_count()
                started = time.perf_counter()
                report["rolled_up"] = await rollups.backfill()  # what `mqchat desk-rollups` does after an upgrade
                report["rollup_backfill_s"] = round(time.perf_counter() - started, 1)
                report["rollup_documents"] = await rollups.counters().estimated_document_count()
            finally:
                await mongo.close()
            report["reports"] = await time_reports(api, admin.headers, agent_ids[0], args.runs)
    finally:
        system.stop()
    return report


def markdown(report: dict) -> str:
    lines = [
        f"# mqchat desk reports ({report['started']})", "",
        f"{report['tickets']:,} tickets over {report['days']} days, {report['csat_ratings']:,} CSAT ratings, "
        f"{AGENTS} agents, {TEAMS} teams; {report['runs']} runs of each report over REST.",
        f"Counted into {report['rollup_documents']:,} counter documents in {report['rollup_backfill_s']} s.", "",
        "| report | median ms | min–max ms | buckets | groups | load before |", "|---|---|---|---|---|---|",
    ]  # fmt: skip
    for name, row in report["reports"].items():
        lines.append(f"| {name} | {row['median_ms']} | {row['min_ms']}–{row['max_ms']} | {row['buckets']} | {row['groups']} | {row['load_before']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = options(argv)
    report = asyncio.run(bench(args))
    write_report(report_stem(args.out, "reports"), report, markdown(report))


if __name__ == "__main__":
    main()
