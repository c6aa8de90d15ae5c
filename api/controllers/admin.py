"""`/api/admin/stats`: operational figures for admins."""

from __future__ import annotations

from litestar import Controller, get

from core.payloads import StatsOut
from core.services.stats import collect_stats


class AdminStatsController(Controller):
    path = "/api/admin/stats"
    tags = ["admin"]

    @get("/")
    async def stats(self) -> StatsOut:
        """Users by role, online now, conversations, messages in 24 h, tickets by status, response times, backlog."""
        return await collect_stats()
