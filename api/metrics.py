"""`GET /metrics`: every process's metrics (core.metrics) in Prometheus text format, for admins.

Under `mqchat up` the values of all processes (API, bridge workers, broker) are read
from the multiprocess directory (`PROMETHEUS_MULTIPROC_DIR`) and added up; a process
run alone exposes its own. Figures that live in the store or need a probe are read at
scrape time: the ticket queue, the webhook backlog, whether the store and the broker
answer. The caller needs an admin's bearer token (401 without a token, 403 for
others); `MQCHAT_METRICS_PORT` serves the same without a token on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

from litestar import Response, get
from litestar.di import NamedDependency
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from pymongo import AsyncMongoClient

from api.controllers.health import broker_status, store_status
from core.services.backlogs import Backlogs, read_backlogs
from core.settings import Settings

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


class ScrapeFigures:
    """A collector of figures read at scrape time (this process's own: no multiprocess files)."""

    def __init__(self, backlogs: Backlogs | None, store_up: bool, broker_up: bool) -> None:
        self._backlogs = backlogs
        self._store_up = store_up
        self._broker_up = broker_up

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("mqchat_store_up", "1 when the store answers a ping from the API.", value=int(self._store_up))
        yield GaugeMetricFamily(
            "mqchat_broker_up", "1 when the MQTT broker accepts a service connection from the API.", value=int(self._broker_up)
        )
        b = self._backlogs
        if b is None:  # the store did not answer: no queue figures rather than wrong ones
            return
        for name, text, value in (
            ("mqchat_tickets_waiting", "Tickets waiting in the queue (status open).", b.tickets_waiting),
            ("mqchat_tickets_oldest_waiting_seconds", "Age of the oldest waiting ticket (0: none).", b.oldest_ticket_seconds),
            ("mqchat_webhook_backlog", "Webhook deliveries not yet delivered or given up.", b.webhook_backlog),
            ("mqchat_webhook_oldest_pending_seconds", "Age of the oldest undelivered webhook event (0: none).",
             b.oldest_webhook_seconds),
            ("mqchat_webhook_events_unfanned", "Recorded webhook events not yet turned into deliveries.",
             b.webhook_events_unfanned),
            ("mqchat_webhook_endpoints_failing", "Enabled webhook endpoints whose last attempt failed.",
             b.webhook_endpoints_failing),
            ("mqchat_webhook_endpoints_disabled", "Webhook endpoints disabled (by failures or an admin).",
             b.webhook_endpoints_disabled),
        ):  # fmt: skip
            yield GaugeMetricFamily(name, text, value=value)


class _OwnProcess:
    """This process's default registry, for a component run alone (no multiprocess directory)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


async def exposition(settings: Settings, mongo: AsyncMongoClient) -> bytes:
    """The text exposition of every metric plus the scrape-time figures."""
    store, broker = await asyncio.gather(store_status(mongo), broker_status(settings))
    backlogs = await read_backlogs() if store == "ok" else None
    registry = CollectorRegistry(auto_describe=False)
    directory = os.environ.get(MULTIPROCESS_DIR)
    if directory:
        MultiProcessCollector(registry, path=directory)
    else:
        registry.register(_OwnProcess())  # type: ignore[arg-type]
    registry.register(ScrapeFigures(backlogs, store == "ok", broker == "ok"))  # type: ignore[arg-type]
    return await asyncio.to_thread(generate_latest, registry)  # reads every process's files


@get("/metrics", include_in_schema=False, media_type=CONTENT_TYPE_LATEST)
async def metrics(settings: NamedDependency[Settings], mongo: NamedDependency[AsyncMongoClient]) -> Response[bytes]:
    """Prometheus metrics; admins only."""
    return Response(await exposition(settings, mongo), media_type=CONTENT_TYPE_LATEST)
