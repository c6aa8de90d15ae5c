"""Changing stored messages: edits by their author within the edit window, deletes that leave a tombstone."""

from __future__ import annotations

from datetime import timedelta

from core.clock import utcnow
from core.documents import Conversation, Message, User
from core.errors import Conflict, Forbidden, NotFound
from core.roles import Role
from core.services.lookup import get_by_id
from core.services.messages.body import validate_body


async def get_message_for_member(message_id: str, user_id: str) -> tuple[Message, Conversation]:
    """The message and its conversation if `user_id` is a member; NotFound otherwise."""
    message, conversation = await _with_conversation(message_id)
    if message is None or conversation is None or user_id not in conversation.participant_ids:
        raise NotFound("message not found")
    return message, conversation


EDIT_ATTEMPTS = 3  # a delete or a first reaction between reading and writing the message: read it again


async def edit_message(user: User, message_id: str, body: str, edit_window_seconds: int) -> tuple[Message, Conversation]:
    """Change the body of one's own message within the edit window."""
    for _ in range(EDIT_ATTEMPTS):
        message, conversation = await get_message_for_member(message_id, str(user.id))
        if message.sender_id != str(user.id):
            raise Forbidden("only the author may edit a message")
        if message.deleted:
            raise Conflict("the message was deleted")
        if utcnow() - message.created_at > timedelta(seconds=edit_window_seconds):
            raise Forbidden("the edit window has passed")
        validate_body(body, bool(message.attachment_ids))
        message.body, message.edited_at, message.search_indexed = body, utcnow(), 0  # the indexer finds the new words
        if await _replace_as_read(message):
            return message, conversation
    raise Conflict("the message changed meanwhile: try again")


async def _replace_as_read(message: Message) -> bool:
    """Write the edited message whole (nx-27017 stores a `$set` datetime as a string, docs/store.md), unless it
    was deleted or first reacted to since it was read: a whole write would undo that. (Over a message stored
    before the flag, `reacted` None, it writes None again: its reactions are still looked up.)"""
    as_read: dict[str, object] = {"_id": message.id, "deleted": False}
    if message.reacted == 0:
        as_read["reacted"] = 0
    replaced = await Message.get_pymongo_collection().replace_one(as_read, message.stored_form())
    return replaced.matched_count == 1


async def delete_message(user: User, message_id: str) -> tuple[Message, Conversation]:
    """Delete for everyone (the author, or an admin): the message stays as a tombstone."""
    message, conversation = await _with_conversation(message_id)
    is_admin = user.role is Role.ADMIN
    if message is None or conversation is None or (str(user.id) not in conversation.participant_ids and not is_admin):
        raise NotFound("message not found")
    if message.sender_id != str(user.id) and not is_admin:
        raise Forbidden("only the author or an admin may delete a message")
    if not message.deleted:
        message.body, message.attachment_ids, message.attachments, message.deleted = "", [], [], True
        message.search_indexed = 0  # the indexer removes its words
        message.edited_at = utcnow()
        await message.replace()
    return message, conversation


async def _with_conversation(message_id: str) -> tuple[Message | None, Conversation | None]:
    message = await get_by_id(Message, message_id)
    return message, await get_by_id(Conversation, message.conversation_id) if message else None
