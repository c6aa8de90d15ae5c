"""The topic rules of core.acl, decision by decision (no broker needed), then the same matrix
enforced by every broker with real users, connections and deliveries."""

from __future__ import annotations

import asyncio
import secrets
from types import SimpleNamespace

import aiomqtt
import httpx
import pytest

from broker.decisions import ReceiveDecisions
from core import topics
from core.acl import AccessPolicy, Action, Principal
from core.roles import Role
from tests.conftest import EVERY_BROKER
from tests.support import Account, System, collect, create_staff, granted, mqtt_client, open_conversation, service_client, signup

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
    (alice, Action.PUBLISH, topics.user_presence(BOB), False),
    (alice, Action.PUBLISH, topics.AGENT_TICKETS, False),
    (alice, Action.PUBLISH, topics.MEMBERSHIP_CONTROL, False),
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
    (alice, Action.SUBSCRIBE, "#", False),
    (alice, Action.SUBSCRIBE, "+/+/+", False),
    (alice, Action.SUBSCRIBE, f"chat/users/{BOB}/#", False),
    (alice, Action.SUBSCRIBE, f"chat/+/{ALICE}/inbox", False),
    (alice, Action.SUBSCRIBE, f"chat/users/{ALICE}/outbox/send", False),
    (alice, Action.SUBSCRIBE, "$SYS/broker/uptime", False),
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

PROBE, MARKER, RECEIVED = b'{"acl": "probe"}', b'{"acl": "marker"}', b'{"acl": "receive"}'
# Where a broker cannot enforce a rule as written, and why (docs/broker.md lists these).
_OUTBOX_HASH = "Mosquitto grants chat/users/<uid>/outbox/# (dynamic security has no client-id substitution); the bridge refuses these"
BROKER_DIFFERS = {
    ("mosquitto", "alice", Action.PUBLISH, topics.device_presence(ALICE, f"{ALICE}-phone")): _OUTBOX_HASH,
    ("mosquitto", "alice", Action.PUBLISH, f"chat/users/{ALICE}/outbox/send/extra/levels"): _OUTBOX_HASH,
    ("mosquitto", "alice", Action.PUBLISH, f"chat/users/{ALICE}/outbox/"): _OUTBOX_HASH,
    ("nats", "alice", Action.SUBSCRIBE, "chat/presence/+"): "NATS permissions that allow chat.presence.<uid> allow chat.presence.* too",
}


def _real(topic: str, ids: dict[str, str]) -> str:
    for placeholder, real in ids.items():
        topic = topic.replace(placeholder, real).replace(placeholder.upper(), real.upper())
    return topic


@EVERY_BROKER
async def test_brokers_enforce_the_matrix(system: System, api: httpx.AsyncClient) -> None:
    """Every case above on the broker: SUBACKs for subscriptions, what a watcher sees of publishes,
    and what a subscriber receives of the service's publishes."""
    alice_account, carol = await signup(api), await signup(api)
    admin_account = await create_staff(system, api, "admin")
    agent_account = await _agent_created_by(api, admin_account)
    conversation = (await open_conversation(api, alice_account, carol))["id"]
    ids = {ALICE: alice_account.id, BOB: agent_account.id, CONV: conversation, admin.name: admin_account.id}
    accounts = {"alice": (alice_account, alice), "agent": (agent_account, agent), "admin": (admin_account, admin)}
    names = {alice: "alice", agent: "agent", admin: "admin", service: "service"}

    def client_of(principal: Principal) -> aiomqtt.Client:
        if principal is service:
            return service_client(system, f"acl-{secrets.token_hex(3)}")
        account, model = accounts[names[principal]]
        return mqtt_client(system, account.id, account.mqtt_password, model.client_id.replace(model.name, account.id))

    def expected(principal: Principal, action: Action, topic: str, allowed: bool) -> bool:
        return allowed != ((system.broker, names[principal], action, topic) in BROKER_DIFFERS)

    outcomes: dict[tuple[str, Action, str], bool] = {}
    wanted: dict[tuple[str, Action, str], bool] = {}
    async with service_client(system, "acl-watcher") as watcher:
        assert granted(await watcher.subscribe("chat/#", qos=1))
        for principal in (alice, agent, admin, service):
            name = names[principal]
            cases = [(a, t, ok) for p, a, t, ok in CASES if p is principal and (a is not Action.SUBSCRIBE or topics.is_valid_filter(t))]
            wanted.update({(name, a, t): expected(principal, a, t, ok) for a, t, ok in cases})
            publishes = [t for a, t, _ in cases if a is Action.PUBLISH and t.startswith(f"{topics.ROOT}/")]  # what the watcher can see
            for topic in publishes:
                try:
                    async with client_of(principal) as client:
                        await client.publish(_real(topic, ids), PROBE, qos=1)
                except aiomqtt.MqttError:
                    pass  # Mosquitto 2.0 ends the connection of a publish it denies
            async with client_of(principal) as client:
                # an allowed publish after all the others: once the watcher has it, it has every earlier one
                owner = ids.get(principal.name, principal.name)
                marker = topics.user_inbox(ids[ALICE]) if principal is service else topics.user_outbox(owner, "acl-marker")
                await client.publish(marker, MARKER, qos=1)
                seen = {m.topic.value for m in await _until(watcher, marker) if m.payload == PROBE}
                outcomes.update({(name, Action.PUBLISH, t): _real(t, ids) in seen for t in publishes})
                for action, topic, _ in cases:
                    if action is Action.SUBSCRIBE:
                        outcomes[(name, action, topic)] = granted(await client.subscribe(_real(topic, ids), qos=1))
                receives = [t for a, t, _ in cases if a is Action.RECEIVE]
                for topic in receives:
                    await client.subscribe(_real(topic, ids), qos=1)
                if receives:
                    async with service_client(system, "acl-sender") as sender:
                        for topic in receives:
                            await sender.publish(_real(topic, ids), RECEIVED, qos=1)
                    got = {m.topic.value for m in await collect(client, 1.5) if m.payload == RECEIVED}
                    outcomes.update({(name, Action.RECEIVE, t): _real(t, ids) in got for t in receives})
    assert set(outcomes) == {key for key in wanted if key[1] is not Action.PUBLISH or key[2].startswith(f"{topics.ROOT}/")}
    wrong = {key: outcome for key, outcome in outcomes.items() if outcome != wanted[key]}
    assert not wrong, f"{system.broker} decided these cases the other way: {wrong}"


async def _agent_created_by(api: httpx.AsyncClient, admin_account: Account) -> Account:
    """An agent created over REST by an admin (quicker than the CLI), logged in."""
    staff = {"email": f"agent-{secrets.token_hex(4)}@example.com", "username": "agent", "password": "staff-password-1", "role": "agent"}
    assert (await api.post("/api/admin/users", json=staff, headers=admin_account.headers)).status_code == 201
    body = (await api.post("/api/auth/login", json={"email": staff["email"], "password": staff["password"]})).json()
    return Account(body["user"]["id"], staff["email"], staff["password"], body["access_token"], "agent", body)


async def _until(watcher: aiomqtt.Client, marker: str) -> list[aiomqtt.Message]:
    """What the watcher received up to and including the marker topic."""
    seen: list[aiomqtt.Message] = []

    async def read() -> None:
        async for message in watcher.messages:
            seen.append(message)
            if message.topic.value == marker and message.payload == MARKER:
                return

    await asyncio.wait_for(read(), 10)
    return seen
