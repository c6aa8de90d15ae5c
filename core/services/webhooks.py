"""Webhook endpoints (admin only): create with a signing secret shown once, list with their health,
change, delete, list deliveries, replay from a point in time.

Sending is core.webhook_delivery's job; recording events is core.services.webhook_events'.
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime
from typing import Any

from msgspec import UNSET
from pymongo.errors import BulkWriteError

from core.clock import iso, iso_from_ms, to_ms, utcnow
from core.documents import WebhookDelivery, WebhookEndpoint, WebhookEvent
from core.errors import InvalidInput, NotFound
from core.services.lookup import get_by_id
from core.services.webhook_events import DUPLICATE_KEY, RETENTION
from core.settings import Settings
from core.webhook_payloads import (
    WebhookCreated,
    WebhookDeliveryOut,
    WebhookOut,
    WebhookPatch,
    WebhookRequest,
)
from core.webhook_targets import check_resolved, check_url

ADMIN_DISABLED = "disabled by an admin"
MAX_DELIVERIES_PAGE = 100
REPLAY_BATCH = 500


def new_secret() -> str:
    """A Standard Webhooks signing secret: `whsec_` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _events(requested: list[str]) -> list[str]:
    return ["*"] if "*" in requested else sorted(set(requested))


def wants(endpoint: WebhookEndpoint, event_type: str) -> bool:
    """True when the endpoint subscribed to this event type (or to `*`)."""
    return "*" in endpoint.events or event_type in endpoint.events


# the clocks of the process that created an endpoint and of the one recording an event may differ a little
CREATED_MARGIN_MS = 5_000


def sent_from_ms(endpoint: WebhookEndpoint) -> int:
    """The recording time from which the endpoint is sent events: what happens after it was created, or enabled
    again after being disabled."""
    return to_ms(endpoint.enabled_at or endpoint.created_at) - CREATED_MARGIN_MS


def unfanned_filter(endpoints: list[WebhookEndpoint], until_ms: int | None = None) -> dict[str, Any] | None:
    """Which recorded events still wait to be turned into deliveries for these (enabled) endpoints; None when
    there is no endpoint, so nothing waits. Events recorded while no endpoint was enabled are never fanned out
    (no endpoint is sent them) and simply expire: with no webhook, recording an event costs one insert, no more."""
    if not endpoints:
        return None
    recorded: dict[str, int] = {"$gte": min(sent_from_ms(endpoint) for endpoint in endpoints)}
    if until_ms is not None:
        recorded["$lte"] = until_ms
    return {"fanned": 0, "recorded_ms": recorded}


async def _checked_url(url: str, settings: Settings) -> str:
    check_url(url, settings)
    await check_resolved(url, settings)
    return url


async def create_endpoint(request: WebhookRequest, settings: Settings, created_by: str) -> WebhookCreated:
    """A new, enabled endpoint; the answer is the only place its secret appears."""
    endpoint = WebhookEndpoint(
        url=await _checked_url(request.url, settings), events=_events(list(request.events)),
        description=request.description.strip(), secret=new_secret(), created_by=created_by,
    )  # fmt: skip
    await endpoint.insert()
    return WebhookCreated(
        id=str(endpoint.id), url=endpoint.url, events=endpoint.events, description=endpoint.description,
        secret=endpoint.secret, enabled=True, created_at=iso(endpoint.created_at) or "",
    )  # fmt: skip


async def get_endpoint(endpoint_id: str) -> WebhookEndpoint:
    """The endpoint; NotFound for an unknown or malformed id."""
    endpoint = await get_by_id(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound("webhook not found")
    return endpoint


async def list_endpoints() -> list[WebhookOut]:
    """Every endpoint with its health, oldest first."""
    return [await describe(endpoint) for endpoint in await WebhookEndpoint.find({}).sort("created_at").to_list()]


async def describe(endpoint: WebhookEndpoint) -> WebhookOut:
    """The endpoint as admins see it: never the secret; backlog, oldest undelivered event and failures."""
    deliveries = WebhookDelivery.get_pymongo_collection()
    endpoint_id = str(endpoint.id)
    backlog = await deliveries.count_documents({"endpoint_id": endpoint_id, "next_at_ms": {"$gt": 0}})
    oldest = await deliveries.find_one(
        {"endpoint_id": endpoint_id, "next_at_ms": {"$gt": 0}}, sort=[("recorded_ms", 1)], projection={"recorded_ms": 1}
    )
    given_up = await deliveries.count_documents({"endpoint_id": endpoint_id, "status": "failed", "next_at_ms": 0})
    return WebhookOut(
        id=endpoint_id, url=endpoint.url, events=endpoint.events, description=endpoint.description,
        enabled=not endpoint.disabled_reason, disabled_reason=endpoint.disabled_reason or None,
        created_at=iso(endpoint.created_at) or "", consecutive_failures=endpoint.consecutive_failures, backlog=backlog,
        oldest_undelivered_at=iso_from_ms(oldest["recorded_ms"]) if oldest else None, given_up=given_up,
    )  # fmt: skip


async def update_endpoint(endpoint_id: str, patch: WebhookPatch, settings: Settings) -> WebhookOut:
    """Change url, events, description or enabled; enabling clears the reason and the failure run."""
    endpoint = await get_endpoint(endpoint_id)
    if patch.url is not UNSET:
        endpoint.url = await _checked_url(patch.url, settings)
    if patch.events is not UNSET:
        endpoint.events = _events(list(patch.events))
    if patch.description is not UNSET:
        endpoint.description = patch.description.strip()
    if patch.enabled is True:
        if endpoint.disabled_reason:  # what was recorded while it was disabled is not queued for it (replay it)
            endpoint.enabled_at = utcnow()
        endpoint.disabled_reason, endpoint.consecutive_failures, endpoint.failing_since_ms = "", 0, 0
    elif patch.enabled is False and not endpoint.disabled_reason:
        endpoint.disabled_reason = ADMIN_DISABLED
    await endpoint.replace()  # whole document: `events` is a list, `$set` of lists is not relied on (docs/store.md)
    return await describe(endpoint)


async def delete_endpoint(endpoint_id: str) -> None:
    """Delete the endpoint and what was waiting for it."""
    endpoint = await get_endpoint(endpoint_id)
    await endpoint.delete()
    await WebhookDelivery.get_pymongo_collection().delete_many({"endpoint_id": endpoint_id})


async def list_deliveries(endpoint_id: str, status: str | None, limit: int | None) -> list[WebhookDeliveryOut]:
    """The endpoint's most recent deliveries (attempted ones by their last attempt, newest first; then waiting ones)."""
    await get_endpoint(endpoint_id)
    query: dict[str, Any] = {"endpoint_id": endpoint_id}
    if status is not None:
        if status not in ("pending", "delivered", "failed"):
            raise InvalidInput("status must be pending, delivered or failed")
        query["status"] = status
    size = max(1, min(limit or 50, MAX_DELIVERIES_PAGE))
    found = await WebhookDelivery.find(query).sort([("last_attempt_ms", -1), ("recorded_ms", -1)]).limit(size).to_list()
    return [delivery_out(d) for d in found]


def delivery_out(delivery: WebhookDelivery) -> WebhookDeliveryOut:
    attempted = delivery.attempts > 0
    return WebhookDeliveryOut(
        id=delivery.id, event_id=delivery.event_id, type=delivery.type, status=delivery.status, attempts=delivery.attempts,
        status_code=delivery.last_status_code or None, error=delivery.last_error or None,
        duration_ms=delivery.last_duration_ms if attempted else None,
        last_attempt_at=iso_from_ms(delivery.last_attempt_ms) if attempted else None,
        next_retry_at=iso_from_ms(delivery.next_at_ms) if attempted and delivery.next_at_ms else None,
    )  # fmt: skip


def delivery_document(endpoint_id: str, event: dict[str, Any], due_ms: int) -> dict[str, Any]:
    """A new delivery of a recorded event (a store document) to one endpoint."""
    return {
        "_id": f"{endpoint_id}|{event['_id']}", "endpoint_id": endpoint_id, "event_id": event["_id"],
        "type": event["type"], "stream": event["stream"], "seq": event["seq"], "rank": event["rank"],
        "recorded_ms": event["recorded_ms"], "status": "pending", "attempts": 0, "next_at_ms": due_ms,
        "held_until_ms": 0, "last_attempt_ms": 0, "last_status_code": 0, "last_error": "", "last_duration_ms": 0,
        "expires_at": utcnow() + RETENTION,
    }  # fmt: skip


async def insert_deliveries(documents: list[dict[str, Any]]) -> None:
    """Insert deliveries, skipping those that exist already (several senders may fan out the same events)."""
    if not documents:
        return
    try:
        await WebhookDelivery.get_pymongo_collection().insert_many(documents, ordered=False)
    except BulkWriteError as exc:
        if any(error.get("code") != DUPLICATE_KEY for error in exc.details.get("writeErrors", [])):
            raise


def _parse_time(value: str) -> int:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput("since must be an ISO-8601 time such as 2026-11-21T12:00:00.000Z") from None
    return to_ms(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


async def replay(endpoint_id: str, since: str) -> int:
    """Send again every kept event since `since` that the endpoint subscribes to; how many."""
    endpoint = await get_endpoint(endpoint_id)
    since_ms, now_ms = _parse_time(since), to_ms(utcnow())
    deliveries = WebhookDelivery.get_pymongo_collection()
    count, batch = 0, []
    cursor = WebhookEvent.get_pymongo_collection().find({"recorded_ms": {"$gte": since_ms}}).sort([("recorded_ms", 1)])
    async for event in cursor:
        if not wants(endpoint, event["type"]):
            continue
        batch.append(event)
        if len(batch) >= REPLAY_BATCH:
            count += await _replay_batch(endpoint_id, batch, now_ms, deliveries)
            batch = []
    count += await _replay_batch(endpoint_id, batch, now_ms, deliveries)
    return count


async def _replay_batch(endpoint_id: str, events: list[dict[str, Any]], now_ms: int, deliveries: Any) -> int:
    if not events:
        return 0
    await insert_deliveries([delivery_document(endpoint_id, event, now_ms) for event in events])
    ids = [f"{endpoint_id}|{event['_id']}" for event in events]
    await deliveries.update_many(
        {"_id": {"$in": ids}, "next_at_ms": 0}, {"$set": {"status": "pending", "attempts": 0, "next_at_ms": now_ms}}
    )
    return len(events)
