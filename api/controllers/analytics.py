"""`/api/admin/analytics/...`: the support desk's figures over time (admin only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery, QueryParameter

from core.admin_payloads import (
    CsatReport,
    Durations,
    DurationsAt,
    DurationsOf,
    DurationsReport,
    Ratings,
    RatingsAt,
    RatingsOf,
    TicketCounts,
    TicketCountsAt,
    TicketCountsOf,
    TicketsReport,
)
from core.clock import iso_from_ms
from core.services import analytics
from core.services.analytics import Figure, GroupBy, Measured, Period, Scope, Stat

ObjectIdParam = Annotated[str | None, QueryParameter(pattern=r"^[0-9a-f]{24}$")]
TeamParam = Annotated[str | None, QueryParameter(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f$]+$")]
TimeParam = Annotated[str | None, QueryParameter(max_length=40, description="ISO-8601 date or timestamp")]


@dataclass(frozen=True, slots=True)
class ReportQuery:
    period: Period
    scope: Scope
    group_by: GroupBy | None

    def header(self) -> dict[str, Any]:
        return {
            "from_": iso_from_ms(self.period.start_ms), "to": iso_from_ms(self.period.end_ms),
            "interval": self.period.interval, "tz": self.period.tz, "agent_id": self.scope.agent_id,
            "team_id": self.scope.team_id, "group_by": self.group_by,
        }  # fmt: skip

    async def measure(self, *figures: Figure) -> list[Measured]:
        return await analytics.measure(list(figures), self.period, self.scope, self.group_by)


async def report_query(
    from_: Annotated[str | None, QueryParameter(name="from", max_length=40, description="ISO-8601 date or timestamp")] = None,
    to: TimeParam = None,
    interval: FromQuery[Literal["day", "week"]] = "day",
    tz: Annotated[str, QueryParameter(min_length=1, max_length=64)] = "UTC",
    agent_id: ObjectIdParam = None,
    team_id: TeamParam = None,
    group_by: FromQuery[GroupBy | None] = None,
) -> ReportQuery:
    """The period (`from` inclusive, `to` exclusive; default the last 30 days), whose records, and the grouping."""
    start, end = analytics.parse_time(from_, "from", tz), analytics.parse_time(to, "to", tz)
    return ReportQuery(analytics.make_period(start, end, interval, tz), Scope(agent_id, team_id), group_by)


def _keys(*measured: Measured) -> list[str | None]:
    return list(dict.fromkeys(key for m in measured for key in m.groups))


def _count(measured: Measured, key: str | None) -> int:
    return measured.groups.get(key, Stat()).count


def _durations(stat: Stat) -> dict[str, Any]:
    return {"count": stat.count, "average_seconds": None if stat.average is None else round(stat.average / 1000, 3)}


def _ratings(stat: Stat, satisfied: Stat) -> dict[str, Any]:
    score = round(100 * satisfied.count / stat.count, 1) if stat.count else None
    return {"count": stat.count, "average_rating": stat.average, "satisfied": satisfied.count, "score": score}


class AnalyticsController(Controller):
    path = "/api/admin/analytics"
    tags = ["admin"]
    dependencies = {"report": Provide(report_query)}

    async def _names(self, report: ReportQuery, keys: list[str | None]) -> dict[str, str]:
        return await analytics.group_names(report.group_by, keys)

    @get("/tickets")
    async def tickets(self, report: NamedDependency[ReportQuery]) -> TicketsReport:
        """Tickets opened and resolved per day or week (and per agent or team with `group_by`)."""
        opened, resolved = await report.measure(analytics.OPENED, analytics.RESOLVED)
        keys = _keys(opened, resolved)
        names = await self._names(report, keys)
        starts = analytics.bucket_starts(report.period)
        return TicketsReport(
            **report.header(),
            series=[
                TicketCountsAt(start=s, opened=o.count, resolved=r.count)
                for s, o, r in zip(starts, opened.series, resolved.series, strict=True)
            ],
            total=TicketCounts(opened=opened.total.count, resolved=resolved.total.count),
            groups=[
                TicketCountsOf(key=k, name=names.get(k or ""), opened=_count(opened, k), resolved=_count(resolved, k))
                for k in keys
            ],
        )

    async def _durations_report(self, report: ReportQuery, figure: Figure) -> DurationsReport:
        (measured,) = await report.measure(figure)
        names = await self._names(report, list(measured.groups))
        starts = analytics.bucket_starts(report.period)
        return DurationsReport(
            **report.header(),
            series=[DurationsAt(start=s, **_durations(stat)) for s, stat in zip(starts, measured.series, strict=True)],
            total=Durations(**_durations(measured.total)),
            groups=[DurationsOf(key=k, name=names.get(k or ""), **_durations(stat)) for k, stat in measured.groups.items()],
        )

    @get("/first-response")
    async def first_response(self, report: NamedDependency[ReportQuery]) -> DurationsReport:
        """Tickets first answered per bucket and their average time from opening to the assignee's first reply."""
        return await self._durations_report(report, analytics.FIRST_RESPONSE)

    @get("/resolution")
    async def resolution(self, report: NamedDependency[ReportQuery]) -> DurationsReport:
        """Tickets resolved per bucket and their average time from opening to resolution."""
        return await self._durations_report(report, analytics.RESOLVED)

    @get("/csat")
    async def csat(self, report: NamedDependency[ReportQuery]) -> CsatReport:
        """Satisfaction ratings per bucket: how many, their average (1-5), how many were 4 or 5 and that share."""
        rated, satisfied = await report.measure(analytics.CSAT, analytics.CSAT_SATISFIED)
        keys = list(rated.groups)
        names = await self._names(report, keys)
        starts = analytics.bucket_starts(report.period)
        return CsatReport(
            **report.header(),
            series=[RatingsAt(start=s, **_ratings(r, h)) for s, r, h in zip(starts, rated.series, satisfied.series, strict=True)],
            total=Ratings(**_ratings(rated.total, satisfied.total)),
            groups=[
                RatingsOf(key=k, name=names.get(k or ""), **_ratings(rated.groups[k], satisfied.groups.get(k, Stat()))) for k in keys
            ],
        )
