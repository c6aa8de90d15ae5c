"""Events mqchat publishes, and who gets each: the fan-out plan as a list of Deliveries.

Services return domain results; these functions turn them into MQTT deliveries
that the bridge and the API publish the same way (`core.fanout.publish`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import msgspec

from core import topics
from core.payloads import AgentStatusOut, ConversationOut, CsatOut, MessageOut, ReactionOut, TicketOut

_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class Delivery:
    """One PUBLISH: topic, JSON payload, QoS and retain flag."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


def _to_inboxes(user_ids: Iterable[str], payload: bytes) -> list[Delivery]:
    return [Delivery(topics.user_inbox(uid), payload) for uid in dict.fromkeys(user_ids)]


def message_event(event_type: str, message: MessageOut, member_ids: Iterable[str]) -> list[Delivery]:
    """`message.created|updated|deleted` to every member's inbox (the sender's devices included) and the conversation."""
    payload = _encode({"type": event_type, "message": message})
    return [*_to_inboxes(member_ids, payload), Delivery(topics.conversation(message.conversation_id, "messages"), payload)]


def reactions_event(
    conversation_id: str, message_id: str, user_id: str, emoji: str, on: bool, reactions: list[ReactionOut],
    member_ids: Iterable[str],
) -> list[Delivery]:  # fmt: skip
    """`message.reactions`: someone reacted (or took it back); the message's reactions now, to every member."""
    payload = _encode({"type": "message.reactions", "conversation_id": conversation_id, "message_id": message_id,
                       "user_id": user_id, "emoji": emoji, "on": on, "reactions": reactions})  # fmt: skip
    return [*_to_inboxes(member_ids, payload), Delivery(topics.conversation(conversation_id, "messages"), payload)]


def duplicate_ack(message: MessageOut) -> list[Delivery]:
    """A resent request: a fresh `message.created` to the sender's own inbox only (a system message has none)."""
    if message.sender_id is None:
        return []
    return _to_inboxes([message.sender_id], _encode({"type": "message.created", "message": message}))


def receipt_event(
    conversation_id: str, reader_id: str, message_id: str, seq: int, at: str, member_ids: Iterable[str]
) -> list[Delivery]:
    """`receipt.read` to the other members' inboxes and the conversation's receipts topic."""
    payload = _encode(
        {"type": "receipt.read", "conversation_id": conversation_id, "user_id": reader_id,
         "message_id": message_id, "seq": seq, "at": at}
    )  # fmt: skip
    others = [uid for uid in member_ids if uid != reader_id]
    return [*_to_inboxes(others, payload), Delivery(topics.conversation(conversation_id, "receipts"), payload)]


def conversation_event(event_type: str, conversation: ConversationOut, user_ids: Iterable[str]) -> list[Delivery]:
    """`conversation.created|updated` to the given users' inboxes."""
    return _to_inboxes(user_ids, _encode({"type": event_type, "conversation": conversation}))


def settings_event(user_id: str, conversation_id: str, archived: bool, muted: bool) -> list[Delivery]:
    """`conversation.settings`: a member archived/muted a conversation; to their own devices only."""
    payload = _encode({"type": "conversation.settings", "conversation_id": conversation_id, "archived": archived, "muted": muted})
    return _to_inboxes([user_id], payload)


def typing_event(conversation_id: str, user_id: str, typing: bool, at: str) -> list[Delivery]:
    """Typing indicator on the conversation topic, QoS 0, never stored."""
    payload = _encode({"user_id": user_id, "typing": typing, "at": at})
    return [Delivery(topics.conversation(conversation_id, "typing"), payload, qos=0)]


def error_event(user_id: str, action: str, code: str, message: str, client_msg_id: str | None = None) -> list[Delivery]:
    """A refused outbox request, to the sender's inbox."""
    event: dict[str, object] = {"type": "error", "action": action, "error": {"code": code, "message": message}}
    if client_msg_id is not None:
        event["client_msg_id"] = client_msg_id
    return _to_inboxes([user_id], _encode(event))


def presence_event(user_id: str, status: str, last_seen: str | None) -> list[Delivery]:
    """The aggregated, retained presence of a user."""
    payload = _encode({"user_id": user_id, "status": status, "last_seen": last_seen})
    return [Delivery(topics.user_presence(user_id), payload, retain=True)]


def membership_changed(conversation_id: str, added: Iterable[str] = (), removed: Iterable[str] = ()) -> list[Delivery]:
    """Members of a conversation changed: brokers update read rights before anything else is published.

    The embedded broker drops its cached members; with Mosquitto, core.broker_rights
    grants and revokes the per-user ACLs.
    """
    notice = {"conversation_id": conversation_id, "added": list(added), "removed": list(removed)}
    return [Delivery(topics.MEMBERSHIP_CONTROL, _encode(notice))]


def conversation_changed(conversation_id: str) -> list[Delivery]:
    """Something processes keep beside a conversation changed without its members changing (a block between
    a direct conversation's members, a ticket closed): the same notice, so every process forgets it."""
    return membership_changed(conversation_id)


def members_changed(
    conversation_id: str, view: ConversationOut, added: list[str], removed: list[str], informed: Iterable[str]
) -> list[Delivery]:
    """Members added or removed: brokers update read rights first, then new members get
    `conversation.created` and `informed` (those kept, those removed) `conversation.updated`."""
    return [
        *membership_changed(conversation_id, added, removed),
        *conversation_event("conversation.created", view, added),
        *conversation_event("conversation.updated", view, informed),
    ]


def ticket_event(event_type: str, ticket: TicketOut, change: dict[str, object], user_ids: Iterable[str]) -> list[Delivery]:
    """`ticket.created|updated` on the agents' live queue and to the customer's and assignees' inboxes."""
    payload = _encode({"type": event_type, "ticket": ticket, "change": change})
    return [Delivery(topics.AGENT_TICKETS, payload), *_to_inboxes((uid for uid in user_ids if uid), payload)]


def availability_event(agent: AgentStatusOut) -> list[Delivery]:
    """`agent.availability` on the desk topic (`chat/agents/tickets`): every agent and admin sees who takes tickets."""
    return [Delivery(topics.AGENT_TICKETS, _encode({"type": "agent.availability", "agent": agent}))]


def csat_event(rating: CsatOut, user_ids: Iterable[str]) -> list[Delivery]:
    """`csat.submitted` on the desk topic and to the given users' inboxes (the customer's other devices, the agent)."""
    payload = _encode({"type": "csat.submitted", "csat": rating})
    return [Delivery(topics.AGENT_TICKETS, payload), *_to_inboxes((uid for uid in user_ids if uid), payload)]


def sessions_revoked(user_id: str, version: int, active: bool, role: str) -> list[Delivery]:
    """A user's tokens were revoked (logout, password change, disabled, role changed): brokers cut their connections."""
    notice = {"user_id": user_id, "version": version, "active": active, "role": role}
    return [Delivery(topics.SESSIONS_CONTROL, _encode(notice))]
