"""Desk reports (`/api/admin/analytics/...`): a small desk's day counted and timed, per agent and team, and bad queries.

Runs on the shared embedded system: every figure is scoped to a fresh agent or team.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from core.services.analytics import make_period
from tests.support import Account, System, create_staff, signup


@pytest.fixture
async def store(system: System) -> AsyncIterator[AsyncDatabase]:
    client: AsyncMongoClient = AsyncMongoClient(system.store_uri, tz_aware=True)
    try:
        yield client["mqchat"]
    finally:
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


async def test_a_desk_day_counted_timed_and_rated_per_agent_and_team(
    system: System, api: httpx.AsyncClient, admin: Account, store: AsyncDatabase
) -> None:
    agent, customer = await create_staff(system, api, "agent"), await signup(api)
    team, team_name = str(ObjectId()), f"Shipping {secrets.token_hex(3)}"
    await store.teams.insert_one({"_id": ObjectId(team), "name": team_name, "name_key": team_name.lower()})
    answered, resolved, reopened = [await _ticket(api, customer, admin, agent) for _ in range(3)]
    for ticket in (answered, resolved):
        reply = await api.post(f"/api/conversations/{ticket['conversation_id']}/messages", json={"body": "On it"}, headers=agent.headers)
        assert reply.status_code == 201, reply.text
    await _status(api, agent, resolved, "in_progress", "resolved")
    await _status(api, agent, reopened, "in_progress", "resolved", "in_progress")  # reopened: not resolved
    await store.tickets.update_many({"number": {"$in": [answered["number"], resolved["number"]]}}, {"$set": {"team_id": team}})
    now_ms = int(time.time() * 1000)
    await store.csat_ratings.insert_many([
        {"ticket_id": t["id"], "agent_id": agent.id, "team_id": t_team, "rating": rating, "created_ms": now_ms}
        for t, t_team, rating in ((answered, team, 5), (resolved, team, 3), (reopened, None, 4))
    ])  # fmt: skip

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
    assert csat["total"] == {"count": 3, "average_rating": 4.0, "satisfied": 2, "score": 66.7}
    team_csat = await report("csat", team_id=team, group_by="agent", interval="week", tz="Europe/Berlin")
    assert team_csat["total"]["count"] == 2 and team_csat["groups"][0]["satisfied"] == 1
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


def test_days_follow_the_wall_clock_across_daylight_saving() -> None:
    period = make_period(datetime(2026, 10, 24, 12, tzinfo=UTC), datetime(2026, 10, 26, 23, tzinfo=UTC), "day", "Europe/Berlin")
    lengths = [(b - a) / 3_600_000 for a, b in zip(period.boundaries, period.boundaries[1:], strict=False)]
    assert lengths == [24, 25, 24]  # Sunday 25 October has an extra hour
    assert datetime.fromtimestamp(period.start_ms / 1000, UTC).isoformat() == "2026-10-23T22:00:00+00:00"
