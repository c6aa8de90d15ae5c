"""Customer satisfaction: a one-question survey in the ticket's conversation when it is resolved, one answer per ticket.

The survey is a system message (`kind: "system"`) whose `client_msg_id` is
`csat:<ticket id>`: clients show a rating card for it, and resolving the ticket
again (after a reopen) does not ask twice. The answer is stored with the ticket's
id as its own (a second answer is 409), credited to the ticket's assignee and
team at the time of the answer.
"""

from __future__ import annotations

from datetime import datetime

from pymongo.errors import DuplicateKeyError

from core import events
from core.clock import iso, to_ms
from core.documents import CsatRating, User
from core.errors import Conflict, Forbidden
from core.events import Delivery
from core.payloads import CsatFigures, CsatOut, CsatRequest, CsatSummary, TicketOut
from core.services import platform, rollups, tickets

SURVEY_PREFIX = "csat:"
SURVEY_BODY = "How would you rate the help you got with ticket #{number}? Rate it from 1 (poor) to 5 (excellent); a comment is welcome."
RATED_STATUSES = ("resolved", "closed")


async def request_survey(ticket: TicketOut) -> list[Delivery]:
    """After a ticket was resolved: the survey message in its conversation, once per ticket."""
    if ticket.status != "resolved":
        return []
    if await CsatRating.get(ticket.id) is not None:
        return []
    sent = await platform.post_system_message(
        ticket.conversation_id, SURVEY_BODY.format(number=ticket.number), f"{SURVEY_PREFIX}{ticket.id}"
    )
    return sent.deliveries if sent.result.created else []


def csat_out(rating: CsatRating) -> CsatOut:
    return CsatOut(ticket_id=rating.ticket_id, customer_id=rating.customer_id, agent_id=rating.agent_id,
                   team_id=rating.team_id, rating=rating.rating, comment=rating.comment,
                   created_at=iso(rating.created_at) or "")  # fmt: skip


async def submit(customer: User, ticket_id: str, request: CsatRequest) -> tuple[CsatOut, list[Delivery]]:
    """The ticket's customer rates a resolved or closed ticket, once; `csat.submitted` to the desk."""
    ticket = await tickets.visible_ticket(customer, ticket_id)
    if ticket.customer_id != str(customer.id):
        raise Forbidden("only the ticket's customer rates it")
    if ticket.status not in RATED_STATUSES:
        raise Conflict("a ticket is rated once it is resolved")
    rating = CsatRating(
        id=str(ticket.id), ticket_id=str(ticket.id), customer_id=ticket.customer_id, agent_id=ticket.assignee_id,
        team_id=ticket.team_id, rating=int(request.rating), comment=request.comment.strip(),
    )  # fmt: skip
    rating.created_ms = to_ms(rating.created_at)
    try:
        await rating.insert()
    except DuplicateKeyError:
        raise Conflict("this ticket has been rated already") from None
    await rollups.sync_rating(rating.id)
    view = csat_out(rating)
    return view, events.csat_event(view, [ticket.customer_id, ticket.assignee_id or ""])


async def get_rating(viewer: User, ticket_id: str) -> CsatOut | None:
    """A ticket's rating (None while unrated), for whoever may see the ticket."""
    ticket = await tickets.visible_ticket(viewer, ticket_id)
    rating = await CsatRating.get(str(ticket.id))
    return csat_out(rating) if rating is not None else None


def _figures(key: str | None, ratings: list[int]) -> CsatFigures:
    distribution = {str(score): ratings.count(score) for score in range(1, 6)}
    average = round(sum(ratings) / len(ratings), 2) if ratings else None
    return CsatFigures(id=key, count=len(ratings), average=average, distribution=distribution)


async def summary(since: datetime | None, until: datetime | None) -> CsatSummary:
    """Ratings given in [since, until): overall, per agent and per team (most rated first)."""
    window: dict[str, object] = {}
    if since is not None:
        window["$gte"] = since
    if until is not None:
        window["$lt"] = until
    query = {"created_at": window} if window else {}
    by_agent: dict[str | None, list[int]] = {}
    by_team: dict[str | None, list[int]] = {}
    everyone: list[int] = []
    collection = CsatRating.get_pymongo_collection()
    async for doc in collection.find(query, {"agent_id": 1, "team_id": 1, "rating": 1}):
        everyone.append(doc["rating"])
        by_agent.setdefault(doc.get("agent_id"), []).append(doc["rating"])
        by_team.setdefault(doc.get("team_id"), []).append(doc["rating"])

    def ranked(groups: dict[str | None, list[int]]) -> list[CsatFigures]:
        return sorted((_figures(key, values) for key, values in groups.items()), key=lambda f: (-f.count, f.id or ""))

    return CsatSummary(overall=_figures(None, everyone), by_agent=ranked(by_agent), by_team=ranked(by_team))
