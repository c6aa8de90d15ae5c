"""`/api/health`: checks the store and the broker for real; 503 naming the failing part."""

from __future__ import annotations

import asyncio
import logging

import aiomqtt
from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from pymongo import AsyncMongoClient

from core import __version__, restarts
from core.db import ping
from core.mqtt import service_client
from core.payloads import HealthOut
from core.settings import Settings

log = logging.getLogger("mqchat.api.health")
CHECK_TIMEOUT = 3.0


async def store_status(client: AsyncMongoClient) -> str:
    """The store's status: "ok", or "unavailable" when it does not answer a ping within CHECK_TIMEOUT."""
    try:
        await asyncio.wait_for(ping(client), CHECK_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - any failure means the store is not usable
        log.warning("health.store_down", extra={"error": type(exc).__name__})
        return "unavailable"
    return "ok"


async def broker_status(settings: Settings) -> str:
    """The broker's status: "ok", or "unavailable" when it does not accept a service connection within CHECK_TIMEOUT
    (on a NATS cluster: through any node, tried in turn)."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            for address in settings.mqtt_endpoints:
                try:
                    async with service_client(settings, "mqchat-api", timeout=CHECK_TIMEOUT, address=address):
                        return "ok"
                except (aiomqtt.MqttError, OSError) as exc:
                    error: Exception = exc
            raise error
    except (aiomqtt.MqttError, TimeoutError, OSError) as exc:
        log.warning("health.broker_down", extra={"error": type(exc).__name__})
        return "unavailable"


class HealthController(Controller):
    path = "/api/health"
    tags = ["operations"]

    @get("/", responses={503: ResponseSpec(HealthOut, description="The store or the broker is down")})
    async def health(self, settings: NamedDependency[Settings], mongo: NamedDependency[AsyncMongoClient]) -> Response[HealthOut]:
        """Store and broker status, and the components `mqchat up` had to restart; no token needed."""
        store, broker, restarted = await asyncio.gather(
            store_status(mongo), broker_status(settings), asyncio.to_thread(restarts.read, settings.data_dir)
        )
        healthy = store == "ok" and broker == "ok"
        body = HealthOut(
            status="ok" if healthy else "unavailable", store=store, broker=broker, version=__version__, restarts=restarted
        )
        return Response(body, status_code=200 if healthy else 503)
