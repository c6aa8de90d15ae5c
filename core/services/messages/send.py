"""Sending: a batch of messages stored in one insert, idempotent, numbered by gap-free `seq` claims.

Sequence numbers are claimed by inserting: a unique index on (conversation_id, seq)
means a number exists only together with its message, so neither a crash nor a
refused duplicate can leave a gap. Idempotency is the unique index on
(conversation_id, sender_id, client_msg_id).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from beanie import PydanticObjectId
from bson import ObjectId
from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from core import metrics
from core.clock import to_ms, utcnow
from core.documents import SYSTEM_SENDER, AttachmentRef, Conversation, Message, Ticket
from core.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from core.services import attachments, blocks
from core.services.conversation_cache import ConversationCache, Uncached
from core.services.lookup import get_by_id
from core.services.messages.body import validate_body

MAX_CLAIM_ATTEMPTS = 20


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
    quoted: Message | None = None  # the message the command replies to, as read when checking it


async def send_many(commands: list[SendCommand], conversations: ConversationCache | None = None) -> list[SendResult]:
    """Store a batch of messages; results in the order of `commands`. Per-conversation order is kept.

    The whole batch costs two store round trips however many conversations it spans:
    one ordered insert of every new message, one update of the conversations' `last_seq`.
    A long-running caller (the bridge) passes its `conversations` cache: no store
    round trip per conversation and batch for the conversation, its blocks or its
    ticket's status, and the numbering continues from the cached `last_seq`.
    """
    results = [SendResult(command) for command in commands]
    by_conversation: dict[str, list[SendResult]] = defaultdict(list)
    for result in results:
        by_conversation[result.command.conversation_id].append(result)
    source = conversations if conversations is not None else Uncached()
    claims = await asyncio.gather(*(_claim(source, cid, batch) for cid, batch in by_conversation.items()))
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


async def _claim(conversations: ConversationCache | Uncached, conversation_id: str, batch: list[SendResult]) -> _Claim | None:
    """Check a conversation's requests; its claim on the next numbers, or None if nothing is to be stored.

    What the rules derive from the conversation (blocks, a closed ticket) comes with it from
    `conversations`: the bridge's cache asks the store once, not once per batch."""
    conversation = await conversations.get(conversation_id)
    refused: dict[str, str] = {}
    closed: int | None = None
    if conversation is not None:
        refused = await conversations.derived(conversation, blocks.refused_writers)
        closed = await conversations.derived(conversation, _closed_ticket)
    accepted: list[SendResult] = []
    firsts: dict[tuple[str, str], SendResult] = {}
    for result in batch:
        try:
            shown, result.quoted = await _check_send(conversation, result.command, closed)
            if result.command.sender_id in refused:
                raise Forbidden(refused[result.command.sender_id])
        except DomainError as error:
            result.error = error
            continue
        result.conversation = conversation
        accepted.append(result)
        # Repeats inside the batch share one message; repeats of stored messages (redelivery,
        # retry, REST + MQTT) are found by the idempotency index when inserting.
        key = (result.command.sender_id, result.command.client_msg_id)
        if key not in firsts:
            result.message, result.created = _new_message(result.command, shown, result.quoted), True
            firsts[key] = result
    if not accepted or conversation is None:
        return None
    return _Claim(conversation, accepted, list(firsts.values()), await _numbering_base(conversations, conversation))


async def _numbering_base(conversations: ConversationCache | Uncached, conversation: Conversation) -> int:
    """The newest seq known to be taken. The conversation's `last_seq` is written after the insert, so it lags
    what a writer that died in between (a SIGKILLed bridge worker) stored: a kept conversation (the bridge's
    cache) is also checked against its stored top, once per load, so that the restarted worker numbers on
    without colliding; a one-off caller trusts the record and retries on a collision (`_insert_numbered`)."""
    if isinstance(conversations, Uncached):
        return conversation.last_seq
    return max(conversation.last_seq, await conversations.derived(conversation, _stored_top))


async def _stored_top(conversation: Conversation) -> int:
    return await _max_seq(str(conversation.id))


async def _closed_ticket(conversation: Conversation) -> int | None:
    """The number of the closed ticket whose conversation this is (it takes no more messages but the system's);
    None for any other. Closing is final, and announced (core.services.tickets) so caches forget the answer."""
    if conversation.ticket_id is None:
        return None
    closed = await Ticket.get_pymongo_collection().find_one(
        {"_id": ObjectId(conversation.ticket_id), "status": "closed"}, projection={"number": 1}
    )
    return None if closed is None else int(closed["number"])


async def _check_send(
    conversation: Conversation | None, command: SendCommand, closed: int | None
) -> tuple[list[AttachmentRef], Message | None]:
    """Refuse what may not be sent (`closed`: the number of the closed ticket whose conversation this is);
    the attachments the message will show and the message it quotes."""
    is_system = command.sender_id == SYSTEM_SENDER
    if conversation is None or (not is_system and command.sender_id not in conversation.participant_ids):
        raise NotFound("conversation not found")
    if closed is not None and not is_system:
        raise Conflict(f"ticket #{closed} is closed: open a new ticket to continue")
    validate_body(command.body, bool(command.attachment_ids))
    quoted = None
    if command.reply_to is not None:
        quoted = await get_by_id(Message, command.reply_to)
        if quoted is None or quoted.conversation_id != command.conversation_id:
            raise InvalidInput("reply_to must be a message of the same conversation")
    shown = await attachments.owned_by(command.sender_id, command.attachment_ids) if command.attachment_ids else []
    return shown, quoted


def _new_message(command: SendCommand, shown: list[AttachmentRef], quoted: Message | None) -> Message:
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
        reply_to_seq=quoted.seq if quoted is not None else None,
        reacted=0,
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
    """The claim's first pending message was refused: a duplicate of a stored one, or its seq is taken.

    A duplicate's originals are looked up for every pending message at once: a batch redelivered after a node's
    death holds hundreds (NATS workers), and one insert round trip per duplicate made such a batch outlast the
    request queue's 10 s redelivery (redelivered again while it was stored, for a minute) and the other worker's
    inserts into the same conversation exhaust MAX_CLAIM_ATTEMPTS (199 and 296 requests refused, two runs)."""
    originals = await _stored_originals(claim)
    first = claim.pending[0].command
    if (first.sender_id, first.client_msg_id) not in originals:
        claim.collisions, claim.base = claim.collisions + 1, None
        metrics.SEQ_COLLISIONS.inc()
        return
    still: list[SendResult] = []  # stored before: their slots are still free for the next ones
    for result in claim.pending:
        original = originals.get((result.command.sender_id, result.command.client_msg_id))
        if original is None:
            still.append(result)
        else:
            result.message, result.created = original, False
    claim.pending = still


async def _stored_originals(claim: _Claim) -> dict[tuple[str, str], Message]:
    """The stored messages of the claim's pending requests, by (sender, client_msg_id)."""
    wanted = {(result.command.sender_id, result.command.client_msg_id) for result in claim.pending}
    found = await Message.find(
        {"conversation_id": str(claim.conversation.id), "client_msg_id": {"$in": sorted({cmid for _, cmid in wanted})}}
    ).to_list()
    return {(m.sender_id, m.client_msg_id): m for m in found if (m.sender_id, m.client_msg_id) in wanted}


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

