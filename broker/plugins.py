"""amqtt plugins: authentication and topic decisions (mqchat's Authenticator and AccessPolicy),
membership-cache invalidation, presence clean-up and metrics.

amqtt combines plugin answers with all(): both plugins always return an explicit bool.
The connection's Principal is kept on the amqtt Session as `session.principal`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import msgspec
from amqtt.broker import BrokerContext
from amqtt.contexts import Action as AmqttAction
from amqtt.plugins.base import BaseAuthPlugin, BasePlugin, BaseTopicPlugin
from amqtt.session import ApplicationMessage, Session

from core import metrics, topics
from core.acl import Action, Principal

log = logging.getLogger("mqchat.broker.acl")

_ACTIONS = {
    AmqttAction.PUBLISH: Action.PUBLISH,
    AmqttAction.SUBSCRIBE: Action.SUBSCRIBE,
    AmqttAction.RECEIVE: Action.RECEIVE,
}


def session_principal(session: Session | None) -> Principal | None:
    """The Principal authenticated for this session, if any."""
    principal = getattr(session, "principal", None)
    return principal if isinstance(principal, Principal) else None


class JwtAuthPlugin(BaseAuthPlugin):
    """Authenticates CONNECTs with broker.authentication.Authenticator."""

    @dataclass
    class Config:
        authenticator: Any

    async def authenticate(self, *, session: Session) -> bool:
        try:
            principal = await self.config.authenticator.authenticate(
                session.username, session.password, session.client_id, session.will_topic if session.will_flag else None
            )
        except Exception:
            log.exception("mqtt.auth_error")
            principal = None
        session.principal = principal
        return principal is not None


class TopicAclPlugin(BaseTopicPlugin):
    """Authorizes publish, subscribe and every delivery with core.acl.AccessPolicy.

    A delivery's answer is remembered per session and topic (broker.decisions) until
    membership changes, so a conversation's members are not re-checked on every message.
    """

    @dataclass
    class Config:
        policy: Any
        decisions: Any  # broker.decisions.ReceiveDecisions

    async def topic_filtering(
        self, *, session: Session | None = None, topic: str | None = None, action: AmqttAction | None = None
    ) -> bool:
        principal = session_principal(session)
        if principal is None or not topic or action not in _ACTIONS:
            return False
        decisions = self.config.decisions
        if action is AmqttAction.RECEIVE and (known := decisions.recall(session, principal, topic)) is not None:
            return bool(known)
        generation = decisions.generation()
        try:
            allowed: bool = await self.config.policy.allows(principal, _ACTIONS[action], topic)
        except Exception:
            log.exception("mqtt.acl_error", extra={"topic": topic})
            return False
        if action is AmqttAction.RECEIVE:
            decisions.remember(session, principal, topic, allowed, generation)
        if not allowed and action is not AmqttAction.RECEIVE:
            log.info("mqtt.denied", extra={"action": str(action), "topic": topic, "username": principal.name})
        return allowed


class MembershipControlPlugin(BasePlugin[BrokerContext]):
    """Drops cached conversation members, and the RECEIVE answers given from them, when a service announces a membership change."""

    @dataclass
    class Config:
        cache: Any
        decisions: Any  # broker.decisions.ReceiveDecisions

    async def on_broker_message_broadcast(self, *, client_id: str, message: ApplicationMessage) -> None:
        if message.topic != topics.MEMBERSHIP_CONTROL:
            return
        if not self.config.cache.apply_notice(bytes(message.data)):
            log.warning("mqtt.bad_membership_notice", extra={"client_id": client_id})
        self.config.decisions.membership_changed()  # even for a malformed notice: something changed


OFFLINE = b'{"status": "offline"}'


class PresenceJanitorPlugin(BasePlugin[BrokerContext]):
    """A device that disconnects cleanly without saying so is marked offline on its retained presence topic.

    (An abrupt disconnect publishes the client's Will, which is already `offline`.)
    """

    async def on_broker_client_disconnected(self, *, client_id: str, client_session: Session) -> None:
        principal = session_principal(client_session)
        if principal is None or principal.is_service:
            return
        topic = topics.device_presence(principal.name, client_id)
        retained = self.context.retained_messages.get(topic)
        if retained is None:
            return
        try:
            status = msgspec.json.decode(bytes(retained.data)).get("status")
        except (msgspec.DecodeError, AttributeError):
            status = None
        if status != "offline":
            await self.context.retain_message(topic, OFFLINE, 1)
            await self.context.broadcast_message(topic, OFFLINE, 1)


class SessionControlPlugin(BasePlugin[BrokerContext]):
    """Cuts a user's live connections when a service announces their sessions were revoked."""

    async def on_broker_message_broadcast(self, *, client_id: str, message: ApplicationMessage) -> None:
        if message.topic != topics.SESSIONS_CONTROL:
            return
        try:
            user_id = str(msgspec.json.decode(bytes(message.data))["user_id"])
        except (msgspec.DecodeError, KeyError, TypeError):
            log.warning("mqtt.bad_sessions_notice", extra={"client_id": client_id})
            return
        # the plugin context exposes no way to close connections; SecureBroker does
        closed = await self.context._broker_instance.disconnect_user(user_id)  # noqa: SLF001
        log.info("mqtt.sessions_cut", extra={"user_id": user_id, "connections": closed})


class MetricsPlugin(BasePlugin[BrokerContext]):
    """Connected clients, kept sessions and subscriptions (sampled every `interval` seconds from the
    broker's state, so no event can be missed), and PUBLISHes received by kind (core.metrics)."""

    @dataclass
    class Config:
        interval: float = 2.0

    def __init__(self, context: BrokerContext) -> None:
        super().__init__(context)
        self._sampling: asyncio.Task[None] | None = None

    async def on_broker_post_start(self) -> None:
        self._sampling = asyncio.create_task(self._sample_forever())

    async def on_broker_pre_shutdown(self) -> None:
        if self._sampling is not None:
            self._sampling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampling

    async def on_broker_message_received(self, *, client_id: str, message: ApplicationMessage) -> None:
        parsed = topics.parse(message.topic)
        kind = "other" if parsed is None else {"outbox": "outbox", "device_presence": "presence"}.get(parsed.kind, "other")
        metrics.MQTT_RECEIVED.labels(kind).inc()

    async def _sample_forever(self) -> None:
        broker = self.context._broker_instance  # noqa: SLF001 - the context exposes no session table
        while True:
            sessions = [session for session, _ in list(broker.sessions.values())]
            metrics.MQTT_SESSIONS.set(len(sessions))
            metrics.MQTT_CLIENTS.set(sum(1 for session in sessions if session.transitions.state == "connected"))
            metrics.MQTT_SUBSCRIPTIONS.set(sum(len(subscribers) for subscribers in list(broker.subscriptions.values())))
            await asyncio.sleep(self.config.interval)
