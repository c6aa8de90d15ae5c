"""`run_bridge`: consume outbox requests, persist, publish, and only then acknowledge.

Flow of one request: the broker delivers `chat/users/{uid}/outbox/{action}`
(QoS 1, persistent session) -> a micro-batch is collected -> bridge.pipeline
decodes, authorizes and persists through core.services.chat -> the planned
events are published (QoS 1, awaited) -> the deliveries are acknowledged
(PUBACK). paho's manual acks make the last step explicit: if the bridge dies
before it, the broker redelivers and the idempotency key absorbs the repeat.
"""

from __future__ import annotations

import asyncio
import logging

import aiomqtt

from bridge.pipeline import Pipeline, StoreUnavailable
from bridge.ticket_dispatcher import TicketDispatcher
from core import events, topics
from core.db import init_db
from core.fanout import publish
from core.mqtt import service_client
from core.services.tickets import Limits
from core.settings import Settings

log = logging.getLogger("mqchat.bridge")

BRIDGE_INSTANCE = "worker-1"
MAX_BATCH = 500
BATCH_WINDOW = 0.002
PRESENCE_SETTLE = 2.0
MAX_BACKOFF = 10.0


async def _next_batch(client: aiomqtt.Client) -> list[aiomqtt.Message]:
    """Wait for one delivery, then take what else arrives within BATCH_WINDOW (at most MAX_BATCH)."""
    batch = [await anext(client.messages)]
    if not len(client.messages):
        await asyncio.sleep(BATCH_WINDOW)
    while len(client.messages) and len(batch) < MAX_BATCH:
        batch.append(await anext(client.messages))
    return batch


def _acknowledge(client: aiomqtt.Client, batch: list[aiomqtt.Message]) -> None:
    for message in batch:
        if message.qos > 0:
            client._client.ack(message.mid, message.qos)  # noqa: SLF001 - aiomqtt exposes no manual ack


async def _process_until_done(client: aiomqtt.Client, pipeline: Pipeline, batch: list[aiomqtt.Message]) -> None:
    """Process the batch, retrying with backoff while the store is unavailable; then publish and ack."""
    backoff = 0.2
    while True:
        try:
            deliveries = await pipeline.process(batch)
            break
        except StoreUnavailable as exc:
            log.warning("bridge.store_unavailable", extra={"error": str(exc), "retry_in": backoff, "batch": len(batch)})
        except Exception:
            log.exception("bridge.batch_failed", extra={"batch": len(batch)})
            deliveries = _internal_errors(batch)
            break
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, MAX_BACKOFF)
    await publish(client, deliveries)
    _acknowledge(client, batch)


def _internal_errors(batch: list[aiomqtt.Message]) -> list[events.Delivery]:
    """A bug, not bad input: tell each sender to retry (requests are idempotent)."""
    out: list[events.Delivery] = []
    for message in batch:
        parsed = topics.parse(message.topic.value)
        if parsed is not None and parsed.kind == "outbox":
            out += events.error_event(parsed.owner, parsed.rest, "internal_error", "temporary failure, retry")
    return out


async def _reconcile_presence(client: aiomqtt.Client, pipeline: Pipeline) -> None:
    await asyncio.sleep(PRESENCE_SETTLE)  # retained device states arrive first
    await publish(client, await pipeline.presence.reconcile())


async def _consume(settings: Settings, pipeline: Pipeline, dispatcher: TicketDispatcher) -> None:
    client = service_client(settings, "mqchat-bridge", BRIDGE_INSTANCE, clean_session=False)
    client._client.manual_ack_set(True)  # noqa: SLF001 - before connecting: queued deliveries arrive at once
    async with client, asyncio.TaskGroup() as tasks:
        # Not awaited before consuming: a resumed session's queued deliveries come first,
        # and they wait for our acknowledgements.
        tasks.create_task(client.subscribe(topics.OUTBOX_FILTER, qos=1))
        log.info("bridge.connected", extra={"filter": topics.OUTBOX_FILTER})
        tasks.create_task(_reconcile_presence(client, pipeline))
        tasks.create_task(dispatcher.run(client))
        while True:
            await _process_until_done(client, pipeline, await _next_batch(client))


async def run_bridge(settings: Settings, stop: asyncio.Event) -> None:
    """Consume outbox requests until `stop` is set, reconnecting with exponential backoff."""
    mongo = await init_db(settings)
    dispatcher = TicketDispatcher(Limits.from_settings(settings), settings.assign_interval)
    pipeline = Pipeline(settings.edit_window_seconds, on_presence_change=dispatcher.wake)
    backoff = 0.5
    try:
        while not stop.is_set():
            consuming = asyncio.create_task(_consume(settings, pipeline, dispatcher))
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({consuming, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if stop.is_set():
                consuming.cancel()
                await asyncio.gather(consuming, return_exceptions=True)
                break
            try:
                consuming.result()
            except (aiomqtt.MqttError, OSError, ExceptionGroup) as exc:
                causes = exc.exceptions if isinstance(exc, ExceptionGroup) else (exc,)
                log.warning("bridge.disconnected", extra={"error": "; ".join(map(repr, causes)), "retry_in": backoff})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
    finally:
        await mongo.close()
        log.info("bridge.stopped")
