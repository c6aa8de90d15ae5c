"""Support desk reports over time: tickets opened and resolved, first-response and resolution times, CSAT.

Each figure is two aggregations over one collection, both starting with a `$match`
on an indexed epoch-ms field inside the period: a `$bucket` whose boundaries are
computed here (day or week starts in the chosen time zone, daylight saving
included) gives the series, a `$group` by a plain field gives the per-agent or
per-team totals. Both shapes run inside nx-27017's SQL tier; grouping by a
computed key falls back to its Python evaluator (~30x slower) and a compound
`_id` is not grouped at all (docs/store.md), so neither is used.

Tickets carry `team_id` once teams exist; tickets without one group under `null`.
CSAT ratings are read from the `csat_ratings` collection: `{ticket_id, agent_id,
team_id, rating (1-5), created_ms}`; a rating of 4 or 5 counts as satisfied. Team
names come from the `teams` collection (`{_id, name}`) when it exists.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bson import ObjectId
from pymongo.asynchronous.collection import AsyncCollection

from core.clock import iso_from_ms, to_ms, utcnow
from core.documents import Ticket, User
from core.errors import InvalidInput
from core.services.lookup import get_by_id
from core.topics import is_object_id

Interval = Literal["day", "week"]
GroupBy = Literal["agent", "team"]
MAX_BUCKETS = 400
DEFAULT_DAYS = 30
CSAT_COLLECTION = "csat_ratings"
TEAMS_COLLECTION = "teams"
SATISFIED_FROM = 4


@dataclass(frozen=True, slots=True)
class Period:
    """The bucket starts of a report and its end, as epoch milliseconds."""

    boundaries: list[int]
    interval: Interval
    tz: str

    @property
    def start_ms(self) -> int:
        return self.boundaries[0]

    @property
    def end_ms(self) -> int:
        return self.boundaries[-1]


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {tz!r} (use an IANA name such as Europe/Berlin)") from None


def make_period(start: datetime | None, end: datetime | None, interval: Interval, tz: str) -> Period:
    """Buckets from the day (or Monday) of `start` in `tz` until they cover `end` (default: now and 30 days before)."""
    zone = _zone(tz)
    end = end or utcnow()
    start = start or end - timedelta(days=DEFAULT_DAYS - 1)
    if start >= end:
        raise InvalidInput("from must be before to")
    local = start.astimezone(zone)
    first = datetime(local.year, local.month, local.day)
    if interval == "week":
        first -= timedelta(days=first.weekday())
    step = timedelta(days=7 if interval == "week" else 1)
    end_ms, boundaries, day = to_ms(end), [], first
    while not boundaries or boundaries[-1] < end_ms:
        if len(boundaries) > MAX_BUCKETS:
            raise InvalidInput(f"a report has at most {MAX_BUCKETS} {interval}s; choose a shorter period or weeks")
        boundaries.append(to_ms(day.replace(tzinfo=zone)))  # wall-clock midnights: DST days are 23 or 25 hours
        day += step
    return Period(boundaries=boundaries, interval=interval, tz=tz)


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose records count: one agent's, one team's, or everyone's."""

    agent_id: str | None = None
    team_id: str | None = None


@dataclass(frozen=True, slots=True)
class Figure:
    """What is counted: records whose `at` (epoch ms) falls in the period, averaging `at - since` or `value`."""

    collection: str
    at: str
    agent_field: str
    since: str | None = None
    value: str | None = None
    extra: tuple[tuple[str, Any], ...] = ()

    def averaged(self) -> Any:
        if self.since:
            return {"$subtract": [f"${self.at}", f"${self.since}"]}
        return f"${self.value}" if self.value else None


OPENED = Figure("tickets", at="created_ms", agent_field="assignee_id")
FIRST_RESPONSE = Figure("tickets", at="first_response_ms", agent_field="assignee_id", since="created_ms")
RESOLVED = Figure("tickets", at="resolved_ms", agent_field="assignee_id", since="created_ms")
CSAT = Figure(CSAT_COLLECTION, at="created_ms", agent_field="agent_id", value="rating")
CSAT_SATISFIED = Figure(CSAT_COLLECTION, at="created_ms", agent_field="agent_id", extra=(("rating", {"$gte": SATISFIED_FROM}),))


@dataclass(frozen=True, slots=True)
class Stat:
    """How many records and the average of the figure's value over them (None without records)."""

    count: int = 0
    average: float | None = None


@dataclass(frozen=True, slots=True)
class Measured:
    series: list[Stat]  # one per bucket of the period
    total: Stat
    groups: dict[str | None, Stat]  # by agent or team id; empty unless asked for


def _collection(name: str) -> AsyncCollection:
    return Ticket.get_pymongo_collection().database[name]


def _stat(row: dict[str, Any]) -> Stat:
    average = row.get("average")
    return Stat(count=int(row.get("count", 0)), average=None if average is None else float(average))


def _total(series: list[Stat]) -> Stat:
    count = sum(stat.count for stat in series)
    weighted = [stat.average * stat.count for stat in series if stat.average is not None]
    return Stat(count=count, average=sum(weighted) / count if weighted and count else None)


async def measure(figure: Figure, period: Period, scope: Scope, group_by: GroupBy | None = None) -> Measured:
    """The figure per bucket of the period, in total, and per agent or team when `group_by` is given."""
    match: dict[str, Any] = {figure.at: {"$gte": period.start_ms, "$lt": period.end_ms}, **dict(figure.extra)}
    if scope.agent_id is not None:
        match[figure.agent_field] = scope.agent_id
    if scope.team_id is not None:
        match["team_id"] = scope.team_id
    output: dict[str, Any] = {"count": {"$sum": 1}}
    if figure.averaged() is not None:
        output["average"] = {"$avg": figure.averaged()}
    collection = _collection(figure.collection)
    bucketed = [{"$match": match}, {"$bucket": {"groupBy": f"${figure.at}", "boundaries": period.boundaries, "output": output}}]
    grouped = [{"$match": match}, {"$group": {"_id": f"${'team_id' if group_by == 'team' else figure.agent_field}", **output}}]
    buckets, groups = await asyncio.gather(
        _rows(collection, bucketed), _rows(collection, grouped) if group_by else asyncio.sleep(0, result=[])
    )
    by_start = {int(row["_id"]): _stat(row) for row in buckets}
    series = [by_start.get(start, Stat()) for start in period.boundaries[:-1]]
    return Measured(series=series, total=_total(series), groups={row["_id"]: _stat(row) for row in groups})


async def _rows(collection: AsyncCollection, pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return await (await collection.aggregate(pipeline)).to_list()


def bucket_starts(period: Period) -> list[str]:
    """The ISO-8601 UTC instants the buckets start at."""
    return [iso_from_ms(start) or "" for start in period.boundaries[:-1]]


async def group_names(group_by: GroupBy | None, keys: list[str | None]) -> dict[str, str]:
    """Agents' usernames or teams' names of a report's groups (one lookup each: a report has few groups)."""
    ids = [key for key in keys if key and is_object_id(key)]
    if group_by == "agent":
        users = await asyncio.gather(*(get_by_id(User, user_id) for user_id in ids))
        return {user_id: user.username for user_id, user in zip(ids, users, strict=True) if user is not None}
    if group_by == "team":
        teams = _collection(TEAMS_COLLECTION)
        found = await asyncio.gather(*(teams.find_one({"_id": ObjectId(team_id)}, {"name": 1}) for team_id in ids))
        return {team_id: team["name"] for team_id, team in zip(ids, found, strict=True) if team is not None}
    return {}


def parse_time(value: str | None, name: str, tz: str) -> datetime | None:
    """An ISO-8601 date or timestamp from a query; one without an offset is wall-clock time in `tz`."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{name} must be an ISO-8601 date or timestamp") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=_zone(tz))).astimezone(UTC)
