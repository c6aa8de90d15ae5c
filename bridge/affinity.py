"""Conversation affinity: which of N bridge workers handles an outbox request (issue 26, item 6).

With `MQCHAT_BRIDGE_WORKERS` = N > 1 every worker gets every outbox request (on
Mosquitto a plain subscription in its own persistent session, on NATS a JetStream
consumer of its own: bridge.queue_layout) and handles only its share: worker i
(`worker-<i+1>`) takes the requests whose key hashes to i.
The key is what the request orders against:

- `send`, `read`, `typing`: the conversation. One worker numbers a conversation's
  messages, so `seq` never collides between workers, follows the order of arrival,
  and the worker's conversation cache stays the truth for its conversations.
- `edit`, `delete`, `react`: the message. Its edits, its deletion and its reaction
  summaries are applied and published in arrival order by one worker.
- a request whose key cannot be read (malformed, too large, unknown action): the
  sender. Exactly one worker refuses it.

The hash is CRC-32 of the key, stable across processes and runs (Python's `hash` of
a str is salted per process). The share is peeked from the payload with a decoder
that reads two fields and skips the rest; the worker that owns the request decodes
and validates it fully. Requests of other workers are acknowledged with the batch.
"""

from __future__ import annotations

import zlib

import msgspec

from core.decoding import UNDECODABLE
from core.settings import Settings

MAX_PEEKED_BYTES = 64 * 1024  # bridge.pipeline.MAX_REQUEST_BYTES: larger requests are refused by the sender's worker
BY_CONVERSATION = frozenset({"send", "read", "typing"})
BY_MESSAGE = frozenset({"edit", "delete", "react"})


class _Keys(msgspec.Struct):
    """The two fields a share is decided by; every other field is skipped unread."""

    conversation_id: object = None
    message_id: object = None


_peek = msgspec.json.Decoder(_Keys)


def request_key(user_id: str, action: str, raw: bytes) -> str:
    """What the request is ordered against: its conversation, its message, or else its sender."""
    if len(raw) <= MAX_PEEKED_BYTES and (action in BY_CONVERSATION or action in BY_MESSAGE):
        try:
            keys = _peek.decode(raw)
        except UNDECODABLE:
            return user_id
        key = keys.conversation_id if action in BY_CONVERSATION else keys.message_id
        if isinstance(key, str):
            return key
    return user_id


def worker_of(key: str, workers: int) -> int:
    """The index (0-based) of the worker that handles `key`; the same in every process and run."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % workers


def worker_index(settings: Settings) -> int:
    """This worker's index (0-based) among `MQCHAT_BRIDGE_WORKERS`, from `MQCHAT_BRIDGE_INSTANCE` (`worker-<index+1>`)."""
    number = settings.bridge_instance.removeprefix("worker-")
    if not number.isdigit() or not 1 <= int(number) <= settings.bridge_workers:
        raise ValueError(
            f"MQCHAT_BRIDGE_INSTANCE must be worker-1 … worker-{settings.bridge_workers} "
            f"with MQCHAT_BRIDGE_WORKERS={settings.bridge_workers}, not {settings.bridge_instance!r}"
        )
    return int(number) - 1


class Share:
    """Worker `index` of `workers`: decides which requests this worker handles."""

    def __init__(self, index: int, workers: int) -> None:
        if not 0 <= index < workers:
            raise ValueError(f"worker index {index} outside 0..{workers - 1}")
        self.index, self.workers = index, workers
        self._backlog_workers = workers  # over how many workers the session's backlog is split (bridge.layout)

    @classmethod
    def of(cls, settings: Settings) -> Share | None:
        """This worker's share, or None when it handles every request it gets (one worker, or the embedded broker)."""
        if settings.broker == "embedded" or settings.bridge_workers == 1:
            return None
        return cls(worker_index(settings), settings.bridge_workers)

    def queued_under(self, workers: int) -> None:
        """The session's backlog was queued while `workers` workers ran (bridge.layout): until it is served
        (`settled`), it is split over the workers both counts have, every one of whose sessions holds all of it."""
        self._backlog_workers = min(workers, self.workers)

    def settled(self) -> None:
        """The backlog of the session's first connection is served: what follows was queued under this count."""
        self._backlog_workers = self.workers

    def owns(self, user_id: str, action: str, raw: bytes, backlog: bool = False) -> bool:
        """Whether this worker handles the request `user_id` published to their outbox `action`
        (`backlog`: it arrived before the connection's fence, bridge.pipeline)."""
        workers = self._backlog_workers if backlog else self.workers
        return worker_of(request_key(user_id, action, raw), workers) == self.index
