"""`/api/tickets`: open, list, assign and move support tickets."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from api.params import PageLimit, TicketBefore
from api.publisher import EventPublisher
from core.documents import User
from core.payloads import (
    AssignRequest,
    CreateTicketRequest,
    StatusRequest,
    TicketList,
    TicketOut,
    TicketStatusName,
    TicketTeamRequest,
)
from core.services import csat, tickets
from core.services.tickets import Limits
from core.settings import Settings


class TicketsController(Controller):
    path = "/api/tickets"
    tags = ["tickets"]

    @post("/", status_code=HTTP_201_CREATED)
    async def create(
        self, data: JSONBody[CreateTicketRequest], current_user: NamedDependency[User],
        settings: NamedDependency[Settings], publisher: NamedDependency[EventPublisher],
    ) -> TicketOut:  # fmt: skip
        """Open a ticket; it is assigned at once to the best available agent, or waits in the queue."""
        return await publisher.publish_and_return(await tickets.create_ticket(current_user, data, Limits.from_settings(settings)))

    @get("/")
    async def list_visible(
        self, current_user: NamedDependency[User],
        status: Annotated[TicketStatusName | None, QueryParameter()] = None,
        assignee_id: Annotated[str | None, QueryParameter(max_length=24)] = None,
        team_id: Annotated[str | None, QueryParameter(max_length=24)] = None,
        before: TicketBefore = None,
        limit: PageLimit = None,
    ) -> TicketList:  # fmt: skip
        """Newest first; `before` is the `next_before` ticket number of the previous page."""
        items, next_before = await tickets.list_tickets(current_user, status, assignee_id, before, limit, team_id)
        return TicketList(items=items, next_before=next_before)

    @get("/{ticket_id:str}")
    async def get_one(self, ticket_id: FromPath[str], current_user: NamedDependency[User]) -> TicketOut:
        """One ticket with its history."""
        return await tickets.ticket_out(await tickets.visible_ticket(current_user, ticket_id))

    @post("/{ticket_id:str}/assign", status_code=HTTP_200_OK)
    async def assign(
        self, ticket_id: FromPath[str], data: JSONBody[AssignRequest], current_user: NamedDependency[User],
        settings: NamedDependency[Settings], publisher: NamedDependency[EventPublisher],
    ) -> TicketOut:  # fmt: skip
        """An agent takes a queued ticket; an admin assigns a ticket to any agent."""
        return await publisher.publish_and_return(
            await tickets.assign(current_user, ticket_id, data.agent_id, Limits.from_settings(settings))
        )

    @post("/{ticket_id:str}/status", status_code=HTTP_200_OK)
    async def change_status(
        self, ticket_id: FromPath[str], data: JSONBody[StatusRequest], current_user: NamedDependency[User],
        settings: NamedDependency[Settings], publisher: NamedDependency[EventPublisher],
    ) -> TicketOut:  # fmt: skip
        """Move the ticket along open -> assigned -> in_progress -> resolved -> closed (resolved -> in_progress reopens);
        a resolved ticket asks its customer for a rating (once)."""
        view, deliveries = await tickets.change_status(current_user, ticket_id, data.status, Limits.from_settings(settings))
        return await publisher.publish_and_return((view, [*deliveries, *await csat.request_survey(view)]))

    @post("/{ticket_id:str}/team", status_code=HTTP_200_OK)
    async def move_to_team(
        self, ticket_id: FromPath[str], data: JSONBody[TicketTeamRequest], current_user: NamedDependency[User],
        settings: NamedDependency[Settings], publisher: NamedDependency[EventPublisher],
    ) -> TicketOut:  # fmt: skip
        """Put the ticket in another team's queue (null: no team); admins and the leads of its team."""
        return await publisher.publish_and_return(
            await tickets.move_to_team(current_user, ticket_id, data.team_id, Limits.from_settings(settings))
        )
