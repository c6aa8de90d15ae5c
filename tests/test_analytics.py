"""Desk reports (`/api/admin/analytics/...`): a small desk's day counted and timed, per agent and team, and bad queries.

Runs on the shared embedded system: every figure is scoped to a fresh agent or team.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from bson import ObjectId

from bench.reports import fill
from core.clock import to_ms, utcnow
from core.db import init_db
from core.documents import CsatRating, DeskRollup, Ticket
from core.services import analytics_scan, rollups
from core.services.analytics import OPENED, Scope, _pieces, make_period, measure
from core.settings import Settings
from tests.support import Account, System, create_staff, signup


@pytest.fixture
async def desk_store(system: System, tmp_path: Path) -> AsyncIterator[str]:
    """Beanie in this process on a private database of the session's store, for tickets written straight into it."""
    name = f"rollups_{secrets.token_hex(4)}"
    settings = Settings.load({"MQCHAT_DATA_DIR": str(tmp_path), "MQCHAT_DB_NAME": name}, env_file=None)
    client = await init_db(settings, system.store_uri)
    try:
        yield name
    finally:
        await client.drop_database(name)
        await client.close()


async def _ticket(api: httpx.AsyncClient, customer: Account, admin: Account, agent: Account) -> dict:
    opened = await api.post("/api/tickets", json={"subject": "Parcel late", "description": "Order 17"}, headers=customer.headers)
    assert opened.status_code == 201, opened.text
    assigned = await api.post(f"/api/tickets/{opened.json()['id']}/assign", json={"agent_id": agent.id}, headers=admin.headers)
    assert assigned.status_code == 200, assigned.text
    return assigned.json()


async def _status(api: httpx.AsyncClient, agent: Account, ticket: dict, *statuses: str) -> None:
    for status in statuses:
        moved = await api.post(f"/api/tickets/{ticket['id']}/status", json={"status": status}, headers=agent.headers)
        assert moved.status_code == 200, moved.text


async def test_a_desk_day_counted_timed_and_rated_per_agent_and_team(system: System, api: httpx.AsyncClient, admin: Account) -> None:
    agent, customer = await create_staff(system, api, "agent"), await signup(api)
    team_name = f"Shipping {secrets.token_hex(3)}"
    created = await api.post("/api/admin/teams", json={"name": team_name}, headers=admin.headers)
    assert created.status_code == 201, created.text
    team = created.json()["id"]
    answered, resolved, reopened = [await _ticket(api, customer, admin, agent) for _ in range(3)]
    for ticket in (answered, resolved):  # moved after assignment: the counters follow the ticket to its team
        moved = await api.post(f"/api/tickets/{ticket['id']}/team", json={"team_id": team}, headers=admin.headers)
        assert moved.status_code == 200, moved.text
        reply = await api.post(f"/api/conversations/{ticket['conversation_id']}/messages", json={"body": "On it"}, headers=agent.headers)
        assert reply.status_code == 201, reply.text
    await _status(api, agent, resolved, "in_progress", "resolved")
    await _status(api, agent, reopened, "in_progress", "resolved")
    for ticket, rating in ((resolved, 3), (reopened, 4)):
        rated = await api.post(f"/api/tickets/{ticket['id']}/csat", json={"rating": rating}, headers=customer.headers)
        assert rated.status_code == 201, rated.text
    await _status(api, agent, reopened, "in_progress")  # reopened: no longer resolved, its rating stays

    async def report(name: str, **query: str) -> dict:
        response = await api.get(f"/api/admin/analytics/{name}", params=query, headers=admin.headers)
        assert response.status_code == 200, response.text
        return response.json()

    tickets = await report("tickets", agent_id=agent.id)
    assert tickets["total"] == {"opened": 3, "resolved": 1}
    assert len(tickets["series"]) == 30 and tickets["series"][-1]["opened"] == 3 and tickets["groups"] == []
    assert tickets["interval"] == "day" and tickets["tz"] == "UTC" and tickets["from"].endswith("T00:00:00.000Z")

    by_agent = await report("tickets", team_id=team, group_by="agent")
    assert by_agent["groups"] == [{"key": agent.id, "name": agent.body["user"]["username"], "opened": 2, "resolved": 1}]
    by_team = await report("tickets", agent_id=agent.id, group_by="team")
    assert sorted(by_team["groups"], key=lambda g: g["key"] or "") == [
        {"key": None, "name": None, "opened": 1, "resolved": 0},
        {"key": team, "name": team_name, "opened": 2, "resolved": 1},
    ]

    first = await report("first-response", agent_id=agent.id)
    assert first["total"]["count"] == 2 and first["total"]["average_seconds"] >= 0
    assert first["series"][-1]["count"] == 2
    resolution = await report("resolution", agent_id=agent.id, group_by="agent")
    assert resolution["total"]["count"] == 1 and resolution["groups"][0]["key"] == agent.id

    csat = await report("csat", agent_id=agent.id)
    assert csat["total"] == {"count": 2, "average_rating": 3.5, "satisfied": 1, "score": 50.0}
    team_csat = await report("csat", team_id=team, group_by="agent", interval="week", tz="Europe/Berlin")
    assert team_csat["total"]["count"] == 1 and team_csat["groups"][0]["satisfied"] == 0
    monday = datetime.fromisoformat(team_csat["series"][0]["start"]).astimezone(ZoneInfo("Europe/Berlin"))
    assert (monday.weekday(), monday.hour, monday.minute) == (0, 0, 0)

    # a window that ends before today holds none of it
    earlier = await report("tickets", agent_id=agent.id, **{"from": "2026-01-01", "to": "2026-01-08"})
    assert len(earlier["series"]) == 7 and earlier["total"] == {"opened": 0, "resolved": 0}


async def test_bad_report_queries_and_outsiders_are_refused(api: httpx.AsyncClient, admin: Account, alice: Account) -> None:
    bad = [
        {"from": "yesterday"}, {"tz": "Mars/Olympus"}, {"from": "2026-02-01", "to": "2026-01-01"},
        {"from": "2000-01-01", "to": "2026-01-01"}, {"agent_id": "not-an-id"}, {"team_id": "$ne"},
        {"group_by": "customer"}, {"interval": "hour"}, {"from": "x" * 41},
    ]  # fmt: skip
    for query in bad:
        response = await api.get("/api/admin/analytics/tickets", params=query, headers=admin.headers)
        assert response.status_code == 400, (query, response.text)
        assert response.json()["error"]["code"] == "invalid_input"
    weeks = await api.get("/api/admin/analytics/csat", params={"from": "2020-01-01", "to": "2026-01-01", "interval": "week"}, headers=admin.headers)
    assert weeks.status_code == 200 and len(weeks.json()["series"]) == 314
    assert (await api.get("/api/admin/analytics/resolution", headers=alice.headers)).status_code == 403
    assert (await api.get("/api/admin/analytics/first-response")).status_code == 401


async def _as_before_counters(collection: object, docs: list[dict], drop: tuple[str, ...]) -> None:
    """Store these documents again as a version before `created_ms` wrote them (without `drop`, with `created_at`)."""
    for doc in docs:
        await collection.delete_one({"_id": doc["_id"]})  # type: ignore[attr-defined]
        older = {k: v for k, v in doc.items() if k not in drop}
        at = datetime.fromtimestamp(doc["created_ms"] // 1000, UTC).replace(microsecond=doc["created_ms"] % 1000 * 1000)
        await collection.insert_one({**older, "created_at": at})  # type: ignore[attr-defined]


async def _counters() -> list[dict]:
    return await DeskRollup.get_pymongo_collection().find().sort([("_id", 1)]).to_list()


async def test_counters_equal_a_full_scan_in_any_zone_after_backfill_changes_and_a_missed_roll_up(system: System, desk_store: str) -> None:
    agents = [str(ObjectId()) for _ in range(4)]
    await fill(1500, 40, agents, seed=11)  # 40 days back from now: across Berlin's end of summer time on 25 October
    tickets, ratings = Ticket.get_pymongo_collection(), CsatRating.get_pymongo_collection()
    older = await tickets.find().limit(150).to_list()
    await _as_before_counters(tickets, older, ("created_ms",))
    await _as_before_counters(ratings, await ratings.find().limit(40).to_list(), ("created_ms",))
    rated = await ratings.count_documents({})

    # a backfill that read its batch before a change to one of them: the change's own roll-up counts that one
    raced = await tickets.find({"rollup_due": {"$exists": False}}, rollups.TICKET_FIELDS).sort([("_id", 1)]).limit(3).to_list()
    await tickets.update_one({"_id": raced[1]["_id"]}, {"$set": {"assignee_id": agents[1]}, "$inc": {"rollup_due": 1}})
    assert await rollups._roll_tickets(raced, token=secrets.token_hex(8)) == 2
    assert await rollups.backfill() == (1498, rated)
    counted = await _counters()
    assert await rollups.backfill() == (0, 0) and await _counters() == counted  # idempotent
    backfilled = await tickets.find_one({"_id": older[0]["_id"]})
    assert backfilled["created_ms"] == older[0]["created_ms"] and backfilled["rollup_due"] == 0

    now = utcnow()
    utc = make_period(now - timedelta(days=41), now, "day", "UTC")
    (opened,) = await measure([OPENED], utc, Scope())
    assert opened.total.count == 1500 and max(stat.count for stat in opened.series) > 0

    async def agree() -> None:
        for tz, interval, scope, group_by in (
            ("UTC", "day", Scope(), "team"), ("Europe/Berlin", "day", Scope(), "agent"),
            ("America/St_Johns", "week", Scope(team_id="team-1"), "agent"), ("Asia/Kathmandu", "day", Scope(agent_id=agents[0]), None),
        ):  # fmt: skip
            period = make_period(now - timedelta(days=41), now, interval, tz)
            assert await analytics_scan.check(period, scope, group_by) == {}, (tz, interval, scope, group_by)

    await agree()
    # changes as the services make them: each with `rollup_due` moved in the same update, then rolled up (twice: a retry)
    first, second, third = await tickets.find({"resolved_ms": {"$gt": 0}, "first_response_ms": {"$gt": 0}}).sort([("_id", 1)]).limit(3).to_list()
    for doc, change in ((first, {"assignee_id": None}), (second, {"resolved_ms": None}), (third, {"team_id": "team-9"})):
        await tickets.update_one({"_id": doc["_id"]}, {"$set": change, "$inc": {"rollup_due": 1}})
        if doc is not third:  # the third one's process stopped before its roll-up
            await rollups.sync_ticket(doc["_id"])
            await rollups.sync_ticket(doc["_id"])
    missed = await analytics_scan.check(utc, Scope(), "team")
    assert set(missed) == {"opened", "first_response", "resolved"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**system.env, "MQCHAT_DB_NAME": desk_store}
        return subprocess.run([sys.executable, "-m", "mqchat", "desk-rollups", *args], env=env, capture_output=True, text=True, timeout=120)

    checked = await asyncio.to_thread(cli, "--check", "41")
    assert checked.returncode == 1 and "opened per team: differs at " in checked.stdout and "--rebuild" in checked.stderr
    recounted = await asyncio.to_thread(cli)  # what the bridge's sweep also does (rollups.sync_due)
    assert recounted.returncode == 0 and recounted.stdout.strip() == "counted 1 tickets and 0 ratings", recounted.stderr
    await agree()


def test_days_follow_the_wall_clock_across_daylight_saving() -> None:
    period = make_period(datetime(2026, 10, 24, 12, tzinfo=UTC), datetime(2026, 10, 26, 23, tzinfo=UTC), "day", "Europe/Berlin")
    lengths = [(b - a) / 3_600_000 for a, b in zip(period.boundaries, period.boundaries[1:], strict=False)]
    assert lengths == [24, 25, 24]  # Sunday 25 October has an extra hour
    assert datetime.fromtimestamp(period.start_ms / 1000, UTC).isoformat() == "2026-10-23T22:00:00+00:00"
    # the counters' UTC days split at local midnight: 22:00 UTC in summer time, 23:00 after it
    day = to_ms(datetime(2026, 10, 24, tzinfo=UTC))
    assert _pieces(day, period.boundaries) == [(0, 0, 88), (1, 88, 96)]
    assert _pieces(day + 86_400_000, period.boundaries) == [(1, 0, 92), (2, 92, 96)]
    nepal = make_period(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC), "week", "Asia/Kathmandu")
    assert _pieces(nepal.start_ms - nepal.start_ms % 86_400_000, nepal.boundaries) == [(None, 0, 73), (0, 73, 96)]  # 18:15 UTC
