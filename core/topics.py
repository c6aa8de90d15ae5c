"""The MQTT topic tree of the contract: builders for every topic and a strict parser.

    chat/users/{uid}/outbox/{action}            client -> bridge requests
    chat/users/{uid}/outbox/presence/{client}   per-connection presence (retained)
    chat/users/{uid}/inbox                      durable events for one user
    chat/conversations/{cid}/{messages|receipts|typing}
    chat/presence/{uid}                         aggregated presence (retained)
    chat/agents/tickets                         live ticket queue for agents and admins
    chat/system/membership                      service-only: a conversation's members (or blocks, ticket closed) changed: caches drop it
    chat/system/sessions                        service-only: a user's sessions were revoked
    chat/system/fence/{instance}                service-only: a bridge worker marks where its resumed backlog ends
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ROOT = "chat"
MAX_TOPIC_LENGTH = 512
MAX_TOPIC_LEVELS = 8
CONVERSATION_CHANNELS = frozenset({"messages", "receipts", "typing"})
OUTBOX_ACTIONS = frozenset({"send", "edit", "delete", "read", "typing", "react"})
OUTBOX_FILTER = f"{ROOT}/users/+/outbox/#"
# With several bridge workers: each worker gets every request and keeps its share (bridge.affinity),
# device presence goes to one worker that aggregates it. The shared filter is the layout before
# that, still dropped from workers' persistent sessions (bridge.worker.stale_subscriptions).
ACTIONS_FILTER = f"{ROOT}/users/+/outbox/+"
PRESENCE_FILTER = f"{ROOT}/users/+/outbox/presence/+"
SHARED_ACTIONS_FILTER = f"$share/mqchat-bridge/{ACTIONS_FILTER}"
AGENT_TICKETS = f"{ROOT}/agents/tickets"
# Service-only control topic: membership changes, so brokers drop cached rights at once.
MEMBERSHIP_CONTROL = f"{ROOT}/system/membership"
# Service-only control topic: a user's sessions were revoked, brokers cut their connections.
SESSIONS_CONTROL = f"{ROOT}/system/sessions"

_OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")
# A client id is one printable topic level without wildcards.
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:@\-]{1,128}$")


# A host platform's user id: 1-128 characters usable as one topic level (no whitespace, wildcards,
# separators, control or invisible format characters, no leading "$").
_ID_EXCLUDED = r"\s/+#\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff"
EXTERNAL_ID_PATTERN = rf"^[^{_ID_EXCLUDED}$][^{_ID_EXCLUDED}]{{0,127}}$"
_EXTERNAL_ID = re.compile(EXTERNAL_ID_PATTERN)


def is_valid_external_id(value: str) -> bool:
    """True for a platform user id mqchat accepts (EXTERNAL_ID_PATTERN)."""
    return bool(_EXTERNAL_ID.match(value))


def is_object_id(value: str) -> bool:
    """True for a 24-hex lowercase id as used throughout mqchat."""
    return bool(_OBJECT_ID.match(value))


def is_valid_client_id(value: str) -> bool:
    """True when the client id can be used as one topic level (presence topics)."""
    return bool(_CLIENT_ID.match(value))


def bridge_fence(instance: str) -> str:
    """A bridge worker's own marker topic (see bridge.pipeline.Pipeline.reconnected)."""
    return f"{ROOT}/system/fence/{instance}"


def user_inbox(user_id: str) -> str:
    return f"{ROOT}/users/{user_id}/inbox"


def user_outbox(user_id: str, action: str) -> str:
    return f"{ROOT}/users/{user_id}/outbox/{action}"


def device_presence(user_id: str, client_id: str) -> str:
    """The retained per-connection presence topic a client publishes (and sets as its Will)."""
    return f"{ROOT}/users/{user_id}/outbox/presence/{client_id}"


def user_presence(user_id: str) -> str:
    return f"{ROOT}/presence/{user_id}"


def conversation(conversation_id: str, channel: str) -> str:
    return f"{ROOT}/conversations/{conversation_id}/{channel}"


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed topic name or filter of the mqchat tree.

    kind is one of: outbox, device_presence, inbox, conversation, presence,
    agent_tickets. `owner` is the user id (outbox/inbox/presence) or the
    conversation id; `rest` is the action or channel.
    """

    kind: str
    owner: str
    rest: str = ""


def has_wildcard(topic: str) -> bool:
    return "+" in topic or "#" in topic


def parse(topic: str) -> Topic | None:
    """Parse a literal topic of the tree; None for anything outside it or malformed."""
    if not topic or len(topic) > MAX_TOPIC_LENGTH or has_wildcard(topic):
        return None
    levels = topic.split("/")
    if len(levels) > MAX_TOPIC_LEVELS or levels[0] != ROOT or any(not level for level in levels):
        return None
    match levels[1:]:
        case ["users", uid, "inbox"] if is_object_id(uid):
            return Topic("inbox", uid)
        case ["users", uid, "outbox", "presence", client_id] if is_object_id(uid) and is_valid_client_id(client_id):
            return Topic("device_presence", uid, client_id)
        case ["users", uid, "outbox", action] if is_object_id(uid) and action != "presence":
            return Topic("outbox", uid, action)
        case ["conversations", cid, channel] if is_object_id(cid) and channel in CONVERSATION_CHANNELS:
            return Topic("conversation", cid, channel)
        case ["presence", uid] if is_object_id(uid):
            return Topic("presence", uid)
        case ["agents", "tickets"]:
            return Topic("agent_tickets", "")
        case ["system", "membership" | "sessions"]:
            return Topic("system", "")
        case ["system", "fence", instance] if is_valid_client_id(instance):
            return Topic("system", "")
    return None


def is_valid_filter(topic_filter: str) -> bool:
    """MQTT filter syntax: `#` only as the whole last level, `+` only as a whole level."""
    if not topic_filter or len(topic_filter) > MAX_TOPIC_LENGTH:
        return False
    levels = topic_filter.split("/")
    if len(levels) > MAX_TOPIC_LEVELS:
        return False
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            return False
        if "+" in level and level != "+":
            return False
    return True


def filter_matches(topic_filter: str, topic: str) -> bool:
    """True when `topic` matches the MQTT filter `topic_filter`."""
    filter_levels, topic_levels = topic_filter.split("/"), topic.split("/")
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(topic_levels) or level not in ("+", topic_levels[index]):
            return False
    return len(filter_levels) == len(topic_levels)
