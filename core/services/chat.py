"""The chat use cases, shared by the bridge (MQTT) and the API (REST).

Each use case persists first and returns what to publish; the caller publishes.
So a message sent over REST is delivered exactly as if it had been published.
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableSet
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

from core import events, metrics
from core.clock import iso, to_ms, utcnow
from core.documents import Conversation, Message, User
from core.events import Delivery
from core.payloads import ConversationOut, MessageOut, ReactionsOut
from core.services import blocks, conversations, member_settings, messages, reactions, tickets
from core.services.conversation_cache import ConversationCache
from core.services.messages import SendCommand, SendResult

V = TypeVar("V")


class Planned(NamedTuple, Generic[V]):
    """A stored change as its caller answers it (`view`) and the deliveries that announce it."""

    view: V
    deliveries: list[Delivery]


@dataclass(slots=True)
class Sent:
    """One send's outcome: the message view (None if refused) and the deliveries to publish."""

    result: SendResult
    message: MessageOut | None = None
    deliveries: list[Delivery] = field(default_factory=list)


async def send(
    commands: list[SendCommand], conversations: ConversationCache | None = None, announced: MutableSet[str] | None = None
) -> list[Sent]:
    """Store a batch of messages and plan their events, in order.

    New messages go to every member and the conversation topic; a duplicate only
    re-acknowledges to the sender's own inbox. A caller that passes `announced`, the
    ids of messages it knows were announced to every member, gets a duplicate of any
    other message announced to every member again (its events may never have gone
    out: a bridge killed between storing and publishing; clients de-duplicate by id),
    and every message announced here is added to it. `conversations`: see messages.send_many.
    """
    outcomes: list[Sent] = []
    watermarks: dict[str, dict[str, int]] = {}
    results = await messages.send_many(commands, conversations)
    previews = await messages.reply_previews(
        (r.message.stored_form() for r in results if r.message and r.message.reply_to),
        known=(r.quoted for r in results if r.quoted is not None),
    )
    for result in results:
        if result.message is None or result.conversation is None:
            outcomes.append(Sent(result))
            continue
        cid = result.command.conversation_id
        if not result.created and cid not in watermarks:  # nobody has read past a message stored just now
            watermarks[cid] = await messages.read_states(cid)
        view = messages.message_out(result.message, watermarks.get(cid, {}), previews)
        to_everyone = result.created or (announced is not None and view.id not in announced)
        if to_everyone and announced is not None:
            announced.add(view.id)
        deliveries = (
            events.message_event("message.created", view, result.conversation.participant_ids)
            if to_everyone
            else events.duplicate_ack(view)
        )
        outcomes.append(Sent(result, view, deliveries))
    await _record_ticket_responses(outcomes)
    metrics.MESSAGES_STORED.inc(sum(1 for sent in outcomes if sent.result.created))
    return outcomes


async def _record_ticket_responses(outcomes: list[Sent]) -> None:
    """A new message in a ticket's conversation may be the assignee's first response."""
    seen: set[tuple[str, str]] = set()
    for sent in outcomes:
        result = sent.result
        if not result.created or result.conversation is None or result.conversation.ticket_id is None:
            continue
        key = (result.command.conversation_id, result.command.sender_id)
        if key in seen or result.message is None:
            continue
        seen.add(key)
        at_ms = to_ms(result.message.created_at)
        sent.deliveries += await tickets.record_first_response(result.conversation, result.command.sender_id, at_ms)


async def _changed_message_event(event_type: str, message: Message, conversation: Conversation) -> Planned[MessageOut]:
    watermarks, previews = await asyncio.gather(
        messages.read_states(message.conversation_id), messages.reply_previews([message.stored_form()])
    )
    [view] = await reactions.attach([messages.message_out(message, watermarks, previews)])
    return Planned(view, events.message_event(event_type, view, conversation.participant_ids))


async def edit(user: User, message_id: str, body: str, edit_window_seconds: int) -> Planned[MessageOut]:
    """Edit one's message; `message.updated` to all members."""
    message, conversation = await messages.edit_message(user, message_id, body, edit_window_seconds)
    return await _changed_message_event("message.updated", message, conversation)


async def delete(user: User, message_id: str) -> Planned[MessageOut]:
    """Delete for everyone; `message.deleted` (a tombstone) to all members."""
    message, conversation = await messages.delete_message(user, message_id)
    await reactions.clear(message_id)
    return await _changed_message_event("message.deleted", message, conversation)


async def react(user_id: str, message_id: str, emoji: str, on: bool, max_distinct: int) -> Planned[ReactionsOut]:
    """React to a message (or take it back); `message.reactions` to every member when that changed anything."""
    done = await reactions.react(user_id, message_id, emoji, on, max_distinct)
    cid = done.message.conversation_id
    view = ReactionsOut(message_id=message_id, conversation_id=cid, reactions=done.reactions)
    if not done.changed:
        return Planned(view, [])
    return Planned(view, events.reactions_event(
        cid, message_id, user_id, emoji, on, done.reactions, done.conversation.participant_ids
    ))  # fmt: skip


async def read(user_id: str, conversation_id: str, message_id: str) -> Planned[int]:
    """Move the read watermark; the unread count, and `receipt.read` to the other members when it moved."""
    conversation = await conversations.get_for_member(conversation_id, user_id)
    unread, receipt = await messages.mark_read(conversation, user_id, message_id)
    if receipt is None:
        return Planned(unread, [])
    return Planned(unread, events.receipt_event(
        receipt.conversation_id, user_id, receipt.message_id, receipt.seq, receipt.at, conversation.participant_ids
    ))  # fmt: skip


async def typing(user_id: str, conversation_id: str, is_typing: bool) -> list[Delivery]:
    """A typing indicator for members of the conversation; never stored."""
    await blocks.check_may_write(await conversations.get_for_member(conversation_id, user_id), user_id)
    return events.typing_event(conversation_id, user_id, is_typing, iso(utcnow()) or "")


async def change_settings(user_id: str, conversation_id: str, archived: bool | None, muted: bool | None) -> Planned[ConversationOut]:
    """A member archives/mutes a conversation for themself; `conversation.settings` to their own devices."""
    conversation = await conversations.get_for_member(conversation_id, user_id)
    await member_settings.change(conversation, user_id, archived, muted)
    view = await conversations.describe(conversation, user_id)
    return Planned(view, events.settings_event(user_id, conversation_id, view.archived, view.muted))


async def conversation_started(
    conversation: Conversation, created: bool, viewer_id: str | None
) -> tuple[ConversationOut, list[Delivery]]:
    """The new conversation's view (as `viewer_id` sees it, or plain for the platform's backend);
    `conversation.created` to every member when it is new."""
    view = await conversations.describe(conversation, viewer_id) if viewer_id else conversations.conversation_out(conversation)
    if not created:
        return view, []
    members = conversation.participant_ids
    return view, [
        *events.membership_changed(str(conversation.id), added=members),
        *events.conversation_event("conversation.created", conversations.conversation_out(conversation), members),
    ]


async def members_changed(before: Conversation, after: Conversation, viewer_id: str) -> tuple[ConversationOut, list[Delivery]]:
    """After adding or removing members: brokers drop cached rights first, then every affected user hears of it.

    New members get `conversation.created`; remaining members and removed ones `conversation.updated`.
    """
    view = conversations.conversation_out(after)
    added = [uid for uid in after.participant_ids if uid not in before.participant_ids]
    removed = [uid for uid in before.participant_ids if uid not in after.participant_ids]
    deliveries = events.members_changed(str(after.id), view, added, removed, before.participant_ids)
    return await conversations.describe(after, viewer_id), deliveries
