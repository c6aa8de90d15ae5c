"""Support tickets: creation with their own conversation, the status machine, assignment and the queue.

    open -> assigned -> in_progress -> resolved -> closed,  resolved -> in_progress (reopen)

`open` means "in the queue, no assignee". Assignment moves a ticket between open
and assigned; every change is a compare-and-swap on (status, assignee), is
recorded in the ticket's history, and is announced as `ticket.updated`. The
assignee is a member of the ticket's conversation for as long as they are assigned.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import NamedTuple

from beanie import PydanticObjectId
from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from core import events
from core.clock import iso, iso_from_ms, to_ms, utcnow
from core.documents import (
    Conversation,
    ConversationContext,
    Team,
    Ticket,
    TicketEvent,
    User,
)
from core.errors import Conflict, Forbidden, InvalidInput, NotFound
from core.events import Delivery
from core.payloads import ContextIn, CreateTicketRequest, HistoryItem, TicketOut
from core.roles import STAFF_ROLES, Role
from core.services import assignment, counters, rollups, teams
from core.services.conversations import conversation_out
from core.services.lookup import get_by_id
from core.settings import Settings

SYSTEM = "system"
ACTIVE = ("assigned", "in_progress")
MAX_PAGE = 100
HOLD_MS = 30_000  # a crashed auto-assigner's hold on a ticket lapses after this
# an auto-assigner that finds the ticket held by another waits for it to let go (holds last milliseconds), so that a
# request answers with the outcome (the other's assignee) rather than "open" while an agent is free; a hold older
# than this is taken for a crashed assigner's and not waited for
HOLD_WAIT_S = 2.0
HOLD_POLL_S = 0.02
CUSTOMER, ASSIGNEE = "customer", "assignee"
# (from, to) -> who besides admins may make the change
TRANSITIONS: dict[tuple[str, str], frozenset[str]] = {
    ("assigned", "in_progress"): frozenset({ASSIGNEE}),
    ("in_progress", "resolved"): frozenset({ASSIGNEE}),
    ("resolved", "closed"): frozenset({CUSTOMER, ASSIGNEE}),
    ("resolved", "in_progress"): frozenset({CUSTOMER, ASSIGNEE}),
}


@dataclass(frozen=True, slots=True)
class Limits:
    """Assignment settings: per-agent capacity and the grace before abandoned tickets are requeued."""

    capacity: int
    grace_seconds: int = 300
    escalate_after_seconds: int = 1800  # a team's default threshold; 0: never

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(capacity=settings.agent_capacity, grace_seconds=settings.reassign_grace_seconds,
                   escalate_after_seconds=settings.escalate_after_seconds)  # fmt: skip


async def create_ticket(
    customer: User, request: CreateTicketRequest, limits: Limits, context: ContextIn | None = None
) -> tuple[TicketOut, list[Delivery]]:
    """Open a ticket with its own conversation and try to assign it at once.

    The conversation is about `context` when given (the platform's product, order or
    listing), else about the request's order.
    """
    if customer.role in STAFF_ROLES:
        raise Forbidden("tickets are opened by customers, merchants and designers")
    customer_id, ticket_id = str(customer.id), PydanticObjectId()
    number = await counters.next_value("tickets")
    if context is None and request.order_id:
        context = ContextIn(type="order", id=request.order_id, title=request.subject)
    conversation = Conversation(
        kind="group",
        title=f"Ticket #{number}: {request.subject}",
        context=ConversationContext(type=context.type, id=context.id, title=context.title or request.subject) if context else None,
        participant_ids=[customer_id],
        created_by=customer_id,
        unique_key=f"ticket:{ticket_id}",
        ticket_id=str(ticket_id),
    )
    conversation.updated_ms = to_ms(conversation.created_at)
    await conversation.insert()
    ticket = Ticket(
        id=ticket_id, number=number, customer_id=customer_id, subject=request.subject,
        description=request.description, category=request.category, priority=request.priority,
        order_id=request.order_id, conversation_id=str(conversation.id), team_id=await teams.route(request.category),
    )  # fmt: skip
    ticket.updated_ms = ticket.created_ms = to_ms(ticket.created_at)
    await ticket.insert()
    await TicketEvent(ticket_id=str(ticket_id), status="open", by=customer_id, at=ticket.created_at).insert()
    await rollups.sync_ticket(ticket.id)
    deliveries = [
        *events.membership_changed(str(conversation.id), added=[customer_id]),
        *events.conversation_event("conversation.created", conversation_out(conversation), [customer_id]),
        *events.ticket_event("ticket.created", await ticket_out(ticket), {"status": {"from": None, "to": "open"}}, [customer_id]),
    ]
    deliveries += await _auto_assign(ticket, limits)
    return await ticket_out(await _reload(ticket)), deliveries


async def _reload(ticket: Ticket) -> Ticket:
    fresh = await Ticket.get(ticket.id)
    if fresh is None:  # pragma: no cover - tickets are never deleted
        raise NotFound("ticket not found")
    return fresh


async def _updated(query: dict[str, object], update: dict[str, object]) -> tuple[Ticket, dict[str, object]] | None:
    """Apply `update` to the ticket `query` matches (a compare-and-swap): the ticket after it, as a document and as
    stored (for `rollups.sync_ticket`), in one store command; None if nothing matched."""
    doc = await Ticket.get_pymongo_collection().find_one_and_update(query, update, return_document=ReturnDocument.AFTER)
    return None if doc is None else (Ticket.model_validate(doc), doc)


class _Changed(NamedTuple):
    """A ticket after a change, its view, and the deliveries that announce the change."""

    ticket: Ticket
    view: TicketOut
    deliveries: list[Delivery]


async def _transition(ticket: Ticket, status: str, assignee_id: str | None, by: str) -> _Changed | None:
    """Compare-and-swap the ticket to (status, assignee); record, re-seat the conversation and announce. None if it changed meanwhile."""
    now_ms = to_ms(utcnow())
    update: dict[str, object] = {"status": status, "assignee_id": assignee_id, "updated_ms": now_ms}
    if assignee_id != ticket.assignee_id:
        update["assigned_ms"] = now_ms if assignee_id else None
    if status == "resolved":
        update["resolved_ms"] = now_ms
    elif ticket.status == "resolved" and status != "closed":  # reopened: no longer counts as resolved
        update["resolved_ms"] = None
    counted = "assigned_ms" in update or "resolved_ms" in update  # what the desk counters count changes
    updated = await _updated(
        {"_id": ticket.id, "status": ticket.status, "assignee_id": {"$eq": ticket.assignee_id}},
        {"$set": update, **({"$inc": {"rollup_due": 1}} if counted else {})},
    )
    if updated is None:
        return None
    after, stored = updated
    await TicketEvent(ticket_id=str(ticket.id), status=status, by=by, assignee_id=assignee_id).insert()  # type: ignore[arg-type]
    # the history entry and the conversation's members next, which readers of the changed ticket expect at once
    reseated = await _reseat_assignee(ticket.conversation_id, ticket.assignee_id, assignee_id) if assignee_id != ticket.assignee_id else []
    if counted:
        await rollups.sync_ticket(ticket.id, stored)
    change = {
        field: {"from": getattr(ticket, field), "to": getattr(after, field)}
        for field in ("status", "assignee_id")
        if getattr(ticket, field) != getattr(after, field)
    }
    view = await ticket_out(after)
    # a closed ticket's conversation takes no more messages: processes forget their answer (core.services.messages.send)
    deliveries = events.conversation_changed(after.conversation_id) if "closed" in (ticket.status, status) else []
    deliveries += events.ticket_event("ticket.updated", view, change, [after.customer_id, ticket.assignee_id or "", after.assignee_id or ""])
    return _Changed(after, view, deliveries + reseated)


async def _reseat_assignee(conversation_id: str, old: str | None, new: str | None) -> list[Delivery]:
    """The ticket's conversation follows its assignee; the events of any membership change (events.members_changed)."""
    collection = Conversation.get_pymongo_collection()
    if old:
        await collection.update_one({"_id": ObjectId(conversation_id)}, {"$pull": {"participant_ids": old}})
    if new:
        await collection.update_one({"_id": ObjectId(conversation_id)}, {"$addToSet": {"participant_ids": new}})
    conversation = await Conversation.get(PydanticObjectId(conversation_id))
    assert conversation is not None
    others = [uid for uid in [*conversation.participant_ids, old] if uid and uid != new]
    return events.members_changed(conversation_id, conversation_out(conversation), [new] if new else [], [old] if old else [], others)


async def _auto_assign(ticket: Ticket, limits: Limits) -> list[Delivery]:
    """Give an open ticket to the best available agent, if there is one.

    The ticket is held first, so of two auto-assigners (the creating request, a
    backlog sweep) only one claims an agent slot for it: a loser that had claimed
    a slot would skew the even spread until it gave the slot back.
    """
    tickets = Ticket.get_pymongo_collection()
    if not await _hold(tickets, ticket.id):
        return []
    try:
        agent_id = await assignment.claim_best(limits.capacity, team_id=ticket.team_id)
        if agent_id is None:
            return []
        done = await _transition(ticket, "assigned", agent_id, SYSTEM)
        if done is None:  # an agent or an admin took it meanwhile
            await assignment.add_load(agent_id, -1)
            return []
        return done.deliveries
    finally:
        await tickets.update_one({"_id": ticket.id}, {"$set": {"held_until_ms": 0}})


async def _hold(tickets: AsyncCollection, ticket_id: PydanticObjectId | None) -> bool:
    """Hold the open ticket for this assigner; while another assigner holds it, wait for it to let go.

    False when the ticket is no longer open (the other assigned it), or when the other's hold
    is older than HOLD_WAIT_S: its assigner crashed, and the hold lapses on its own. A hold let
    go without an assignment (the other found no agent, maybe before this caller freed one) is
    tried again at once.
    """
    while True:
        now_ms = to_ms(utcnow())
        held = await tickets.update_one(
            {"_id": ticket_id, "status": "open", "held_until_ms": {"$lt": now_ms}}, {"$set": {"held_until_ms": now_ms + HOLD_MS}}
        )
        if held.modified_count:
            return True
        other = await tickets.find_one({"_id": ticket_id, "status": "open"}, {"held_until_ms": 1})
        if other is None:
            return False
        if other["held_until_ms"] < now_ms:  # let go since the attempt above
            continue
        if other["held_until_ms"] - HOLD_MS < now_ms - HOLD_WAIT_S * 1000:
            return False
        await asyncio.sleep(HOLD_POLL_S)


async def assign_backlog(limits: Limits) -> list[Delivery]:
    """Assign queued tickets, oldest first, while agents have room."""
    deliveries: list[Delivery] = []
    async for ticket in Ticket.find({"status": "open"}).sort([("number", 1)]):
        if not await assignment.candidates(limits.capacity):
            break
        deliveries += await _auto_assign(ticket, limits)
    return deliveries


async def requeue_abandoned(limits: Limits) -> list[Delivery]:
    """Tickets whose assignee has been offline longer than the grace period without answering go back to the queue."""
    deadline = to_ms(utcnow()) - limits.grace_seconds * 1000
    deliveries: list[Delivery] = []
    waiting = await Ticket.find({"status": {"$in": list(ACTIVE)}, "first_response_ms": {"$eq": None}}).to_list()
    for ticket in waiting:
        agent = await User.get(PydanticObjectId(ticket.assignee_id)) if ticket.assignee_id else None
        if agent is None or agent.presence_status != "offline":
            continue
        if max(agent.last_seen_ms or 0, ticket.assigned_ms or 0) > deadline:
            continue
        deliveries += await _requeue(ticket, str(agent.id))
    return deliveries


async def requeue_assigned_to(agent_id: str, limits: Limits) -> list[Delivery]:
    """Every live ticket of an agent who can no longer work them (erased) goes back to the queue, which is
    then assigned like after any requeue."""
    deliveries: list[Delivery] = []
    for ticket in await Ticket.find({"assignee_id": agent_id, "status": {"$in": list(ACTIVE)}}).to_list():
        deliveries += await _requeue(ticket, agent_id)
    return [*deliveries, *await assign_backlog(limits)] if deliveries else []


async def _requeue(ticket: Ticket, agent_id: str) -> list[Delivery]:
    """Take the ticket from its agent back to the queue, freeing the agent's slot; its events (none if it changed meanwhile)."""
    done = await _transition(ticket, "open", None, SYSTEM)
    if done is None:
        return []
    await assignment.add_load(agent_id, -1)
    return done.deliveries


def _role_in(ticket: Ticket, user: User) -> set[str]:
    roles = set()
    if ticket.customer_id == str(user.id):
        roles.add(CUSTOMER)
    if ticket.assignee_id == str(user.id):
        roles.add(ASSIGNEE)
    return roles


async def _can_see(ticket: Ticket, user: User) -> bool:
    """Admins see all; agents theirs, the queues of their teams (and of no team), every ticket of a team they lead."""
    if user.role is Role.ADMIN:
        return True
    if user.role is Role.AGENT:
        if ticket.assignee_id == str(user.id) or (ticket.status == "open" and ticket.team_id is None):
            return True
        team = await get_by_id(Team, ticket.team_id) if ticket.team_id else None
        uid = str(user.id)
        return team is not None and (uid in team.lead_ids or (ticket.status == "open" and uid in team.member_ids))
    return ticket.customer_id == str(user.id)


async def visible_ticket(user: User, ticket_id: str) -> Ticket:
    """The ticket if `user` may see it; NotFound otherwise."""
    ticket = await get_by_id(Ticket, ticket_id)
    if ticket is None or not await _can_see(ticket, user):
        raise NotFound("ticket not found")
    return ticket


async def change_status(actor: User, ticket_id: str, status: str, limits: Limits) -> tuple[TicketOut, list[Delivery]]:
    """Move a ticket along the state machine; 409 for a transition it does not have, 403 for the wrong person."""
    ticket = await visible_ticket(actor, ticket_id)
    allowed = TRANSITIONS.get((ticket.status, status))
    if allowed is None:
        hint = " (use /assign)" if status == "assigned" else ""
        raise Conflict(f"a ticket cannot go from {ticket.status} to {status}{hint}")
    if actor.role is not Role.ADMIN and not (allowed & _role_in(ticket, actor)):
        raise Forbidden(f"you may not move this ticket to {status}")
    done = await _transition(ticket, status, ticket.assignee_id, str(actor.id))
    if done is None:
        raise Conflict("the ticket changed meanwhile; reload it")
    after, view, deliveries = done
    if after.assignee_id and (ticket.status in ACTIVE) != (status in ACTIVE):
        await assignment.add_load(after.assignee_id, 1 if status in ACTIVE else -1)
        if status not in ACTIVE:
            deliveries += await assign_backlog(limits)
    return view, deliveries


async def assign(actor: User, ticket_id: str, agent_id: str | None, limits: Limits) -> tuple[TicketOut, list[Delivery]]:
    """An agent takes a queued ticket (within capacity); an admin gives any live ticket to any agent, a team lead
    a ticket of their team to a member of the team."""
    ticket = await visible_ticket(actor, ticket_id)
    lead_of = await _led_team(ticket, actor) if agent_id is not None else None
    if actor.role is Role.AGENT and lead_of is None:
        if agent_id not in (None, str(actor.id)):
            raise Forbidden("agents assign tickets to themselves (team leads: to members of their team)")
        if ticket.status != "open":
            raise Conflict("only queued tickets can be taken")
        if await assignment.claim_best(limits.capacity, only=str(actor.id)) is None:
            raise Conflict("you are at capacity")
        target = str(actor.id)
    elif actor.role is Role.ADMIN or lead_of is not None:
        if agent_id is None:
            raise InvalidInput("agent_id is required")
        agent = await User.get(PydanticObjectId(agent_id))
        if agent is None or not agent.active or agent.role not in STAFF_ROLES:
            raise InvalidInput("agent_id must be an active agent or admin")
        if lead_of is not None and agent_id not in lead_of.member_ids:
            raise Forbidden("team leads assign tickets to members of their team")
        if ticket.status not in ("open", *ACTIVE):
            raise Conflict(f"a {ticket.status} ticket cannot be assigned")
        if ticket.assignee_id == agent_id:
            return await ticket_out(ticket), []
        await assignment.add_load(agent_id, 1)
        target = agent_id
    else:
        raise Forbidden("only agents and admins assign tickets")
    done = await _transition(ticket, "assigned" if ticket.status == "open" else ticket.status, target, str(actor.id))
    if done is None:
        await assignment.add_load(target, -1)
        raise Conflict("the ticket changed meanwhile; reload it")
    if ticket.assignee_id:
        await assignment.add_load(ticket.assignee_id, -1)
    return done.view, done.deliveries


async def move_to_team(actor: User, ticket_id: str, team_id: str | None, limits: Limits) -> tuple[TicketOut, list[Delivery]]:
    """Put a live ticket in another team's queue (None: no team); admins and leads of its current team.

    The assignee keeps it; a queued ticket is offered to the new team's agents at once.
    """
    ticket = await visible_ticket(actor, ticket_id)
    if actor.role is not Role.ADMIN and await _led_team(ticket, actor) is None:
        raise Forbidden("only admins and the leads of its team move a ticket to another team")
    if team_id is not None:
        await teams.get_team(team_id)
    if ticket.status not in ("open", *ACTIVE):
        raise Conflict(f"a {ticket.status} ticket cannot change teams")
    if ticket.team_id == team_id:
        return await ticket_out(ticket), []
    moved = await _updated(
        {"_id": ticket.id, "status": ticket.status, "team_id": {"$eq": ticket.team_id}},
        {"$set": {"team_id": team_id, "updated_ms": to_ms(utcnow())}, "$inc": {"rollup_due": 1}},
    )
    if moved is None:
        raise Conflict("the ticket changed meanwhile; reload it")
    after, stored = moved
    await rollups.sync_ticket(ticket.id, stored)
    change = {"team_id": {"from": ticket.team_id, "to": team_id}}
    view = await ticket_out(after)
    deliveries = events.ticket_event("ticket.updated", view, change, [after.customer_id, after.assignee_id or ""])
    if after.status == "open":
        deliveries += await _auto_assign(after, limits)
        view = await ticket_out(await _reload(after))
    return view, deliveries


async def _led_team(ticket: Ticket, user: User) -> Team | None:
    """The ticket's team if `user` is an agent who leads it."""
    if user.role is not Role.AGENT or ticket.team_id is None:
        return None
    team = await get_by_id(Team, ticket.team_id)
    return team if team is not None and str(user.id) in team.lead_ids else None


async def _agent_sees(agent_id: str) -> list[dict[str, object]]:
    """The tickets an agent may see (as `_can_see`), as the branches of an `$or`."""
    mine = await teams.teams_of(agent_id)
    branches: list[dict[str, object]] = [{"assignee_id": agent_id}, {"status": "open", "team_id": {"$eq": None}}]
    if mine:
        branches.append({"status": "open", "team_id": {"$in": [str(team.id) for team in mine]}})
    led = [str(team.id) for team in mine if agent_id in team.lead_ids]
    if led:
        branches.append({"team_id": {"$in": led}})
    return branches


async def list_tickets(
    user: User, status: str | None, assignee_id: str | None, before: int | None, limit: int | None, team_id: str | None = None
) -> tuple[list[TicketOut], int | None]:
    """Tickets `user` may see, newest first; customers their own, agents theirs and their teams' queues
    (a lead every ticket of their team), admins all."""
    query: dict[str, object] = {}
    if user.role is Role.AGENT:
        query["$or"] = await _agent_sees(str(user.id))
    elif user.role is not Role.ADMIN:
        query["customer_id"] = str(user.id)
    if status is not None:
        query["status"] = status
    if assignee_id is not None:
        query["assignee_id"] = assignee_id
    if team_id is not None:
        query["team_id"] = team_id
    if before is not None:
        query["number"] = {"$lt": before}
    size = max(1, min(limit or 50, MAX_PAGE))
    page = await Ticket.find(query).sort([("number", -1)]).limit(size + 1).to_list()
    views = await asyncio.gather(*(ticket_out(ticket) for ticket in page[:size]))
    return list(views), page[size - 1].number if len(page) > size else None


async def record_first_response(conversation: Conversation, sender_id: str, at_ms: int) -> list[Delivery]:
    """The assignee's first message in a ticket's conversation sets `first_response_at`."""
    if conversation.ticket_id is None:
        return []
    updated = await _updated(
        {"_id": ObjectId(conversation.ticket_id), "assignee_id": sender_id, "first_response_ms": {"$eq": None}},
        {"$set": {"first_response_ms": at_ms}, "$inc": {"rollup_due": 1}},
    )
    if updated is None:  # answered before (or a retried batch: its roll-up, if missed, is the sweep's)
        return []
    ticket, stored = updated
    await rollups.sync_ticket(ticket.id, stored)
    change = {"first_response_at": {"from": None, "to": iso_from_ms(at_ms)}}
    return events.ticket_event("ticket.updated", await ticket_out(ticket), change, [ticket.customer_id, sender_id])


async def ticket_out(ticket: Ticket) -> TicketOut:
    """The contract's ticket view with its history."""
    history = await TicketEvent.find({"ticket_id": str(ticket.id)}).sort([("at", 1), ("_id", 1)]).to_list()
    return TicketOut(
        id=str(ticket.id), number=ticket.number, customer_id=ticket.customer_id, assignee_id=ticket.assignee_id,
        subject=ticket.subject, description=ticket.description, category=ticket.category, priority=ticket.priority,
        order_id=ticket.order_id, status=ticket.status, conversation_id=ticket.conversation_id,
        created_at=iso(ticket.created_at) or "", updated_at=iso_from_ms(ticket.updated_ms) or "",
        first_response_at=iso_from_ms(ticket.first_response_ms),
        history=[HistoryItem(status=e.status, by=e.by, at=iso(e.at) or "") for e in history],
        team_id=ticket.team_id, escalated=ticket.escalated_ms is not None, escalated_at=iso_from_ms(ticket.escalated_ms),
    )  # fmt: skip
