"""The server API's use cases: what the host platform's backend does on its users' behalf.

Users are named by the platform's ids (core.services.platform_users); everything
else goes through the same services as a person's requests, so conversations,
system messages and tickets are stored and delivered live like any other.
"""

from __future__ import annotations

import asyncio

from core.documents import SYSTEM_SENDER, User
from core.events import Delivery
from core.payloads import (
    ConversationOut,
    CreateTicketRequest,
    PlatformConversationRequest,
    PlatformTicketRequest,
    TicketOut,
)
from core.services import chat, conversations, tickets
from core.services.messages import SendCommand
from core.services.platform_users import get_platform_user

PLATFORM_CREATOR = "platform"  # `created_by` of conversations the platform opened: only admins manage their members


async def _members(issuer: str, external_ids: list[str]) -> list[User]:
    return list(await asyncio.gather(*(get_platform_user(issuer, uid) for uid in dict.fromkeys(external_ids))))


async def open_conversation(
    issuer: str, request: PlatformConversationRequest
) -> tuple[ConversationOut, bool, list[Delivery]]:
    """A conversation between platform users; a direct one is the same for the same pair and context."""
    members = await _members(issuer, request.members)
    conversation, created = await conversations.open_conversation(
        [str(member.id) for member in members], request.kind, request.title, request.context, created_by=PLATFORM_CREATOR
    )
    view, deliveries = await chat.conversation_started(conversation, created, viewer_id=None)
    return view, created, deliveries


async def post_system_message(conversation_id: str, body: str, client_msg_id: str) -> chat.Sent:
    """A system message (`kind: "system"`, no human sender), idempotent on `client_msg_id`; raises its refusal."""
    command = SendCommand(
        sender_id=SYSTEM_SENDER, conversation_id=conversation_id, client_msg_id=client_msg_id, body=body, kind="system"
    )
    [sent] = await chat.send([command])
    if sent.result.error is not None:
        raise sent.result.error
    return sent


async def open_ticket(
    issuer: str, request: PlatformTicketRequest, limits: tickets.Limits
) -> tuple[TicketOut, list[Delivery]]:
    """A ticket opened on behalf of a platform customer, auto-assigned as usual."""
    [customer] = await _members(issuer, [request.customer])
    context = request.context
    ticket_request = CreateTicketRequest(
        subject=request.subject, description=request.description, category=request.category,
        priority=request.priority, order_id=context.id if context is not None and context.type == "order" else None,
    )  # fmt: skip
    return await tickets.create_ticket(customer, ticket_request, limits, context)
