"""What is waiting, read from the store when `/metrics` is scraped: the ticket queue and the webhook backlog.

Each figure is an indexed count or a first-document lookup; per endpoint for webhooks
(there are few endpoints, and the backlog index starts with the endpoint).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.clock import to_ms, utcnow
from core.documents import Ticket, WebhookDelivery, WebhookEndpoint, WebhookEvent
from core.services.webhooks import unfanned_filter


@dataclass(frozen=True, slots=True)
class Backlogs:
    tickets_waiting: int
    oldest_ticket_seconds: float  # 0 when none waits
    webhook_backlog: int  # deliveries still to send (due or waiting for a retry)
    oldest_webhook_seconds: float  # age of the oldest undelivered event, 0 when none
    webhook_events_unfanned: int  # recorded events not yet turned into deliveries
    webhook_endpoints_failing: int  # enabled endpoints whose last attempt failed
    webhook_endpoints_disabled: int


async def read_backlogs() -> Backlogs:
    """The current queue lengths and ages."""
    now = utcnow()
    now_ms = to_ms(now)
    waiting = await Ticket.find({"status": "open"}).count()
    oldest = await Ticket.find({"status": "open"}).sort([("number", 1)]).limit(1).to_list()
    deliveries = WebhookDelivery.get_pymongo_collection()
    backlog, oldest_ms, failing, disabled = 0, now_ms, 0, 0
    endpoints = await WebhookEndpoint.find({}).to_list()
    for endpoint in endpoints:
        if endpoint.disabled_reason:
            disabled += 1
        elif endpoint.consecutive_failures:
            failing += 1
        due = {"endpoint_id": str(endpoint.id), "next_at_ms": {"$gt": 0}}
        backlog += await deliveries.count_documents(due)
        first = await deliveries.find_one(due, sort=[("recorded_ms", 1)], projection={"recorded_ms": 1})
        if first is not None:
            oldest_ms = min(oldest_ms, first["recorded_ms"])
    not_fanned = unfanned_filter([endpoint for endpoint in endpoints if not endpoint.disabled_reason])
    unfanned = await WebhookEvent.get_pymongo_collection().count_documents(not_fanned) if not_fanned else 0
    return Backlogs(
        tickets_waiting=waiting,
        oldest_ticket_seconds=max(0.0, (now - oldest[0].created_at).total_seconds()) if oldest else 0.0,
        webhook_backlog=backlog,
        oldest_webhook_seconds=max(0, now_ms - oldest_ms) / 1000,
        webhook_events_unfanned=unfanned,
        webhook_endpoints_failing=failing,
        webhook_endpoints_disabled=disabled,
    )
