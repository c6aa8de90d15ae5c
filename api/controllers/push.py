"""`/api/push`: the server's VAPID public key and browsers' Web Push subscriptions."""

from __future__ import annotations

from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from core.documents import User
from core.payloads import PushSubscriptionOut, PushSubscriptionRequest, VapidKey
from core.services import push
from core.settings import Settings


class PushController(Controller):
    path = "/api/push"
    tags = ["push"]

    @get("/vapid-public-key")
    async def vapid_public_key(self, current_user: NamedDependency[User], settings: NamedDependency[Settings]) -> VapidKey:
        """The applicationServerKey for `pushManager.subscribe()`; null when push is not configured."""
        return VapidKey(public_key=settings.vapid_public_key if settings.push_enabled else None)

    @post("/subscriptions", status_code=HTTP_201_CREATED)
    async def subscribe(
        self, data: JSONBody[PushSubscriptionRequest], current_user: NamedDependency[User], settings: NamedDependency[Settings]
    ) -> PushSubscriptionOut:
        """Register this browser's subscription (the JSON of `PushSubscription`)."""
        subscription = await push.subscribe(current_user, data.endpoint, data.keys.p256dh, data.keys.auth, settings)
        return PushSubscriptionOut(id=str(subscription.id), endpoint=subscription.endpoint)

    @delete("/subscriptions/{subscription_id:str}", status_code=HTTP_204_NO_CONTENT)
    async def unsubscribe(self, subscription_id: FromPath[str], current_user: NamedDependency[User]) -> None:
        """Stop pushing to this browser."""
        await push.unsubscribe(current_user, subscription_id)
