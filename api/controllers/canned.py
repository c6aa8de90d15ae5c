"""`/api/canned`: canned responses (personal and per team) and their `/short_code` expansion for a ticket."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from core.documents import User
from core.payloads import CannedList, CannedOut, CreateCannedRequest, ExpandOut, ExpandRequest, UpdateCannedRequest
from core.services import canned

ObjectIdQuery = Annotated[str | None, QueryParameter(pattern=r"^[0-9a-f]{24}$")]


class CannedController(Controller):
    path = "/api/canned"
    tags = ["desk"]

    @get("/")
    async def list_usable(
        self, current_user: NamedDependency[User],
        q: Annotated[str | None, QueryParameter(max_length=32)] = None,
        ticket_id: ObjectIdQuery = None,
        owner_id: ObjectIdQuery = None,
    ) -> CannedList:  # fmt: skip
        """One's own and one's teams' responses whose short code starts with `q`; `ticket_id` adds `expanded`."""
        return CannedList(items=await canned.list_usable(current_user, q, ticket_id, owner_id))

    @post("/", status_code=HTTP_201_CREATED)
    async def create(self, data: JSONBody[CreateCannedRequest], current_user: NamedDependency[User]) -> CannedOut:
        """A personal response, or with `team_id` a team's (admins and the team's leads)."""
        return await canned.create(current_user, data)

    @post("/expand", status_code=HTTP_200_OK)
    async def expand(self, data: JSONBody[ExpandRequest], current_user: NamedDependency[User]) -> ExpandOut:
        """The text `/short_code` stands for in this ticket, placeholders filled (plain text)."""
        return ExpandOut(short_code=data.short_code, text=await canned.expand(current_user, data.ticket_id, data.short_code))

    @patch("/{response_id:str}")
    async def update(
        self, response_id: FromPath[str], data: JSONBody[UpdateCannedRequest], current_user: NamedDependency[User]
    ) -> CannedOut:
        """Change the short code or the content (admins, the owner, the team's leads)."""
        return await canned.update(current_user, response_id, data)

    @delete("/{response_id:str}", status_code=HTTP_204_NO_CONTENT)
    async def remove(self, response_id: FromPath[str], current_user: NamedDependency[User]) -> None:
        """Delete a response (admins, the owner, the team's leads)."""
        await canned.delete(current_user, response_id)
