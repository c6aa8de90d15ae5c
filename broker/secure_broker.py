"""SecureBroker: amqtt's Broker with the security holes of amqtt 0.12.1 closed.

Each override below fixes one reproduced hole (tests/test_broker_security.py):

(a) Stock amqtt looks up, cleans or takes over the session named by the CONNECT's
    client id *before* authenticating, and registers the refused connection under
    that id; a CONNECT with a victim's client id and a wrong password wiped the
    victim's subscriptions and offline queue. Here authentication runs first, on
    the fresh incoming session, and a refused CONNECT gets its CONNACK and is
    closed without touching any session.
(b) Will messages bypass the PUBLISH ACL. The JwtAuthPlugin refuses any CONNECT
    whose Will is not the client's own presence topic (see broker.authentication).
(c) Retained messages were sent without the RECEIVE check, and on connect amqtt
    replayed retained messages matching *every* client's subscriptions. Here
    retained and offline-queued deliveries go only to the session's own
    subscriptions and each passes the ACL.

Also: packets larger than `max_packet_size` end the connection, and every
connection uses broker.reliable_delivery.ReliableProtocolHandler (QoS 1 messages
stay in flight until acknowledged and are resent when the session resumes).

amqtt is pinned to 0.12.1 in pyproject.toml because these overrides replace
private methods of its Broker.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from amqtt.adapters import ReaderAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.errors import AMQTTError, MQTTError, NoDataError
from amqtt.mqtt.connack import NOT_AUTHORIZED, ConnackPacket
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.session import Session

from broker.plugins import session_principal
from broker.reliable_delivery import ReliableProtocolHandler

log = logging.getLogger("mqchat.broker")

MAX_PACKET_SIZE = 1024 * 1024


class PacketTooLarge(AMQTTError):
    """A client announced a packet above the broker's limit."""


class BoundedReader(ReaderAdapter):
    """Refuses any single read above the limit: amqtt reads a packet body in one call."""

    def __init__(self, inner: ReaderAdapter, limit: int) -> None:
        self._inner = inner
        self._limit = limit

    async def read(self, n: int = -1) -> bytes:
        if n < 0 or n > self._limit:
            raise PacketTooLarge(f"packet of {n} bytes exceeds {self._limit}")
        return await self._inner.read(n)

    def feed_eof(self) -> None:
        self._inner.feed_eof()


class SecureBroker(Broker):
    """amqtt Broker that authenticates before touching sessions and checks every retained delivery."""

    def __init__(self, config: dict[str, Any], max_packet_size: int = MAX_PACKET_SIZE) -> None:
        super().__init__(config)
        self._max_packet_size = max_packet_size

    async def _client_connected(self, listener_name: str, reader: ReaderAdapter, writer: WriterAdapter) -> None:
        await super()._client_connected(listener_name, BoundedReader(reader, self._max_packet_size), writer)

    async def _initialize_client_session(
        self, reader: ReaderAdapter, writer: WriterAdapter, remote_address: str, remote_port: int
    ) -> tuple[BrokerProtocolHandler, Session]:
        try:
            handler, incoming = await ReliableProtocolHandler.init_from_connect(reader, writer, self.plugins_manager)
        except MQTTError:
            await writer.close()
            raise
        except NoDataError as exc:
            raise AMQTTError(exc) from exc

        # (a) authenticate the incoming CONNECT before any existing session is looked at.
        if not await super()._authenticate(incoming, None):  # type: ignore[arg-type]
            await ConnackPacket.build(0, NOT_AUTHORIZED).to_stream(writer)
            await writer.close()
            raise MQTTError(f"connection refused for client id {incoming.client_id!r}")

        session = incoming
        existing = self._sessions.get(incoming.client_id)
        if incoming.clean_session:
            await self._delete_session(incoming.client_id)
            session.parent = 0
        elif existing is not None:
            session = existing[0]
            for attribute in ("will_flag", "will_message", "will_topic", "will_qos", "will_retain",
                              "keep_alive", "username", "password", "principal"):
                setattr(session, attribute, getattr(incoming, attribute))
            session.parent = 1
        else:
            session.parent = 0

        delay = self.config.get("timeout-disconnect-delay", 0)
        if session.keep_alive > 0 and isinstance(delay, int):
            session.keep_alive += delay
        return handler, session

    async def _authenticate(self, session: Session, listener: Any) -> bool:
        # Called again by amqtt's _handle_client_session: the plugins already decided in
        # _initialize_client_session, and only authenticated sessions get this far.
        return session_principal(session) is not None

    def _is_subscribed(self, session: Session, topic_filter: str) -> bool:
        return any(s.client_id == session.client_id for s, _ in self._subscriptions.get(topic_filter, ()))

    async def _publish_retained_messages_for_subscription(self, subscription: tuple[str, int], session: Session) -> None:
        # (c) only the session's own subscriptions, and only topics it may receive.
        topic_filter, qos = subscription
        handler = self._get_handler(session)
        if handler is None or not self._is_subscribed(session, topic_filter):
            return
        deliveries = []
        for topic, retained in list(self._retained_messages.items()):
            if self._matches(topic, topic_filter) and await self._topic_filtering(session, topic, Action.RECEIVE):
                deliveries.append(handler.mqtt_publish(topic, retained.data, min(qos, retained.qos or qos), retain=True))
        if deliveries:
            await asyncio.gather(*deliveries, return_exceptions=True)

    async def _publish_session_retained_messages(self, session: Session) -> None:
        # (c) messages queued while offline are re-checked: rights may have changed since.
        handler = self._get_handler(session)
        if handler is None:
            return
        deliveries = []
        while not session.retained_messages.empty():
            queued = session.retained_messages.get_nowait()
            if await self._topic_filtering(session, queued.topic, Action.RECEIVE):
                deliveries.append(handler.mqtt_publish(queued.topic, queued.data, queued.qos, retain=False))
        if deliveries:
            await asyncio.gather(*deliveries, return_exceptions=True)

    async def disconnect_user(self, user_id: str) -> int:
        """Close every live connection of `user_id` (their tokens were revoked); returns how many."""
        closed = 0
        for session, handler in list(self._sessions.values()):
            principal = session_principal(session)
            if principal is not None and principal.name == user_id and session.transitions.is_connected():
                await handler.handle_connection_closed()
                closed += 1
        return closed
