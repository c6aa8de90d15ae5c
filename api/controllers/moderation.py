"""Blocks and reports: `/api/blocks`, `/api/reports`, and the admins' `/api/admin/blocks`, `/api/admin/reports`."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from api.params import PageLimit
from api.publisher import EventPublisher
from core.documents import User
from core.payloads import (
    AdminBlockList,
    BlockList,
    BlockOut,
    BlockRequest,
    ReportList,
    ReportOut,
    ReportRequest,
    ResolveReportRequest,
)
from core.services import blocks, reports

ReportedUser = Annotated[str | None, QueryParameter(pattern=r"^[0-9a-f]{24}$", description="only reports about this user")]


class BlocksController(Controller):
    path = "/api/blocks"
    tags = ["moderation"]

    @post("/")
    async def block(
        self, data: JSONBody[BlockRequest], current_user: NamedDependency[User], publisher: NamedDependency[EventPublisher]
    ) -> Response[BlockOut]:
        """Block a user (201; 200 when already blocked): they can no longer write to you in direct conversations."""
        record, created, notices = await blocks.block(current_user, data.user_id)
        await publisher.publish(notices)
        return Response(record, status_code=HTTP_201_CREATED if created else HTTP_200_OK)

    @get("/")
    async def list_mine(self, current_user: NamedDependency[User]) -> BlockList:
        """The users the caller blocked, newest first."""
        return BlockList(items=await blocks.blocked_by(str(current_user.id)))

    @delete("/{user_id:str}", status_code=HTTP_204_NO_CONTENT)
    async def unblock(self, user_id: FromPath[str], current_user: NamedDependency[User], publisher: NamedDependency[EventPublisher]) -> None:
        """Lift a block (404 when there is none)."""
        await publisher.publish(await blocks.unblock(str(current_user.id), user_id))


class ReportsController(Controller):
    path = "/api/reports"
    tags = ["moderation"]

    @post("/")
    async def report(self, data: JSONBody[ReportRequest], current_user: NamedDependency[User]) -> Response[ReportOut]:
        """Report a message or a user to the admins (201; 200 with your open report of the same thing)."""
        record, created = await reports.report(current_user, data.reason, data.message_id, data.user_id)
        return Response(record, status_code=HTTP_201_CREATED if created else HTTP_200_OK)


class AdminModerationController(Controller):
    path = "/api/admin"
    tags = ["admin"]

    @get("/reports")
    async def queue(
        self, status: FromQuery[Literal["open", "resolved"] | None] = None, user_id: ReportedUser = None, limit: PageLimit = None
    ) -> ReportList:
        """Reports oldest first (at most 100), optionally only open or resolved ones, or those about one user."""
        return ReportList(items=await reports.queue(status, user_id, limit or reports.MAX_LIST))

    @post("/reports/{report_id:str}/resolve", status_code=HTTP_200_OK)
    async def resolve(
        self, report_id: FromPath[str], data: JSONBody[ResolveReportRequest], current_user: NamedDependency[User]
    ) -> ReportOut:
        """Resolve an open report with a note (409 if it is resolved already)."""
        return await reports.resolve(report_id, current_user, data.note)

    @get("/blocks")
    async def all_blocks(self, limit: PageLimit = None) -> AdminBlockList:
        """Every block, newest first (at most 100), including those against staff, which are not enforced."""
        return AdminBlockList(items=await blocks.recent(limit or blocks.MAX_LIST))
