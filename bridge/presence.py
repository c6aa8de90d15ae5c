"""Presence aggregation: per-device states in, one retained `chat/presence/{uid}` per user out.

A user is online while any device is online, away while any device is away and
none online, offline otherwise. The store keeps the aggregate and `last_seen`
(core.services.presence), so after a restart the bridge rebuilds from the retained
device states it gets again on subscribe, and `reconcile()` clears users the store
still shows as present but who have no device left. Every published change is
followed by what depends on presence: a staff member's `agent.availability`
(core.services.availability), after a device change and after a reconcile alike.

Both maps are bounded (MQCHAT_PRESENCE_USERS users, least recently changed
forgotten first): a user leaves the device map when their last device goes
offline, and forgetting what was last published costs one repeated event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from cachetools import LRUCache

from core import events, topics
from core.clock import iso_from_ms, to_ms, utcnow
from core.events import Delivery
from core.services import availability, presence

log = logging.getLogger("mqchat.bridge.presence")

MAX_USERS = 100_000  # default of MQCHAT_PRESENCE_USERS
_RANK = {"offline": 0, "away": 1, "online": 2}


class PresenceTracker:
    """Device states of every user, and the aggregate last published for each.

    `record` and `present` store and list presence (core.services.presence by default); `follow` gives the
    events that follow a user's presence change (their agent availability by default).
    """

    def __init__(
        self,
        on_change: Callable[[], None] = lambda: None,
        max_users: int = MAX_USERS,
        record: Callable[[str, str, int], Awaitable[None]] = presence.record,
        present: Callable[[], Awaitable[list[str]]] = presence.present_user_ids,
        follow: Callable[[str], Awaitable[list[Delivery]]] = availability.presence_changed,
    ) -> None:
        self._devices: LRUCache[str, dict[str, str]] = LRUCache(max_users)
        self._published: LRUCache[str, str] = LRUCache(max_users)
        self._heard: LRUCache[str, float] = LRUCache(max_users)  # client id -> when its last state came (monotonic)
        # client id -> (user id, its last present status, when its `offline` came (monotonic)): devices that said goodbye
        self._gone: LRUCache[str, tuple[str, str, float]] = LRUCache(max_users)
        self._on_change = on_change
        self._record = record
        self._present = present
        self._follow = follow

    def _aggregate(self, user_id: str) -> str:
        states = self._devices.get(user_id, {}).values()
        return max(states, key=_RANK.__getitem__, default="offline")

    async def device_changed(self, user_id: str, client_id: str, status: str, replayed: bool = False) -> list[Delivery]:
        """Record one device's status; the user's new aggregate presence if it changed. `replayed`: a retained state
        the broker sends again on (re)subscribing, old news: it does not count as hearing from the device."""
        if not replayed:
            self._heard[client_id] = time.monotonic()
        devices = dict(self._devices.get(user_id, {}))
        if status == "offline":
            was = devices.pop(client_id, None)
            if was is not None and not replayed:
                self._gone[client_id] = (user_id, was, time.monotonic())
        else:
            devices[client_id] = status
            self._gone.pop(client_id, None)
        if devices:
            self._devices[user_id] = devices
        else:
            self._devices.pop(user_id, None)
        aggregate = self._aggregate(user_id)
        if self._published.get(user_id) == aggregate:
            return []
        return await self._publish(user_id, aggregate)

    async def _publish(self, user_id: str, status: str) -> list[Delivery]:
        if not topics.is_object_id(user_id):
            return []
        now_ms = to_ms(utcnow())
        await self._record(user_id, status, now_ms)
        self._published[user_id] = status
        self._on_change()
        log.info("presence.changed", extra={"user_id": user_id, "status": status})
        return [*events.presence_event(user_id, status, iso_from_ms(now_ms)), *await self._follow(user_id)]

    async def reconcile(self) -> list[Delivery]:
        """Mark offline every user the store shows present who has no connected device here."""
        deliveries: list[Delivery] = []
        for user_id in await self._present():
            if self._aggregate(user_id) == "offline":
                deliveries += await self._publish(user_id, "offline")
        return deliveries

    def present_devices(self) -> list[tuple[str, str]]:
        """(user id, client id) of every device whose last state was online or away."""
        return [(user_id, client_id) for user_id, devices in self._devices.items() for client_id in devices]

    def gone_since(self, since: float) -> list[tuple[str, str, str]]:
        """(user id, client id, last present status) of every device whose `offline` came live after `since`
        (`time.monotonic()`) and that has said nothing present since."""
        return [(user_id, client_id, was) for client_id, (user_id, was, at) in list(self._gone.items()) if at > since]

    def state(self, user_id: str, client_id: str) -> str:
        """The device's last state: online, away, or offline (also when never heard of)."""
        return self._devices.get(user_id, {}).get(client_id, "offline")

    def heard_since(self, client_id: str, since: float) -> bool:
        """Whether a state of this device, published live, came after `since` (`time.monotonic()`)."""
        return self._heard.get(client_id, float("-inf")) > since

    def __len__(self) -> int:
        """Users tracked now (with a connected device or a remembered aggregate)."""
        return len(self._devices.keys() | self._published.keys())
