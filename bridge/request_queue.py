"""The request queue on NATS (MQCHAT_BROKER=nats): outbox requests pulled from the worker's own JetStream consumer.

nats-server stores every MQTT QoS 1 PUBLISH in its `$MQTT_msgs` stream (interest
retention, replicated like the MQTT state) and waits for that store to succeed
before it sends the PUBACK. Each bridge worker pulls from a durable consumer of its
own on that stream, filtered to the outbox actions (core.nats_auth.queue_filter,
bridge.queue_layout): every worker gets every request and handles its share
(bridge.affinity), so one worker numbers each conversation, in the order the stream
holds its requests. A worker acknowledges a batch (its last request: AckPolicy.ALL)
only once the batch's events are confirmed, and JetStream keeps every request until
every worker has. On opening, the worker resets its consumer to its ack floor: what
a previous run pulled and did not acknowledge (it was killed, or its connection
broke) comes again at once and first, in order; the store's idempotency key absorbs
what that run had stored.

The connection is native NATS, as the bridge service account (its service token,
decided by the auth callout, which allows it core.nats_auth.QUEUE_GRANT only).
QoS 0 requests (typing, mostly) are not stored by nats-server: every worker gets
them from a core NATS subscription to the outbox subjects and the one whose share
they are handles them, at most once, as MQTT promises for QoS 0.
It does not reconnect by itself: a lost connection ends the worker's session,
whose outer loop connects again with a fresh token.
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiomqtt
import nats
from nats.aio.client import Client as NatsConnection
from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError
from nats.js.errors import ServiceUnavailableError

from bridge import queue_layout
from bridge.affinity import request_key, worker_index
from bridge.arrivals import Arrivals, QueueLost
from core import topics
from core.mqtt import service_password
from core.nats_auth import QUEUE_ACCOUNT, QUEUE_STREAM, QUEUE_SUBJECT_PREFIX, queue_consumer, subject, topic_of
from core.settings import Settings
from core.tasks import stop_if_cancelled

log = logging.getLogger("mqchat.bridge.queue")

PULL_WAIT = 1.0  # how long one pull request waits for requests
MQTT_QOS_HEADER = "Nmqtt-Pub"  # nats-server's header on a message an MQTT client published: its QoS


class RequestQueue:
    """One worker's view of the request queue: pulls into `arrivals` (which the worker's MQTT deliveries join),
    acknowledges what the worker handled."""

    def __init__(self, settings: Settings, batch: int) -> None:
        self._settings = settings
        self.arrivals = Arrivals()
        self._batch = batch
        self._consumer = queue_consumer(worker_index(settings))
        self._connection: NatsConnection | None = None
        self._pending: dict[int, Msg] = {}  # id() of the delivery handed to the worker -> its JetStream message
        self._since = time.time()
        self._handed_out_through = 0  # the last stream sequence the consumer had handed out when this session opened
        self.layout: queue_layout.Layout | None = None

    async def open(self) -> None:
        """Connect as the bridge service account, wait for the queue's layout (bridge.queue_layout), and reset
        this worker's consumer to its ack floor: what it handed out and nobody acknowledged comes again, first."""
        name = f"{QUEUE_ACCOUNT}-{self._settings.bridge_instance}"
        self._connection = await nats.connect(
            self._settings.nats_servers, user=QUEUE_ACCOUNT, password=service_password(self._settings, QUEUE_ACCOUNT),
            name=name, connect_timeout=5, allow_reconnect=False,
        )  # fmt: skip
        js = self._connection.jetstream()
        self.layout = await queue_layout.settle(js, self._settings)
        self._handed_out_through = (await js.consumer_info(QUEUE_STREAM, self._consumer)).delivered.stream_seq
        await js.reset_consumer(QUEUE_STREAM, self._consumer)
        await self._connection.subscribe(subject(topics.ACTIONS_FILTER), cb=self._at_most_once)
        self._since = time.time()
        self._pending.clear()

    async def close(self) -> None:
        """Close the connection; what was pulled and not acknowledged is redelivered later."""
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed:
            await connection.close()

    async def pull(self) -> None:
        """Pull requests into `arrivals` while the worker keeps up (at most two batches waiting), until cancelled;
        raises QueueLost. What was pulled and not handed to the worker comes again when the next session opens."""
        assert self._connection is not None
        subscription = await self._connection.jetstream().pull_subscribe_bind(self._consumer, QUEUE_STREAM)
        while True:
            stop_if_cancelled()  # a fetch swallows a cancellation that arrives with its requests
            if self._connection.is_closed:
                raise QueueLost("the connection to the request queue closed")
            await self.arrivals.below(2 * self._batch)
            try:
                fetched = await subscription.fetch(self._batch, timeout=PULL_WAIT)
            except TimeoutError:  # nothing to do (nats-py raises its own subclass, or asyncio's)
                continue
            except ServiceUnavailableError:  # the consumer has no leader yet (just created, or its node died)
                await asyncio.sleep(PULL_WAIT / 4)
                continue
            except ConnectionClosedError as exc:
                raise QueueLost(str(exc)) from None
            for request in fetched:
                delivery = aiomqtt.Message(topic_of(request.subject.removeprefix(QUEUE_SUBJECT_PREFIX)), request.data, 0, False, 0, None)
                self._pending[id(delivery)] = request
                self.arrivals.put(delivery)

    def redelivered(self, delivery: aiomqtt.Message) -> bool:
        """Handed out before (by this consumer; the reset on opening forgets delivery counts): the session
        that had it may have stored it and ended before its events went out."""
        request = self._pending.get(id(delivery))
        return request is not None and (request.metadata.num_delivered > 1 or request.metadata.sequence.stream <= self._handed_out_through)

    def replayed(self, delivery: aiomqtt.Message) -> bool:
        """Redelivered (its first session counted it) or stored before this worker began:
        exempt from the rate limit, like the backlog of an MQTT session."""
        request = self._pending.get(id(delivery))
        return request is not None and (self.redelivered(delivery) or request.metadata.timestamp.timestamp() < self._since)

    def handled_before(self, delivery: aiomqtt.Message, user_id: str, action: str, raw: bytes) -> bool:
        """Handled under the worker count before a change (bridge.queue_layout): skipped, acknowledged with the batch."""
        request = self._pending.get(id(delivery))
        if request is None or self.layout is None or request.metadata.sequence.stream > max(self.layout.floors):
            return False  # the common case, without peeking at the payload
        return self.layout.handled_before(request_key(user_id, action, raw), request.metadata.sequence.stream)

    async def _at_most_once(self, message: Msg) -> None:
        """A QoS 0 request (nats-server stores only QoS 1 and 2): every worker gets it, its owner handles it, or none."""
        if (message.headers or {}).get(MQTT_QOS_HEADER) != "0":
            return  # QoS 1 and 2 come from the queue
        if len(self.arrivals) >= 4 * self._batch:
            log.warning("bridge.qos0_request_dropped", extra={"subject": message.subject})  # the worker is behind: at most once
            return
        self.arrivals.put(aiomqtt.Message(topic_of(message.subject), message.data, 0, False, 0, None))

    async def acknowledge(self, batch: list[aiomqtt.Message]) -> None:
        """Acknowledge the batch's requests (the worker confirmed their events; the batches before it are acknowledged):
        its last one acknowledges them all (AckPolicy.ALL), the other workers' share included."""
        last = None
        for delivery in batch:
            last = self._pending.pop(id(delivery), last)
        if last is not None:
            await last.ack()
