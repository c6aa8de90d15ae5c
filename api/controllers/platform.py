"""`/api/platform`: the server API for the host platform's backend, authenticated with an API key.

Users are named by the platform's own ids (`external_id`); see docs/integration.md.
"""

from __future__ import annotations

from litestar import Controller, Response, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from api.publisher import EventPublisher
from core.broker_rights import BrokerRights
from core.payloads import (
    AuthResponse,
    ConversationOut,
    ExternalId,
    MessageOut,
    PlatformConversationRequest,
    PlatformTicketRequest,
    PlatformUserRequest,
    SystemMessageRequest,
    TicketOut,
    UserOut,
)
from core.services import platform, platform_users, sessions, users
from core.services.tickets import Limits
from core.settings import Settings


class PlatformController(Controller):
    path = "/api/platform"
    tags = ["platform"]

    @put("/users/{external_id:str}")
    async def upsert_user(
        self, external_id: FromPath[ExternalId], data: JSONBody[PlatformUserRequest],
        settings: NamedDependency[Settings],
    ) -> Response[UserOut]:  # fmt: skip
        """Create the platform user's account (201) or bring its name, email and role up to date (200)."""
        user, created = await platform_users.upsert_platform_user(
            settings.platform_issuer_key, external_id, data.name, data.email, data.role
        )
        return Response(users.user_out(user, viewer=None, show_email=True), status_code=HTTP_201_CREATED if created else HTTP_200_OK)

    @post("/users/{external_id:str}/tokens", status_code=HTTP_200_OK)
    async def issue_tokens(
        self, external_id: FromPath[ExternalId], settings: NamedDependency[Settings],
        rights: NamedDependency[BrokerRights],
    ) -> AuthResponse:  # fmt: skip
        """Tokens for a platform user, the same answer as a login (for platforms that issue no JWTs)."""
        user = await platform_users.get_platform_user(settings.platform_issuer_key, external_id)
        return await sessions.signed_in(settings, rights, user)

    @post("/conversations")
    async def open_conversation(
        self, data: JSONBody[PlatformConversationRequest], settings: NamedDependency[Settings],
        publisher: NamedDependency[EventPublisher],
    ) -> Response[ConversationOut]:  # fmt: skip
        """A conversation between platform users (201); a direct one already open for the pair and context answers 200."""
        view, created, deliveries = await platform.open_conversation(settings.platform_issuer_key, data)
        await publisher.publish(deliveries)
        return Response(view, status_code=HTTP_201_CREATED if created else HTTP_200_OK)

    @post("/conversations/{conversation_id:str}/messages")
    async def post_message(
        self, conversation_id: FromPath[str], data: JSONBody[SystemMessageRequest],
        publisher: NamedDependency[EventPublisher],
    ) -> Response[MessageOut]:  # fmt: skip
        """A system message, delivered live to every member (201); a resent `client_msg_id` answers 200 with the original."""
        sent = await platform.post_system_message(conversation_id, data.body, data.client_msg_id)
        await publisher.publish(sent.deliveries)
        assert sent.message is not None
        return Response(sent.message, status_code=HTTP_201_CREATED if sent.result.created else HTTP_200_OK)

    @post("/tickets", status_code=HTTP_201_CREATED)
    async def open_ticket(
        self, data: JSONBody[PlatformTicketRequest], settings: NamedDependency[Settings],
        publisher: NamedDependency[EventPublisher],
    ) -> TicketOut:  # fmt: skip
        """A ticket opened on behalf of a platform customer, auto-assigned as usual."""
        return await publisher.publish_and_return(
            await platform.open_ticket(settings.platform_issuer_key, data, Limits.from_settings(settings))
        )
