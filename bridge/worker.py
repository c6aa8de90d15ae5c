"""`run_bridge`: the bridge's connection to the broker, kept alive with backoff until stopped.

Flow of one request: broker delivers `chat/users/{uid}/outbox/{action}` (QoS 1,
persistent session) -> bridge.dispatch routes it by action -> domain service
validates, authorizes and persists -> events are published -> the delivery is
acknowledged.
"""

from __future__ import annotations

import asyncio
import logging

import aiomqtt

from bridge.dispatch import Dispatcher
from core import topics
from core.db import init_db
from core.mqtt import service_client
from core.settings import Settings

log = logging.getLogger("mqchat.bridge")

BRIDGE_INSTANCE = "worker-1"
MAX_BACKOFF = 10.0


async def _consume(settings: Settings, dispatcher: Dispatcher) -> None:
    async with service_client(settings, "mqchat-bridge", BRIDGE_INSTANCE, clean_session=False) as client:
        await client.subscribe(topics.OUTBOX_FILTER, qos=1)
        log.info("bridge.connected", extra={"filter": topics.OUTBOX_FILTER})
        async for message in client.messages:
            await dispatcher.handle(client, message)


async def run_bridge(settings: Settings, stop: asyncio.Event) -> None:
    """Consume outbox requests until `stop` is set, reconnecting with exponential backoff."""
    mongo = await init_db(settings)
    dispatcher = Dispatcher()
    backoff = 0.5
    try:
        while not stop.is_set():
            consuming = asyncio.create_task(_consume(settings, dispatcher))
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({consuming, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if stop.is_set():
                consuming.cancel()
                await asyncio.gather(consuming, return_exceptions=True)
                break
            try:
                consuming.result()
                backoff = 0.5
            except (aiomqtt.MqttError, OSError) as exc:
                log.warning("bridge.disconnected", extra={"error": str(exc), "retry_in": backoff})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
    finally:
        await mongo.close()
        log.info("bridge.stopped")
