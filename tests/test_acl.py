"""The topic rules of core.acl, decision by decision (no broker needed)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from broker.decisions import ReceiveDecisions
from core import topics
from core.acl import AccessPolicy, Action, Principal
from core.roles import Role

ALICE, BOB, CONV = "a" * 24, "b" * 24, "c" * 24
alice = Principal(ALICE, f"{ALICE}-web", Role.CUSTOMER)
agent = Principal(BOB, f"{BOB}-desk", Role.AGENT)
admin = Principal("d" * 24, f"{'d' * 24}-ops", Role.ADMIN)
service = Principal("mqchat-bridge", "mqchat-bridge-1")


async def member_of_conv(conversation_id: str, user_id: str) -> bool:
    return conversation_id == CONV and user_id == ALICE


policy = AccessPolicy(member_of_conv)

CASES = [
    # (principal, action, topic, allowed)
    (alice, Action.PUBLISH, topics.user_outbox(ALICE, "send"), True),
    (alice, Action.PUBLISH, topics.user_outbox(ALICE, "anything-else"), True),
    (alice, Action.PUBLISH, topics.device_presence(ALICE, f"{ALICE}-web"), True),
    (alice, Action.PUBLISH, topics.device_presence(ALICE, f"{ALICE}-phone"), False),
    (alice, Action.PUBLISH, topics.user_outbox(BOB, "send"), False),
    (alice, Action.PUBLISH, topics.user_inbox(ALICE), False),
    (alice, Action.PUBLISH, topics.user_presence(ALICE), False),
    (alice, Action.PUBLISH, topics.conversation(CONV, "messages"), False),
    (alice, Action.PUBLISH, f"chat/users/{ALICE}/outbox/send/extra/levels", False),
    (alice, Action.PUBLISH, f"chat/users/{ALICE}/outbox/", False),
    (alice, Action.PUBLISH, f"chat/users/{ALICE.upper()}/outbox/send", False),
    (alice, Action.SUBSCRIBE, topics.user_inbox(ALICE), True),
    (alice, Action.SUBSCRIBE, topics.user_inbox(BOB), False),
    (alice, Action.SUBSCRIBE, topics.user_presence(BOB), True),
    (alice, Action.SUBSCRIBE, "chat/presence/+", False),
    (alice, Action.SUBSCRIBE, topics.conversation(CONV, "messages"), True),
    (alice, Action.SUBSCRIBE, f"chat/conversations/{CONV}/#", True),
    (alice, Action.SUBSCRIBE, f"chat/conversations/{BOB}/#", False),
    (alice, Action.SUBSCRIBE, "chat/conversations/+/messages", False),
    (alice, Action.SUBSCRIBE, topics.AGENT_TICKETS, False),
    (alice, Action.SUBSCRIBE, "chat/#", False),
    (alice, Action.SUBSCRIBE, "chat/users/+/inbox", False),
    (alice, Action.SUBSCRIBE, "chat/#/inbox", False),
    (alice, Action.RECEIVE, topics.user_inbox(ALICE), True),
    (alice, Action.RECEIVE, topics.user_inbox(BOB), False),
    (alice, Action.RECEIVE, topics.device_presence(BOB, f"{BOB}-x"), False),
    (alice, Action.RECEIVE, topics.conversation(CONV, "typing"), True),
    (agent, Action.RECEIVE, topics.conversation(CONV, "typing"), False),
    (agent, Action.SUBSCRIBE, topics.AGENT_TICKETS, True),
    (agent, Action.SUBSCRIBE, "chat/#", False),
    (admin, Action.SUBSCRIBE, "chat/#", True),
    (admin, Action.SUBSCRIBE, "#", False),
    (admin, Action.SUBSCRIBE, "$SYS/#", False),
    (admin, Action.RECEIVE, topics.user_inbox(ALICE), True),
    (admin, Action.RECEIVE, topics.conversation(CONV, "messages"), True),
    (admin, Action.PUBLISH, topics.user_inbox(ALICE), False),
    (admin, Action.PUBLISH, topics.user_outbox(ALICE, "send"), False),
    (service, Action.SUBSCRIBE, topics.OUTBOX_FILTER, True),
    (service, Action.PUBLISH, topics.user_inbox(ALICE), True),
    (service, Action.PUBLISH, topics.user_presence(ALICE), True),
    (service, Action.PUBLISH, "elsewhere/topic", False),
    (service, Action.SUBSCRIBE, "#", False),
]


@pytest.mark.parametrize(("principal", "action", "topic", "allowed"), CASES)
async def test_policy(principal: Principal, action: Action, topic: str, allowed: bool) -> None:
    assert await policy.allows(principal, action, topic) is allowed


@pytest.mark.parametrize(
    "topic", ["", "chat", "chat//inbox", "chat/users/x/inbox", "chat/presence/" + "a" * 25, "chat/" + "a/" * 10 + "b", "\x00"]
)
def test_parser_refuses_malformed_topics(topic: str) -> None:
    assert topics.parse(topic) is None


def test_receive_decisions_are_remembered_per_session_until_membership_changes() -> None:
    """The embedded broker's remembered RECEIVE answers (broker.decisions): per session, principal and topic."""
    now = [0.0]
    decisions = ReceiveDecisions(ttl=30, timer=lambda: now[0])
    session, other = SimpleNamespace(), SimpleNamespace()
    inbox, messages = topics.user_inbox(ALICE), topics.conversation(CONV, "messages")
    for topic, allowed in ((inbox, True), (messages, True), (topics.user_inbox(BOB), False)):
        assert decisions.recall(session, alice, topic) is None
        decisions.remember(session, alice, topic, allowed, decisions.generation())
        assert decisions.recall(session, alice, topic) is allowed
    assert decisions.recall(other, alice, inbox) is None  # another session decides for itself
    assert decisions.recall(session, Principal(ALICE, f"{ALICE}-web", Role.ADMIN), inbox) is None  # a resumed session's new principal
    decisions.membership_changed()
    assert decisions.recall(session, alice, messages) is None  # conversation answers are decided again
    assert decisions.recall(session, alice, inbox) is True  # others do not depend on membership
    # an answer decided across a notice is not kept as current
    started = decisions.generation()
    decisions.membership_changed()
    decisions.remember(session, alice, messages, True, started)
    assert decisions.recall(session, alice, messages) is None
    decisions.remember(session, alice, messages, True, decisions.generation())
    now[0] = 31.0  # the membership cache's own bound if a notice were ever lost
    assert decisions.recall(session, alice, messages) is None and decisions.recall(session, alice, inbox) is True
