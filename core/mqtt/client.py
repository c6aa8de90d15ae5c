"""MQTT connections of mqchat's own services (bridge, API) to the configured broker."""

from __future__ import annotations

import asyncio
import secrets
from types import TracebackType
from typing import Any, Self

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
TIMEOUT = 10.0  # seconds an operation may wait for the broker's answer
# On NATS a CONNECT waits while the node loads the client's session from JetStream; when a node has just died and
# the sessions stream elects a new leader, nats-server gives up after its JetStream API time-out (5 s) without
# answering the CONNECT (its log says "unable to connect: loading session record: timeout"; the client waited for
# its own 10 s, measured): a CONNACK that has not come by then is not coming, try again.
NATS_CONNECT_TIMEOUT = 6.0


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
    The CONNACK is awaited `connect_timeout` seconds, every later answer `timeout`.
    """

    def __init__(self, *args: Any, connect_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._connect_timeout = connect_timeout

    async def __aenter__(self) -> Self:
        timeout, self.timeout = self.timeout, self._connect_timeout  # aiomqtt waits for the CONNACK `timeout` seconds
        try:
            await super().__aenter__()
        finally:
            self.timeout = timeout
        internals.set_nodelay(self)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            async with asyncio.timeout(EXIT_TIMEOUT):
                await super().__aexit__(exc_type, exc, tb)
        except TimeoutError:
            internals.give_up_disconnecting(self)


def service_client(
    settings: Settings, account: str, instance: str | None = None, *, clean_session: bool = True, timeout: float | None = None,
    address: tuple[str, int] | None = None,
) -> ServiceClient:
    """An aiomqtt client for a service account; its client id is `<account>-<instance>`.

    A fixed `instance` with `clean_session=False` gives a persistent session whose
    QoS 1 messages the broker keeps while the service is away. `address`: one of
    `settings.mqtt_endpoints` (core.mqtt.endpoints), by default the first. `timeout`: for
    every answer, the CONNACK included (default TIMEOUT; on NATS the CONNACK NATS_CONNECT_TIMEOUT).
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
        timeout=timeout or TIMEOUT,
        connect_timeout=timeout or (NATS_CONNECT_TIMEOUT if settings.broker == "nats" else TIMEOUT),
        max_inflight_messages=MAX_INFLIGHT,
    )
    return client
