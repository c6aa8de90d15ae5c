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

(d) A broadcast iterated the live subscription table and each filter's subscriber
    list while awaiting every delivery's RECEIVE check: a SUBSCRIBE adding a filter
    meanwhile raised "dictionary changed size during iteration" and dropped the rest
    of the fan-out, and a disconnected clean session removed meanwhile shifted the
    list so that the next, still-connected subscriber was skipped; any user could
    make others lose live messages (issue 24). Here each broadcast walks snapshots,
    one failed delivery does not stop the others, and every delivery task's
    exception is retrieved and logged. The connect-time retained replay walks a
    snapshot of the session's own subscriptions for the same reason.
(e) A delivery used the subscription's QoS, not min(publish QoS, subscription QoS):
    a QoS 0 publish arrived as QoS 1.
(f) Session take-over: a clean_session=0 CONNECT took over a live clean session and
    kept it clean (its queue was dropped when it disconnected); a persistent session
    taken over was then marked disconnected by the old connection's clean-up, so
    live messages were queued instead of delivered (and the Will was sent). Here a
    clean session is never resumed, the old connection is closed without Will or
    disconnect event, and a clean CONNECT closes the live connection it replaces.
(g) After a PUBLISH to a `$` topic (or an empty or wildcard topic) amqtt left its
    message loop but not the connection: later publishes were acknowledged and
    never routed, and no Will was sent when it dropped. Here such a PUBLISH ends
    the connection and its Will is sent, as the Mosquitto deployment does.
    (Empty and wildcard topic names are now refused earlier, by broker.protocol.)
(h) Nothing was required before CONNECT (issue 23): an idle socket stayed open
    forever, a PINGREQ or PUBLISH as first packet was not refused, and an MQTT 5
    CONNECT got no answer. Here the first packet must be a valid MQTT 3.1.1
    CONNECT (broker.protocol.check_connect), whole within `connect_timeout`; another
    protocol level gets CONNACK 0x01 and is closed [MQTT-3.1.2-2], anything else is
    closed without answer; and an address may hold at most `pending_per_address`
    connections not yet through CONNECT and authentication (more are closed at once).
(i) amqtt's per-connection loop left as soon as it saw the disconnect, dropping
    PUBLISHes it had already acknowledged but not yet routed: the last message of a
    burst sent just before DISCONNECT was lost in about half the runs. Here they are
    routed first, then the disconnect (and its Will) is handled.
(j) A resumed session's offline queue and retained messages were sent, and their
    PUBACKs awaited, before the connection's loop started, and a SUBSCRIBE's retained
    messages were awaited inside it: SUBACKs (and the routing of the client's own
    PUBLISHes) waited until the client had acknowledged them all. The bridge, which
    acknowledges a delivery only once it has handled it, re-subscribed after a
    SIGKILL with thousands queued and timed out (10 s) before its SUBACKs came. Here
    those deliveries are started in order and left to finish on their own.
(k) A message broadcast while a persistent session was resuming (between its CONNACK
    and the start of its resends and offline queue) went out before them: a bridge
    restarted during a burst stored a newer request before the older ones resent to it
    (CI saw 255 stored before 248). Until the session's queue has been started, such a
    message joins that queue, so resends, the queue and new messages go out in order.

Also, for speed: amqtt asked its topic plugins through a task per plugin and check
(every delivery's RECEIVE check included), and ran each plugin's handler of a received
or broadcast PUBLISH as a task of its own (12 of the 28 tasks one chat message
started); here both are awaited in turn, with the same answers (all topic plugins must
say True). A handler's failure is logged (amqtt lost it in its task); a membership
notice now takes effect before the notice itself is routed on.

Also: packets larger than `max_packet_size` end the connection, and every
connection uses broker.reliable_delivery.ReliableProtocolHandler (QoS 1 and 2
messages stay in flight until acknowledged and are resent when the session resumes,
at most `max_inflight` at once per connection, the rest waiting in order;
keep-alive is enforced; each packet is checked by broker.protocol before it is used).

Back-pressure (issue 26; docs/broker.md, "Back-pressure"): a client's PUBLISH is routed in
its own connection's task (amqtt queued every one for a single broadcast loop) and PUBACKed
once routed; a user's message first waits while a connected service session it goes to (the
bridge) has `high_water` deliveries waiting, and a user's connection with `backlog_limit`
waiting is closed. Services never wait.

amqtt is pinned to 0.12.1 in pyproject.toml because these overrides replace
private methods of its Broker.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import Counter
from collections.abc import Coroutine
from functools import partial
from typing import Any

import websockets
import websockets.asyncio.server
from amqtt.adapters import BufferReader, ReaderAdapter, StreamWriterAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action, ListenerType
from amqtt.errors import AMQTTError, MQTTError, NoDataError
from amqtt.events import BrokerEvents
from amqtt.mqtt.connack import NOT_AUTHORIZED, UNACCEPTABLE_PROTOCOL_VERSION, ConnackPacket
from amqtt.mqtt.constants import QOS_1, QOS_2
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler, Subscription, UnSubscription
from amqtt.session import ApplicationMessage, Session

from broker.lean import StreamReading, lighten_stream
from broker.plugins import session_principal
from broker.protocol import MAX_PACKET_SIZE, UnacceptableProtocol, check_connect, read_frame
from broker.reliable_delivery import MAX_INFLIGHT, ReliableProtocolHandler

log = logging.getLogger("mqchat.broker")

CONNECT_TIMEOUT = 10.0  # seconds a new connection has to send its whole CONNECT
PENDING_PER_ADDRESS = 64  # connections per client address not yet through CONNECT and authentication
HIGH_WATER = 1000  # deliveries waiting for a service connection at which users' messages to it wait
BACKLOG_LIMIT = 1000  # deliveries waiting for a user's connection at which it is closed


class SecureBroker(Broker):
    """amqtt Broker that authenticates before touching sessions and checks every retained delivery."""

    def __init__(
        self, config: dict[str, Any], max_packet_size: int = MAX_PACKET_SIZE,
        connect_timeout: float = CONNECT_TIMEOUT, pending_per_address: int = PENDING_PER_ADDRESS,
        max_inflight: int = MAX_INFLIGHT, high_water: int = HIGH_WATER, backlog_limit: int = BACKLOG_LIMIT,
    ) -> None:  # fmt: skip
        super().__init__(config)
        self._max_packet_size = max_packet_size
        self._connect_timeout = connect_timeout
        self._pending_per_address = pending_per_address
        self._max_inflight = max_inflight
        self._high_water = high_water
        self._backlog_limit = backlog_limit
        self._pending: Counter[str] = Counter()  # (h) connections per address not yet through CONNECT and authentication
        self._deliveries: set[asyncio.Task[Any]] = set()

    async def _create_server_instance(
        self, listener_name: str, listener_type: ListenerType, address: str | None, port: int, ssl_context: ssl.SSLContext | None
    ) -> Any:
        """amqtt's listeners, with WebSocket compression off.

        websockets negotiates permessage-deflate by default (browsers always offer it): a
        zlib compressor and decompressor per connection were 50 of the 64 KB an idle
        WebSocket connection cost. MQTT packets are small, and Mosquitto's WebSocket
        listener does not compress either.
        """
        if listener_type != ListenerType.WS:
            return await super()._create_server_instance(listener_name, listener_type, address, port, ssl_context)
        return await websockets.asyncio.server.serve(
            partial(self.ws_connected, listener_name=listener_name), address, port, ssl=ssl_context,
            subprotocols=[websockets.Subprotocol("mqtt")], compression=None,
        )  # fmt: skip

    def stream_connected(  # type: ignore[override]
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener_name: str
    ) -> Coroutine[Any, Any, None]:
        """A TCP connection: amqtt's, returning `_client_connected`'s coroutine for asyncio to run rather than
        awaiting it in one more frame per connection, and with broker.lean's lighter stream reading."""
        lighten_stream(writer)
        return self._client_connected(listener_name, StreamReading(reader), StreamWriterAdapter(writer))

    async def _initialize_client_session(
        self, reader: ReaderAdapter, writer: WriterAdapter, remote_address: str, remote_port: int
    ) -> tuple[BrokerProtocolHandler, Session]:
        """Admit a connection: (h) a valid CONNECT in time, (a) authenticated before any session is touched."""
        if self._pending[remote_address] >= self._pending_per_address:
            log.warning("mqtt.too_many_pending", extra={"address": remote_address, "limit": self._pending_per_address})
            await writer.close()
            raise MQTTError(f"over {self._pending_per_address} unauthenticated connections from {remote_address}")
        self._pending[remote_address] += 1
        try:
            handler, incoming = await self._read_connect(reader, writer)
            # (a) authenticate the incoming CONNECT before any existing session is looked at.
            authenticated = await super()._authenticate(incoming, None)  # type: ignore[arg-type]
        finally:
            self._pending[remote_address] -= 1
            if self._pending[remote_address] <= 0:
                del self._pending[remote_address]
        incoming.password = None  # the token lives on as its Principal: no copy of it kept per session
        if not authenticated:
            await ConnackPacket.build(0, NOT_AUTHORIZED).to_stream(writer)
            await writer.close()
            raise MQTTError(f"connection refused for client id {incoming.client_id!r}")

        session = incoming
        existing = self._sessions.get(incoming.client_id)
        if existing is not None and (incoming.clean_session or existing[0].clean_session):
            # (f) a clean session lasts only as long as its connection [MQTT-3.1.2-6]: never resumed
            await self._take_over(incoming.client_id)
            await self._delete_session(incoming.client_id)
            existing = None
        if existing is not None:
            session = existing[0]
            for attribute in ("will_flag", "will_message", "will_topic", "will_qos", "will_retain",
                              "keep_alive", "username", "password", "principal"):
                setattr(session, attribute, getattr(incoming, attribute))
            session.parent = 1
        else:
            session.parent = 0
        return handler, session  # keep_alive stays the client's: the handler allows 1.5 x [MQTT-3.1.2-24]

    async def _read_connect(self, reader: ReaderAdapter, writer: WriterAdapter) -> tuple[BrokerProtocolHandler, Session]:
        """(h) The first packet, whole within the CONNECT deadline, must be a valid MQTT 3.1.1 CONNECT.

        Another protocol level gets CONNACK 0x01 [MQTT-3.1.2-2]; anything else is closed without answer.
        """
        try:
            async with asyncio.timeout(self._connect_timeout):
                frame = await read_frame(reader, self._max_packet_size)
            if frame is None:
                raise NoDataError("closed before CONNECT")
            check_connect(*frame)
        except UnacceptableProtocol as refused:
            await ConnackPacket.build(0, UNACCEPTABLE_PROTOCOL_VERSION).to_stream(writer)
            await writer.close()
            raise MQTTError(str(refused)) from refused
        except (MQTTError, AMQTTError, NoDataError, TimeoutError, ConnectionError) as failed:
            log.info("mqtt.connect_failed", extra={"error": str(failed) or type(failed).__name__})
            await writer.close()
            raise MQTTError(str(failed) or type(failed).__name__) from failed
        header, body = frame
        try:
            handler, incoming = await ReliableProtocolHandler.init_from_connect(BufferReader(header.to_bytes() + body), writer, self.plugins_manager)
        except MQTTError:
            await writer.close()
            raise
        handler.max_inflight = self._max_inflight  # type: ignore[attr-defined]
        handler.max_packet_size = self._max_packet_size  # type: ignore[attr-defined]
        return handler, incoming

    async def _take_over(self, client_id: str) -> None:
        """(f) Close the live connection holding `client_id`'s session, without Will or disconnect event (as Mosquitto)."""
        entry = self._sessions.get(client_id)
        if entry is None or not entry[0].transitions.is_connected():
            return
        old_handler = entry[1]
        old_handler.taken_over = True  # type: ignore[attr-defined]  # its loop ends without touching the session
        await old_handler.handle_connection_closed()
        await old_handler.stop()

    async def _handle_client_session(
        self, reader: ReaderAdapter, writer: WriterAdapter, client_session: Session,
        handler: BrokerProtocolHandler, server: Any, listener_name: str,
    ) -> None:  # fmt: skip
        """Attach the (already authenticated) connection to its session and serve it until it ends.

        Its SUBSCRIBE, UNSUBSCRIBE and PUBLISH requests are handled in arrival order; (i) those
        that came before the end (PUBLISHes acknowledged included) first, then the disconnect
        and its Will. amqtt's `_client_message_loop` awaited four tasks (the disconnect and the
        next SUBSCRIBE, UNSUBSCRIBE and PUBLISH, each from a queue of its own): 4 of an idle
        connection's 8 tasks (2 now: this one and the reader). Here the connection's task awaits its one request queue
        (broker.reliable_delivery) itself, in this frame: each coroutine an idle connection
        waits in is kept as long as the connection (docs/benchmarks.md, "Memory per idle connection").
        """
        assert isinstance(handler, ReliableProtocolHandler)
        await self._open_session(reader, writer, client_session, handler)
        try:
            while (request := await handler.requests.get()) is not None:
                if isinstance(request, Subscription):
                    await self._handle_subscription(client_session, handler, _resolved(request))
                elif isinstance(request, UnSubscription):
                    await self._handle_unsubscription(client_session, handler, _resolved(request))
                else:
                    await self._route(client_session, handler, request)
                    await handler.acknowledge(request)  # PUBACK once routed: the broker took it on
                del request  # not held while the next one is awaited (a PUBLISH's payload: up to 1 MB)
            await self._handle_disconnect(client_session, handler, _resolved(handler.disconnect_packet))
        except asyncio.CancelledError:
            log.debug("mqtt.client_loop_cancelled", extra={"client_id": client_session.client_id})

    async def _open_session(self, reader: ReaderAdapter, writer: WriterAdapter, client_session: Session, handler: BrokerProtocolHandler) -> None:
        """Attach the connection to its session, taking over a live one, CONNACK it and start what waits for it."""
        if client_session.transitions.is_connected():
            await self._take_over(client_session.client_id)
        else:
            client_session.transitions.connect()
        handler.attach(client_session, reader, writer)
        self._sessions[client_session.client_id] = (client_session, handler)
        await handler.mqtt_connack_authorize(True)
        await self.plugins_manager.fire_event(
            BrokerEvents.CLIENT_CONNECTED, client_id=client_session.client_id, client_session=client_session
        )
        await handler.start()
        await self._publish_session_retained_messages(client_session)
        # (d) a snapshot of the session's own subscriptions: amqtt walked the live table while awaiting
        own = [(f, qos) for f, subs in list(self._subscriptions.items()) for s, qos in subs if s.client_id == client_session.client_id]
        for subscription in own:
            await self._publish_retained_messages_for_subscription(subscription, client_session)

    async def _handle_disconnect(self, client_session: Session, handler: BrokerProtocolHandler, disconnect_waiter: Any) -> None:
        if getattr(handler, "taken_over", False):
            return  # (f) a newer connection owns the session now; _take_over stopped this one
        await super()._handle_disconnect(client_session, handler, disconnect_waiter)

    async def _route(self, client_session: Session, handler: BrokerProtocolHandler, message: ApplicationMessage) -> None:
        """Route one PUBLISH from the client; (g) a `$` topic ends the connection (empty and wildcard ones never get here)."""
        await self._notify_plugins(BrokerEvents.MESSAGE_RECEIVED, client_id=client_session.client_id, message=message)
        if handler.protocol_error:  # type: ignore[attr-defined]
            return
        topic = message.topic
        if topic.startswith("$"):
            # `$` topics are the server's [MQTT-4.7.2-1]. amqtt left its loop but kept the connection;
            # ending it sends the Will, as the Mosquitto deployment does. (broker.protocol refuses
            # empty and wildcard topic names before they are decoded [MQTT-4.7.3-1] [MQTT-3.3.2-2].)
            log.warning("mqtt.invalid_topic", extra={"client_id": client_session.client_id, "topic": topic})
            handler.protocol_error = True  # type: ignore[attr-defined]  # nothing more from it is routed
            await handler.handle_connection_closed()
            return
        if not await self._topic_filtering(client_session, topic=topic, action=Action.PUBLISH):
            log.info("mqtt.publish_refused", extra={"client_id": client_session.client_id, "topic": topic})
            return
        await self._notify_plugins(BrokerEvents.MESSAGE_BROADCAST, client_id=client_session.client_id, message=message)
        await self._fan_out(client_session, topic, message.data, message.qos)  # (e) the publish's QoS
        if message.publish_packet and message.publish_packet.retain_flag:
            await self.retain_message(client_session, topic, message.data, message.qos)

    async def _broadcast_message(
        self, session: Session | None, topic: str | None, data: bytes | bytearray | None, force_qos: int | None = None
    ) -> None:
        """A Will or the broker's own message: fanned out at once, as a client's PUBLISH (no queue shared by all)."""
        if topic is not None and data is not None:
            await self._fan_out(session, topic, data, force_qos)

    async def _fan_out(self, publisher: Session | None, topic: str, data: bytes | bytearray, qos: int | None) -> None:
        """(d) One message to every matching subscription, walking snapshots of the tables, in the publisher's task.

        Back-pressure: a user's message first waits while a service session it goes to (the bridge) has
        `high_water` deliveries or more waiting; services never wait (docs/broker.md, "Back-pressure").
        """
        broadcast: dict[str, Any] = {"session": publisher, "topic": topic, "data": data}
        if qos is not None:
            broadcast["qos"] = qos
        targets = self._subscribers(topic)
        if not _is_service(publisher) and await self._wait_for_services(targets):
            targets = self._subscribers(topic)  # subscriptions may have changed while it waited
        for target, subscription_qos in targets:
            try:
                await self._deliver(broadcast, target, subscription_qos)
            except Exception:
                log.exception("mqtt.delivery_failed", extra={"client_id": target.client_id, "topic": topic})

    def _subscribers(self, topic: str) -> list[tuple[Session, int]]:
        """A snapshot of the (session, QoS) subscriptions matching `topic`."""
        return [
            target for topic_filter, subscribers in list(self._subscriptions.items())
            if self._matches(topic, topic_filter) for target in list(subscribers)
        ]  # fmt: skip

    async def _wait_for_services(self, targets: list[tuple[Session, int]]) -> bool:
        """Wait while a connected service session among `targets` has `high_water` or more deliveries waiting;
        True if it waited."""
        waited = False
        for target, _ in targets:
            if not _is_service(target):
                continue
            handler = self._live_handler(target)
            if handler is not None and handler.backlog >= self._high_water:
                await handler.backlog_shorter_than(self._high_water)
                waited = True
        return waited

    def _live_handler(self, target: Session) -> ReliableProtocolHandler | None:
        """The handler of `target`'s connection, if it is connected and still the session of its client id."""
        session, handler = self._sessions.get(target.client_id, (None, None))
        if session is not target or not target.transitions.is_connected():
            return None
        return handler if isinstance(handler, ReliableProtocolHandler) else None

    async def _deliver(self, broadcast: dict[str, Any], target: Session, subscription_qos: int) -> None:
        """Send one broadcast to one subscriber if it may receive it, or queue it for its offline persistent session."""
        topic = broadcast["topic"]
        published_qos = broadcast.get("qos")
        qos = subscription_qos if published_qos is None else min(published_qos, subscription_qos)  # (e)
        if not await self._topic_filtering(target, topic=topic, action=Action.RECEIVE):
            return
        if not target.transitions.is_connected():
            if not target.clean_session and qos in (QOS_1, QOS_2) and not target.is_anonymous:
                await self._retain_broadcast_message(broadcast, qos, target)
            return
        handler = self._live_handler(target)
        if handler is None:  # a session replaced since the snapshot
            return
        if handler.replaying and not target.clean_session and qos in (QOS_1, QOS_2):  # (k)
            await self._retain_broadcast_message(broadcast, qos, target)
            return
        if handler.backlog >= self._backlog_limit and not _is_service(target):
            # a user's connection this far behind is stalled or far too slow: it must not hold the broker's memory
            # (or anyone's messages); its waiting deliveries go to its offline queue if persistent, this one too
            log.warning("mqtt.subscriber_overflow", extra={"client_id": target.client_id, "backlog": handler.backlog})
            await handler.handle_connection_closed()
        self._start_delivery(handler.deliver(topic, broadcast["data"], qos, retain=False))

    def _start_delivery(self, delivery: Coroutine[Any, Any, Any]) -> None:
        """Send one message in the background (tasks start in the order they are created), never awaited: (j)."""
        task = asyncio.create_task(delivery)
        self._deliveries.add(task)
        task.add_done_callback(self._delivery_done)

    def _delivery_done(self, task: asyncio.Task[Any]) -> None:
        """(d) Every delivery task's outcome is retrieved: a failure is logged, never left unseen."""
        self._deliveries.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("mqtt.delivery_failed", extra={"error": repr(task.exception())})

    async def _shutdown_broadcast_loop(self) -> None:
        await super()._shutdown_broadcast_loop()
        pending = list(self._deliveries)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)

    async def _notify_plugins(self, event: BrokerEvents, **details: Any) -> None:
        """Run every plugin's handler of a PUBLISH event in turn (amqtt's fire_event started a task per handler)."""
        for handler in self.plugins_manager._event_plugin_callbacks.get(event, ()):  # noqa: SLF001 - no public way
            try:
                await handler(**details)
            except Exception:
                log.exception("mqtt.plugin_failed", extra={"event": str(event)})

    async def _topic_filtering(self, session: Session, topic: str, action: Action) -> bool:
        """True when every topic plugin allows `action` on `topic` (amqtt's rule), without a task per check."""
        if not self.plugins_manager.is_topic_filtering_enabled():
            return True
        for plugin in self.plugins_manager._topic_plugins:  # noqa: SLF001 - the manager exposes no other way
            if not await plugin.topic_filtering(session=session, topic=topic, action=action):
                return False
        return True

    def _is_subscribed(self, session: Session, topic_filter: str) -> bool:
        return any(s.client_id == session.client_id for s, _ in self._subscriptions.get(topic_filter, ()))

    async def _publish_retained_messages_for_subscription(self, subscription: tuple[str, int], session: Session) -> None:
        # (c) only the session's own subscriptions, and only topics it may receive.
        topic_filter, qos = subscription
        handler = self._get_handler(session)
        if handler is None or not self._is_subscribed(session, topic_filter):
            return
        for topic, retained in list(self._retained_messages.items()):
            if self._matches(topic, topic_filter) and await self._topic_filtering(session, topic, Action.RECEIVE):
                self._start_delivery(handler.deliver(topic, retained.data, min(qos, retained.qos or qos), retain=True))

    async def _publish_session_retained_messages(self, session: Session) -> None:
        # (c) messages queued while offline are re-checked: rights may have changed since.
        handler = self._get_handler(session)
        if handler is None:
            return
        while not session.retained_messages.empty():
            queued = session.retained_messages.get_nowait()
            if await self._topic_filtering(session, queued.topic, Action.RECEIVE):
                self._start_delivery(handler.deliver(queued.topic, queued.data, queued.qos, retain=False))
        handler.replaying = False  # (k) the queue is empty and its deliveries started: new ones go straight out

    async def disconnect_user(self, user_id: str) -> int:
        """Close every live connection of `user_id` (their tokens were revoked); returns how many."""
        closed = 0
        for session, handler in list(self._sessions.values()):
            principal = session_principal(session)
            if principal is not None and principal.name == user_id and session.transitions.is_connected():
                await handler.handle_connection_closed()
                closed += 1
        return closed


def _is_service(session: Session | None) -> bool:
    principal = session_principal(session)
    return principal is not None and principal.is_service


def _resolved(value: Any) -> asyncio.Future[Any]:
    """A future already holding `value`: amqtt's request handlers take the future their loop awaited."""
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_result(value)
    return future
