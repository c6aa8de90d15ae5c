"""Operational figures for admins: users, presence, traffic, tickets and response times."""

from __future__ import annotations

import asyncio
import statistics
from datetime import timedelta

from core.clock import to_ms, utcnow
from core.documents import Conversation, Message, Ticket, User
from core.payloads import StatsOut
from core.roles import Role

RESPONSE_SAMPLE = 1000
TICKET_STATUSES = ("open", "assigned", "in_progress", "resolved", "closed")


async def collect_stats() -> StatsOut:
    """Counts over the whole store (each one an indexed count or a small aggregation)."""
    now = utcnow()
    roles, statuses, online, conversations, recent, answered, oldest_open = await asyncio.gather(
        asyncio.gather(*(User.find({"role": role.value, "active": True}).count() for role in Role)),
        asyncio.gather(*(Ticket.find({"status": status}).count() for status in TICKET_STATUSES)),
        User.find({"presence_status": {"$in": ["online", "away"]}}).count(),
        Conversation.count(),
        Message.find({"created_at": {"$gt": now - timedelta(hours=24)}}).count(),
        Ticket.find({"first_response_ms": {"$gt": 0}}).sort([("number", -1)]).limit(RESPONSE_SAMPLE).to_list(),
        Ticket.find({"status": "open"}).sort([("number", 1)]).limit(1).to_list(),
    )
    response_times = [(t.first_response_ms - to_ms(t.created_at)) / 1000 for t in answered if t.first_response_ms]
    by_status = dict(zip(TICKET_STATUSES, statuses, strict=True))
    return StatsOut(
        users_by_role=dict(zip((role.value for role in Role), roles, strict=True)),
        online_now=online,
        conversations=conversations,
        messages_last_24h=recent,
        tickets_by_status=by_status,
        median_first_response_seconds=statistics.median(response_times) if response_times else None,
        open_backlog=by_status["open"],
        oldest_open_ticket_age_seconds=(now - oldest_open[0].created_at).total_seconds() if oldest_open else None,
    )
