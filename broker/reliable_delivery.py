"""At-least-once delivery for QoS 1 on the embedded broker.

Stock amqtt 0.12.1 drops an outgoing QoS 1 message from the session when the
PUBACK does not arrive within 5 s, and also when the connection ends before it
does, so a persistent-session subscriber that reconnects gets nothing again
(measured: 5 unacknowledged messages, 0 redelivered; Mosquitto resent all 5).
Here an outgoing QoS 1 message stays in the session's `inflight_out` until its
PUBACK arrives, however long that takes, and what is in flight is resent, in
order and with DUP set, when the session resumes [MQTT-4.4.0-1].

Stock `_retry_deliveries` also waited (up to 10 s) for the PUBACKs of the resent
messages before the session's SUBSCRIBE/PUBLISH handling started, so a client
that acknowledges only after processing (the bridge) and first re-subscribes
deadlocked until a time-out, then the resent messages were stranded. Here the
resends are started and the session proceeds at once.

QoS 2 deliveries had the same holes (5 s for PUBREC and for PUBCOMP, dropped on
disconnect, never resent). Here an outgoing QoS 2 message stays in flight until its
PUBCOMP; on resume it is resent as PUBLISH with DUP if no PUBREC came yet, else its
PUBREL is resent [MQTT-4.4.0-1]. Incoming QoS 2 messages still waiting for their
PUBREL get their PUBREC again on resume, as stock amqtt did.

Stock `stop` cancels the packet reader once and waits for it without limit; on
Python 3.11 the reader's `wait_for` can swallow that cancellation (a broker
shutdown hung so, in 1 of ~10 CI runs). Here the reader is cancelled until it stops.

Stock `_reader_loop` never enforced keep-alive (its read time-out was ignored: a
client silent for minutes stayed "online" and its Will never fired), read packet
fields past the packet's end and acted on malformed packets (issue 23). Here the
reader closes a connection silent for 1.5 times its keep-alive [MQTT-3.1.2-24]
(the Will is then published and a persistent session keeps queuing; one timer per
connection, broker.keep_alive, not one per packet), reads each
packet whole and checks it with broker.protocol before amqtt decodes and handles
it, and closes the connection on any violation, including acknowledgements that
do not fit the delivery's QoS flow (PUBACK for QoS 2, PUBREC or PUBCOMP for QoS 1,
PUBCOMP before PUBREC).

Stock amqtt sent every QoS 1 and 2 delivery at once: a subscriber that did not
acknowledge ran its session's 65,535 packet ids out, and every later delivery failed
and was lost (issue 26). Here at most `max_inflight` (MQCHAT_MAX_INFLIGHT) deliveries
of a connection are in flight, those resent on resume included; the others wait in
order (broker.inflight), and those still waiting when the connection ends go, in order,
to the session's offline queue, replayed through the same limit on resume.

Stock amqtt acknowledged a QoS 1 PUBLISH as soon as it was read, and its reader never
stopped reading: nothing slowed a publisher down (issue 26). Here a QoS 0 or 1 PUBLISH
joins the connection's requests, and while `MAX_UNROUTED` of them wait to be routed the
reader stops reading (TCP then slows the client); the PUBACK is sent by SecureBroker once
the message is routed (`acknowledge`), which may wait for its subscribers' backlogs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from amqtt.adapters import BufferReader, ReaderAdapter, WriterAdapter
from amqtt.broker import RetainedApplicationMessage
from amqtt.errors import AMQTTError, MQTTError, NoDataError
from amqtt.events import MQTTEvents
from amqtt.mqtt import packet_class
from amqtt.mqtt.connack import IDENTIFIER_REJECTED, ConnackPacket
from amqtt.mqtt.connect import ConnectPacket
from amqtt.mqtt.constants import QOS_0, QOS_1, QOS_2
from amqtt.mqtt.disconnect import DisconnectPacket
from amqtt.mqtt.packet import (
    DISCONNECT,
    PINGREQ,
    PUBACK,
    PUBCOMP,
    PUBLISH,
    PUBREC,
    PUBREL,
    SUBSCRIBE,
    UNSUBSCRIBE,
    MQTTFixedHeader,
)
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler, Subscription, UnSubscription
from amqtt.mqtt.protocol.handler import ProtocolHandler
from amqtt.mqtt.puback import PubackPacket
from amqtt.mqtt.pubrel import PubrelPacket
from amqtt.plugins.manager import PluginManager
from amqtt.session import (
    OUTGOING,
    ApplicationMessage,
    IncomingApplicationMessage,
    OutgoingApplicationMessage,
    Session,
)

from broker.inflight import InflightWindow
from broker.keep_alive import SilenceWatch
from broker.lean import LeanEvent, LeanQueue
from broker.protocol import MALFORMED, MAX_PACKET_SIZE, ProtocolViolation, check_packet, read_frame
from broker.session import LeanSession
from core.tasks import cancel_and_wait

log = logging.getLogger("mqchat.broker.delivery")
_AMQTT_LOG = logging.getLogger("amqtt.mqtt.protocol.handler")

MAX_INFLIGHT = 100  # outgoing QoS 1 and 2 deliveries per connection awaiting acknowledgement (as Mosquitto)
MAX_UNROUTED = 32  # PUBLISHes a connection has sent that wait to be routed before its reader stops reading


class ReliableProtocolHandler(BrokerProtocolHandler):
    """BrokerProtocolHandler whose outgoing QoS 1 and 2 messages leave the session only when acknowledged."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The connection's SUBSCRIBEs, UNSUBSCRIBEs and acknowledged PUBLISHes, in arrival order, closed
        # when it ends: what SecureBroker's loop awaits. amqtt kept two queues of its own here and the
        # session's third, which the loop awaited through four tasks and a disconnect future (docs/benchmarks.md).
        self._requests: LeanQueue[Subscription | UnSubscription | ApplicationMessage] = LeanQueue()
        del self._pending_subscriptions, self._pending_unsubscriptions
        self.disconnect_packet: DisconnectPacket | None = None  # what ended the connection: None when it dropped
        self._reader_stopped = LeanEvent()  # type: ignore[assignment]
        self._redeliveries: set[asyncio.Task[None]] | None = None  # made for a resumed session's first resend
        self._handling: set[asyncio.Task[None]] | None = None  # the packets' handler tasks still running
        self.taken_over = False  # set by SecureBroker when a newer connection takes the session over
        # (k) until SecureBroker has queued the session's resends and offline queue, new deliveries join that queue
        self.replaying = True
        self.protocol_error = False  # set by SecureBroker when it ends the connection for a bad PUBLISH
        self.max_inflight = MAX_INFLIGHT  # set by SecureBroker before the session is attached
        self.max_packet_size = MAX_PACKET_SIZE  # likewise
        self._window: InflightWindow[RetainedApplicationMessage] | None = None

    @classmethod
    async def init_from_connect(
        cls, reader: ReaderAdapter, writer: WriterAdapter, plugins_manager: PluginManager[Any], loop: Any = None
    ) -> tuple[ReliableProtocolHandler, Session]:
        """amqtt's, for a CONNECT broker.protocol.check_connect has already checked, making a LeanSession."""
        connect = await ConnectPacket.from_stream(reader)
        await plugins_manager.fire_event(MQTTEvents.PACKET_RECEIVED, packet=connect)
        assert connect.payload is not None
        if not connect.clean_session_flag and connect.payload.client_id_is_random:
            await ConnackPacket.build(0, IDENTIFIER_REJECTED).to_stream(writer)  # [MQTT-3.1.3-8]
            await writer.close()
            raise MQTTError("[MQTT-3.1.3-8] no client id with clean session 0")
        session = LeanSession()
        session.client_id = connect.client_id
        session.clean_session = connect.clean_session_flag
        session.will_flag = connect.will_flag
        session.will_retain = connect.will_retain_flag
        session.will_qos = connect.will_qos
        session.will_topic = connect.will_topic
        session.will_message = connect.will_message
        session.username = connect.username
        session.password = connect.password
        peer = writer.get_peer_info()
        session.remote_address, session.remote_port = peer if peer is not None else (None, None)
        session.ssl_object = writer.get_ssl_info()
        session.keep_alive = max(connect.keep_alive, 0)
        return cls(plugins_manager, loop=loop), session

    async def start(self) -> None:
        """Read the connection and resend what its session holds in flight.

        amqtt's start also waited on an Event for the reader to have started, armed a
        write timer and made the disconnect future that `_requests` replaces.
        """
        self._reader_task = asyncio.create_task(self._reader_loop())
        await self._retry_deliveries()

    @property
    def requests(self) -> LeanQueue[Subscription | UnSubscription | ApplicationMessage]:
        """The connection's SUBSCRIBEs, UNSUBSCRIBEs and acknowledged PUBLISHes in arrival order.

        Its `get()` gives None once the connection has ended and every request before
        the end was taken (`disconnect_packet` says how it ended).
        """
        return self._requests

    @property
    def backlog(self) -> int:
        """QoS 1 and 2 deliveries to this connection waiting for an in-flight slot."""
        return self._window.waiting if self._window is not None else 0

    async def backlog_shorter_than(self, mark: int) -> None:
        """Return once fewer than `mark` deliveries wait for a slot here, or the connection has ended."""
        if self._window is not None:
            await self._window.shorter_than(mark)

    async def acknowledge(self, message: ApplicationMessage) -> None:
        """PUBACK a QoS 1 PUBLISH from the client (SecureBroker calls it once the message is routed)."""
        if message.qos == QOS_1 and message.packet_id is not None and message.puback_packet is None:
            message.puback_packet = PubackPacket.build(message.packet_id)
            await self._send_packet(message.puback_packet)

    async def handle_subscribe(self, subscribe: Any) -> None:
        self._requests.put_nowait(Subscription(subscribe.variable_header.packet_id, subscribe.payload.topics))

    async def handle_unsubscribe(self, unsubscribe: Any) -> None:
        self._requests.put_nowait(UnSubscription(unsubscribe.variable_header.packet_id, unsubscribe.payload.topics))

    def _init_session(self, session: Session) -> None:
        super()._init_session(session)
        self.logger = _AMQTT_LOG  # amqtt's own logger, not a LoggerAdapter per connection (0.15 KB): its lines lose the client id
        session.delivered_message_queue = self._requests  # type: ignore[assignment]  # amqtt's incoming flows put PUBLISHes here
        in_flight = sum(1 for message in session.inflight_out.values() if message.qos in (QOS_1, QOS_2))
        self._window = InflightWindow(self.max_inflight, in_flight, session.retained_messages.put_nowait)
        # amqtt re-armed a write timer on every packet sent, for a handler that does nothing when it
        # fires (the broker sends no PINGREQ): half the broker's timers per message. Keep-alive is read-side.
        self.keepalive_timeout = None

    def keep_alive_deadline(self) -> float | None:
        """Seconds a connection may stay silent: 1.5 x its keep-alive, or no limit for 0 [MQTT-3.1.2-24]."""
        keep_alive = self.session.keep_alive if self.session is not None else 0
        return 1.5 * keep_alive if keep_alive > 0 else None

    async def _reader_loop(self) -> None:
        """Read, check and hand on the client's packets until it leaves, breaks a rule or outstays its keep-alive."""
        assert self.session is not None
        reader = asyncio.current_task()
        assert reader is not None
        silence = SilenceWatch(self.keep_alive_deadline(), reader)
        try:
            while self.reader is not None:
                silence.waiting()
                frame = await read_frame(self.reader, self.max_packet_size)
                silence.heard()
                if frame is None:
                    break
                handling = await self._handle_frame(*frame)
                if handling is not None:
                    self._track(handling)
                del frame  # not held while the next packet is awaited (a PUBLISH's body: up to 1 MB)
        except (MQTTError, AMQTTError) as violation:  # ProtocolViolation, or a packet above the size limit
            log.warning("mqtt.protocol_violation", extra={"client_id": self.session.client_id, "error": str(violation)})
        except (NoDataError, ConnectionError):
            pass  # the stream ended inside a packet
        except asyncio.CancelledError:
            if silence.expired:  # not stop(): this task goes on to clean up, uncancelled
                reader.uncancel()
                log.info("mqtt.keep_alive_expired", extra={"client_id": self.session.client_id})
            # else stop(): the clean-up below still runs
        except Exception:
            log.exception("mqtt.reader_failed", extra={"client_id": self.session.client_id})
        silence.stop()
        for task in list(self._handling or ()):
            task.cancel()
        await self.handle_connection_closed()
        self._reader_stopped.set()
        await self.stop()

    def _track(self, task: asyncio.Task[None]) -> None:
        """Keep a packet's handler task until it ends (cancelled if the connection ends first)."""
        if self._handling is None:
            self._handling = set()
        self._handling.add(task)
        task.add_done_callback(self._untrack)

    def _untrack(self, task: asyncio.Task[None]) -> None:
        if self._handling is not None:
            self._handling.discard(task)
            if not self._handling:
                self._handling = None  # an idle connection keeps no empty set (216 bytes)

    async def _handle_frame(self, header: MQTTFixedHeader, body: bytes) -> asyncio.Task[None] | None:
        """Check one packet, decode it with amqtt's class and start its handler (amqtt's dispatch, in order);
        a QoS 0 or 1 PUBLISH is queued for routing here, the reader waiting while `MAX_UNROUTED` are."""
        check_packet(header, body)
        packet: Any = await packet_class(header).from_stream(BufferReader(body), fixed_header=header)
        if header.packet_type in (PUBACK, PUBREC, PUBCOMP):
            self._check_acknowledgement(header.packet_type, packet.variable_header.packet_id)
        await self.plugins_manager.fire_event(MQTTEvents.PACKET_RECEIVED, packet=packet, session=self.session)
        if header.packet_type == PUBLISH and packet.qos in (QOS_0, QOS_1):
            await self._queue_publish(packet)
            return None
        handle = {
            PUBLISH: self.handle_publish, PUBACK: self.handle_puback, PUBREC: self.handle_pubrec,
            PUBREL: self.handle_pubrel, PUBCOMP: self.handle_pubcomp, SUBSCRIBE: self.handle_subscribe,
            UNSUBSCRIBE: self.handle_unsubscribe, PINGREQ: self.handle_pingreq, DISCONNECT: self.handle_disconnect,
        }[header.packet_type]  # fmt: skip
        return asyncio.create_task(handle(packet))

    async def _queue_publish(self, publish: Any) -> None:
        """amqtt's incoming QoS 0 and 1 flows without their PUBACK (sent once routed), then wait for room."""
        if publish.qos == QOS_0 and publish.dup_flag:
            _AMQTT_LOG.warning("[MQTT-3.3.1-2] DUP flag must set to 0 for QOS 0 message. Message ignored")
            return
        message = IncomingApplicationMessage(
            publish.variable_header.packet_id, publish.topic_name, publish.qos, publish.data, publish.retain_flag
        )
        message.publish_packet = publish
        self._requests.put_nowait(message)
        await self._requests.shorter_than(MAX_UNROUTED)

    def _check_acknowledgement(self, kind: int, packet_id: int) -> None:
        """An acknowledgement must fit its delivery's QoS flow; one for an unknown packet id is ignored (as Mosquitto)."""
        assert self.session is not None
        message = self.session.inflight_out.get(packet_id)
        if message is None:
            return
        if kind == PUBACK and message.qos != QOS_1:
            raise ProtocolViolation(MALFORMED, f"PUBACK for the QoS {message.qos} delivery {packet_id}")
        if kind in (PUBREC, PUBCOMP) and message.qos != QOS_2:
            raise ProtocolViolation(MALFORMED, f"{'PUBREC' if kind == PUBREC else 'PUBCOMP'} for the QoS 1 delivery {packet_id}")
        if kind == PUBCOMP and message.pubrec_packet is None:
            raise ProtocolViolation(MALFORMED, f"PUBCOMP before PUBREC for delivery {packet_id}")

    async def _retry_deliveries(self) -> None:
        assert self.session is not None
        in_flight = [*self.session.inflight_in.values(), *self.session.inflight_out.values()]
        for message in in_flight:
            if message.qos not in (QOS_1, QOS_2):
                continue
            task = asyncio.create_task(self._handle_message_flow(message))  # type: ignore[arg-type]
            if self._redeliveries is None:
                self._redeliveries = set()
            self._redeliveries.add(task)
            task.add_done_callback(self._redelivery_done)

    def _redelivery_done(self, task: asyncio.Task[None]) -> None:
        assert self._redeliveries is not None
        self._redeliveries.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("mqtt.redelivery_failed", extra={"error": repr(task.exception())})

    def deliver(self, topic: str, data: bytes | bytearray, qos: int | None, retain: bool) -> Coroutine[Any, Any, OutgoingApplicationMessage]:
        """A delivery to run as a task: a QoS 1 or 2 one joins the line for an in-flight slot now (counted in
        `backlog` before the task runs), and the task waits for its slot, or it goes to the offline queue."""
        slot = None
        if qos in (QOS_1, QOS_2) and self._window is not None:
            slot = self._window.reserve(RetainedApplicationMessage(None, topic, data, qos))  # as the offline queue holds it
        return self._publish_in_slot(slot, topic, data, qos, retain)

    async def _publish_in_slot(
        self, slot: asyncio.Future[bool] | None, topic: str, data: bytes | bytearray, qos: int | None, retain: bool
    ) -> OutgoingApplicationMessage:
        if slot is not None:
            assert self._window is not None
            if not await self._window.take(slot):  # the connection ended first
                return OutgoingApplicationMessage(None, topic, qos, data, retain)  # queued for the session's resume
        # nothing from here to the PUBLISH's write (amqtt's first-come write lock) yields: sent in the order taken
        return await super().mqtt_publish(topic, data, qos, retain)

    async def mqtt_publish(
        self, topic: str, data: bytes | bytearray, qos: int | None, retain: bool, ack_timeout: int | None = None
    ) -> OutgoingApplicationMessage:
        """Send a delivery (see `deliver`)."""
        return await self.deliver(topic, data, qos, retain)

    def _release_slot(self) -> None:
        if self._window is not None:
            self._window.release()

    async def handle_disconnect(self, disconnect: Any) -> None:
        """The connection ended (DISCONNECT, or None when it dropped or was closed): the first end counts."""
        if self._window is not None:
            self._window.close()  # before the session is marked offline: waiting deliveries stay first in its queue
        if not self._requests.closed:
            self.disconnect_packet = disconnect
            self._requests.close()

    async def stop(self) -> None:
        await self.handle_disconnect(None)  # a no-op once ended; else (a broker shutdown) it ends as if dropped
        reader = self._reader_task
        if reader is not None and reader is not asyncio.current_task():
            # amqtt cancels its reader once and waits for it forever; on Python 3.11 the
            # reader's wait_for can swallow that cancellation (a broker shutdown hung so).
            await cancel_and_wait(reader, stopped=self._reader_stopped)  # type: ignore[arg-type]
        # Not BrokerProtocolHandler.stop: it settles the disconnect future and empties the pending
        # queues, which `_requests` replaces (and SecureBroker's loop still takes what it holds).
        await ProtocolHandler.stop(self)
        for task in list(self._redeliveries or ()):
            task.cancel()  # still in flight: resent on the next resume

    async def _handle_qos1_message_flow(
        self, app_message: OutgoingApplicationMessage | IncomingApplicationMessage
    ) -> None:
        if app_message.direction != OUTGOING:
            await super()._handle_qos1_message_flow(app_message)
            return
        assert self.session is not None and app_message.packet_id is not None
        packet_id = app_message.packet_id
        self.session.inflight_out.setdefault(packet_id, app_message)  # type: ignore[arg-type]
        app_message.puback_packet = await self._send_publish(app_message, self._puback_waiters)
        self.session.inflight_out.pop(packet_id, None)
        self._release_slot()

    async def _handle_qos2_message_flow(
        self, app_message: OutgoingApplicationMessage | IncomingApplicationMessage
    ) -> None:
        if app_message.direction != OUTGOING:
            await super()._handle_qos2_message_flow(app_message)
            return
        assert self.session is not None and app_message.packet_id is not None
        packet_id = app_message.packet_id
        self.session.inflight_out.setdefault(packet_id, app_message)  # type: ignore[arg-type]
        if app_message.pubrec_packet is None:
            app_message.pubrec_packet = await self._send_publish(app_message, self._pubrec_waiters)
        app_message.pubrel_packet = PubrelPacket.build(packet_id)
        app_message.pubcomp_packet = await self._send_and_wait(app_message.pubrel_packet, self._pubcomp_waiters, packet_id)
        self.session.inflight_out.pop(packet_id, None)
        self._release_slot()

    async def _send_publish(self, app_message: OutgoingApplicationMessage | IncomingApplicationMessage, waiters: dict[int, Any]) -> Any:
        """Send the message's PUBLISH (with DUP after any earlier attempt) and wait for its first acknowledgement."""
        assert app_message.packet_id is not None
        app_message.publish_packet = app_message.build_publish_packet(dup=app_message.publish_packet is not None)
        return await self._send_and_wait(app_message.publish_packet, waiters, app_message.packet_id)

    async def _send_and_wait(self, packet: Any, waiters: dict[int, Any], packet_id: int) -> Any:
        """Send `packet` and wait for the reply with its packet id, without time-out.

        The wait ends with the reply, or with the connection (the waiter is cancelled
        then) and the message stays in flight, to be resent when the session resumes.
        """
        # Register the waiter before sending: a fast reply must find it.
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        waiters[packet_id] = waiter
        try:
            await self._send_packet(packet)
            return await waiter
        finally:
            waiters.pop(packet_id, None)
