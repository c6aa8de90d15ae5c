"""Failover between the broker's addresses: a service keeps the node that answers and moves on when it dies."""

from __future__ import annotations

import zlib

from core.settings import Settings


class Endpoints:
    """The MQTT addresses of the broker (every node of a NATS cluster, `Settings.mqtt_endpoints`), tried in turn.

    Services with different `key`s start on different nodes (spreading the load), keep the
    node that answers, and pass to the next one when their connection fails or breaks.
    """

    def __init__(self, settings: Settings, key: str) -> None:
        self._addresses = settings.mqtt_endpoints
        self._index = zlib.crc32(key.encode()) % len(self._addresses)

    @property
    def current(self) -> tuple[str, int]:
        """The address to connect to now."""
        return self._addresses[self._index]

    def failed(self) -> None:
        """The current address failed: the next one is tried (with a single broker, the same one again)."""
        self._index = (self._index + 1) % len(self._addresses)
