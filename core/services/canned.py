"""Canned responses: saved replies of a team or of one agent, inserted with `/short_code` and filled from the ticket.

Who may do what: every staff member keeps their own responses; a team's are
written by admins and the team's leads and used by its members; admins manage
all of them. Expansion is plain text (nothing is escaped: the text becomes a
message body like any other). Placeholders are `{{name}}` with optional spaces:

    customer.name  customer.id  ticket.id (the number customers see, like 42)
    ticket.number  ticket.subject  ticket.category  ticket.priority  ticket.status
    order.id  order.title  agent.name

A known placeholder without a value (no order) becomes empty; an unknown one is
left as written, so a typo shows.
"""

from __future__ import annotations

import re

from pymongo.errors import DuplicateKeyError

from core.clock import iso, iso_from_ms, to_ms, utcnow
from core.documents import CannedResponse, Conversation, Team, Ticket, User
from core.errors import Conflict, Forbidden, NotFound
from core.payloads import CannedOut, CreateCannedRequest, UpdateCannedRequest
from core.roles import STAFF_ROLES, Role
from core.services import teams, tickets
from core.services.lookup import get_by_id

PLACEHOLDER = re.compile(r"\{\{\s*([a-z]+\.[a-z_]+)\s*\}\}")
MAX_LISTED = 500


def _require_staff(user: User) -> None:
    if user.role not in STAFF_ROLES:
        raise Forbidden("canned responses are for agents and admins")


async def _may_write(user: User, response_team_id: str | None, owner_id: str | None) -> bool:
    if user.role is Role.ADMIN:
        return True
    if response_team_id is None:
        return owner_id == str(user.id)
    return await teams.leads(response_team_id, str(user.id))


async def _scopes(user: User) -> list[str]:
    """The scopes whose responses `user` may use: their own and their teams' (admins: every team's)."""
    if user.role is Role.ADMIN:
        team_ids = [str(team.id) for team in await Team.find_all().to_list()]
    else:
        team_ids = [str(team.id) for team in await teams.teams_of(str(user.id))]
    return [f"user:{user.id}", *(f"team:{team_id}" for team_id in team_ids)]


def canned_out(response: CannedResponse, expanded: str | None = None) -> CannedOut:
    return CannedOut(
        id=str(response.id), short_code=response.short_code, content=response.content, team_id=response.team_id,
        owner_id=response.owner_id, created_by=response.created_by, created_at=iso(response.created_at) or "",
        updated_at=iso_from_ms(response.updated_ms) or "", expanded=expanded,
    )  # fmt: skip


async def create(user: User, request: CreateCannedRequest) -> CannedOut:
    """A personal response, or a team's (admins and the team's leads); 409 if the short code is taken there."""
    _require_staff(user)
    if request.team_id is not None:
        await teams.get_team(request.team_id)
    owner_id = None if request.team_id else str(user.id)
    if not await _may_write(user, request.team_id, owner_id):
        raise Forbidden("a team's canned responses are written by admins and its leads")
    response = CannedResponse(
        short_code=request.short_code, content=request.content, team_id=request.team_id, owner_id=owner_id,
        scope=f"team:{request.team_id}" if request.team_id else f"user:{user.id}", created_by=str(user.id),
    )  # fmt: skip
    response.updated_ms = to_ms(response.created_at)
    try:
        await response.insert()
    except DuplicateKeyError:
        raise Conflict(f"/{request.short_code} exists already") from None
    return canned_out(response)


async def _writable(user: User, response_id: str) -> CannedResponse:
    _require_staff(user)
    response = await get_by_id(CannedResponse, response_id)
    if response is None or (user.role is not Role.ADMIN and response.scope not in await _scopes(user)):
        raise NotFound("canned response not found")
    if not await _may_write(user, response.team_id, response.owner_id):
        raise Forbidden("a team's canned responses are written by admins and its leads")
    return response


async def update(user: User, response_id: str, request: UpdateCannedRequest) -> CannedOut:
    """Change the short code or the content (admins, owners, leads of the team)."""
    response = await _writable(user, response_id)
    change: dict[str, object] = {"updated_ms": to_ms(utcnow())}
    if request.short_code is not None:
        change["short_code"] = request.short_code
    if request.content is not None:
        change["content"] = request.content
    try:
        await CannedResponse.get_pymongo_collection().update_one({"_id": response.id}, {"$set": change})
    except DuplicateKeyError:
        raise Conflict(f"/{request.short_code} exists already") from None
    updated = await CannedResponse.get(response.id)
    assert updated is not None
    return canned_out(updated)


async def delete(user: User, response_id: str) -> None:
    """Remove a response (admins, owners, leads of the team)."""
    await (await _writable(user, response_id)).delete()


async def list_usable(user: User, prefix: str | None, ticket_id: str | None, owner_id: str | None = None) -> list[CannedOut]:
    """Responses `user` may use, by short code; with `ticket_id`, each expanded for that ticket.

    An admin may list another staff member's own responses instead (`owner_id`), to manage them.
    """
    _require_staff(user)
    if owner_id is not None and user.role is not Role.ADMIN and owner_id != str(user.id):
        raise Forbidden("only admins list other people's canned responses")
    scopes = [f"user:{owner_id}"] if owner_id is not None else await _scopes(user)
    query: dict[str, object] = {"scope": {"$in": scopes}}
    found = await CannedResponse.find(query).sort([("short_code", 1)]).limit(MAX_LISTED).to_list()
    found = [response for response in found if prefix is None or response.short_code.startswith(prefix)]
    values = await _values(user, ticket_id) if ticket_id else None
    return [canned_out(response, fill(response.content, values) if values is not None else None) for response in found]


async def expand(user: User, ticket_id: str, short_code: str) -> str:
    """`/short_code` for a ticket: the response's content with the ticket's values; one's own wins over a team's."""
    _require_staff(user)
    values = await _values(user, ticket_id)
    found = await CannedResponse.find({"scope": {"$in": await _scopes(user)}, "short_code": short_code}).to_list()
    if not found:
        raise NotFound(f"no canned response /{short_code}")
    found.sort(key=lambda response: response.owner_id is None)
    return fill(found[0].content, values)


async def _values(user: User, ticket_id: str) -> dict[str, str]:
    """The placeholder values of a ticket `user` may see."""
    ticket: Ticket = await tickets.visible_ticket(user, ticket_id)
    customer = await get_by_id(User, ticket.customer_id)
    conversation = await get_by_id(Conversation, ticket.conversation_id)
    context = conversation.context if conversation is not None else None
    order_title = context.title if context is not None and context.type == "order" else ""
    order_id = ticket.order_id or (context.id if context is not None and context.type == "order" else "")
    return {
        "customer.name": customer.username if customer else "", "customer.id": ticket.customer_id,
        "ticket.id": str(ticket.number), "ticket.number": str(ticket.number), "ticket.subject": ticket.subject,
        "ticket.category": ticket.category, "ticket.priority": ticket.priority, "ticket.status": ticket.status,
        "order.id": order_id, "order.title": order_title, "agent.name": user.username,
    }  # fmt: skip


def fill(content: str, values: dict[str, str]) -> str:
    """Replace the known `{{placeholders}}`; unknown ones stay as written."""
    return PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), content)
