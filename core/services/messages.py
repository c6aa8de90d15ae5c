"""Messages: sending (batched, idempotent, gap-free `seq`), history, edits, deletes, read watermarks.

Sequence numbers are claimed by inserting: a unique index on (conversation_id, seq)
means a number exists only together with its message, so neither a crash nor a
refused duplicate can leave a gap. Idempotency is the unique index on
(conversation_id, sender_id, client_msg_id).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from beanie import PydanticObjectId
from pymongo import UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from core import topics
from core.clock import iso, to_ms, utcnow
from core.documents import SYSTEM_SENDER, AttachmentRef, Conversation, Message, ReadState, User
from core.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
)
from core.payloads import MAX_BODY_LENGTH, MessageOut
from core.roles import Role
from core.services import attachments
from core.services.conversation_cache import ConversationCache

log = logging.getLogger("mqchat.messages")

StoredMessage = Mapping[str, Any]  # a document of the `messages` collection, as stored

DEFAULT_PAGE = 50
MAX_PAGE = 100
UNREAD_COUNT_CAP = 1000  # counting stops here: a fully unread conversation costs a bounded scan
MAX_CLAIM_ATTEMPTS = 20
CURSOR_POSITIONS = 50_000  # remembered message positions, ~250 bytes each


@dataclass(slots=True)
class SendCommand:
    """One request to send a message, from MQTT or REST."""

    sender_id: str
    conversation_id: str
    client_msg_id: str
    body: str
    kind: str = "text"
    attachment_ids: list[str] = field(default_factory=list)
    reply_to: str | None = None


@dataclass(slots=True)
class SendResult:
    """The outcome of one SendCommand: the stored message (new or the original of a duplicate) or the refusal."""

    command: SendCommand
    message: Message | None = None
    conversation: Conversation | None = None
    created: bool = False
    error: DomainError | None = None


def validate_body(body: str, has_attachments: bool) -> None:
    """Bodies are at most MAX_BODY_LENGTH characters and not empty unless files are attached."""
    if len(body) > MAX_BODY_LENGTH:
        raise PayloadTooLarge(f"body is longer than {MAX_BODY_LENGTH} characters")
    if not body.strip() and not has_attachments:
        raise InvalidInput("body is empty")


async def send_many(commands: list[SendCommand], conversations: ConversationCache | None = None) -> list[SendResult]:
    """Store a batch of messages; results in the order of `commands`. Per-conversation order is kept.

    The whole batch costs two store round trips however many conversations it spans:
    one ordered insert of every new message, one update of the conversations' `last_seq`.
    A long-running caller (the bridge) passes its `conversations` cache: one store
    round trip less per conversation and batch, and the numbering continues from
    the cached `last_seq`.
    """
    results = [SendResult(command) for command in commands]
    by_conversation: dict[str, list[SendResult]] = defaultdict(list)
    for result in results:
        by_conversation[result.command.conversation_id].append(result)
    find = conversations.get if conversations is not None else _find_conversation
    claims = await asyncio.gather(*(_claim(find, cid, batch) for cid, batch in by_conversation.items()))
    accepted = [claim for claim in claims if claim is not None]
    await _insert_numbered(accepted)
    await _touch(accepted)
    for claim in accepted:
        claim.finish()
    return results


@dataclass(slots=True)
class _Claim:
    """One conversation's part of a batch: its accepted requests and the new messages still to store."""

    conversation: Conversation
    accepted: list[SendResult]
    pending: list[SendResult]  # the first request of each (sender, client_msg_id), in order
    base: int | None  # the newest seq known to be taken; None: read it from the store
    newest: int = 0  # the newest seq stored by this batch
    collisions: int = 0

    def numbered(self) -> list[dict[str, Any]]:
        """The pending messages as documents, numbered after `base`."""
        assert self.base is not None
        for offset, result in enumerate(self.pending, start=1):
            assert result.message is not None
            result.message.seq = self.base + offset
        return [result.message.stored_form() for result in self.pending]  # type: ignore[union-attr]

    def stored(self, count: int) -> None:
        """The first `count` pending messages are in the store."""
        if count:
            assert self.base is not None
            self.base += count
            self.newest, self.pending = self.base, self.pending[count:]

    def finish(self) -> None:
        """Give up on what still collides (the client retries); repeats inside the batch share their first's outcome."""
        for result in self.pending:
            result.error, result.message, result.created = Conflict("busy conversation, retry"), None, False
        self.conversation.last_seq = max(self.conversation.last_seq, self.newest)
        firsts = {(r.command.sender_id, r.command.client_msg_id): r for r in reversed(self.accepted)}
        for result in self.accepted:
            first = firsts[(result.command.sender_id, result.command.client_msg_id)]
            if result is not first:
                result.message, result.error = first.message, first.error


async def _claim(
    find: Callable[[str], Awaitable[Conversation | None]], conversation_id: str, batch: list[SendResult]
) -> _Claim | None:
    """Check a conversation's requests; its claim on the next numbers, or None if nothing is to be stored."""
    conversation = await find(conversation_id)
    accepted: list[SendResult] = []
    firsts: dict[tuple[str, str], SendResult] = {}
    for result in batch:
        try:
            shown = await _check_send(conversation, result.command)
        except DomainError as error:
            result.error = error
            continue
        result.conversation = conversation
        accepted.append(result)
        # Repeats inside the batch share one message; repeats of stored messages (redelivery,
        # retry, REST + MQTT) are found by the idempotency index when inserting.
        key = (result.command.sender_id, result.command.client_msg_id)
        if key not in firsts:
            result.message, result.created = _new_message(result.command, shown), True
            firsts[key] = result
    if not accepted or conversation is None:
        return None
    return _Claim(conversation, accepted, list(firsts.values()), conversation.last_seq)


async def _check_send(conversation: Conversation | None, command: SendCommand) -> list[AttachmentRef]:
    """Refuse what may not be sent; the attachments the message will show."""
    is_system = command.sender_id == SYSTEM_SENDER
    if conversation is None or (not is_system and command.sender_id not in conversation.participant_ids):
        raise NotFound("conversation not found")
    validate_body(command.body, bool(command.attachment_ids))
    if command.reply_to is not None:
        replied = await _find_message(command.reply_to)
        if replied is None or replied.conversation_id != command.conversation_id:
            raise InvalidInput("reply_to must be a message of the same conversation")
    return await attachments.owned_by(command.sender_id, command.attachment_ids) if command.attachment_ids else []


def _new_message(command: SendCommand, shown: list[AttachmentRef]) -> Message:
    return Message(
        id=PydanticObjectId(),
        conversation_id=command.conversation_id,
        seq=0,
        sender_id=command.sender_id,
        client_msg_id=command.client_msg_id,
        kind=command.kind,  # type: ignore[arg-type]
        body=command.body,
        attachment_ids=[ref.id for ref in shown],
        attachments=shown,
        reply_to=command.reply_to,
    )


async def _insert_numbered(claims: list[_Claim]) -> None:
    """Insert every claim's pending messages in one ordered insert, numbered after each conversation's `base`.

    A conversation's `base` is its record, never ahead of the truth. A seq taken meanwhile
    (another writer, or a stale record) is a collision: re-read that conversation's top
    and retry. A request already stored is a duplicate: it gets the original. Either way
    the insert stopped there, and what followed is retried as it was numbered.
    """
    while active := [claim for claim in claims if claim.pending and claim.collisions < MAX_CLAIM_ATTEMPTS]:
        stale = [claim for claim in active if claim.base is None]
        for claim, top in zip(stale, await asyncio.gather(*(_max_seq(str(c.conversation.id)) for c in stale)), strict=True):
            claim.base = top
        try:
            await Message.get_pymongo_collection().insert_many([doc for claim in active for doc in claim.numbered()], ordered=True)
        except BulkWriteError as exc:
            inserted = int(exc.details.get("nInserted", 0))
            for claim in active:
                if inserted >= len(claim.pending):
                    inserted -= len(claim.pending)
                    claim.stored(len(claim.pending))
                    continue
                claim.stored(inserted)
                await _resolve_failed_insert(claim)
                break
        else:
            for claim in active:
                claim.stored(len(claim.pending))


async def _resolve_failed_insert(claim: _Claim) -> None:
    """The claim's first pending message was refused: a duplicate of a stored one, or its seq is taken."""
    failed = claim.pending[0]
    original = await Message.find_one(
        {"conversation_id": str(claim.conversation.id), "sender_id": failed.command.sender_id,
         "client_msg_id": failed.command.client_msg_id}
    )  # fmt: skip
    if original is not None:  # stored before: the failed slot is still free for the next one
        failed.message, failed.created = original, False
        claim.pending = claim.pending[1:]
    else:
        claim.collisions, claim.base = claim.collisions + 1, None


async def _max_seq(conversation_id: str) -> int:
    top = await Message.find({"conversation_id": conversation_id}).sort([("seq", -1)]).limit(1).to_list()
    return top[0].seq if top else 0


async def _touch(claims: list[_Claim]) -> None:
    """Record each conversation's newest seq and the activity time (only ever forward), in one round trip."""
    now = to_ms(utcnow())
    updates = [
        UpdateOne({"_id": claim.conversation.id, "last_seq": {"$lt": claim.newest}},
                  {"$set": {"last_seq": claim.newest, "updated_ms": now}})
        for claim in claims if claim.newest
    ]  # fmt: skip
    if updates:
        await Conversation.get_pymongo_collection().bulk_write(updates, ordered=False)


async def _find_conversation(conversation_id: str) -> Conversation | None:
    if not topics.is_object_id(conversation_id):
        return None
    return await Conversation.get(PydanticObjectId(conversation_id))


async def _find_message(message_id: str) -> Message | None:
    if not topics.is_object_id(message_id):
        return None
    return await Message.get(PydanticObjectId(message_id))


async def get_message_for_member(message_id: str, user_id: str) -> tuple[Message, Conversation]:
    """The message and its conversation if `user_id` is a member; NotFound otherwise."""
    message = await _find_message(message_id)
    conversation = await _find_conversation(message.conversation_id) if message else None
    if message is None or conversation is None or user_id not in conversation.participant_ids:
        raise NotFound("message not found")
    return message, conversation


async def edit_message(user: User, message_id: str, body: str, edit_window_seconds: int) -> tuple[Message, Conversation]:
    """Change the body of one's own message within the edit window."""
    message, conversation = await get_message_for_member(message_id, str(user.id))
    if message.sender_id != str(user.id):
        raise Forbidden("only the author may edit a message")
    if message.deleted:
        raise Conflict("the message was deleted")
    if utcnow() - message.created_at > timedelta(seconds=edit_window_seconds):
        raise Forbidden("the edit window has passed")
    validate_body(body, bool(message.attachment_ids))
    message.body, message.edited_at = body, utcnow()
    await message.replace()
    return message, conversation


async def delete_message(user: User, message_id: str) -> tuple[Message, Conversation]:
    """Delete for everyone (the author, or an admin): the message stays as a tombstone."""
    message = await _find_message(message_id)
    conversation = await _find_conversation(message.conversation_id) if message else None
    is_admin = user.role is Role.ADMIN
    if message is None or conversation is None or (str(user.id) not in conversation.participant_ids and not is_admin):
        raise NotFound("message not found")
    if message.sender_id != str(user.id) and not is_admin:
        raise Forbidden("only the author or an admin may delete a message")
    if not message.deleted:
        message.body, message.attachment_ids, message.attachments, message.deleted = "", [], [], True
        message.edited_at = utcnow()
        await message.replace()
    return message, conversation


class CursorPositions:
    """Where paged-through messages sit: message id -> (conversation id, seq), at most `size` of them.

    A message keeps its conversation and seq forever (deletes leave tombstones), so
    any process may remember them: the `before` cursor of the next page is the last
    message of the page just served, and needs no lookup.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._known: dict[str, tuple[str, int]] = {}

    def remember(self, page: list[StoredMessage]) -> None:
        """Note the position of every message of a page (the oldest entries make room)."""
        for stored in page:
            self._known[str(stored["_id"])] = (stored["conversation_id"], stored["seq"])
        while len(self._known) > self._size:
            del self._known[next(iter(self._known))]

    async def find(self, message_id: str) -> tuple[str, int] | None:
        """The message's (conversation id, seq), from memory or the store; None if there is no such message."""
        known = self._known.get(message_id)
        if known is None and (message := await _find_message(message_id)) is not None:
            known = (message.conversation_id, message.seq)
        return known


_positions = CursorPositions(CURSOR_POSITIONS)


async def history(
    conversation: Conversation, before: str | None, after_seq: int | None, limit: int | None
) -> tuple[list[StoredMessage], str | None]:
    """A page of stored messages: newest first (with `before` cursor), or oldest first after `after_seq`.

    Pages are read as stored documents, not Beanie documents: building 51 of those
    cost ~4 ms of a ~29 ms page (docs/benchmarks.md).
    """
    size = max(1, min(limit or DEFAULT_PAGE, MAX_PAGE))
    conversation_id = str(conversation.id)
    if after_seq is not None:
        return await _stored({"conversation_id": conversation_id, "seq": {"$gt": after_seq}}, 1, size), None
    query: dict[str, object] = {"conversation_id": conversation_id}
    if before is not None:
        position = await _positions.find(before)
        if position is None or position[0] != conversation_id:
            raise InvalidInput("before must be a message of this conversation")
        query["seq"] = {"$lt": position[1]}
    page = await _stored(query, -1, size + 1)
    _positions.remember(page)
    next_before = str(page[size - 1]["_id"]) if len(page) > size else None
    return page[:size], next_before


async def _stored(query: dict[str, object], order: int, limit: int) -> list[StoredMessage]:
    cursor = Message.get_pymongo_collection().find(query).sort([("seq", order)]).limit(limit)
    return await cursor.to_list()


async def read_states(conversation_id: str) -> dict[str, int]:
    """Each member's read watermark (user id -> last read seq)."""
    states = await ReadState.find({"conversation_id": conversation_id}).to_list()
    return {state.user_id: state.last_read_seq for state in states}


def message_out(message: Message, watermarks: dict[str, int]) -> MessageOut:
    """The contract's message view; `read_by` lists members (not the sender) whose watermark reached it."""
    return stored_message_out(message.stored_form(), watermarks)


def stored_message_out(stored: StoredMessage, watermarks: dict[str, int]) -> MessageOut:
    """`message_out` of a message as stored (`Message.stored_form()` or a raw document of `messages`)."""
    seq, sender_id = stored["seq"], stored["sender_id"]
    return MessageOut(
        id=str(stored["_id"]),
        conversation_id=stored["conversation_id"],
        seq=seq,
        sender_id=None if sender_id == SYSTEM_SENDER else sender_id,
        client_msg_id=stored["client_msg_id"],
        kind=stored["kind"],
        body=stored["body"],
        attachments=[attachments.attachment_out(AttachmentRef.model_validate(ref)) for ref in stored.get("attachments", ())],
        reply_to=stored.get("reply_to"),
        created_at=iso(stored["created_at"]) or "",
        edited_at=iso(stored.get("edited_at")),
        deleted=stored.get("deleted", False),
        read_by=sorted(uid for uid, read in watermarks.items() if read >= seq and uid != sender_id),
    )


async def last_message(conversation: Conversation) -> MessageOut | None:
    """The newest message of the conversation, if any."""
    conversation_id = str(conversation.id)
    top = await _stored({"conversation_id": conversation_id}, -1, 1)
    return stored_message_out(top[0], await read_states(conversation_id)) if top else None


async def unread_count(conversation: Conversation, user_id: str) -> int:
    """Messages of others after the user's watermark, deleted ones excluded; at most UNREAD_COUNT_CAP."""
    conversation_id = str(conversation.id)
    state = await ReadState.get(f"{conversation_id}:{user_id}")
    return await Message.find(
        {"conversation_id": conversation_id, "seq": {"$gt": state.last_read_seq if state else 0},
         "sender_id": {"$ne": user_id}, "deleted": {"$ne": True}}
    ).limit(UNREAD_COUNT_CAP).count()  # fmt: skip


@dataclass(frozen=True, slots=True)
class Receipt:
    """A watermark that moved forward."""

    conversation_id: str
    user_id: str
    message_id: str
    seq: int
    at: str


async def mark_read(conversation: Conversation, user_id: str, message_id: str) -> tuple[int, Receipt | None]:
    """Move the user's watermark up to `message_id`; (unread count, the receipt if it moved)."""
    conversation_id = str(conversation.id)
    message = await _find_message(message_id)
    if message is None or message.conversation_id != conversation_id:
        raise NotFound("message not found")
    now = utcnow()
    try:
        result = await ReadState.get_pymongo_collection().update_one(
            {"_id": f"{conversation_id}:{user_id}", "last_read_seq": {"$lt": message.seq}},
            {"$set": {"conversation_id": conversation_id, "user_id": user_id, "last_read_seq": message.seq,
                      "message_id": message_id, "at_ms": to_ms(now)}},
            upsert=True,
        )  # fmt: skip
        moved = result.modified_count > 0 or result.upserted_id is not None
    except DuplicateKeyError:  # the watermark is already further on
        moved = False
    receipt = Receipt(conversation_id, user_id, message_id, message.seq, iso(now) or "") if moved else None
    return await unread_count(conversation, user_id), receipt
