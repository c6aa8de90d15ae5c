"""Conversations: creating direct and group chats, membership, listing for a member."""

from __future__ import annotations

import asyncio
import secrets

from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from core import topics
from core.clock import iso, iso_from_ms, to_ms
from core.documents import Conversation, ConversationContext, MemberSettings, User, direct_key_prefix
from core.errors import Forbidden, InvalidInput, NotFound
from core.payloads import ContextIn, ConversationOut, MessageOut, UnreadSummary
from core.roles import Role
from core.services import blocks, member_settings
from core.services import messages as message_service
from core.services.lookup import get_by_id
from core.services.users import find_user

MAX_MEMBERS = 100
MAX_LIST = 100


def _direct_key(a: str, b: str, context: ContextIn | None) -> str:
    return direct_key_prefix(a, b) + (f"{context.type}:{context.id}" if context else "-")


async def _require_active_users(user_ids: list[str]) -> None:
    found = await asyncio.gather(*(find_user(uid) for uid in user_ids))
    if any(user is None or not user.active for user in found):
        raise InvalidInput("every participant must be an existing user")


async def create_conversation(
    creator: User, participant_ids: list[str], kind: str, title: str | None, context: ContextIn | None
) -> tuple[Conversation, bool]:
    """Create a conversation with the creator as a participant; (conversation, created).

    A direct conversation is unique per pair and context: asking again returns the existing one.
    """
    creator_id = str(creator.id)
    others = [uid for uid in dict.fromkeys(participant_ids) if uid != creator_id]
    await _require_active_users(others[:MAX_MEMBERS])
    if kind == "direct" and len(others) == 1:
        await blocks.check_may_write_to(creator_id, others[0])
    return await open_conversation([creator_id, *others], kind, title, context, created_by=creator_id)


async def open_conversation(
    member_ids: list[str], kind: str, title: str | None, context: ContextIn | None, created_by: str
) -> tuple[Conversation, bool]:
    """Store a conversation of existing, active members (distinct ids); (conversation, created).

    A direct conversation is unique per pair and context: asking again returns the existing one.
    """
    if kind == "direct" and len(member_ids) != 2:
        raise InvalidInput("a direct conversation has exactly one other participant")
    if len(member_ids) < 2:
        raise InvalidInput("a conversation needs at least one other participant")
    if len(member_ids) > MAX_MEMBERS:
        raise InvalidInput(f"a conversation has at most {MAX_MEMBERS} members")
    unique_key = _direct_key(member_ids[0], member_ids[1], context) if kind == "direct" else f"group:{secrets.token_hex(12)}"
    conversation = Conversation(
        kind=kind,  # type: ignore[arg-type]
        title=title,
        context=ConversationContext(type=context.type, id=context.id, title=context.title) if context else None,
        participant_ids=member_ids,
        created_by=created_by,
        unique_key=unique_key,
    )
    conversation.updated_ms = to_ms(conversation.created_at)
    try:
        await conversation.insert()
    except DuplicateKeyError:
        existing = await Conversation.find_one({"unique_key": unique_key})
        if existing is None:  # pragma: no cover - deleted in between
            raise
        return existing, False
    return conversation, True


async def find_conversation(conversation_id: str) -> Conversation | None:
    """The conversation with this id, or None (also for malformed ids)."""
    return await get_by_id(Conversation, conversation_id)


async def get_for_member(conversation_id: str, user_id: str) -> Conversation:
    """The conversation if `user_id` is a member; NotFound otherwise (non-members learn nothing)."""
    conversation = await find_conversation(conversation_id)
    if conversation is None or user_id not in conversation.participant_ids:
        raise NotFound("conversation not found")
    return conversation


async def require_member(conversation_id: str, user_id: str) -> None:
    """NotFound unless `user_id` is a member, like `get_for_member`, for readers that need nothing else of the
    conversation: its members are read as stored, no Conversation is built (a history page)."""
    found = None
    if topics.is_object_id(conversation_id):
        found = await Conversation.get_pymongo_collection().find_one({"_id": ObjectId(conversation_id)}, {"participant_ids": 1})
    if found is None or user_id not in found["participant_ids"]:
        raise NotFound("conversation not found")


async def add_member(conversation: Conversation, actor: User, user_id: str) -> Conversation:
    """Add a member to a group conversation (its creator or an admin)."""
    _require_group_manager(conversation, actor)
    if user_id in conversation.participant_ids:
        return conversation
    if len(conversation.participant_ids) >= MAX_MEMBERS:
        raise InvalidInput(f"a conversation has at most {MAX_MEMBERS} members")
    await _require_active_users([user_id])
    await Conversation.get_pymongo_collection().update_one(
        {"_id": conversation.id}, {"$addToSet": {"participant_ids": user_id}}
    )
    return await _reload(conversation)


async def remove_member(conversation: Conversation, actor: User, user_id: str) -> Conversation:
    """Remove a member from a group conversation (its creator or an admin; anyone may leave)."""
    if str(actor.id) != user_id:
        _require_group_manager(conversation, actor)
    elif conversation.kind != "group" or conversation.ticket_id is not None:
        raise InvalidInput("only group conversations have changing members")
    if user_id not in conversation.participant_ids:
        raise NotFound("not a member")
    await Conversation.get_pymongo_collection().update_one(
        {"_id": conversation.id}, {"$pull": {"participant_ids": user_id}}
    )
    return await _reload(conversation)


def _require_group_manager(conversation: Conversation, actor: User) -> None:
    if conversation.kind != "group":
        raise InvalidInput("only group conversations have changing members")
    if conversation.ticket_id is not None:
        raise Forbidden("a ticket's conversation follows the ticket's assignment")
    if actor.role is not Role.ADMIN and conversation.created_by != str(actor.id):
        raise Forbidden("only the creator or an admin manages members")


async def _reload(conversation: Conversation) -> Conversation:
    fresh = await Conversation.get(conversation.id)
    if fresh is None:  # pragma: no cover - deleted in between
        raise NotFound("conversation not found")
    return fresh


def conversation_out(
    conversation: Conversation, last_message: MessageOut | None = None, unread_count: int = 0
) -> ConversationOut:
    """The contract's conversation view."""
    context = conversation.context
    return ConversationOut(
        id=str(conversation.id),
        kind=conversation.kind,
        title=conversation.title,
        context=ContextIn(type=context.type, id=context.id, title=context.title) if context else None,
        participant_ids=list(conversation.participant_ids),
        created_by=conversation.created_by,
        created_at=iso(conversation.created_at) or "",
        updated_at=iso_from_ms(conversation.updated_ms) or "",
        last_message=last_message,
        unread_count=unread_count,
    )


async def describe(conversation: Conversation, viewer_id: str) -> ConversationOut:
    """The conversation with its last message and the viewer's unread count and own settings."""
    return await _described(conversation, viewer_id, await member_settings.of_member(str(conversation.id), viewer_id))


async def _described(conversation: Conversation, viewer_id: str, settings: MemberSettings | None) -> ConversationOut:
    last, unread = await asyncio.gather(
        message_service.last_message(conversation), message_service.unread_count(conversation, viewer_id)
    )
    view = conversation_out(conversation, last, unread)
    view.archived, view.muted = member_settings.is_archived(settings, conversation), bool(settings and settings.muted)
    return view


async def list_for_member(user_id: str, limit: int = MAX_LIST, archived: bool = False) -> list[ConversationOut]:
    """The member's conversations, newest activity first: the main list, or only the archived ones."""
    size = max(1, min(limit, MAX_LIST))
    mine = await member_settings.of_user(user_id)
    hidden = sum(1 for s in mine.values() if s.archived)  # at most this many of the newest are archived
    found = await Conversation.find({"participant_ids": user_id}).sort([("updated_ms", -1)]).limit(size + hidden).to_list()
    shown = [c for c in found if member_settings.is_archived(mine.get(str(c.id)), c) == archived][:size]
    return list(await asyncio.gather(*(_described(c, user_id, mine.get(str(c.id))) for c in shown)))


async def unread_summary(user_id: str) -> UnreadSummary:
    """Unread counts of all the member's conversations (only those with unread messages are listed);
    muted conversations are listed but left out of the total."""
    mine, settings = await asyncio.gather(Conversation.find({"participant_ids": user_id}).to_list(), member_settings.of_user(user_id))
    counts = await asyncio.gather(*(message_service.unread_count(c, user_id) for c in mine))
    by_conversation = {str(c.id): n for c, n in zip(mine, counts, strict=True) if n}
    muted = {cid for cid, s in settings.items() if s.muted}
    return UnreadSummary(total=sum(n for cid, n in by_conversation.items() if cid not in muted), by_conversation=by_conversation)
