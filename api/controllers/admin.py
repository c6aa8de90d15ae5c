"""`/api/admin/stats`: operational figures for admins."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency

from api.auth import require_admin
from core.documents import User
from core.payloads import StatsOut
from core.services.stats import collect_stats


class AdminStatsController(Controller):
    path = "/api/admin/stats"
    tags = ["admin"]
    security = [{"BearerToken": []}]

    @get("/")
    async def stats(self, current_user: NamedDependency[User]) -> StatsOut:
        """Users by role, online now, conversations, messages in 24 h, tickets by status, response times, backlog."""
        require_admin(current_user)
        return await collect_stats()
