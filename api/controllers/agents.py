"""`/api/agents`: staff availability (online | busy | offline) as chosen, combined with connection presence;
`/api/admin/agents`: every agent's status and load for the admins' console."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from api.params import PageLimit
from api.publisher import EventPublisher
from core.documents import User
from core.errors import Forbidden
from core.payloads import AgentList, AgentStatusOut, AvailabilityRequest
from core.roles import STAFF_ROLES
from core.services import agents, availability, tickets
from core.services.tickets import Limits
from core.settings import Settings


class AgentsController(Controller):
    path = "/api/agents"
    tags = ["desk"]

    @get("/me/availability")
    async def mine(self, current_user: NamedDependency[User]) -> AgentStatusOut:
        """One's own availability."""
        if current_user.role not in STAFF_ROLES:
            raise Forbidden("only agents and admins have an availability")
        return availability.status_out(current_user)

    @put("/me/availability")
    async def set_mine(
        self, data: JSONBody[AvailabilityRequest], current_user: NamedDependency[User],
        settings: NamedDependency[Settings], publisher: NamedDependency[EventPublisher],
    ) -> AgentStatusOut:  # fmt: skip
        """Choose online (takes new tickets), busy (keeps current tickets, gets no new ones) or offline."""
        view, deliveries = await availability.set_availability(current_user, data.availability)
        if view.status == availability.TAKES_TICKETS:
            deliveries += await tickets.assign_backlog(Limits.from_settings(settings))
        return await publisher.publish_and_return((view, deliveries))


class AdminAgentsController(Controller):
    path = "/api/admin/agents"
    tags = ["admin", "desk"]

    @get("/")
    async def roster(
        self, settings: NamedDependency[Settings],
        team_id: Annotated[str | None, QueryParameter(pattern=r"^[0-9a-f]{24}$", description="only this team's members")] = None,
        q: Annotated[str | None, QueryParameter(max_length=64, description="names starting with this")] = None,
        limit: PageLimit = None,
    ) -> AgentList:  # fmt: skip
        """Active agents and admins by name (at most 200): availability, presence, status, open tickets, teams."""
        return AgentList(items=await agents.roster(team_id, q, limit or agents.MAX_LISTED), capacity=settings.agent_capacity)
