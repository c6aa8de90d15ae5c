"""Escalation: a ticket that waited longer than its team's threshold without an answer is flagged and announced.

Waiting means live (open, assigned or in progress) with no first response yet,
counted from its creation. The threshold is the team's `escalate_after_seconds`,
else the default (MQCHAT_ESCALATE_AFTER; 0 never escalates). A ticket is
escalated once: `escalated_at` stays as a visible flag.
"""

from __future__ import annotations

from core import events
from core.clock import iso_from_ms, to_ms, utcnow
from core.documents import Team, Ticket
from core.events import Delivery
from core.services.lookup import get_by_id
from core.services.tickets import ACTIVE, ticket_out

WAITING = ("open", *ACTIVE)


async def _threshold(team_id: str | None, default_seconds: int, known: dict[str | None, tuple[int, list[str]]]) -> tuple[int, list[str]]:
    """The team's threshold in seconds and its leads (cached in `known` for one round)."""
    if team_id not in known:
        team = await get_by_id(Team, team_id) if team_id else None
        known[team_id] = (team.escalate_after_seconds or default_seconds, team.lead_ids) if team else (default_seconds, [])
    return known[team_id]


async def escalate_overdue(default_seconds: int) -> list[Delivery]:
    """Flag every overdue waiting ticket; `ticket.escalated` on the desk topic and to its assignee and team leads."""
    now_ms = to_ms(utcnow())
    waiting = await Ticket.find(
        {"status": {"$in": list(WAITING)}, "first_response_ms": {"$eq": None}, "escalated_ms": {"$eq": None}}
    ).to_list()
    known: dict[str | None, tuple[int, list[str]]] = {}
    deliveries: list[Delivery] = []
    for ticket in waiting:
        seconds, leads = await _threshold(ticket.team_id, default_seconds, known)
        if seconds <= 0 or to_ms(ticket.created_at) + seconds * 1000 > now_ms:
            continue
        flagged = await Ticket.get_pymongo_collection().update_one(
            {"_id": ticket.id, "escalated_ms": {"$eq": None}}, {"$set": {"escalated_ms": now_ms}}
        )
        if flagged.modified_count == 0:  # another bridge did it
            continue
        ticket.escalated_ms = now_ms
        change = {"escalated_at": {"from": None, "to": iso_from_ms(now_ms)}}
        deliveries += events.ticket_event("ticket.escalated", await ticket_out(ticket), change, [ticket.assignee_id or "", *leads])
    return deliveries
