"""The API's MQTT connection: REST writes publish their events through it, like the bridge does.

The connection is kept open by a background task that reconnects with backoff, on a
NATS cluster to the next node (core.mqtt.endpoints).
A REST write is stored before its events are published; if the broker stays
unreachable for PUBLISH_WAIT seconds the events are dropped (logged) and clients
catch up through history (`after_seq`). The change's webhook events are recorded
(core.services.webhook_events) before anything is published, like the bridge does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import TypeVar

import aiomqtt
from pymongo.errors import PyMongoError

from core.backoff import Backoff
from core.broker_rights import BrokerRights
from core.events import Delivery
from core.mqtt import service_client
from core.mqtt.endpoints import Endpoints
from core.mqtt.fanout import publish
from core.services import webhook_events
from core.settings import Settings
from core.tasks import cancel_and_wait

log = logging.getLogger("mqchat.api.publisher")

PUBLISH_WAIT = 5.0
V = TypeVar("V")


class EventPublisher:
    """A long-lived `mqchat-api` connection with reconnects."""

    def __init__(self, settings: Settings, rights: BrokerRights) -> None:
        self._settings = settings
        self._rights = rights
        self._client: aiomqtt.Client | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._keep_connected())

    async def stop(self) -> None:
        # The flag ends the loop even when a cancellation arrives inside aiomqtt and comes out as an MqttError.
        self._stopping = True
        if self._task is not None:
            await cancel_and_wait(self._task)

    async def _keep_connected(self) -> None:
        backoff = Backoff(0.5)
        endpoints = Endpoints(self._settings, f"api-{self._settings.api_instance}")  # on NATS: every node
        while not self._stopping:
            try:
                async with service_client(self._settings, "mqchat-api", address=endpoints.current) as client:
                    self._client = client
                    backoff.reset()
                    self._ready.set()
                    log.info("publisher.connected", extra={"instance": self._settings.api_instance, "broker": endpoints.current})
                    async for _ in client.messages:  # no subscriptions: this ends (raises) when the connection breaks
                        pass
            except aiomqtt.MqttError as exc:
                log.warning("publisher.disconnected", extra={"error": str(exc), "retry_in": backoff.delay, "broker": endpoints.current})
                endpoints.failed()
            finally:
                self._ready.clear()
                self._client = None
            await backoff.wait()

    async def publish(self, deliveries: Iterable[Delivery]) -> None:
        """Record the webhook events of a stored change, then publish its events; never raises (the change is stored)."""
        batch = list(deliveries)
        if not batch:
            return
        try:
            await webhook_events.record(batch)
        except PyMongoError as exc:  # the store failed right after storing the change: a retried request records them
            log.error("publisher.webhook_events_lost", extra={"count": len(batch), "error": str(exc)})
        try:
            await asyncio.wait_for(self._ready.wait(), PUBLISH_WAIT)
            assert self._client is not None
            await asyncio.wait_for(publish(self._client, batch, self._rights), PUBLISH_WAIT)
        except (TimeoutError, aiomqtt.MqttError, AssertionError) as exc:
            log.error("publisher.events_dropped", extra={"count": len(batch), "error": type(exc).__name__})

    async def publish_and_return(self, planned: tuple[V, Iterable[Delivery]]) -> V:
        """Publish the events of a stored change (as `publish`); its view, for the response."""
        view, deliveries = planned
        await self.publish(deliveries)
        return view
