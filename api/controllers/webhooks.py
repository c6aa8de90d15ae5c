"""`/api/admin/webhooks`: outgoing webhooks of the host platform (admin only), docs/integration.md "Webhooks"."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from core.documents import User
from core.services import audit, webhooks
from core.settings import Settings
from core.webhook_delivery import ping
from core.webhook_payloads import (
    WebhookCreated,
    WebhookDeliveryList,
    WebhookList,
    WebhookOut,
    WebhookPatch,
    WebhookReplayOut,
    WebhookReplayRequest,
    WebhookRequest,
    WebhookTestOut,
)


def _detail(value: object) -> str:
    """A changed field as the audit log keeps it."""
    return ",".join(value) if isinstance(value, list) else str(value).lower() if isinstance(value, bool) else str(value)


class WebhooksController(Controller):
    path = "/api/admin/webhooks"
    tags = ["admin", "platform"]

    @post("/", status_code=HTTP_201_CREATED)
    async def create(
        self, data: JSONBody[WebhookRequest], current_user: NamedDependency[User], settings: NamedDependency[Settings]
    ) -> WebhookCreated:
        """A new endpoint; its signing `secret` is in this answer only."""
        created = await webhooks.create_endpoint(data, settings, created_by=str(current_user.id))
        await audit.record(str(current_user.id), "webhook.created", "webhook", created.id, url=created.url, events=",".join(created.events))
        return created

    @get("/")
    async def list_endpoints(self) -> WebhookList:
        """Every endpoint with its backlog and failures, never a secret."""
        return WebhookList(items=await webhooks.list_endpoints())

    @get("/{webhook_id:str}")
    async def get_endpoint(self, webhook_id: FromPath[str]) -> WebhookOut:
        """One endpoint: enabled or why not, backlog, oldest undelivered event, consecutive failures."""
        return await webhooks.describe(await webhooks.get_endpoint(webhook_id))

    @patch("/{webhook_id:str}")
    async def update(
        self, webhook_id: FromPath[str], data: JSONBody[WebhookPatch], settings: NamedDependency[Settings],
        current_user: NamedDependency[User],
    ) -> WebhookOut:  # fmt: skip
        """Change url, events, description; `enabled: true` re-enables a disabled endpoint."""
        updated = await webhooks.update_endpoint(webhook_id, data, settings)
        changed = {field: _detail(value) for field, value in msgspec.structs.asdict(data).items() if value is not msgspec.UNSET}
        await audit.record(str(current_user.id), "webhook.updated", "webhook", webhook_id, **changed)
        return updated

    @delete("/{webhook_id:str}", status_code=HTTP_204_NO_CONTENT)
    async def remove(self, webhook_id: FromPath[str], current_user: NamedDependency[User]) -> None:
        """Delete the endpoint and its pending deliveries."""
        await webhooks.delete_endpoint(webhook_id)
        await audit.record(str(current_user.id), "webhook.deleted", "webhook", webhook_id)

    @post("/{webhook_id:str}/test", status_code=HTTP_200_OK)
    async def test(
        self, webhook_id: FromPath[str], settings: NamedDependency[Settings]
    ) -> WebhookTestOut:
        """Send a `ping` event now and say how the endpoint answered."""
        return await ping(await webhooks.get_endpoint(webhook_id), settings)

    @get("/{webhook_id:str}/deliveries")
    async def deliveries(
        self, webhook_id: FromPath[str],
        status: Annotated[Literal["pending", "delivered", "failed"] | None, QueryParameter()] = None,
        limit: Annotated[int | None, QueryParameter(ge=1, le=100)] = None,
    ) -> WebhookDeliveryList:  # fmt: skip
        """Recent deliveries, last attempted first: `?status=pending|delivered|failed`."""
        return WebhookDeliveryList(items=await webhooks.list_deliveries(webhook_id, status, limit))

    @post("/{webhook_id:str}/replay", status_code=HTTP_200_OK)
    async def replay(
        self, webhook_id: FromPath[str], data: JSONBody[WebhookReplayRequest]
    ) -> WebhookReplayOut:
        """Send again every kept event (30 days) since `since` that the endpoint subscribes to."""
        return WebhookReplayOut(replayed=await webhooks.replay(webhook_id, data.since))
