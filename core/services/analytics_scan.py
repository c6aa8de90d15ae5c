"""The desk reports' figures computed from every ticket and rating of the period: what the counters must equal.

The reports used to run these; they read every ticket of the period (seconds at
100,000 tickets on nx-27017, docs/benchmarks.md) and now sum the counters
(core.services.analytics). `mqchat desk-rollups --check` runs both and compares.

Each figure is two aggregations over one collection, both starting with a `$match`
on an indexed epoch-ms field inside the period: a `$bucket` whose boundaries are the
report's gives the series, a `$group` by a plain field the per-agent or per-team
totals. Both shapes run inside nx-27017's SQL tier (docs/store.md).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from core.documents import CsatRating, Ticket
from core.services import analytics
from core.services.analytics import Figure, GroupBy, Measured, Period, Scope, Stat
from core.services.rollups import SATISFIED_FROM


@dataclass(frozen=True, slots=True)
class Scanned:
    """Records whose `at` (epoch ms) falls in the period, averaging `at - since` or `value`."""

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


_RATINGS = CsatRating.Settings.name
SCANS: dict[str, Scanned] = {
    analytics.OPENED.name: Scanned("tickets", at="created_ms", agent_field="assignee_id"),
    analytics.FIRST_RESPONSE.name: Scanned("tickets", at="first_response_ms", agent_field="assignee_id", since="created_ms"),
    analytics.RESOLVED.name: Scanned("tickets", at="resolved_ms", agent_field="assignee_id", since="created_ms"),
    analytics.CSAT.name: Scanned(_RATINGS, at="created_ms", agent_field="agent_id", value="rating"),
    analytics.CSAT_SATISFIED.name: Scanned(_RATINGS, at="created_ms", agent_field="agent_id", extra=(("rating", {"$gte": SATISFIED_FROM}),)),
}
FIGURES = (analytics.OPENED, analytics.FIRST_RESPONSE, analytics.RESOLVED, analytics.CSAT, analytics.CSAT_SATISFIED)


def _stat(row: dict[str, Any]) -> Stat:
    average = row.get("average")
    return Stat(count=int(row.get("count", 0)), average=None if average is None else float(average))


def _total(series: list[Stat]) -> Stat:
    count = sum(stat.count for stat in series)
    weighted = [stat.average * stat.count for stat in series if stat.average is not None]
    return Stat(count=count, average=sum(weighted) / count if weighted and count else None)


async def _rows(collection: AsyncCollection, pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return await (await collection.aggregate(pipeline)).to_list()


async def measure(figure: Figure, period: Period, scope: Scope, group_by: GroupBy | None = None) -> Measured:
    """The figure per bucket of the period, in total, and per agent or team, from every record of the period."""
    scanned = SCANS[figure.name]
    match: dict[str, Any] = {scanned.at: {"$gte": period.start_ms, "$lt": period.end_ms}, **dict(scanned.extra)}
    if scope.agent_id is not None:
        match[scanned.agent_field] = scope.agent_id
    if scope.team_id is not None:
        match["team_id"] = scope.team_id
    output: dict[str, Any] = {"count": {"$sum": 1}}
    if scanned.averaged() is not None:
        output["average"] = {"$avg": scanned.averaged()}
    collection = Ticket.get_pymongo_collection().database[scanned.collection]
    bucketed = [{"$match": match}, {"$bucket": {"groupBy": f"${scanned.at}", "boundaries": period.boundaries, "output": output}}]
    grouped = [{"$match": match}, {"$group": {"_id": f"${'team_id' if group_by == 'team' else scanned.agent_field}", **output}}]
    buckets, groups = await asyncio.gather(
        _rows(collection, bucketed), _rows(collection, grouped) if group_by else asyncio.sleep(0, result=[])
    )
    by_start = {int(row["_id"]): _stat(row) for row in buckets}
    series = [by_start.get(start, Stat()) for start in period.boundaries[:-1]]
    return Measured(series=series, total=_total(series), groups={row["_id"]: _stat(row) for row in groups})


def _same(a: Stat, b: Stat) -> bool:
    if a.count != b.count or (a.average is None) != (b.average is None):
        return False
    return a.average is None or b.average is None or abs(a.average - b.average) <= 1e-6 * max(1.0, abs(a.average))


def differences(counted: Measured, scanned: Measured) -> list[str]:
    """Where the counters' figure differs from the scan's: bucket indexes, "total", group keys."""
    found = [str(i) for i, (a, b) in enumerate(zip(counted.series, scanned.series, strict=True)) if not _same(a, b)]
    found += ["total"] if not _same(counted.total, scanned.total) else []
    keys = set(counted.groups) | set(scanned.groups)
    return found + [f"group {key}" for key in sorted(keys, key=str) if not _same(counted.groups.get(key, Stat()), scanned.groups.get(key, Stat()))]


async def check(period: Period, scope: Scope, group_by: GroupBy | None = None) -> dict[str, list[str]]:
    """Every figure from the counters and from a full scan; the differences per figure (empty: they agree)."""
    counted = await analytics.measure(list(FIGURES), period, scope, group_by)
    found = {}
    for figure, from_counters in zip(FIGURES, counted, strict=True):
        diff = differences(from_counters, await measure(figure, period, scope, group_by))
        if diff:
            found[figure.name] = diff
    return found
