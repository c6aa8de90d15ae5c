"""Web Push (VAPID): browsers' subscriptions, and sending a notification to all of a user's browsers."""

from __future__ import annotations

import json
import logging
from urllib.parse import urlparse

from py_vapid import Vapid
from pymongo.errors import DuplicateKeyError
from pywebpush import WebPushException, webpush_async

from core.documents import PushSubscription, User
from core.errors import InvalidInput, NotFound
from core.services.lookup import get_by_id
from core.settings import Settings

log = logging.getLogger("mqchat.push")

GONE = (404, 410)


async def subscribe(user: User, endpoint: str, p256dh: str, auth: str, settings: Settings) -> PushSubscription:
    """Register (or take over) a browser subscription for `user`."""
    scheme = urlparse(endpoint).scheme
    if scheme != "https" and (settings.is_production or scheme != "http"):
        raise InvalidInput("the push endpoint must be an https URL")
    existing = await PushSubscription.find_one({"endpoint": endpoint})
    if existing is not None:
        await existing.delete()
    subscription = PushSubscription(user_id=str(user.id), endpoint=endpoint, p256dh=p256dh, auth=auth)
    try:
        await subscription.insert()
    except DuplicateKeyError:  # registered concurrently: one of the two wins
        raise InvalidInput("this endpoint was just registered, retry") from None
    return subscription


async def unsubscribe(user: User, subscription_id: str) -> None:
    """Remove one of the user's own subscriptions."""
    subscription = await get_by_id(PushSubscription, subscription_id)
    if subscription is None or subscription.user_id != str(user.id):
        raise NotFound("subscription not found")
    await subscription.delete()


class PushSender:
    """Sends encrypted Web Push messages signed with the server's VAPID key, one browser at a time.

    Each subscription is sent to on its own so that the caller can retry it alone: one unreachable or
    failing browser never holds back the others (issue 19).
    """

    def __init__(self, settings: Settings) -> None:
        assert settings.vapid_private_key is not None
        self._vapid = Vapid.from_pem(settings.vapid_private_key.encode())
        self._subject = settings.vapid_subject

    @staticmethod
    async def subscriptions(user_id: str) -> list[PushSubscription]:
        """The user's browsers; an empty list means there is nothing to push to."""
        return await PushSubscription.find({"user_id": user_id}).to_list()

    async def send_to(self, subscription: PushSubscription, payload: dict[str, object]) -> bool:
        """Push to one browser. False when the push service says it is gone (404/410): it is deleted then.

        Other failures raise, so the caller can retry this subscription later.
        """
        info = {"endpoint": subscription.endpoint, "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth}}
        try:
            await webpush_async(
                info, json.dumps(payload), vapid_private_key=self._vapid,
                vapid_claims={"sub": self._subject}, ttl=3600, timeout=10,
            )  # fmt: skip
        except WebPushException as exc:
            if exc.response is not None and getattr(exc.response, "status", None) in GONE:
                await subscription.delete()
                log.info("push.subscription_expired", extra={"user_id": subscription.user_id, "subscription_id": str(subscription.id)})
                return False
            raise
        return True
