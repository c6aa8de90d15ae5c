"""`run_bridge`: consume outbox requests, persist, publish, and only then acknowledge.

Flow of one request: the broker delivers `chat/users/{uid}/outbox/{action}`
(QoS 1, persistent session) -> a micro-batch is collected -> bridge.pipeline
decodes, authorizes and persists through core.services.chat -> the planned
events are published (QoS 1) -> once the broker confirmed them, the deliveries
are acknowledged (PUBACK); the next batch is stored meanwhile. paho's manual
acks make the last step explicit: if the bridge dies before it, the broker
redelivers and the idempotency key absorbs the repeat. On every connection the
worker publishes a fence to its own topic (`chat/system/fence/<instance>`): what
arrives before it is the backlog queued while the worker was away, replayed
without counting against users' rate limits.

Several workers (`MQCHAT_BRIDGE_WORKERS` > 1) each get every request (on an external
broker a plain subscription in the worker's persistent session, on NATS a durable
JetStream consumer of its own: bridge.request_queue) and handle only their share:
each conversation belongs to one worker (bridge.affinity), so its `seq` is numbered
by one writer in arrival order. A dead worker's share waits in its session (its
consumer) until it is back. On NATS requests are acknowledged to JetStream with the
same rule: only once their events are confirmed. The lead worker (`worker-1`) also
aggregates device presence (on NATS with the Wills lost with a dead node, bridge.lost_wills), sweeps the ticket queue, sends webhooks
(core.webhook_delivery) and indexes new messages for search (core.services.search.indexer, woken
by the batches that wrote messages). The embedded broker has no shared subscriptions: one
worker does everything. A batch's webhook events are recorded before its events
are published, so its requests are acknowledged only once they are recorded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable
from typing import TYPE_CHECKING

import aiomqtt
from pymongo.errors import PyMongoError

from bridge import layout
from bridge.arrivals import Arrivals, QueueLost
from bridge.notifier import Notifier
from bridge.pipeline import Pipeline, StoreUnavailable
from bridge.ticket_dispatcher import TicketDispatcher
from core import events, metrics, topics
from core.backoff import Backoff
from core.broker_rights import BrokerRights, rights_for
from core.db import init_db
from core.mqtt import service_client
from core.mqtt.acks import acknowledge, manual_acks
from core.mqtt.endpoints import Endpoints
from core.mqtt.fanout import publish, send_in_order
from core.services import webhook_events
from core.services.search.indexer import SearchIndexer
from core.services.tickets import Limits
from core.settings import Settings
from core.tasks import cancel_and_wait, stop_if_cancelled
from core.webhook_delivery import WebhookSender

if TYPE_CHECKING:
    from bridge.lost_wills import LostWills
    from bridge.request_queue import RequestQueue

log = logging.getLogger("mqchat.bridge")

MAX_BATCH = 500
MAX_BATCHES_IN_FLIGHT = 4
BATCH_WINDOW = 0.002
PRESENCE_SETTLE = 2.0
STABLE_CONNECTION = 10.0


def subscriptions(settings: Settings) -> list[str]:
    """What this worker consumes over MQTT; every worker also hears membership notices (its conversation cache).

    Plain subscriptions only, never shared ones: with several workers each gets every
    request and keeps its share (bridge.affinity), and device presence goes to the lead.
    Unlike shared subscriptions (forgotten by Mosquitto 2.0.11 when it restarts, measured),
    plain ones of offline persistent sessions keep queueing. On NATS the requests come
    from the request queue (bridge.request_queue), not over MQTT.
    """
    lead_presence = [topics.PRESENCE_FILTER] if settings.is_lead_bridge else []
    if settings.broker == "nats":
        return [topics.MEMBERSHIP_CONTROL, *lead_presence]
    if settings.broker == "embedded" or settings.bridge_workers == 1:
        return [topics.OUTBOX_FILTER, topics.MEMBERSHIP_CONTROL]
    return [topics.ACTIONS_FILTER, topics.MEMBERSHIP_CONTROL, *lead_presence]


def stale_subscriptions(settings: Settings) -> list[str]:
    """Request filters a persistent session may keep from a run with another worker count (or from
    before bridge.affinity): dropped on connecting, so that no request arrives twice or is dealt round-robin."""
    if settings.broker != "external":  # the embedded broker keeps sessions in memory; NATS: bridge.request_queue
        return []
    used = set(subscriptions(settings))
    return [f for f in (topics.OUTBOX_FILTER, topics.ACTIONS_FILTER, topics.PRESENCE_FILTER, topics.SHARED_ACTIONS_FILTER) if f not in used]


async def _next_batch(messages: aiomqtt.client.MessagesIterator | Arrivals) -> tuple[list[aiomqtt.Message], float]:
    """Wait for one delivery, then take what else arrives within BATCH_WINDOW (at most MAX_BATCH);
    the batch and when its first delivery arrived (`time.perf_counter()`)."""
    batch = [await anext(messages)]
    arrived = time.perf_counter()
    if not len(messages):
        await asyncio.sleep(BATCH_WINDOW)
    while len(messages) and len(batch) < MAX_BATCH:
        batch.append(await anext(messages))
    metrics.BRIDGE_BATCH.observe(len(batch))
    return batch, arrived


def _observe_latency(stage: str, batch: list[aiomqtt.Message], arrived: float) -> None:
    """One observation per request of the batch (they arrived together)."""
    elapsed = metrics.since(arrived)
    for _ in batch:
        metrics.BRIDGE_LATENCY.labels(stage).observe(elapsed)


async def _store_until_done(pipeline: Pipeline, batch: list[aiomqtt.Message], queue: RequestQueue | None) -> list[events.Delivery]:
    """Process the batch, retrying with backoff while the store is unavailable; what to publish."""
    backoff = Backoff(0.2)
    while True:
        try:
            return await pipeline.process(batch, queue)
        except StoreUnavailable as exc:
            log.warning("bridge.store_unavailable", extra={"error": str(exc), "retry_in": backoff.delay, "batch": len(batch)})
        except Exception:
            log.exception("bridge.batch_failed", extra={"batch": len(batch)})
            return _internal_errors(batch)
        await backoff.wait()


async def _record_until_done(deliveries: list[events.Delivery]) -> None:
    """Record the batch's webhook events (idempotent), retrying with backoff while the store is unavailable."""
    backoff = Backoff(0.2)
    while True:
        try:
            await webhook_events.record(deliveries)
            return
        except PyMongoError as exc:
            log.warning("bridge.webhook_events_unrecorded", extra={"error": str(exc), "retry_in": backoff.delay})
        await backoff.wait()


async def _acknowledge_when_confirmed(
    client: aiomqtt.Client, queue: RequestQueue | None, batch: list[aiomqtt.Message], arrived: float,
    confirmed: Awaitable[None], previous: asyncio.Task[None] | None,
) -> None:
    """Acknowledge the batch's requests (PUBACK, or to the request queue) once its events are confirmed,
    after the batch before it (MQTT keeps PUBACK order)."""
    await confirmed
    _observe_latency("confirmed", batch, arrived)
    if previous is not None:
        await previous
    acknowledge(client, batch)
    if queue is not None:
        await queue.acknowledge(batch)


def _internal_errors(batch: list[aiomqtt.Message]) -> list[events.Delivery]:
    """A bug, not bad input: tell each sender to retry (requests are idempotent)."""
    out: list[events.Delivery] = []
    for message in batch:
        parsed = topics.parse(message.topic.value)
        if parsed is not None and parsed.kind == "outbox":
            out += events.error_event(parsed.owner, parsed.rest, "internal_error", "temporary failure, retry")
            metrics.OUTBOX_REQUESTS.labels(metrics.outbox_action(parsed.rest), "failed").inc()
    return out


def _refused(granted: tuple | list) -> bool:
    """Whether a SUBACK refused the (one) filter subscribed to."""
    return getattr(granted[0], "value", granted[0]) >= 0x80


async def _subscribe(client: aiomqtt.Client, topic_filter: str) -> None:
    """Subscribe at QoS 1, or end the session if the broker refuses: a NATS node refuses a subscription whose
    JetStream consumer it cannot set up within 5 s (docs/deploy.md, measured for the bench's clients), and the lead
    would go on without its device presence for good; the worker connects again (the next node) and subscribes anew."""
    if _refused(await client.subscribe(topic_filter, qos=1)):
        log.warning("bridge.subscription_refused", extra={"filter": topic_filter})
        raise aiomqtt.MqttError(f"subscription to {topic_filter} refused")


async def _raise_fence(client: aiomqtt.Client, pipeline: Pipeline, fence: bytes) -> None:
    """Publish the fence to this worker's own topic: it arrives after the resumed session's queue."""
    granted = await client.subscribe(pipeline.fence_topic, qos=1)
    if _refused(granted):
        log.warning("bridge.fence_refused", extra={"topic": pipeline.fence_topic})
        pipeline.end_backlog(fence)  # rate limits apply at once, as if there were no backlog
        return
    await client.publish(pipeline.fence_topic, fence, qos=1)


async def _reconcile_presence(client: aiomqtt.Client, pipeline: Pipeline, rights: BrokerRights) -> None:
    await asyncio.sleep(PRESENCE_SETTLE)  # retained device states arrive first
    await publish(client, await pipeline.presence.reconcile(), rights)


async def _open_and_pull(queue: RequestQueue) -> None:
    """On NATS: open the request queue, again while JetStream does not answer in time (a node just died and the
    consumer elects a new leader), and pull from it. Meanwhile the session goes on over MQTT (the lead hears device
    presence); before, the open timed out after 5 s and the whole session began again, MQTT included."""
    backoff = Backoff(0.2, cap=1.0)
    while True:
        try:
            await queue.open()
            break
        except TimeoutError as exc:  # nats-py's own TimeoutError is one too
            log.warning("bridge.queue_unavailable", extra={"error": repr(exc), "retry_in": backoff.delay})
            await queue.close()
        await backoff.wait()
    await queue.pull()


async def _pump(client: aiomqtt.Client, arrivals: Arrivals) -> None:
    """On NATS: the MQTT deliveries join the requests pulled from the queue."""
    async for message in client.messages:
        arrivals.put(message)


async def _consume(
    settings: Settings, broker: tuple[str, int], pipeline: Pipeline, dispatcher: TicketDispatcher, rights: BrokerRights,
) -> None:
    client = manual_acks(service_client(settings, layout.ACCOUNT, settings.bridge_instance, clean_session=False, address=broker))
    fence = pipeline.reconnected()
    queue = None
    if settings.broker == "nats":  # the nats client is imported by workers on that broker only
        from bridge.request_queue import RequestQueue

        queue = RequestQueue(settings, MAX_BATCH)
    try:
        async with client, asyncio.TaskGroup() as tasks:
            # Not awaited before consuming: a resumed session's queued deliveries come first,
            # and they wait for our acknowledgements.
            for topic_filter in subscriptions(settings):
                tasks.create_task(_subscribe(client, topic_filter))
            for topic_filter in stale_subscriptions(settings):
                tasks.create_task(client.unsubscribe(topic_filter))
            tasks.create_task(_raise_fence(client, pipeline, fence))
            messages: aiomqtt.client.MessagesIterator | Arrivals = client.messages
            if queue is not None:  # NATS: requests come from the queue, the rest over MQTT
                tasks.create_task(_open_and_pull(queue))
                tasks.create_task(_pump(client, queue.arrivals))
                messages = queue.arrivals
            log.info("bridge.connected", extra={"instance": settings.bridge_instance, "filters": subscriptions(settings), "broker": broker})
            metrics.BRIDGE_CONNECTED.set(1)
            if settings.is_lead_bridge:
                tasks.create_task(_reconcile_presence(client, pipeline, rights))
                tasks.create_task(dispatcher.run(client, rights))
            # Pipelined: while the broker confirms one batch's events, the next batch is stored.
            # Events go out in batch order on the one connection, and requests are acknowledged
            # in order, each only after its own events were confirmed.
            in_flight: deque[asyncio.Task[None]] = deque()
            while True:
                stop_if_cancelled()  # awaiting an acknowledgement may swallow the TaskGroup's cancellation
                batch, arrived = await _next_batch(messages)
                deliveries = await _store_until_done(pipeline, batch, queue)
                await _record_until_done(deliveries)
                _observe_latency("stored", batch, arrived)
                await rights.apply(deliveries)
                confirmed = send_in_order(client, deliveries)
                previous = in_flight[-1] if in_flight else None
                acknowledging = _acknowledge_when_confirmed(client, queue, batch, arrived, confirmed, previous)
                in_flight.append(tasks.create_task(acknowledging))
                while in_flight and (in_flight[0].done() or len(in_flight) > MAX_BATCHES_IN_FLIGHT):
                    await in_flight.popleft()
    finally:
        if queue is not None:
            await queue.close()


def _start_notifier(settings: Settings) -> asyncio.Task[None] | None:
    """Email/push notifications run beside the lead worker; without SMTP or VAPID settings they are off."""
    if not settings.is_lead_bridge:
        return None
    notifier = Notifier(settings)
    log.info("notifications.configured", extra=notifier.describe())
    return asyncio.create_task(notifier.run()) if notifier.enabled else None


def _lost_wills(settings: Settings, pipeline: Pipeline) -> LostWills | None:
    """On NATS the lead marks offline the devices no node holds (their Wills died with their node)."""
    if settings.broker != "nats" or not settings.is_lead_bridge:
        return None
    from bridge.lost_wills import LostWills  # imports the nats client

    return LostWills(settings, pipeline.presence)


async def run_bridge(settings: Settings, stop: asyncio.Event) -> None:
    """Consume outbox requests until `stop` is set, reconnecting with exponential backoff."""
    mongo = await init_db(settings)
    rights = rights_for(settings)
    dispatcher = TicketDispatcher(Limits.from_settings(settings), settings.assign_interval, settings.escalation_interval)
    search = SearchIndexer()  # run by the lead worker only; waking it elsewhere does nothing
    pipeline = Pipeline(settings, on_presence_change=dispatcher.wake, on_messages_written=search.wake)
    if settings.broker == "external":  # Mosquitto keeps the workers' sessions across runs, queued under a worker count
        await layout.prepare(settings, pipeline.share)
    notifying = _start_notifier(settings)
    sending = asyncio.create_task(WebhookSender(settings).run()) if settings.is_lead_bridge else None
    indexing = asyncio.create_task(search.run()) if settings.is_lead_bridge else None
    lost_wills = _lost_wills(settings, pipeline)
    auditing = asyncio.create_task(lost_wills.run()) if lost_wills is not None else None
    backoff = Backoff(0.5)
    endpoints = Endpoints(settings, settings.bridge_instance)  # on NATS: every node, this worker's first
    try:
        while not stop.is_set():
            started = time.monotonic()
            consuming = asyncio.create_task(_consume(settings, endpoints.current, pipeline, dispatcher, rights))
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({consuming, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if stop.is_set():
                await cancel_and_wait(consuming)
                break
            metrics.BRIDGE_CONNECTED.set(0)
            try:
                consuming.result()
            except (aiomqtt.MqttError, OSError, QueueLost, ExceptionGroup) as exc:
                if time.monotonic() - started > STABLE_CONNECTION:
                    backoff.reset()
                causes = exc.exceptions if isinstance(exc, ExceptionGroup) else (exc,)
                error = "; ".join(map(repr, causes))
                log.warning("bridge.disconnected", extra={"error": error, "retry_in": backoff.delay, "broker": endpoints.current})
                if any(isinstance(cause, (aiomqtt.MqttError, OSError)) for cause in causes):
                    endpoints.failed()  # the MQTT side broke: the next node (a session resumes on any node, its state is replicated)
                await backoff.wait()
    finally:
        if indexing is not None:
            await cancel_and_wait(indexing)
        if sending is not None:
            await cancel_and_wait(sending)
        if notifying is not None:
            await cancel_and_wait(notifying)
        if auditing is not None:
            await cancel_and_wait(auditing)
        if lost_wills is not None:
            await lost_wills.close()
        await rights.close()
        await mongo.close()
        log.info("bridge.stopped")
