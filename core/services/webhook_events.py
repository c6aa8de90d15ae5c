"""Recording webhook events from the deliveries a change is about to publish.

The bridge and the API call `record` with the planned Delivery list before they
publish it (so the MQTT request is acknowledged, or the REST call answered, only
after its events are in the store). Each event gets a deterministic id
(`message.created:<message id>`...): recording the same change again, as a
redelivered MQTT request or a retried REST call does, inserts nothing new, and
the redelivery heals a crash between storing a change and recording its event.

Events are ordered within a `stream` (a conversation, a ticket) by `seq`, `rank`
and `recorded_ms`: a conversation's `conversation.created` first, each message's
`message.created` at its seq, its edits and deletion right after it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import msgspec
from pymongo.errors import BulkWriteError

from core import topics
from core.clock import to_ms, utcnow
from core.documents import WebhookEvent
from core.events import Delivery

RETENTION = timedelta(days=30)  # like Stripe's event retention: replay reaches this far back
WEBHOOK_TYPES = frozenset({
    "message.created", "message.updated", "message.deleted", "conversation.created", "conversation.updated",
    "ticket.created", "ticket.updated",
})  # fmt: skip
_TYPE_PREFIX = b'{"type":"'
_INBOX_PREFIX, _INBOX_SUFFIX = topics.user_inbox(""), "/inbox"
_USERS_PREFIX = _INBOX_PREFIX[: -len(_INBOX_SUFFIX)]
DUPLICATE_KEY = 11000


def _type_of(payload: bytes) -> str | None:
    if not payload.startswith(_TYPE_PREFIX):
        return None
    end = payload.find(b'"', len(_TYPE_PREFIX))
    kind = payload[len(_TYPE_PREFIX) : end].decode("ascii", "replace") if end > 0 else ""
    return kind if kind in WEBHOOK_TYPES else None


def _digest(value: Any) -> str:
    return hashlib.sha256(msgspec.json.encode(value)).hexdigest()[:16]


def plan(deliveries: Iterable[Delivery]) -> list[dict[str, Any]]:
    """The webhook events (store documents) described by a planned Delivery list; each once.

    A `conversation.created` beside a `conversation.updated` of the same conversation
    announces members added to an existing conversation: only the update is an event.
    """
    recipients: dict[bytes, list[str]] = {}
    for delivery in deliveries:
        if _type_of(delivery.payload) is None:
            continue
        users = recipients.setdefault(delivery.payload, [])
        topic = delivery.topic
        if topic.startswith(_USERS_PREFIX) and topic.endswith(_INBOX_SUFFIX):
            users.append(topic[len(_USERS_PREFIX) : -len(_INBOX_SUFFIX)])
    decoded = [(msgspec.json.decode(payload), list(dict.fromkeys(users))) for payload, users in recipients.items()]
    updated = {e["conversation"]["id"] for e, _ in decoded if e["type"] == "conversation.updated"}
    now = utcnow()
    recorded_ms, expires_at = to_ms(now), now + RETENTION
    planned: dict[str, dict[str, Any]] = {}
    for event, users in decoded:
        kind = event["type"]
        if kind == "conversation.created" and event["conversation"]["id"] in updated:
            continue
        document = _describe(kind, event, users)
        document.update(type=kind, recorded_ms=recorded_ms, fanned=0, expires_at=expires_at)
        planned.setdefault(document["_id"], document)
    return list(planned.values())


def _describe(kind: str, event: dict[str, Any], users: list[str]) -> dict[str, Any]:
    """Id, stream, order and data of one event."""
    if kind.startswith("message."):
        message = event["message"]
        suffix = f":{message['edited_at']}" if kind == "message.updated" else ""
        return {
            "_id": f"{kind}:{message['id']}{suffix}", "stream": f"conversation:{message['conversation_id']}",
            "seq": message["seq"], "rank": 1 if kind == "message.created" else 2,
            "data": msgspec.json.encode(message).decode(), "member_ids": users,
        }  # fmt: skip
    if kind.startswith("conversation."):
        conversation = event["conversation"]
        last = conversation.get("last_message") or {}
        created = kind == "conversation.created"
        return {
            "_id": f"{kind}:{conversation['id']}" + ("" if created else f":{_digest(conversation)}"),
            "stream": f"conversation:{conversation['id']}", "seq": 0 if created else last.get("seq", 0),
            "rank": 0 if created else 2, "data": msgspec.json.encode(conversation).decode(),
            "member_ids": list(conversation["participant_ids"]),
        }  # fmt: skip
    ticket, change = event["ticket"], event.get("change", {})
    created = kind == "ticket.created"
    return {
        "_id": f"{kind}:{ticket['id']}" + ("" if created else f":{_digest([ticket, change])}"),
        "stream": f"ticket:{ticket['id']}", "seq": len(ticket["history"]), "rank": 0 if created else 1,
        "data": msgspec.json.encode({**ticket, "change": change}).decode(),
        "member_ids": [uid for uid in (ticket["customer_id"], ticket["assignee_id"]) if uid],
    }  # fmt: skip


async def record(deliveries: Iterable[Delivery]) -> int:
    """Store the events of these deliveries (already recorded ones are skipped); how many were planned.

    Raises PyMongoError when the store fails: the caller retries, or reports the loss.
    """
    documents = plan(deliveries)
    if not documents:
        return 0
    try:
        await WebhookEvent.get_pymongo_collection().insert_many(documents, ordered=False)
    except BulkWriteError as exc:
        if any(error.get("code") != DUPLICATE_KEY for error in exc.details.get("writeErrors", [])):
            raise
    return len(documents)
