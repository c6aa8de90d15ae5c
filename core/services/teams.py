"""Teams of agents and the routing of ticket categories to them.

A team is a named group of staff members with its own ticket queue; its leads may
reassign its tickets. Routing maps a ticket's `category` to a team, with a default
team for the rest. With no team routed to, a ticket has no team and every agent
may take it (how tickets worked before teams existed).
"""

from __future__ import annotations

from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from core.clock import iso
from core.documents import Team, Ticket, TicketRouting, User
from core.errors import Conflict, InvalidInput, NotFound
from core.payloads import CreateTeamRequest, RoutingBody, TeamOut, UpdateTeamRequest
from core.roles import STAFF_ROLES, Role
from core.services import availability
from core.services.lookup import get_by_id

ROUTING_ID = "routing"
LIVE_STATUSES = ("open", "assigned", "in_progress")


async def get_team(team_id: str) -> Team:
    """The team, or NotFound."""
    team = await get_by_id(Team, team_id)
    if team is None:
        raise NotFound("team not found")
    return team


async def team_out(team: Team) -> TeamOut:
    """The team with its members' availability."""
    members = await User.find({"_id": {"$in": [ObjectId(uid) for uid in team.member_ids]}}).to_list()
    by_id = {str(member.id): member for member in members}
    return TeamOut(
        id=str(team.id), name=team.name, description=team.description, member_ids=team.member_ids,
        lead_ids=team.lead_ids, escalate_after_seconds=team.escalate_after_seconds, created_at=iso(team.created_at) or "",
        members=[availability.status_out(by_id[uid]) for uid in team.member_ids if uid in by_id],
    )  # fmt: skip


async def create_team(request: CreateTeamRequest) -> Team:
    """A new team without members; 409 if the name (ignoring case) is taken."""
    name = request.name.strip()
    team = Team(name=name, name_key=name.casefold(), description=request.description,
                escalate_after_seconds=request.escalate_after_seconds)  # fmt: skip
    try:
        await team.insert()
    except DuplicateKeyError:
        raise Conflict("a team with this name exists") from None
    return team


async def update_team(team_id: str, request: UpdateTeamRequest) -> Team:
    """Rename, describe or set the escalation threshold of a team."""
    team = await get_team(team_id)
    update: dict[str, object] = {}
    if request.name is not None:
        update |= {"name": request.name.strip(), "name_key": request.name.strip().casefold()}
    if request.description is not None:
        update["description"] = request.description
    if request.escalate_after_seconds is not None:
        update["escalate_after_seconds"] = request.escalate_after_seconds
    if update:
        try:
            await Team.get_pymongo_collection().update_one({"_id": team.id}, {"$set": update})
        except DuplicateKeyError:
            raise Conflict("a team with this name exists") from None
    return await get_team(team_id)


async def delete_team(team_id: str) -> None:
    """Remove a team that no route names and no live ticket is queued for (409 otherwise)."""
    team = await get_team(team_id)
    routing = await get_routing()
    if team_id == routing.default_team_id or team_id in routing.routes.values():
        raise Conflict("the routing sends tickets to this team: change it first")
    if await Ticket.find({"team_id": team_id, "status": {"$in": list(LIVE_STATUSES)}}).count():
        raise Conflict("the team has live tickets: move them to another team first")
    await team.delete()


async def add_member(team_id: str, user_id: str, lead: bool) -> Team:
    """Put an active agent or admin in the team, as a lead or not."""
    team = await get_team(team_id)
    user = await get_by_id(User, user_id)
    if user is None or not user.active or user.role not in STAFF_ROLES:
        raise InvalidInput("user_id must be an active agent or admin")
    collection = Team.get_pymongo_collection()
    await collection.update_one({"_id": team.id}, {"$addToSet": {"member_ids": user_id}})
    await collection.update_one({"_id": team.id}, {"$addToSet" if lead else "$pull": {"lead_ids": user_id}})
    return await get_team(team_id)


async def remove_member(team_id: str, user_id: str) -> Team:
    """Take someone out of the team (their assigned tickets stay theirs)."""
    team = await get_team(team_id)
    if user_id not in team.member_ids:
        raise NotFound("not a member of this team")
    await Team.get_pymongo_collection().update_one({"_id": team.id}, {"$pull": {"member_ids": user_id, "lead_ids": user_id}})
    return await get_team(team_id)


async def leave_all(user_id: str) -> None:
    """Take someone out of every team (an erased account)."""
    await Team.get_pymongo_collection().update_many({"member_ids": user_id}, {"$pull": {"member_ids": user_id, "lead_ids": user_id}})


async def teams_of(user_id: str) -> list[Team]:
    """The teams `user_id` is a member of."""
    return await Team.find({"member_ids": user_id}).to_list()


async def visible_teams(user: User) -> list[Team]:
    """Admins see every team, others the teams they are in."""
    if user.role is Role.ADMIN:
        return await Team.find_all().sort([("name_key", 1)]).to_list()
    return sorted(await teams_of(str(user.id)), key=lambda team: team.name_key)


async def leads(team_id: str | None, user_id: str) -> bool:
    """True when `user_id` leads the team."""
    if team_id is None:
        return False
    team = await get_by_id(Team, team_id)
    return team is not None and user_id in team.lead_ids


async def get_routing() -> RoutingBody:
    """The category routes and the default team."""
    stored = await TicketRouting.get(ROUTING_ID)
    if stored is None:
        return RoutingBody()
    return RoutingBody(routes=stored.routes, default_team_id=stored.default_team_id)  # type: ignore[arg-type]


async def set_routing(routing: RoutingBody) -> RoutingBody:
    """Replace the routing; every team it names must exist."""
    named = {*routing.routes.values(), *([routing.default_team_id] if routing.default_team_id else [])}
    if named:
        found = await Team.find({"_id": {"$in": [ObjectId(team_id) for team_id in named]}}).to_list()
        if len(found) != len(named):
            raise InvalidInput("the routing names a team that does not exist")
    document = TicketRouting(id=ROUTING_ID, routes=dict(routing.routes), default_team_id=routing.default_team_id)
    await TicketRouting.get_pymongo_collection().replace_one({"_id": ROUTING_ID}, document.model_dump(by_alias=True), upsert=True)
    return await get_routing()


async def route(category: str) -> str | None:
    """The team a new ticket of `category` goes to (None: no team, every agent)."""
    routing = await get_routing()
    return routing.routes.get(category, routing.default_team_id)  # type: ignore[call-overload, no-any-return]
