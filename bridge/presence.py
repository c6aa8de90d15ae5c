"""Presence aggregation: per-device states in, one retained `chat/presence/{uid}` per user out.

A user is online while any device is online, away while any device is away and
none online, offline otherwise. The store keeps the aggregate and `last_seen`,
so after a restart the bridge rebuilds from the retained device states it gets
again on subscribe, and `reconcile()` clears users the store still shows as
present but who have no device left.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from bson import ObjectId

from core import events, topics
from core.clock import iso_from_ms, to_ms, utcnow
from core.documents import User
from core.events import Delivery

log = logging.getLogger("mqchat.bridge.presence")

_RANK = {"offline": 0, "away": 1, "online": 2}


class PresenceTracker:
    """Device states of every user, and the aggregate last published for each."""

    def __init__(self, on_change: Callable[[], None] = lambda: None) -> None:
        self._devices: dict[str, dict[str, str]] = {}
        self._published: dict[str, str] = {}
        self._on_change = on_change

    def _aggregate(self, user_id: str) -> str:
        states = self._devices.get(user_id, {}).values()
        return max(states, key=_RANK.__getitem__, default="offline")

    async def device_changed(self, user_id: str, client_id: str, status: str) -> list[Delivery]:
        """Record one device's status; the user's new aggregate presence if it changed."""
        devices = self._devices.setdefault(user_id, {})
        if status == "offline":
            devices.pop(client_id, None)
        else:
            devices[client_id] = status
        aggregate = self._aggregate(user_id)
        if self._published.get(user_id) == aggregate:
            return []
        return await self._publish(user_id, aggregate)

    async def _publish(self, user_id: str, status: str) -> list[Delivery]:
        if not topics.is_object_id(user_id):
            return []
        now_ms = to_ms(utcnow())
        await User.get_pymongo_collection().update_one(
            {"_id": ObjectId(user_id)}, {"$set": {"presence_status": status, "last_seen_ms": now_ms}}
        )
        self._published[user_id] = status
        self._on_change()
        log.info("presence.changed", extra={"user_id": user_id, "status": status})
        return events.presence_event(user_id, status, iso_from_ms(now_ms))

    async def reconcile(self) -> list[Delivery]:
        """Mark offline every user the store shows present who has no connected device here."""
        present = await User.find({"presence_status": {"$in": ["online", "away"]}}).to_list()
        deliveries: list[Delivery] = []
        for user in present:
            user_id = str(user.id)
            if self._aggregate(user_id) == "offline":
                deliveries += await self._publish(user_id, "offline")
        return deliveries
