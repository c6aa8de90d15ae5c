"""`/api/messages/{id}` (edit, delete, reactions) and `/api/unread`."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK

from api.publisher import EventPublisher
from core.documents import User
from core.payloads import EditMessageRequest, MessageOut, ReactionsOut, ReactRequest, UnreadSummary
from core.services import chat
from core.services.conversations import unread_summary
from core.settings import Settings


class MessagesController(Controller):
    path = "/api/messages"
    tags = ["messages"]

    @patch("/{message_id:str}")
    async def edit(
        self, message_id: FromPath[str], data: JSONBody[EditMessageRequest], current_user: NamedDependency[User],
        settings: NamedDependency[Settings], publisher: NamedDependency[EventPublisher],
    ) -> MessageOut:  # fmt: skip
        """Edit one's own message within the edit window."""
        return await publisher.publish_and_return(
            await chat.edit(current_user, message_id, data.body, settings.edit_window_seconds)
        )

    @delete("/{message_id:str}", status_code=HTTP_200_OK)
    async def delete(
        self, message_id: FromPath[str], current_user: NamedDependency[User], publisher: NamedDependency[EventPublisher]
    ) -> MessageOut:
        """Delete for everyone (author or admin); the message stays as a tombstone."""
        return await publisher.publish_and_return(await chat.delete(current_user, message_id))

    @post("/{message_id:str}/reactions", status_code=HTTP_200_OK)
    async def react(
        self, message_id: FromPath[str], data: JSONBody[ReactRequest], current_user: NamedDependency[User],
        settings: NamedDependency[Settings], publisher: NamedDependency[EventPublisher],
    ) -> ReactionsOut:  # fmt: skip
        """React to a message with an emoji (`on: false` takes it back); members only."""
        return await publisher.publish_and_return(
            await chat.react(str(current_user.id), message_id, data.emoji, data.on, settings.reactions_per_message)
        )


class UnreadController(Controller):
    path = "/api/unread"
    tags = ["messages"]

    @get("/")
    async def unread(self, current_user: NamedDependency[User]) -> UnreadSummary:
        """Unread messages per conversation and in total."""
        return await unread_summary(str(current_user.id))
