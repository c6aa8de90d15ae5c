"""Wire shapes of the admin-only endpoints: desk reports (`/api/admin/analytics/...`), user
management, data rights and the audit log. Request structs refuse unknown fields."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

from core.payloads import UserOut
from core.roles import Role


class ReportOut(Struct, rename={"from_": "from"}):
    """What every report says about itself: the period, its buckets and whose records count."""

    from_: str
    to: str
    interval: Literal["day", "week"]
    tz: str
    agent_id: str | None
    team_id: str | None
    group_by: Literal["agent", "team"] | None


class TicketCounts(Struct):
    opened: int
    resolved: int


class TicketCountsAt(TicketCounts):
    start: str


class TicketCountsOf(TicketCounts):
    key: str | None  # the agent or team id; null: unassigned / no team
    name: str | None  # the agent's username or the team's name, when known


class TicketsReport(ReportOut):
    series: list[TicketCountsAt]
    total: TicketCounts
    groups: list[TicketCountsOf]


class Durations(Struct):
    count: int
    average_seconds: float | None


class DurationsAt(Durations):
    start: str


class DurationsOf(Durations):
    key: str | None
    name: str | None


class DurationsReport(ReportOut):
    series: list[DurationsAt]
    total: Durations
    groups: list[DurationsOf]


class Ratings(Struct):
    count: int
    average_rating: float | None
    satisfied: int  # ratings of 4 or 5
    score: float | None  # satisfied / count, in percent


class RatingsAt(Ratings):
    start: str


class RatingsOf(Ratings):
    key: str | None
    name: str | None


class CsatReport(ReportOut):
    series: list[RatingsAt]
    total: Ratings
    groups: list[RatingsOf]


# --- user management ----------------------------------------------------------------------


class AdminUserOut(Struct):
    """A user as the admin console lists them: the public view plus the account's state."""

    user: UserOut
    active: bool
    erased: bool


class AdminUserList(Struct):
    items: list[AdminUserOut]


class UserChangeRequest(Struct, forbid_unknown_fields=True):
    """Deactivate or reactivate an account, or change its role; at least one of the two."""

    active: bool | None = None
    role: Role | None = None


class ErasureOut(Struct):
    """An erased account and what the erasure changed."""

    user: AdminUserOut
    messages: int  # messages turned into tombstones
    attachments: int  # uploads deleted
    tickets: int  # tickets whose subject, description and order were removed


# --- audit log ----------------------------------------------------------------------------

AuditCursor = Annotated[int, Meta(ge=1)]


class AuditEntryOut(Struct):
    id: str
    seq: int
    at: str
    actor_id: str  # a user id, or "cli" for the mqchat command
    action: str
    target_type: str
    target_id: str
    details: dict[str, str]


class AuditList(Struct):
    items: list[AuditEntryOut]
    next_before: int | None
