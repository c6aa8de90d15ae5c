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

Stock `stop` cancels the packet reader once and waits for it without limit; on
Python 3.11 the reader's `wait_for` can swallow that cancellation (a broker
shutdown hung so, in 1 of ~10 CI runs). Here the reader is cancelled until it stops.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from amqtt.mqtt.constants import QOS_1
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.mqtt.puback import PubackPacket
from amqtt.session import (
    OUTGOING,
    IncomingApplicationMessage,
    OutgoingApplicationMessage,
)

from core.tasks import cancel_and_wait

log = logging.getLogger("mqchat.broker.delivery")


class ReliableProtocolHandler(BrokerProtocolHandler):
    """BrokerProtocolHandler whose outgoing QoS 1 messages leave the session only when acknowledged."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._redeliveries: set[asyncio.Task[None]] = set()

    async def _retry_deliveries(self) -> None:
        assert self.session is not None
        for message in list(self.session.inflight_out.values()):
            if message.qos != QOS_1:
                continue
            task = asyncio.create_task(self._handle_message_flow(message))  # type: ignore[arg-type]
            self._redeliveries.add(task)
            task.add_done_callback(self._redelivery_done)

    def _redelivery_done(self, task: asyncio.Task[None]) -> None:
        self._redeliveries.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("mqtt.redelivery_failed", extra={"error": repr(task.exception())})

    async def stop(self) -> None:
        reader = self._reader_task
        if reader is not None and reader is not asyncio.current_task():
            # amqtt cancels its reader once and waits for it forever; on Python 3.11 the
            # reader's wait_for can swallow that cancellation (a broker shutdown hung so).
            await cancel_and_wait(reader, stopped=self._reader_stopped)
        await super().stop()
        for task in list(self._redeliveries):
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
        publish_packet = app_message.build_publish_packet(dup=app_message.publish_packet is not None)
        # Register the waiter before sending: a fast PUBACK must find it.
        waiter: asyncio.Future[PubackPacket] = asyncio.get_running_loop().create_future()
        self._puback_waiters[packet_id] = waiter
        try:
            await self._send_packet(publish_packet)
            app_message.publish_packet = publish_packet
            # No time-out: the message waits for its PUBACK, or for the connection to end
            # (the waiter is cancelled then) and is resent when the session resumes.
            app_message.puback_packet = await waiter
        finally:
            self._puback_waiters.pop(packet_id, None)
        self.session.inflight_out.pop(packet_id, None)
