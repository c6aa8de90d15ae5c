"""The webhook sender: turns recorded events into deliveries per endpoint and sends them.

Runs beside the lead bridge worker and as `mqchat webhooks` alone; several senders
share the backlog. Every poll it
1. fans out events recorded at least SETTLE_MS ago (core.services.webhook_events) into one
   delivery per enabled endpoint that wants them and existed when they were recorded (deterministic
   ids: fanning out twice is harmless); while no endpoint is enabled it reads and marks nothing;
2. for each enabled endpoint not already being served, starts serving it: reads the
   endpoint's undelivered deliveries in order, takes the first of each stream (a conversation,
   a ticket), and sends each stream in order, at most `webhook_concurrency` streams at once.
   A delivery is claimed with a lease (`held_until_ms`, like ticket holds) before it is sent,
   so two senders do not send it both in the normal case; a crashed sender's lease lapses.

A 2xx answer is success. Anything else (other statuses, redirects, timeouts, connection
errors, a refused address) is a failure, retried after base x 3^(n-1) (capped at
base x 7200, plus up to 20 % jitter) until `webhook_max_attempts`: with the default 5 s base
and 12 attempts the schedule spans about 34 hours. A stream waits while its first delivery is
being retried (order per conversation); a delivery that used all its attempts is given up
(`failed`) and the stream goes on. A run of failed attempts disables the endpoint
(`webhook_disable_after_failures`, or failing for `webhook_disable_after_hours`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
from pymongo import ReturnDocument
from pymongo.errors import PyMongoError
from standardwebhooks.webhooks import Webhook

from core import metrics, webhook_targets
from core.clock import iso_from_ms, to_ms, utcnow
from core.db import init_db
from core.documents import User, WebhookDelivery, WebhookEndpoint, WebhookEvent
from core.services.lookup import get_by_id
from core.services.webhooks import delivery_document, insert_deliveries, sent_from_ms, unfanned_filter, wants
from core.settings import Settings
from core.tasks import cancel_and_wait
from core.webhook_payloads import WebhookTestOut

log = logging.getLogger("mqchat.webhooks")

POLL_SECONDS = 0.2
SETTLE_MS = 250  # an event is fanned out once no other writer can still be recording an earlier one of its stream
FAN_OUT_BATCH = 500
WINDOW = 500  # undelivered deliveries of an endpoint read at once
LEASE_MARGIN_MS = 5_000  # the request itself is bounded by the timeout; a crashed sender's claims lapse soon after
MAX_ERROR = 300
EXTERNAL_ID_TTL = 60.0


def _now_ms() -> int:
    return to_ms(utcnow())


def retry_delay_ms(settings: Settings, failed_attempts: int, jitter: Callable[[], float] = random.random) -> int:
    """How long to wait after the `failed_attempts`-th failed attempt: exponential, capped, with jitter."""
    base = settings.webhook_retry_base_ms
    delay = min(base * 3 ** (failed_attempts - 1), base * 7200)
    return int(delay * (1 + 0.2 * jitter()))


def sign(secret: str, event_id: str, at: datetime, body: str) -> dict[str, str]:
    """The Standard Webhooks headers of one request."""
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(event_id, at, body),
        "content-type": "application/json",
    }


class Attempt(msgspec.Struct):
    """How one request went."""

    ok: bool
    status_code: int = 0
    error: str = ""
    duration_ms: int = 0


async def post(http: httpx.AsyncClient, url: str, secret: str, event_id: str, body: str, timeout_s: float) -> Attempt:
    """POST one signed event; never raises for the receiver's faults. The answer's body is not read."""
    started = time.monotonic()
    headers = sign(secret, event_id, datetime.now(UTC), body)
    try:
        async with asyncio.timeout(timeout_s):
            async with http.stream("POST", url, content=body.encode(), headers=headers) as response:
                code = response.status_code
        elapsed = int((time.monotonic() - started) * 1000)
        if 200 <= code < 300:
            return Attempt(True, code, "", elapsed)
        return Attempt(False, code, f"HTTP {code}" + (" (redirects are not followed)" if 300 <= code < 400 else ""), elapsed)
    except TimeoutError:
        error = f"timed out after {int(timeout_s * 1000)} ms"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return Attempt(False, 0, error[:MAX_ERROR], int((time.monotonic() - started) * 1000))


class ExternalIds:
    """User id -> the platform's id, for the users that have one; cached briefly (they do not change)."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[float, str | None]] = {}

    async def of(self, user_ids: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for uid in user_ids:
            cached = self._known.get(uid)
            if cached is None or time.monotonic() - cached[0] > EXTERNAL_ID_TTL:
                user = await get_by_id(User, uid)
                cached = self._known[uid] = (time.monotonic(), user.external_id if user else None)
                if len(self._known) > 100_000:
                    self._known.clear()
            if cached[1] is not None:
                found[uid] = cached[1]
        return found


def event_body(event: dict[str, Any], external_ids: dict[str, str]) -> str:
    """`{type, timestamp, data}`: data is the REST view (plus `change` for tickets) with members' `external_ids`."""
    data = msgspec.json.decode(event["data"])
    data["external_ids"] = external_ids
    return msgspec.json.encode({"type": event["type"], "timestamp": iso_from_ms(event["recorded_ms"]), "data": data}).decode()


async def ping(endpoint: WebhookEndpoint, settings: Settings) -> WebhookTestOut:
    """Send a `ping` event to the endpoint now (not retried) and keep the attempt in its delivery log."""
    now_ms = _now_ms()
    event_id = f"ping:{endpoint.id}:{secrets.token_hex(6)}"
    body = msgspec.json.encode(
        {"type": "ping", "timestamp": iso_from_ms(now_ms), "data": {"webhook_id": str(endpoint.id), "url": endpoint.url}}
    ).decode()
    async with webhook_targets.client(settings, 1) as http:
        attempt = await post(http, endpoint.url, endpoint.secret, event_id, body, settings.webhook_timeout_ms / 1000)
    document = delivery_document(
        str(endpoint.id), {"_id": event_id, "type": "ping", "stream": event_id, "seq": 0, "rank": 0, "recorded_ms": now_ms}, 0
    )
    document.update(
        status="delivered" if attempt.ok else "failed", attempts=1, last_attempt_ms=now_ms,
        last_status_code=attempt.status_code, last_error=attempt.error, last_duration_ms=attempt.duration_ms,
    )  # fmt: skip
    await insert_deliveries([document])
    return WebhookTestOut(
        event_id=event_id, delivered=attempt.ok, status_code=attempt.status_code or None, error=attempt.error or None,
        duration_ms=attempt.duration_ms,
    )  # fmt: skip


class WebhookSender:
    """Fans out recorded events and sends deliveries until cancelled."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._external_ids = ExternalIds()
        self._serving: dict[str, asyncio.Task[None]] = {}
        self._failing: set[str] = set()  # endpoints this sender saw fail since their last success

    async def run(self) -> None:
        """Poll until cancelled; store outages are logged and waited out."""
        log.info("webhooks.sender_started", extra={"allow_private": self._settings.webhook_allow_private})
        async with webhook_targets.client(self._settings, self._settings.webhook_concurrency) as http:
            try:
                while True:
                    try:
                        await self._poll(http)
                    except PyMongoError as exc:
                        log.warning("webhooks.store_unavailable", extra={"error": str(exc)})
                    except Exception:  # a bug must not stop webhooks for good: log it and poll again
                        log.exception("webhooks.poll_failed")
                    await asyncio.sleep(POLL_SECONDS)
            finally:
                for task in self._serving.values():
                    await cancel_and_wait(task)

    async def _poll(self, http: httpx.AsyncClient) -> None:
        endpoints = await WebhookEndpoint.find({"disabled_reason": ""}).to_list()
        await self._fan_out(endpoints)
        for endpoint in endpoints:
            key = str(endpoint.id)
            task = self._serving.get(key)
            if task is None or task.done():
                self._serving[key] = asyncio.create_task(self._serve(http, endpoint))
        for key in [k for k, t in self._serving.items() if t.done()]:
            del self._serving[key]

    async def _fan_out(self, endpoints: list[WebhookEndpoint]) -> None:
        """One delivery per (event, endpoint that wants it and existed then) for events recorded at least SETTLE_MS
        ago; nothing to do (no store command) while no endpoint is enabled."""
        events = WebhookEvent.get_pymongo_collection()
        while True:
            waiting = unfanned_filter(endpoints, _now_ms() - SETTLE_MS)
            if waiting is None:
                return
            ready = await events.find(waiting).sort([("recorded_ms", 1)]).limit(FAN_OUT_BATCH).to_list()
            if not ready:
                return
            sent_from = {str(endpoint.id): sent_from_ms(endpoint) for endpoint in endpoints}
            await insert_deliveries([
                delivery_document(str(endpoint.id), event, event["recorded_ms"])
                for event in ready for endpoint in endpoints
                if wants(endpoint, event["type"]) and event["recorded_ms"] >= sent_from[str(endpoint.id)]
            ])  # fmt: skip
            await events.update_many({"_id": {"$in": [event["_id"] for event in ready]}}, {"$set": {"fanned": 1}})
            if len(ready) < FAN_OUT_BATCH:
                return

    async def _serve(self, http: httpx.AsyncClient, endpoint: WebhookEndpoint) -> None:
        """Send what is due for one endpoint, each stream in order, until nothing is due."""
        try:
            while True:
                current = await WebhookEndpoint.get(endpoint.id)  # changed or disabled meanwhile?
                if current is None or current.disabled_reason or not await self._serve_window(http, current):
                    return
        except PyMongoError as exc:
            log.warning("webhooks.store_unavailable", extra={"error": str(exc), "endpoint": str(endpoint.id)})
        except Exception:
            log.exception("webhooks.serve_failed", extra={"endpoint": str(endpoint.id)})

    async def _serve_window(self, http: httpx.AsyncClient, endpoint: WebhookEndpoint) -> bool:
        """One pass over the endpoint's first undelivered deliveries; True when it sent something (look again)."""
        window = await WebhookDelivery.get_pymongo_collection().find(
            {"endpoint_id": str(endpoint.id), "next_at_ms": {"$gt": 0}}
        ).sort([("seq", 1), ("rank", 1), ("recorded_ms", 1)]).limit(WINDOW).to_list()
        streams: dict[str, list[dict[str, Any]]] = {}
        for delivery in window:
            streams.setdefault(delivery["stream"], []).append(delivery)
        now_ms = _now_ms()
        runnable = [items for items in streams.values() if items[0]["next_at_ms"] <= now_ms and items[0]["held_until_ms"] < now_ms]
        if not runnable:
            return False
        slots = asyncio.Semaphore(self._settings.webhook_concurrency)
        state = {"sent": False, "disabled": False}

        async def drain(items: list[dict[str, Any]]) -> None:
            async with slots:
                for delivery in items:
                    if state["disabled"] or delivery["next_at_ms"] > _now_ms():
                        return
                    outcome = await self._attempt(http, endpoint, delivery)
                    if outcome is None:  # another sender has it
                        return
                    state["sent"] = True
                    if outcome == "disabled":
                        state["disabled"] = True
                    if outcome != "delivered":
                        return

        await asyncio.gather(*(drain(items) for items in runnable))
        return state["sent"] and not state["disabled"]

    async def _attempt(self, http: httpx.AsyncClient, endpoint: WebhookEndpoint, delivery: dict[str, Any]) -> str | None:
        """Claim, send and record one delivery: "delivered", "failed", "disabled" (this failure disabled
        the endpoint) or None when it could not be claimed."""
        settings, deliveries = self._settings, WebhookDelivery.get_pymongo_collection()
        now_ms = _now_ms()
        lease = settings.webhook_timeout_ms + LEASE_MARGIN_MS
        claimed = await deliveries.find_one_and_update(
            {"_id": delivery["_id"], "next_at_ms": {"$gt": 0, "$lte": now_ms}, "held_until_ms": {"$lt": now_ms}},
            {"$set": {"held_until_ms": now_ms + lease}},
            return_document=ReturnDocument.AFTER,
        )
        if claimed is None:
            return None
        event = await WebhookEvent.get_pymongo_collection().find_one({"_id": claimed["event_id"]})
        if event is None:  # expired before it could be delivered
            attempt = Attempt(False, 0, "the event expired before it was delivered")
            attempts, next_at_ms = claimed["attempts"], 0
        else:
            body = event_body(event, await self._external_ids.of(event.get("member_ids", [])))
            attempt = await post(http, endpoint.url, endpoint.secret, event["_id"], body, settings.webhook_timeout_ms / 1000)
            attempts = claimed["attempts"] + 1
            if attempt.ok or attempts >= settings.webhook_max_attempts:
                next_at_ms = 0
            else:
                next_at_ms = _now_ms() + retry_delay_ms(settings, attempts)
        await deliveries.update_one(
            {"_id": claimed["_id"]},
            {"$set": {
                "status": "delivered" if attempt.ok else "failed", "attempts": attempts, "next_at_ms": next_at_ms,
                "held_until_ms": 0, "last_attempt_ms": now_ms, "last_status_code": attempt.status_code,
                "last_error": attempt.error, "last_duration_ms": attempt.duration_ms,
            }},
        )  # fmt: skip
        metrics.WEBHOOK_ATTEMPTS.labels("delivered" if attempt.ok else "retrying" if next_at_ms else "given_up").inc()
        log.info(
            "webhooks.attempt",
            extra={"endpoint": str(endpoint.id), "event_id": claimed["event_id"], "attempt": attempts, "ok": attempt.ok,
                   "status_code": attempt.status_code, "error": attempt.error, "duration_ms": attempt.duration_ms},
        )  # fmt: skip
        if attempt.ok:
            if endpoint.consecutive_failures or str(endpoint.id) in self._failing:  # else nothing to reset
                self._failing.discard(str(endpoint.id))
                await WebhookEndpoint.get_pymongo_collection().update_one(
                    {"_id": endpoint.id}, {"$set": {"consecutive_failures": 0, "failing_since_ms": 0}}
                )
            return "delivered"
        self._failing.add(str(endpoint.id))
        return "disabled" if await self._count_failure(endpoint, attempt.error, now_ms) else "failed"

    async def _count_failure(self, endpoint: WebhookEndpoint, error: str, now_ms: int) -> bool:
        """One more failed attempt in the endpoint's run; True when that run disabled it."""
        settings, endpoints = self._settings, WebhookEndpoint.get_pymongo_collection()
        await endpoints.update_one({"_id": endpoint.id, "failing_since_ms": 0}, {"$set": {"failing_since_ms": now_ms}})
        after = await endpoints.find_one_and_update(
            {"_id": endpoint.id}, {"$inc": {"consecutive_failures": 1}}, return_document=ReturnDocument.AFTER
        )
        if after is None:  # deleted meanwhile
            return True
        failures, since_ms = after["consecutive_failures"], after["failing_since_ms"] or now_ms
        too_long = now_ms - since_ms >= settings.webhook_disable_after_hours * 3_600_000
        if failures < settings.webhook_disable_after_failures and not too_long:
            return False
        reason = f"{failures} consecutive failed attempts since {iso_from_ms(since_ms)}; last: {error}"
        disabled = await endpoints.update_one({"_id": endpoint.id, "disabled_reason": ""}, {"$set": {"disabled_reason": reason}})
        if disabled.modified_count:
            log.warning("webhooks.endpoint_disabled", extra={"endpoint": str(endpoint.id), "reason": reason})
        return True


async def run_webhooks(settings: Settings, stop: asyncio.Event) -> None:
    """`mqchat webhooks`: only the webhook sender, until `stop` is set (it shares the backlog with other senders)."""
    mongo = await init_db(settings)
    sending = asyncio.create_task(WebhookSender(settings).run())
    try:
        await stop.wait()
    finally:
        await cancel_and_wait(sending)
        await mongo.close()
        log.info("webhooks.stopped")
