"""Which bridge worker handles an outbox request (bridge.affinity), and that each worker's pipeline handles its
share only: checked without servers. The workers themselves: tests/test_bridge_workers.py."""

from __future__ import annotations

import json
from itertools import count

import aiomqtt
import pytest

from bridge.affinity import MAX_PEEKED_BYTES, Share, request_key, worker_of
from bridge.pipeline import Pipeline
from bridge.queue_layout import Layout
from core import topics
from core.settings import Settings

USER = "a" * 24
CONVERSATION = "c" * 24
MESSAGE = "d" * 24


@pytest.mark.parametrize(
    ("action", "payload", "key"),
    [
        ("send", {"conversation_id": CONVERSATION, "client_msg_id": "1", "body": "hi", "attachment_ids": [MESSAGE]}, CONVERSATION),
        ("read", {"message_id": MESSAGE, "conversation_id": CONVERSATION}, CONVERSATION),
        ("typing", {"conversation_id": CONVERSATION, "typing": True}, CONVERSATION),
        ("edit", {"message_id": MESSAGE, "body": "fixed"}, MESSAGE),
        ("delete", {"message_id": MESSAGE}, MESSAGE),
        ("react", {"message_id": MESSAGE, "emoji": "👍", "conversation_id": CONVERSATION}, MESSAGE),
        ("send", {"conversation_id": 7, "client_msg_id": "1", "body": "hi"}, USER),
        ("send", {"conversation_id": {"$ne": None}}, USER),
        ("edit", {"body": "no message"}, USER),
        ("shout", {"conversation_id": CONVERSATION}, USER),
    ],
    ids=["send", "read", "typing", "edit", "delete", "react", "mistyped", "operator", "missing", "unknown-action"],
)
def test_a_request_is_keyed_by_what_it_orders_against(action: str, payload: dict, key: str) -> None:
    assert request_key(USER, action, json.dumps(payload).encode()) == key


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"\xff\xfe", b"[" * 10_000 + b"]" * 10_000, b"null", b'["c"]', b'{"conversation_id": "' + b"c" * MAX_PEEKED_BYTES + b'"}'],
    ids=["not-json", "invalid-utf8", "deep-nesting", "null", "array", "oversized"],
)
def test_what_cannot_be_peeked_goes_to_the_senders_worker(raw: bytes) -> None:
    assert request_key(USER, "send", raw) == USER


def test_the_hash_is_the_same_in_every_process_and_run() -> None:
    """CRC-32, written down: Python's str hash is salted per process, two workers using it would disagree."""
    assert [worker_of(f"{n:024x}", 3) for n in range(12)] == [0, 1, 1, 1, 1, 0, 2, 2, 2, 2, 2, 2]


def settings(**changes: object) -> Settings:
    return Settings().model_copy(update={"broker": "external", "bridge_workers": 2, **changes})


def test_several_workers_on_mosquitto_or_nats_split_the_requests() -> None:
    assert Share.of(settings(bridge_workers=1)) is None
    assert Share.of(settings(broker="embedded")) is None
    for broker in ("external", "nats"):  # on NATS each worker reads every request from a consumer of its own
        second = Share.of(settings(broker=broker, bridge_instance="worker-2"))
        assert second is not None and (second.index, second.workers) == (1, 2)
    for instance in ("worker-3", "worker-0", "bridge", "worker-x"):
        with pytest.raises(ValueError, match="MQCHAT_BRIDGE_INSTANCE"):
            Share.of(settings(bridge_instance=instance))


def test_after_a_change_of_the_worker_count_a_request_is_skipped_only_if_its_old_worker_handled_it() -> None:
    """bridge.queue_layout: the old consumers' ack floors say up to where each old worker handled its share."""
    first, second = ids_on(0), ids_on(1)
    layout = Layout(workers=1, before=2, floors=(40, 25), start=26)
    assert [layout.handled_before(first, seq) for seq in (25, 40, 41)] == [True, True, False]
    assert [layout.handled_before(second, seq) for seq in (25, 26, 40)] == [True, False, False]
    assert Layout.of(None) is None


def ids_on(worker: int) -> str:
    """A fresh 24-hex id that worker `worker` (of 2) owns."""
    return next(key for n in count(int(USER, 16) + worker * 1000) if worker_of(key := f"{n:024x}", 2) == worker)


def outbox(user: str, action: str, payload: bytes) -> aiomqtt.Message:
    return aiomqtt.Message(topics.user_outbox(user, action), payload, 1, False, 1, None)


async def test_each_worker_refuses_only_its_share_and_counts_only_that_against_the_rate() -> None:
    """The same deliveries reach both workers: each request is answered once, by its owner; the requests of
    the other worker's conversations are skipped before the rate limit (burst 3 here)."""
    first, second = ([Pipeline(settings(bridge_instance=f"worker-{n}", send_rate=0.001, send_burst=3), lambda: None)] for n in (1, 2))
    user_of_first = ids_on(0)
    elsewhere = json.dumps({"conversation_id": ids_on(1), "client_msg_id": "x", "body": "hi"}).encode()
    batch = [outbox(user_of_first, "send", elsewhere) for _ in range(10)]  # the second worker's: it would store them
    batch += [outbox(user_of_first, "send", b"not json"), outbox(ids_on(1), "shout", b"{}")]
    refused_by_first = [json.loads(d.payload)["error"]["code"] for d in await first[0].process(batch)]
    assert refused_by_first == ["invalid_input"], "the first worker's one request, not charged for the ten others"
    refused_by_second = [(d.topic, json.loads(d.payload)["action"]) for d in await second[0].process(batch[10:])]
    assert refused_by_second == [(topics.user_inbox(ids_on(1)), "shout")]


@pytest.mark.parametrize("before", [1, 2, 3, 4])
@pytest.mark.parametrize("now", [1, 2, 3, 4])
def test_a_backlog_queued_under_another_count_is_served_once_by_a_worker_that_holds_it(before: int, now: int) -> None:
    """Workers 0..before-1 had sessions, each holding the whole backlog: exactly one of them serves each request."""
    shares = [Share(index, now) for index in range(now)]
    for share in shares:
        share.queued_under(before)
    for n in range(200):
        raw = json.dumps({"conversation_id": f"{n:024x}"}).encode()
        owners = [share.index for share in shares if share.owns(USER, "send", raw, backlog=True)]
        assert len(owners) == 1 and owners[0] < before, (n, owners)
        live = [share.index for share in shares if share.owns(USER, "send", raw)]
        assert live == [worker_of(f"{n:024x}", now)], "live requests: the current count"


async def test_the_first_backlog_after_a_change_of_count_is_split_the_old_way_until_the_fence() -> None:
    """Worker 1 of 2 whose session was queued while it ran alone: it answers the other worker's share of that
    backlog, then, once its fence is back, only its own share."""
    pipeline = Pipeline(settings(bridge_instance="worker-1"), lambda: None)
    assert pipeline.share is not None
    pipeline.share.queued_under(1)
    fence = pipeline.reconnected()
    others = outbox(ids_on(1), "shout", b"{}")
    assert [json.loads(d.payload)["action"] for d in await pipeline.process([others])] == ["shout"], "served from the backlog"
    assert await pipeline.process([aiomqtt.Message(pipeline.fence_topic, fence, 1, False, 1, None), others]) == []
    pipeline.reconnected()
    assert await pipeline.process([others]) == [], "a later connection's backlog was queued under this count"
