"""Support desk reports over time: tickets opened and resolved, first-response and resolution times, CSAT.

Reports sum the desk's counters (core.services.rollups): one document per UTC day,
agent and team, with day totals and 15-minute slots. A `$group` by day sums the
period's documents (the shape nx-27017 runs in SQL): a day inside one bucket of
the report adds its totals; a day a bucket boundary cuts (a local midnight
elsewhere than at 00:00 UTC, or the period's edges) adds the slots of its
smaller pieces to their buckets and the total minus them to the largest. So a
report reads per day, not per ticket, in any time zone whose offset is a whole
number of quarter hours (all in use since 1979; a boundary inside a quarter hour
counts that quarter with the bucket its start falls in). Per agent or team it is
a `$group` by that field, less what the period's first and last UTC days hold
outside it.

A ticket counts for its current assignee and team (`null` without one); a CSAT
rating for the agent and team it was credited to; a rating of 4 or 5 counts as
satisfied. Team names come from the `teams` collection. The full scans these
figures replace are core.services.analytics_scan (`mqchat desk-rollups --check`).
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bson import ObjectId

from core.clock import iso_from_ms, to_ms, utcnow
from core.documents import User
from core.errors import InvalidInput
from core.services import rollups
from core.services.lookup import get_by_id
from core.topics import is_object_id

Interval = Literal["day", "week"]
GroupBy = Literal["agent", "team"]
MAX_BUCKETS = 400
DEFAULT_DAYS = 30
TEAMS_COLLECTION = "teams"


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
    """What is counted: a counter of core.services.rollups, averaged over `total` (a sum of values) when given."""

    name: str
    count: str
    total: str | None = None


OPENED = Figure("opened", "o")
FIRST_RESPONSE = Figure("first_response", "fn", "fs")
RESOLVED = Figure("resolved", "rn", "rs")
CSAT = Figure("csat", "cn", "cs")
CSAT_SATISFIED = Figure("csat_satisfied", "cg")


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


Pieces = list[tuple[int | None, int, int]]  # (bucket index or None outside the period, first slot, end slot)


def _pieces(day_ms: int, boundaries: list[int]) -> Pieces:
    """The runs of a UTC day's slots that fall in the same bucket of the report (a slot goes with its start)."""
    pieces: Pieces = []
    slot = 0
    while slot < rollups.SLOTS:
        index = bisect_right(boundaries, day_ms + slot * rollups.SLOT_MS) - 1
        bucket = index if 0 <= index < len(boundaries) - 1 else None
        following = boundaries[index + 1] if index + 1 < len(boundaries) else day_ms + rollups.DAY_MS
        end = min(rollups.SLOTS, max(slot + 1, -(-(following - day_ms) // rollups.SLOT_MS)))
        pieces.append((bucket, slot, end))
        slot = end
    return pieces


def _largest(pieces: Pieces) -> int:
    return max(range(len(pieces)), key=lambda i: pieces[i][2] - pieces[i][1])


def _cut_off(days: Iterable[Pieces]) -> list[int]:
    """The slots of the days' pieces other than their largest: the ones a report sums one by one."""
    slots = {slot for pieces in days for i, (_, first, end) in enumerate(pieces) if i != _largest(pieces) for slot in range(first, end)}
    return sorted(slots)


def _split(row: dict[str, Any], names: list[str], pieces: Pieces) -> list[tuple[int | None, dict[str, int]]]:
    """A day's sums of the counters `names` per bucket (None: outside the period): the largest piece is the
    day's total minus the other pieces' slots."""
    largest = _largest(pieces)
    rest = {name: int(row.get(rollups.field(name, None)) or 0) for name in names}
    split: list[tuple[int | None, dict[str, int]]] = []
    for i, (bucket, first, end) in enumerate(pieces):
        if i != largest:
            part = {name: sum(int(row.get(rollups.field(name, slot)) or 0) for slot in range(first, end)) for name in names}
            split.append((bucket, part))
            for name, value in part.items():
                rest[name] -= value
    return [*split, (pieces[largest][0], rest)]


def _stat(sums: dict[str, int], figure: Figure) -> Stat:
    count = sums.get(figure.count, 0)
    average = sums.get(figure.total, 0) / count if figure.total and count else None
    return Stat(count=count, average=average)


async def _sums(match: dict[str, Any], key: str, fields: list[str]) -> list[dict[str, Any]]:
    """`$group` by a plain field with `$sum` of plain fields: the shape nx-27017 runs in SQL (docs/store.md)."""
    pipeline = [{"$match": match}, {"$group": {"_id": f"${key}", **{name: {"$sum": f"${name}"} for name in fields}}}]
    return await (await rollups.counters().aggregate(pipeline)).to_list()


async def measure(figures: list[Figure], period: Period, scope: Scope, group_by: GroupBy | None = None) -> list[Measured]:
    """Each figure per bucket of the period, in total, and per agent or team when `group_by` is given.

    The series is one `$group` by day over the period's counters: each day's totals, and the slots of the
    pieces a bucket boundary cuts off it. The groups are a `$group` by agent or team of the totals, less what
    the first and last UTC days hold outside the period.
    """
    names = sorted({name for figure in figures for name in (figure.count, figure.total) if name})
    first_day = period.start_ms - period.start_ms % rollups.DAY_MS
    days = {day: _pieces(day, period.boundaries) for day in range(first_day, period.end_ms, rollups.DAY_MS)}
    match: dict[str, Any] = {"day_ms": {"$gte": first_day, "$lt": period.end_ms}}
    if scope.agent_id is not None:
        match["agent_id"] = scope.agent_id
    if scope.team_id is not None:
        match["team_id"] = scope.team_id
    totals = [rollups.field(name, None) for name in names]
    slots = [rollups.field(name, slot) for name in names for slot in _cut_off(days.values())]
    buckets = [dict.fromkeys(names, 0) for _ in period.boundaries[:-1]]
    for row in await _sums(match, "day_ms", totals + slots):
        for bucket, values in _split(row, names, days[int(row["_id"])]):
            if bucket is not None:
                for name, value in values.items():
                    buckets[bucket][name] += value
    groups: dict[str | None, dict[str, int]] = {}
    if group_by:
        key = "team_id" if group_by == "team" else "agent_id"
        for row in await _sums(match, key, totals):
            groups[row["_id"] or None] = {name: int(row.get(rollups.field(name, None)) or 0) for name in names}
        for day in {first_day, max(days)}:  # the days the period starts or ends inside of
            if any(bucket is None for bucket, _, _ in days[day]):
                async for doc in rollups.counters().find({**match, "day_ms": day}):
                    outside = [values for bucket, values in _split(doc, names, days[day]) if bucket is None]
                    for values in outside:
                        for name, value in values.items():
                            groups[doc[key] or None][name] -= value
    everything = {name: sum(bucket[name] for bucket in buckets) for name in names}
    return [
        Measured(
            series=[_stat(bucket, figure) for bucket in buckets],
            total=_stat(everything, figure),
            groups={key: _stat(sums, figure) for key, sums in groups.items() if sums.get(figure.count)},
        )
        for figure in figures
    ]


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
        teams = rollups.counters().database[TEAMS_COLLECTION]
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
