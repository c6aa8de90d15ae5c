"""`/api/conversations`: create, list, members, history, send and read."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable

from litestar import Controller, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from api.limits import RequestLimits
from api.params import AfterSeq, MessageCursor, PageLimit
from api.publisher import EventPublisher
from core.documents import Conversation, User
from core.payloads import (
    AddMemberRequest,
    ConversationList,
    ConversationOut,
    ConversationSettingsRequest,
    CreateConversationRequest,
    MessageOut,
    MessagePage,
    ReadRequest,
    SendMessageRequest,
    UnreadCount,
)
from core.services import chat, conversations, messages, reactions
from core.services.messages import CursorPositions, SendCommand


async def _change_members(
    conversation_id: str, actor: User, publisher: EventPublisher,
    change: Callable[[Conversation], Awaitable[Conversation]],
) -> ConversationOut:  # fmt: skip
    """Apply a membership change for a member `actor`, then tell brokers and the affected users."""
    before = await conversations.get_for_member(conversation_id, str(actor.id))
    after = await change(before)
    return await publisher.publish_and_return(await chat.members_changed(before, after, str(actor.id)))


class ConversationsController(Controller):
    path = "/api/conversations"
    tags = ["conversations"]

    @post("/")
    async def create(
        self, data: JSONBody[CreateConversationRequest], current_user: NamedDependency[User],
        publisher: NamedDependency[EventPublisher],
    ) -> Response[ConversationOut]:  # fmt: skip
        """Start a conversation (the caller is always a participant); an existing direct one answers 200."""
        conversation, created = await conversations.create_conversation(
            current_user, data.participant_ids, data.kind, data.title, data.context
        )
        view = await publisher.publish_and_return(await chat.conversation_started(conversation, created, str(current_user.id)))
        return Response(view, status_code=HTTP_201_CREATED if created else HTTP_200_OK)

    @get("/")
    async def list_mine(
        self, current_user: NamedDependency[User], limit: PageLimit = None, archived: FromQuery[bool] = False
    ) -> ConversationList:
        """The caller's conversations, newest activity first, with last message and unread count;
        archived ones only with `archived=true`."""
        return ConversationList(items=await conversations.list_for_member(str(current_user.id), limit or 100, archived))

    @get("/{conversation_id:str}")
    async def get_one(self, conversation_id: FromPath[str], current_user: NamedDependency[User]) -> ConversationOut:
        """One conversation (members only)."""
        conversation = await conversations.get_for_member(conversation_id, str(current_user.id))
        return await conversations.describe(conversation, str(current_user.id))

    @patch("/{conversation_id:str}/settings")
    async def change_settings(
        self, conversation_id: FromPath[str], data: JSONBody[ConversationSettingsRequest],
        current_user: NamedDependency[User], publisher: NamedDependency[EventPublisher],
    ) -> ConversationOut:  # fmt: skip
        """Archive or mute the conversation for the caller only (members only)."""
        return await publisher.publish_and_return(
            await chat.change_settings(str(current_user.id), conversation_id, data.archived, data.muted)
        )

    @post("/{conversation_id:str}/members", status_code=HTTP_200_OK)
    async def add_member(
        self, conversation_id: FromPath[str], data: JSONBody[AddMemberRequest], current_user: NamedDependency[User],
        publisher: NamedDependency[EventPublisher],
    ) -> ConversationOut:  # fmt: skip
        """Add a member to a group (its creator or an admin)."""
        return await _change_members(
            conversation_id, current_user, publisher, lambda c: conversations.add_member(c, current_user, data.user_id)
        )

    @delete("/{conversation_id:str}/members/{user_id:str}", status_code=HTTP_200_OK)
    async def remove_member(
        self, conversation_id: FromPath[str], user_id: FromPath[str], current_user: NamedDependency[User],
        publisher: NamedDependency[EventPublisher],
    ) -> ConversationOut:  # fmt: skip
        """Remove a member from a group (its creator or an admin); a member may remove themself."""
        return await _change_members(
            conversation_id, current_user, publisher, lambda c: conversations.remove_member(c, current_user, user_id)
        )

    @get("/{conversation_id:str}/messages")
    async def history(
        self, conversation_id: FromPath[str], current_user: NamedDependency[User],
        cursor_positions: NamedDependency[CursorPositions],
        before: MessageCursor = None,
        after_seq: AfterSeq = None,
        limit: PageLimit = None,
    ) -> MessagePage:  # fmt: skip
        """Newest first with a `before` cursor (`next_before` is null on the last page), or oldest first after `after_seq`.

        After the membership check, the page and the watermarks are read at once, then what
        the page's messages need, if anything (quoted messages, reactions of the messages reacted
        to): 2 or 3 round trips after the caller's.
        """
        await conversations.require_member(conversation_id, str(current_user.id))
        (page, next_before), watermarks = await asyncio.gather(
            messages.history(conversation_id, before, after_seq, limit, cursor_positions), messages.read_states(conversation_id)
        )
        reacted_ids = [str(stored["_id"]) for stored in page if reactions.may_have_reactions(stored)]
        previews, reacted = await asyncio.gather(messages.reply_previews(page), reactions.entries_of(reacted_ids))
        items = reactions.fill([messages.stored_message_out(message, watermarks, previews) for message in page], reacted)
        return MessagePage(items=items) if after_seq is not None else MessagePage(items=items, next_before=next_before)

    @post("/{conversation_id:str}/messages")
    async def send(
        self, conversation_id: FromPath[str], data: JSONBody[SendMessageRequest], current_user: NamedDependency[User],
        publisher: NamedDependency[EventPublisher], limits: NamedDependency[RequestLimits],
    ) -> Response[MessageOut]:  # fmt: skip
        """Send a message, delivered over MQTT as if published; a resent `client_msg_id` answers 200 with the original."""
        await limits.check(limits.send, str(current_user.id), "messages")
        command = SendCommand(
            sender_id=str(current_user.id),
            conversation_id=conversation_id,
            client_msg_id=data.client_msg_id or f"rest-{secrets.token_hex(12)}",
            body=data.body,
            kind=data.kind,
            attachment_ids=list(data.attachment_ids),
            reply_to=data.reply_to,
        )
        [sent] = await chat.send([command])
        if sent.result.error is not None:
            raise sent.result.error
        assert sent.message is not None
        await publisher.publish(sent.deliveries)
        return Response(sent.message, status_code=HTTP_201_CREATED if sent.result.created else HTTP_200_OK)

    @post("/{conversation_id:str}/read", status_code=HTTP_200_OK)
    async def read(
        self, conversation_id: FromPath[str], data: JSONBody[ReadRequest], current_user: NamedDependency[User],
        publisher: NamedDependency[EventPublisher],
    ) -> UnreadCount:  # fmt: skip
        """Mark everything up to `message_id` as read."""
        unread = await publisher.publish_and_return(await chat.read(str(current_user.id), conversation_id, data.message_id))
        return UnreadCount(unread_count=unread)
