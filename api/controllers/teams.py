"""`/api/teams`, `/api/admin/teams` and `/api/admin/ticket-routing`: agent teams and which team gets which tickets."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from core.documents import User
from core.errors import NotFound
from core.payloads import (
    CreateTeamRequest,
    RoutingBody,
    TeamList,
    TeamMemberRequest,
    TeamOut,
    UpdateTeamRequest,
)
from core.roles import Role
from core.services import teams


class TeamsController(Controller):
    path = "/api/teams"
    tags = ["desk"]

    @get("/")
    async def list_teams(self, current_user: NamedDependency[User]) -> TeamList:
        """Admins: every team; others: the teams they are in, each with its members' availability."""
        return TeamList(items=[await teams.team_out(team) for team in await teams.visible_teams(current_user)])

    @get("/{team_id:str}")
    async def get_team(self, team_id: FromPath[str], current_user: NamedDependency[User]) -> TeamOut:
        """One team, for its members and admins."""
        team = await teams.get_team(team_id)
        if current_user.role is not Role.ADMIN and str(current_user.id) not in team.member_ids:
            raise NotFound("team not found")
        return await teams.team_out(team)


class AdminTeamsController(Controller):
    path = "/api/admin/teams"
    tags = ["admin", "desk"]

    @post("/", status_code=HTTP_201_CREATED)
    async def create(self, data: JSONBody[CreateTeamRequest]) -> TeamOut:
        """A new team without members; 409 if the name is taken (ignoring case)."""
        return await teams.team_out(await teams.create_team(data))

    @patch("/{team_id:str}")
    async def update(self, team_id: FromPath[str], data: JSONBody[UpdateTeamRequest]) -> TeamOut:
        """Rename, describe, or set the escalation threshold (0: MQCHAT_ESCALATE_AFTER)."""
        return await teams.team_out(await teams.update_team(team_id, data))

    @delete("/{team_id:str}", status_code=HTTP_204_NO_CONTENT)
    async def remove(self, team_id: FromPath[str]) -> None:
        """Delete a team nothing routes to and with no live tickets (409 otherwise)."""
        await teams.delete_team(team_id)

    @post("/{team_id:str}/members", status_code=HTTP_200_OK)
    async def add_member(self, team_id: FromPath[str], data: JSONBody[TeamMemberRequest]) -> TeamOut:
        """Put an agent or admin in the team (`lead: true` makes them a lead; false makes them a plain member)."""
        return await teams.team_out(await teams.add_member(team_id, data.user_id, data.lead))

    @delete("/{team_id:str}/members/{user_id:str}", status_code=HTTP_200_OK)
    async def remove_member(self, team_id: FromPath[str], user_id: FromPath[str]) -> TeamOut:
        """Take someone out of the team; their tickets stay theirs."""
        return await teams.team_out(await teams.remove_member(team_id, user_id))


class TicketRoutingController(Controller):
    path = "/api/admin/ticket-routing"
    tags = ["admin", "desk"]

    @get("/")
    async def get_routing(self) -> RoutingBody:
        """Category -> team, and the default team for the other categories (null: every agent)."""
        return await teams.get_routing()

    @put("/")
    async def set_routing(self, data: JSONBody[RoutingBody]) -> RoutingBody:
        """Replace the routing; it applies to tickets opened from now on."""
        return await teams.set_routing(data)
