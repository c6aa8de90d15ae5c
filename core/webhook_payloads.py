"""Wire shapes of the webhook admin API (`/api/admin/webhooks...`), docs/integration.md "Webhooks"."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

EventType = Literal[
    "message.created", "message.updated", "message.deleted", "conversation.created", "conversation.updated",
    "ticket.created", "ticket.updated", "*",
]
EVENT_TYPES: tuple[str, ...] = EventType.__args__  # type: ignore[attr-defined]
WebhookUrl = Annotated[str, Meta(min_length=8, max_length=2048, pattern=r"^https?://[^\s]+$")]
Description = Annotated[str, Meta(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]
EventList = Annotated[list[EventType], Meta(min_length=1, max_length=len(EVENT_TYPES))]


class WebhookRequest(Struct, forbid_unknown_fields=True):
    """`POST /api/admin/webhooks`."""

    url: WebhookUrl
    events: EventList
    description: Description = ""


class WebhookPatch(Struct, forbid_unknown_fields=True):
    """`PATCH /api/admin/webhooks/{id}`: only the fields given change; `enabled: true` clears a disabled reason."""

    url: WebhookUrl | UnsetType = UNSET
    events: EventList | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET


class WebhookOut(Struct):
    """An endpoint with its health: what is waiting for it and how it has been failing."""

    id: str
    url: str
    events: list[str]
    description: str
    enabled: bool
    disabled_reason: str | None
    created_at: str
    consecutive_failures: int
    backlog: int  # events not yet delivered (being retried included)
    oldest_undelivered_at: str | None
    given_up: int  # deliveries that exhausted their retries (kept until they expire)


class WebhookCreated(Struct):
    """A new endpoint; `secret` (Standard Webhooks `whsec_...`) is in this answer only."""

    id: str
    url: str
    events: list[str]
    description: str
    secret: str
    enabled: bool
    created_at: str


class WebhookList(Struct):
    items: list[WebhookOut]


class WebhookDeliveryOut(Struct):
    """One event for one endpoint: its state and its last attempt."""

    id: str
    event_id: str
    type: str
    status: str  # pending | delivered | failed
    attempts: int
    status_code: int | None
    error: str | None
    duration_ms: int | None
    last_attempt_at: str | None
    next_retry_at: str | None


class WebhookDeliveryList(Struct):
    items: list[WebhookDeliveryOut]


class WebhookReplayRequest(Struct, forbid_unknown_fields=True):
    """`POST /api/admin/webhooks/{id}/replay`: send again every recorded event since this ISO-8601 time."""

    since: Annotated[str, Meta(min_length=10, max_length=40)]


class WebhookReplayOut(Struct):
    replayed: int


class WebhookTestOut(Struct):
    """The `ping` sent by `POST /api/admin/webhooks/{id}/test` and how the endpoint answered."""

    event_id: str
    delivered: bool
    status_code: int | None
    error: str | None
    duration_ms: int
