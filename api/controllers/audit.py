"""`/api/admin/audit`: the admin audit log, newest first (admin only)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import QueryParameter

from api.params import PageLimit, TicketBefore
from core.admin_payloads import AuditList
from core.services import audit

Filter = Annotated[str | None, QueryParameter(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")]


class AuditController(Controller):
    path = "/api/admin/audit"
    tags = ["admin"]

    @get("/")
    async def entries(
        self, before: TicketBefore = None, limit: PageLimit = None, action: Filter = None, actor_id: Filter = None,
        target_id: Filter = None,
    ) -> AuditList:  # fmt: skip
        """Admin actions (user created, role changed, deactivated/reactivated, exported, erased; API keys and
        webhooks created, changed, removed) newest first; `before` is the previous page's `next_before`."""
        items, next_before = await audit.page(before, limit, action, actor_id, target_id)
        return AuditList(items=items, next_before=next_before)
