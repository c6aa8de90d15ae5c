"""Who may publish, subscribe to and receive which topic: the contract's topic rules.

One policy serves the embedded broker's plugin (checked on CONNECT-time actions and
on every delivery) and the Mosquitto provisioning, so both brokers enforce the same
rules. Conversation topics ask a membership check supplied by the caller.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from core import topics
from core.roles import STAFF_ROLES, Role

MembershipCheck = Callable[[str, str], Awaitable[bool]]
"""`await is_member(conversation_id, user_id)`."""


class Action(StrEnum):
    PUBLISH = "publish"
    SUBSCRIBE = "subscribe"
    RECEIVE = "receive"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated MQTT connection: a user (name = user id, role set) or a service account."""

    name: str
    client_id: str
    role: Role | None = None

    @property
    def is_service(self) -> bool:
        return self.role is None


async def _nobody_is_member(conversation_id: str, user_id: str) -> bool:
    return False


class AccessPolicy:
    """Decides every topic action; always answers with an explicit bool."""

    def __init__(self, is_member: MembershipCheck = _nobody_is_member) -> None:
        self._is_member = is_member

    async def allows(self, principal: Principal, action: Action, topic: str) -> bool:
        """True when `principal` may perform `action` on `topic` (a filter for SUBSCRIBE)."""
        if principal.is_service:
            return self._service_allows(action, topic)
        if action is Action.PUBLISH:
            return self._user_may_publish(principal, topic)
        if action is Action.SUBSCRIBE:
            return await self._user_may_subscribe(principal, topic)
        return await self._user_may_receive(principal, topic)

    @staticmethod
    def _service_allows(action: Action, topic: str) -> bool:
        if action is Action.SUBSCRIBE:
            return topics.is_valid_filter(topic) and topic.split("/", 1)[0] == topics.ROOT
        return topics.parse(topic) is not None

    @staticmethod
    def _user_may_publish(principal: Principal, topic: str) -> bool:
        parsed = topics.parse(topic)
        if parsed is None or parsed.owner != principal.name:
            return False
        if parsed.kind == "device_presence":
            return parsed.rest == principal.client_id
        return parsed.kind == "outbox"

    async def _user_may_subscribe(self, principal: Principal, topic_filter: str) -> bool:
        if not topics.is_valid_filter(topic_filter):
            return False
        if principal.role is Role.ADMIN:
            return topic_filter.split("/", 1)[0] == topics.ROOT
        levels = topic_filter.split("/")
        if topics.has_wildcard(topic_filter):
            # The one wildcard the contract allows: all channels of a conversation one is a member of.
            wildcard_conversation = (
                len(levels) == 4 and levels[:2] == [topics.ROOT, "conversations"] and levels[3] in ("#", "+")
            )
            return (
                wildcard_conversation
                and topics.is_object_id(levels[2])
                and await self._is_member(levels[2], principal.name)
            )
        return await self._user_may_receive(principal, topic_filter)

    async def _user_may_receive(self, principal: Principal, topic: str) -> bool:
        parsed = topics.parse(topic)
        if parsed is None or parsed.kind == "system":
            return False
        if principal.role is Role.ADMIN:
            return True
        match parsed.kind:
            case "inbox":
                return parsed.owner == principal.name
            case "presence":
                return True
            case "agent_tickets":
                return principal.role in STAFF_ROLES
            case "conversation":
                return await self._is_member(parsed.owner, principal.name)
        return False
