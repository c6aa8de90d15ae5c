"""The API's routes grouped by who may call them; each group declares its security once.

- public: sign-in, health, the web client's files;
- signed in: a user's bearer token (each handler asks for `current_user`);
- admin: a user's bearer token of an admin (the `require_admin` guard, before the body is read);
- platform: the host platform's backend with an API key (`require_api_key`).
"""

from __future__ import annotations

from litestar import Router
from litestar.types import ControllerRouterHandler

from api.auth import require_admin, require_api_key
from api.controllers.admin import AdminStatsController
from api.controllers.agents import AdminAgentsController, AgentsController
from api.controllers.analytics import AnalyticsController
from api.controllers.api_keys import ApiKeysController
from api.controllers.attachments import AttachmentsController
from api.controllers.audit import AuditController
from api.controllers.auth import AuthController
from api.controllers.canned import CannedController
from api.controllers.conversations import ConversationsController
from api.controllers.csat import AdminCsatController, TicketCsatController
from api.controllers.health import HealthController
from api.controllers.messages import MessagesController, UnreadController
from api.controllers.moderation import AdminModerationController, BlocksController, ReportsController
from api.controllers.platform import PlatformController
from api.controllers.push import PushController
from api.controllers.search import SearchController
from api.controllers.teams import AdminTeamsController, TeamsController, TicketRoutingController
from api.controllers.tickets import TicketsController
from api.controllers.users import AdminUsersController, UsersController
from api.controllers.webhooks import WebhooksController
from api.metrics import metrics
from api.web_client import client_routes

USER_TOKEN = [{"BearerToken": []}]
API_KEY = [{"ApiKey": []}]


def route_groups() -> list[ControllerRouterHandler]:
    """Every route of the API, in its security group."""
    signed_in = Router(
        path="/",
        security=USER_TOKEN,
        route_handlers=[
            UsersController,
            ConversationsController,
            MessagesController,
            UnreadController,
            TicketsController,
            TicketCsatController,
            TeamsController,
            AgentsController,
            CannedController,
            AttachmentsController,
            PushController,
            BlocksController,
            ReportsController,
            SearchController,
        ],
    )
    admin = Router(
        path="/",
        security=USER_TOKEN,
        guards=[require_admin],
        route_handlers=[
            AdminStatsController, AnalyticsController, AdminUsersController, AuditController, ApiKeysController, WebhooksController,
            AdminModerationController, metrics, AdminTeamsController, TicketRoutingController, AdminCsatController, AdminAgentsController,
        ],
    )
    platform = Router(path="/", security=API_KEY, guards=[require_api_key], route_handlers=[PlatformController])
    return [AuthController, HealthController, signed_in, admin, platform, *client_routes()]
