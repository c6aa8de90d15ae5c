"""Where webhooks may go: URL rules and the address check made at every connection.

A webhook URL is chosen by an admin, but the request is made from inside the
deployment, so it must not become a way to reach internal hosts (SSRF). The
check is made on the addresses a name resolves to *when connecting* (the HTTP
client's network backend below), not once when the URL is saved, so a name that
later resolves to 127.0.0.1 (DNS rebinding) is refused too; redirects are never
followed. `MQCHAT_WEBHOOK_ALLOW_PRIVATE=true` (the development default) lifts the
address rule for local receivers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from core.errors import InvalidInput
from core.settings import Settings


class TargetRefused(httpx.TransportError):
    """The URL's host is (or resolves to) an address webhooks may not reach."""


def check_url(url: str, settings: Settings) -> None:
    """InvalidInput unless `url` is an absolute http(s) URL without credentials; https only in production."""
    parts = urlsplit(url)
    allowed = ("https",) if settings.is_production else ("https", "http")
    if parts.scheme not in allowed:
        raise InvalidInput("the webhook URL must use https" if settings.is_production else "the webhook URL must be http(s)")
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise InvalidInput("the webhook URL needs a host and no user name or password")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise InvalidInput("the webhook URL has an invalid port") from None


def forbidden(address: str) -> bool:
    """True for loopback, link-local, private, multicast, reserved and unspecified addresses (IPv4-mapped too)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any((ip.is_loopback, ip.is_link_local, ip.is_private, ip.is_multicast, ip.is_reserved, ip.is_unspecified,
                not ip.is_global))  # fmt: skip


async def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to (a literal address resolves to itself)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def permitted_address(host: str, port: int, allow_private: bool) -> str:
    """The address to connect to for `host`; TargetRefused if any address it resolves to is forbidden."""
    try:
        addresses = await resolve(host.strip("[]"), port)
    except OSError as exc:
        raise httpx.ConnectError(f"cannot resolve {host}: {exc}") from None
    if not allow_private:
        refused = [a for a in addresses if forbidden(a)]
        if refused:
            raise TargetRefused(f"{host} resolves to a private or local address ({refused[0]}); refused")
    return addresses[0]


async def check_resolved(url: str, settings: Settings) -> None:
    """InvalidInput when the URL's host resolves to a forbidden address now (names that do not resolve pass)."""
    parts = urlsplit(url)
    try:
        await permitted_address(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80), settings.webhook_allow_private)
    except TargetRefused as exc:
        raise InvalidInput(str(exc)) from None
    except httpx.ConnectError:
        pass


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's default backend, connecting only to a permitted address of the host it resolved itself
    (TLS still verifies the certificate against the URL's host name)."""

    def __init__(self, allow_private: bool) -> None:
        from httpcore._backends.auto import AutoBackend  # httpcore's own default

        self._inner = AutoBackend()
        self._allow_private = allow_private

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:  # fmt: skip
        address = await permitted_address(host, port, self._allow_private)
        return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise TargetRefused("webhooks do not use unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def client(settings: Settings, concurrency: int) -> httpx.AsyncClient:
    """The HTTP client of webhook senders: no redirects, no proxies from the environment, the address check on every connection."""
    transport = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=concurrency * 8), trust_env=False)
    # httpx has no public hook for the network backend; tests/test_webhooks.py fails if this stops working
    transport._pool._network_backend = _CheckedBackend(settings.webhook_allow_private)  # noqa: SLF001
    return httpx.AsyncClient(
        transport=transport,
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(settings.webhook_timeout_ms / 1000),
        headers={"user-agent": "mqchat-webhooks/1"},
    )
