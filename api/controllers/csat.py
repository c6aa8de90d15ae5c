"""`/api/tickets/{id}/csat` and `/api/admin/csat`: customers rate resolved tickets; admins read the results."""

from __future__ import annotations

from datetime import datetime

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_201_CREATED

from api.publisher import EventPublisher
from core.documents import User
from core.payloads import CsatEnvelope, CsatOut, CsatRequest, CsatSummary
from core.services import csat


class TicketCsatController(Controller):
    path = "/api/tickets/{ticket_id:str}/csat"
    tags = ["tickets"]

    @post("/", status_code=HTTP_201_CREATED)
    async def rate(
        self, ticket_id: FromPath[str], data: JSONBody[CsatRequest], current_user: NamedDependency[User],
        publisher: NamedDependency[EventPublisher],
    ) -> CsatOut:  # fmt: skip
        """The customer rates a resolved or closed ticket (1-5, optional comment), once (409 again)."""
        return await publisher.publish_and_return(await csat.submit(current_user, ticket_id, data))

    @get("/")
    async def rating(self, ticket_id: FromPath[str], current_user: NamedDependency[User]) -> CsatEnvelope:
        """`{csat}`: the ticket's rating, null while it has none."""
        return CsatEnvelope(csat=await csat.get_rating(current_user, ticket_id))


class AdminCsatController(Controller):
    path = "/api/admin/csat"
    tags = ["admin", "desk"]

    @get("/")
    async def summary(self, since: FromQuery[datetime | None] = None, until: FromQuery[datetime | None] = None) -> CsatSummary:
        """Ratings given in [since, until): count, average and distribution overall, per agent and per team."""
        return await csat.summary(since, until)
