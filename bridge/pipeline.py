"""One batch of outbox requests: decode, authorize + persist (core.services.chat), plan events.

With several workers each worker gets every request and handles its
share only (bridge.affinity: by conversation, or by message); the others' are
acknowledged with the batch. Requests are handled in arrival order; consecutive
sends are stored together in
one batch (one insert for the whole batch), from conversations kept in a cache
that membership notices (`chat/system/membership`) invalidate. A resent request
whose message is already stored is announced to every member again unless this
worker published that message on its current broker connection (the events of a
bridge killed after storing may never have gone out); with the request queue (NATS),
unless the queue handed it out for the first time. A refused request
becomes an `error` event on the sender's inbox. A store failure raises
StoreUnavailable so the worker retries the whole batch without acknowledging it
(idempotent).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, MutableSet
from dataclasses import dataclass
from typing import Protocol

import aiomqtt
import msgspec
from cachetools import TTLCache
from pymongo.errors import DuplicateKeyError, PyMongoError

from bridge.affinity import Share
from bridge.presence import PresenceTracker
from core import events, metrics, topics
from core.bounded import LRUSet
from core.decoding import UNDECODABLE
from core.documents import User
from core.errors import DomainError, InvalidInput, PayloadTooLarge, RateLimited
from core.events import Delivery
from core.payloads import (
    OutboxDelete,
    OutboxEdit,
    OutboxPresence,
    OutboxReact,
    OutboxRead,
    OutboxSend,
    OutboxTyping,
)
from core.ratelimit import TokenBucket
from core.services import chat
from core.services.conversation_cache import ConversationCache
from core.services.messages import SendCommand
from core.services.users import find_user
from core.settings import Settings

log = logging.getLogger("mqchat.bridge.pipeline")

MAX_REQUEST_BYTES = 64 * 1024
TYPING_REPEAT = 3.0
_decoders = {
    "send": msgspec.json.Decoder(OutboxSend),
    "edit": msgspec.json.Decoder(OutboxEdit),
    "delete": msgspec.json.Decoder(OutboxDelete),
    "read": msgspec.json.Decoder(OutboxRead),
    "typing": msgspec.json.Decoder(OutboxTyping),
    "react": msgspec.json.Decoder(OutboxReact),
}
_presence_decoder = msgspec.json.Decoder(OutboxPresence)


class Queued(Protocol):
    """What the request queue knows about each delivery it handed out (bridge.request_queue)."""

    def redelivered(self, message: aiomqtt.Message) -> bool:
        """Handed out before: the worker that had it may have stored it and died before its events went out."""
        ...

    def replayed(self, message: aiomqtt.Message) -> bool:
        """Redelivered, or waiting since before this worker began: exempt from the rate limit."""
        ...

    def handled_before(self, message: aiomqtt.Message, user_id: str, action: str, raw: bytes) -> bool:
        """Handled under the worker count before a change: skipped."""
        ...


class StoreUnavailable(Exception):
    """The store failed; the batch must be retried, not acknowledged."""


@dataclass(slots=True)
class Request:
    """A decoded outbox request."""

    user_id: str
    action: str
    body: object


class Pipeline:
    """Turns a batch of outbox deliveries into stored changes and the deliveries to publish."""

    def __init__(
        self, settings: Settings, on_presence_change: Callable[[], None],
        on_messages_written: Callable[[int], None] = lambda batch_size: None,
    ) -> None:  # fmt: skip
        """`on_messages_written(batch_size)`: after a batch that stored, edited or deleted messages (the search indexer)."""
        self._edit_window = settings.edit_window_seconds
        self._max_reactions = settings.reactions_per_message
        self.presence = PresenceTracker(on_presence_change, settings.presence_users)
        self.conversations = ConversationCache(settings.conversation_cache_ttl, settings.conversation_cache_size)
        self.share = Share.of(settings)  # None: this worker handles every request it gets
        self._requests = TokenBucket(settings.send_rate, settings.send_burst, max_keys=settings.rate_limit_keys)
        # (user, conversation) -> (typing, when): only the last TYPING_REPEAT seconds matter
        self._typing: TTLCache[tuple[str, str], tuple[bool, float]] = TTLCache(settings.typing_keys, TYPING_REPEAT)
        # message ids published on the current connection; forgetting one costs recipients a duplicate at most
        self._announced = LRUSet(settings.announced_ids)
        self.fence_topic = topics.bridge_fence(settings.bridge_instance)
        self._fence: bytes | None = None  # while set, this connection's backlog is being replayed
        self._outcomes: list[tuple[str, str]] = []  # (action, outcome) of the batch, counted once it is done
        self._on_messages_written = on_messages_written
        self._wrote_messages = False  # in the batch being processed

    def reconnected(self) -> bytes:
        """A new broker connection; returns the fence to publish on `fence_topic` once subscribed to it.

        The broker delivers a session's queue in order, so what arrives before the fence
        was queued while this worker was away (or in the instant since it connected):
        users sent it then, at a rate the bridge could not see, and replaying it at once
        must not count against their rate limit. The broker's queue bounds it.
        """
        self.conversations.clear()  # membership notices may have been missed
        self._announced.clear()  # events handed to the old connection may never have reached the broker
        self._fence = secrets.token_hex(8).encode()
        return self._fence

    def end_backlog(self, fence: bytes) -> None:
        """`fence` came back (or could not be raised): requests count against the rate limit again."""
        if fence == self._fence:
            self._fence = None
            if self.share is not None:
                self.share.settled()

    async def process(self, batch: list[aiomqtt.Message], queue: Queued | None = None) -> list[Delivery]:
        """Handle a batch in order; returns everything to publish. Raises StoreUnavailable.

        With a work `queue` (NATS), what it says about each request replaces the fence and the
        announced ids: a duplicate is announced to every member again only when redelivered."""
        self._outcomes.clear()
        self._wrote_messages = False
        try:
            out = await self._process(batch, queue)
        except BaseException:
            self._announced.clear()  # what this batch announced will not be published
            raise
        if self._wrote_messages:
            self._on_messages_written(len(batch))
        for action, outcome in self._outcomes:  # a batch retried after a store failure is counted once
            metrics.OUTBOX_REQUESTS.labels(metrics.outbox_action(action), outcome).inc()
        return out

    def _counted(self, action: str, outcome: str) -> None:
        self._outcomes.append((action, outcome))

    async def _process(self, batch: list[aiomqtt.Message], queue: Queued | None) -> list[Delivery]:
        out: list[Delivery] = []
        sends: list[SendCommand] = []
        announced = self._announced if queue is None else None  # what the consecutive `sends` are checked against
        try:
            for message in batch:
                if message.topic.value == self.fence_topic:
                    self.end_backlog(bytes(message.payload or b""))
                    continue
                if message.topic.value == topics.MEMBERSHIP_CONTROL:
                    if not self.conversations.apply_notice(bytes(message.payload or b"")):
                        log.warning("bridge.bad_membership_notice")
                    continue
                parsed = topics.parse(message.topic.value)
                if parsed is None:
                    log.warning("bridge.unroutable", extra={"topic": message.topic.value})
                    continue
                if parsed.kind == "device_presence":
                    out += await self._presence(parsed.owner, parsed.rest, bytes(message.payload or b""), message.retain)
                    continue
                raw = bytes(message.payload or b"")
                if self.share is not None and not self.share.owns(parsed.owner, parsed.rest, raw, self._fence is not None):
                    continue  # another worker's (bridge.affinity); acknowledged with the batch
                if queue is not None and queue.handled_before(message, parsed.owner, parsed.rest, raw):
                    continue  # by another worker, before the worker count changed (bridge.queue_layout)
                try:
                    if queue is None or not queue.replayed(message):
                        self._check_rate(parsed.owner)
                    request = self._decode(parsed.owner, parsed.rest, raw)
                except RateLimited as error:  # refused unread: reading a flood's payloads would defeat the limit
                    out += self._refused(parsed.owner, parsed.rest, error)
                    continue
                except DomainError as error:
                    out += self._refused(parsed.owner, parsed.rest, error, _client_msg_id(raw))
                    continue
                if self._collapsed(request):
                    self._counted(request.action, "collapsed")
                    continue
                if request.action == "send":
                    if queue is not None:  # a redelivered run of sends is checked against nothing: announced to all
                        wanted = set() if queue.redelivered(message) else None
                        if (wanted is None) != (announced is None):
                            out += await self._flush(sends, announced)
                            announced = wanted
                    sends.append(_send_command(request))
                    continue
                out += await self._flush(sends, announced)
                out += await self._handle(request)
            out += await self._flush(sends, announced)
        except DuplicateKeyError:
            raise  # handled inside the services; reaching here is a bug, not an outage
        except (PyMongoError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc
        return out

    def _refused(self, user_id: str, action: str, error: DomainError, client_msg_id: str | None = None) -> list[Delivery]:
        """The one place a refusal becomes an `error` event to the sender's inbox; counted and logged."""
        limited = isinstance(error, RateLimited)
        self._counted(action, "rate_limited" if limited else "refused")
        log.info("bridge.rate_limited" if limited else "bridge.refused", extra={"user_id": user_id, "action": action, "code": error.code})
        return events.error_event(user_id, action, error.code, error.message, client_msg_id)

    def _check_rate(self, user_id: str) -> None:
        """Each user may make `MQCHAT_SEND_RATE` requests per second (bursts of `MQCHAT_SEND_BURST`); RateLimited beyond.

        A resumed session's backlog is exempt (see `reconnected`)."""
        if self._fence is not None:
            return
        wait = self._requests.take(user_id)
        if wait is not None:
            raise RateLimited(f"too many requests, retry in {wait:.1f} s", wait)

    def _collapsed(self, request: Request) -> bool:
        """A typing flood becomes one indicator per TYPING_REPEAT seconds (changes always pass)."""
        if not isinstance(request.body, OutboxTyping):
            return False
        key, now = (request.user_id, request.body.conversation_id), time.monotonic()
        last = self._typing.get(key)
        if last is not None and last[0] == request.body.typing and now - last[1] < TYPING_REPEAT:
            return True
        self._typing[key] = (request.body.typing, now)
        return False

    def _decode(self, user_id: str, action: str, raw: bytes) -> Request:
        """The request, or the DomainError that refuses it (unknown action, too large, malformed)."""
        decoder = _decoders.get(action)
        if decoder is None:
            raise DomainError(f"unknown action {action!r}")
        if len(raw) > MAX_REQUEST_BYTES:
            raise PayloadTooLarge(f"request is larger than {MAX_REQUEST_BYTES} bytes")
        try:
            return Request(user_id, action, decoder.decode(raw))
        except UNDECODABLE as exc:
            raise InvalidInput(str(exc)) from None

    async def _flush(self, sends: list[SendCommand], announced: MutableSet[str] | None) -> list[Delivery]:
        if not sends:
            return []
        out: list[Delivery] = []
        for sent in await chat.send(sends, self.conversations, announced):
            error, command = sent.result.error, sent.result.command
            if error is not None:
                out += self._refused(command.sender_id, "send", error, command.client_msg_id)
            else:
                self._counted("send", "accepted" if sent.result.created else "duplicate")
                self._wrote_messages |= sent.result.created
                if sent.message is not None:
                    log.debug("bridge.stored", extra={
                        "client_msg_id": command.client_msg_id, "message_id": sent.message.id,
                        "conversation_id": command.conversation_id, "duplicate": not sent.result.created,
                    })  # fmt: skip
            out += sent.deliveries
        sends.clear()
        return out

    async def _handle(self, request: Request) -> list[Delivery]:
        try:
            deliveries = await self._apply(request)
        except DomainError as error:
            return self._refused(request.user_id, request.action, error)
        self._counted(request.action, "accepted")
        self._wrote_messages |= request.action in ("edit", "delete")
        return deliveries

    async def _apply(self, request: Request) -> list[Delivery]:
        body = request.body
        match body:
            case OutboxEdit():
                user = await _active_user(request.user_id)
                return (await chat.edit(user, body.message_id, body.body, self._edit_window)).deliveries
            case OutboxDelete():
                return (await chat.delete(await _active_user(request.user_id), body.message_id)).deliveries
            case OutboxRead():
                return (await chat.read(request.user_id, body.conversation_id, body.message_id)).deliveries
            case OutboxTyping():
                return await chat.typing(request.user_id, body.conversation_id, body.typing)
            case OutboxReact():
                reacted = await chat.react(request.user_id, body.message_id, body.emoji, body.on, self._max_reactions)
                return reacted.deliveries
        return []

    async def _presence(self, user_id: str, client_id: str, raw: bytes, replayed: bool) -> list[Delivery]:
        try:
            status = _presence_decoder.decode(raw).status if raw else "offline"
        except UNDECODABLE as exc:
            return self._refused(user_id, "presence", InvalidInput(str(exc)))
        self._counted("presence", "accepted")
        return await self.presence.device_changed(user_id, client_id, status, replayed)


async def _active_user(user_id: str) -> User:
    user = await find_user(user_id)
    if user is None or not user.active:
        raise DomainError("unknown user")
    return user


def _send_command(request: Request) -> SendCommand:
    body = request.body
    assert isinstance(body, OutboxSend)
    return SendCommand(
        sender_id=request.user_id,
        conversation_id=body.conversation_id,
        client_msg_id=body.client_msg_id,
        body=body.body,
        kind=body.kind,
        attachment_ids=list(body.attachment_ids),
        reply_to=body.reply_to,
    )


def _client_msg_id(raw: bytes) -> str | None:
    """The request's client_msg_id if it can be read at all, for the error event."""
    try:
        value = msgspec.json.decode(raw[:MAX_REQUEST_BYTES])
    except UNDECODABLE:
        return None
    candidate = value.get("client_msg_id") if isinstance(value, dict) else None
    return candidate if isinstance(candidate, str) and len(candidate) <= 128 else None
