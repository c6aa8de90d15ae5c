"""MQTT connections of mqchat's own services (bridge, API) to the configured broker."""

from __future__ import annotations

import asyncio
import secrets
from types import TracebackType
from typing import Self

import aiomqtt

from core.mqtt import internals
from core.security import broker_password, issue_service_token
from core.settings import Settings

# 0 = no client-side cap: paho then skips a scan of every queued message on each PUBACK
# (quadratic under load); the bridge's batches bound what is in flight.
MAX_INFLIGHT = 0
# How long leaving a connection may wait for its DISCONNECT to complete: aiomqtt waits without limit, and on a
# connection whose peer vanished (a machine gone, no RST) the write may wait until the keep-alive gives up.
EXIT_TIMEOUT = 2.0


def service_password(settings: Settings, account: str) -> str:
    """What a service account presents: a short-lived token (embedded broker) or its derived password (external)."""
    if settings.broker == "external":
        return broker_password(settings.jwt_secret, account)
    return issue_service_token(account, settings.jwt_secret)


class ServiceClient(aiomqtt.Client):
    """An aiomqtt client whose packets leave at once: TCP_NODELAY on its socket.

    paho leaves Nagle's algorithm on, so a packet written while an earlier one is
    unacknowledged waits for the peer's (delayed) ACK: the bridge's second and third
    event of a message went out ~10 ms late at low rates (measured, docs/benchmarks.md).
    """

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        internals.set_nodelay(self)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            async with asyncio.timeout(EXIT_TIMEOUT):
                await super().__aexit__(exc_type, exc, tb)
        except TimeoutError:
            internals.give_up_disconnecting(self)


def service_client(
    settings: Settings, account: str, instance: str | None = None, *, clean_session: bool = True, timeout: float = 10,
    address: tuple[str, int] | None = None,
) -> ServiceClient:
    """An aiomqtt client for a service account; its client id is `<account>-<instance>`.

    A fixed `instance` with `clean_session=False` gives a persistent session whose
    QoS 1 messages the broker keeps while the service is away. `address`: one of
    `settings.mqtt_endpoints` (core.mqtt.endpoints), by default the first.
    """
    host, port = address or settings.mqtt_endpoints[0]
    client = ServiceClient(
        host,
        port,
        username=account,
        password=service_password(settings, account),
        identifier=f"{account}-{instance or secrets.token_hex(6)}",
        clean_session=clean_session,
        protocol=aiomqtt.ProtocolVersion.V311,
        timeout=timeout,
        max_inflight_messages=MAX_INFLIGHT,
    )
    return client
