"""The bridge pipeline's decisions that need no store, checked in milliseconds without servers:
what is refused and with which error, the rate limit and its backlog exemption, and what is ignored."""

from __future__ import annotations

import json

import aiomqtt
import pytest

from bridge.pipeline import MAX_REQUEST_BYTES, Pipeline
from core import topics
from core.events import Delivery
from core.settings import Settings

ALICE = "a" * 24
BOB = "b" * 24


@pytest.fixture
def pipeline() -> Pipeline:
    return Pipeline(Settings().model_copy(update={"send_rate": 0.001, "send_burst": 3}), lambda: None)


def request(topic: str, payload: bytes | str) -> aiomqtt.Message:
    return aiomqtt.Message(topic, payload.encode() if isinstance(payload, str) else payload, 1, False, 1, None)


def outbox(action: str, payload: bytes | str, user: str = ALICE) -> aiomqtt.Message:
    return request(topics.user_outbox(user, action), payload)


def errors(deliveries: list[Delivery]) -> list[tuple[str, str, str, str | None]]:
    """(recipient inbox, action, error code, client_msg_id) of each error event."""
    found = []
    for delivery in deliveries:
        event = json.loads(delivery.payload)
        assert event["type"] == "error" and event["error"]["message"], event
        found.append((delivery.topic, event["action"], event["error"]["code"], event.get("client_msg_id")))
    return found


async def test_bad_requests_are_refused_to_their_sender_each_with_its_code(pipeline: Pipeline) -> None:
    out = await pipeline.process([
        outbox("shout", "{}"),
        outbox("send", b"{" + b" " * MAX_REQUEST_BYTES + b"}", BOB),
        outbox("send", '{"client_msg_id": "c-1", "conversation_id": 7}'),
    ])  # fmt: skip
    assert errors(out) == [
        (topics.user_inbox(ALICE), "shout", "invalid_input", None),
        (topics.user_inbox(BOB), "send", "payload_too_large", None),
        (topics.user_inbox(ALICE), "send", "invalid_input", "c-1"),
    ]


@pytest.mark.parametrize(
    "payload",
    [b"\xff\xfe not utf-8", b"[" * 10_000 + b"]" * 10_000, b"not json", b'{"conversation_id": {"$ne": null}}', b"null"],
    ids=["invalid-utf8", "deep-nesting", "not-json", "operator-injection", "null"],
)
async def test_undecodable_or_mistyped_requests_get_invalid_input(pipeline: Pipeline, payload: bytes) -> None:
    assert errors(await pipeline.process([outbox("edit", payload)])) == [(topics.user_inbox(ALICE), "edit", "invalid_input", None)]


async def test_a_user_over_the_rate_is_refused_without_slowing_another(pipeline: Pipeline) -> None:
    out = await pipeline.process([outbox("shout", "{}") for _ in range(5)] + [outbox("shout", "{}", BOB)])
    assert [code for _, _, code, _ in errors(out)] == ["invalid_input"] * 3 + ["rate_limited"] * 2 + ["invalid_input"]


async def test_a_resumed_backlog_is_exempt_from_the_rate_until_the_fence_returns(pipeline: Pipeline) -> None:
    fence = pipeline.reconnected()
    backlog = await pipeline.process([outbox("shout", "{}") for _ in range(10)])
    assert [code for _, _, code, _ in errors(backlog)] == ["invalid_input"] * 10
    assert await pipeline.process([request(pipeline.fence_topic, b"a stale fence")]) == []
    assert [code for *_, code, _ in errors(await pipeline.process([outbox("shout", "{}")]))] == ["invalid_input"]
    assert await pipeline.process([request(pipeline.fence_topic, fence)]) == []
    after = await pipeline.process([outbox("shout", "{}") for _ in range(4)])
    assert [code for _, _, code, _ in errors(after)] == ["invalid_input"] * 3 + ["rate_limited"]


async def test_unroutable_topics_and_bad_membership_notices_are_ignored(pipeline: Pipeline) -> None:
    assert await pipeline.process([
        request("elsewhere/users/x/outbox/send", "{}"),
        request(f"{topics.ROOT}/users/not-an-id/outbox/send", "{}"),
        request(topics.MEMBERSHIP_CONTROL, b"\x00garbage"),
    ]) == []  # fmt: skip


async def test_a_malformed_device_presence_is_refused(pipeline: Pipeline) -> None:
    out = await pipeline.process([request(topics.device_presence(ALICE, "phone-1"), b"{not json")])
    assert errors(out) == [(topics.user_inbox(ALICE), "presence", "invalid_input", None)]
