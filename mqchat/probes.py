"""Health probes `mqchat up` asks before it calls the system ready; each says why a part does not answer.

The broker probe is a real MQTT CONNECT with a service account (a bare TCP
connect made amqtt warn "No data to decode MQTT packet fixed header").
"""

from __future__ import annotations

import asyncio
import errno
import socket

import aiomqtt
import httpx
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError, ServerSelectionTimeoutError

from core.mqtt import service_client
from core.settings import Settings
from mqchat.causes import describe, mongo_reason, port_in_use

PROBE_TIMEOUT = 3.0


class NotReady(Exception):
    """A part did not answer its probe; the message says why in plain words."""


def check_port_free(host: str, port: int) -> None:
    """Raise NotReady(`port N is already in use`) when nothing can listen on host:port now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise NotReady(port_in_use(port)) from None
            raise NotReady(f"cannot listen on {host}:{port}: {exc.strerror}") from None


async def store_answers(uri: str, timeout: float = 5.0) -> None:
    """Ping MongoDB at `uri` (server selection up to `timeout`)."""
    client: AsyncMongoClient = AsyncMongoClient(uri, serverSelectionTimeoutMS=int(timeout * 1000))
    try:
        await client.admin.command("ping")
    except ServerSelectionTimeoutError as exc:
        raise NotReady(mongo_reason(str(exc))) from None
    except PyMongoError as exc:
        raise NotReady(describe(exc)) from None
    finally:
        await client.close()


async def broker_answers(settings: Settings, address: tuple[str, int] | None = None) -> None:
    """CONNECT to the broker (at `address`, one of `settings.mqtt_endpoints`) as the API's service account and DISCONNECT."""
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            async with service_client(settings, "mqchat-api", timeout=PROBE_TIMEOUT, address=address):
                pass
    except (aiomqtt.MqttError, TimeoutError, OSError) as exc:
        raise NotReady(str(exc) or type(exc).__name__) from None


async def api_healthy(url: str) -> None:
    """GET /api/health answers 200 (the API reaches the store and the broker)."""
    try:
        async with httpx.AsyncClient(timeout=PROBE_TIMEOUT) as client:
            response = await client.get(f"{url}/api/health")
    except httpx.HTTPError as exc:
        raise NotReady(str(exc) or type(exc).__name__) from None
    if response.status_code != 200:
        raise NotReady(f"/api/health answered {response.status_code}: {response.text[:200]}")
