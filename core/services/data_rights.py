"""Data rights: everything stored about a user as one JSON document, and erasure.

Erasure keeps everyone else's history consistent: the user's messages stay as
tombstones (same id and `seq`, empty body, no attachments, `deleted: true`), their
memberships and tickets stay (numbers, times and statuses count in the reports),
and the account stays as an anonymised, disabled profile ("Deleted user") that
can never sign in again. Their uploads, push subscriptions, read positions and
tokens are deleted; the tickets they opened lose their subject, description and
order. An erased agent leaves their teams, and the tickets assigned to them go back
to the queue (and on to another agent, like any requeued ticket). Both scans go through the user's messages by `sender_id` (a rare admin
action: no index on the hot insert path for it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import msgspec
from bson import ObjectId

from core.clock import iso, iso_from_ms, utcnow
from core.documents import Conversation, Message, PushSubscription, ReadState, Ticket, User
from core.events import Delivery
from core.services import attachments, sessions, teams
from core.services.conversations import conversation_out
from core.services.messages.views import reply_previews, stored_message_out
from core.services.tickets import Limits, requeue_assigned_to, ticket_out

ERASED_NAME = "Deleted user"
ERASED_TICKET_SUBJECT = "(erased)"
EXPORT_BATCH = 500


def _profile(user: User) -> dict[str, Any]:
    return {
        "id": str(user.id), "email": user.contact_email, "sign_in_key": user.email, "username": user.username,
        "role": user.role.value, "external_id": user.external_id, "active": user.active, "created_at": iso(user.created_at),
        "presence": {"status": user.presence_status, "last_seen": iso_from_ms(user.last_seen_ms)},
        "email_notifications": user.email_notifications, "erased_at": iso(user.erased_at),
    }  # fmt: skip


def _json(value: Any) -> bytes:
    return msgspec.json.encode(value)


async def export_chunks(user: User) -> AsyncIterator[bytes]:
    """The user's data as one JSON object, written piece by piece (their messages may be many).

    `{exported_at, user, memberships, tickets, attachments, push_subscriptions, read_positions, messages}`;
    `tickets` are those the user opened, `messages` those they sent (oldest first per conversation).
    """
    user_id = str(user.id)
    memberships = await Conversation.find({"participant_ids": user_id}).sort([("updated_ms", -1)]).to_list()
    tickets = await Ticket.find({"customer_id": user_id}).sort([("number", 1)]).to_list()
    uploads = await attachments.uploads_of(user_id)
    pushes = await PushSubscription.find({"user_id": user_id}).to_list()
    reads = await ReadState.find({"user_id": user_id}).to_list()
    head = {
        "exported_at": iso(utcnow()),
        "user": _profile(user),
        "memberships": [conversation_out(c) for c in memberships],
        "tickets": await asyncio.gather(*(ticket_out(t) for t in tickets)),
        "attachments": [attachments.attachment_out(ref) for ref in uploads],
        "push_subscriptions": [{"endpoint": p.endpoint, "created_at": iso(p.created_at)} for p in pushes],
        "read_positions": [{"conversation_id": r.conversation_id, "last_read_seq": r.last_read_seq} for r in reads],
    }
    yield _json(head)[:-1] + b',"messages":['
    cursor = Message.get_pymongo_collection().find({"sender_id": user_id}).sort([("conversation_id", 1), ("seq", 1)])
    first = True
    while batch := await cursor.to_list(EXPORT_BATCH):
        previews = await reply_previews(batch)
        encoded = b",".join(_json(stored_message_out(stored, {}, previews)) for stored in batch)
        yield encoded if first else b"," + encoded
        first = False
    yield b"]}"


@dataclass(frozen=True, slots=True)
class Erased:
    """What an erasure changed, and the events that cut the user's live connections."""

    user: User
    messages: int
    attachments: int
    tickets: int
    deliveries: list[Delivery]


async def erase_user(user: User, limits: Limits) -> Erased:
    """Anonymise the profile, tombstone the messages, delete uploads and personal traces, revoke every token;
    an agent's tickets are requeued (and reassigned within `limits`).

    Safe to repeat (an interrupted erasure is finished by running it again).
    """
    user_id = str(user.id)
    user.username, user.email, user.password_hash = ERASED_NAME, f"erased {user_id}", ""
    user.external_id = user.platform_email = user.last_seen_ms = None
    user.active, user.email_notifications, user.presence_status = False, False, "offline"
    user.erased_at = user.erased_at or utcnow()
    await user.replace()  # first: from here on nobody signs in as them
    user, deliveries = await sessions.revoke_sessions(user)  # tokens; brokers cut and disable the account
    await teams.leave_all(user_id)
    deliveries += await requeue_assigned_to(user_id, limits)
    messages = 0
    async for message in Message.find({"sender_id": user_id}):
        if message.deleted and not message.attachments and not message.body:
            continue
        message.body, message.attachment_ids, message.attachments, message.deleted = "", [], [], True
        message.edited_at = message.edited_at or utcnow()
        await message.replace()
        messages += 1
    tickets = await Ticket.find({"customer_id": user_id}).to_list()
    for ticket in tickets:  # strings only: a concurrent status change of the ticket is kept
        await Ticket.get_pymongo_collection().update_one(
            {"_id": ticket.id}, {"$set": {"subject": ERASED_TICKET_SUBJECT, "description": "", "order_id": None}}
        )
        await Conversation.get_pymongo_collection().update_one(
            {"_id": ObjectId(ticket.conversation_id)}, {"$set": {"title": f"Ticket #{ticket.number}"}}
        )
    removed = await attachments.delete_uploads_of(user_id)
    await PushSubscription.find({"user_id": user_id}).delete()
    await ReadState.find({"user_id": user_id}).delete()
    return Erased(user=user, messages=messages, attachments=removed, tickets=len(tickets), deliveries=deliveries)
