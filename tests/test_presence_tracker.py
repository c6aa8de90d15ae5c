"""PresenceTracker, without servers: per-device states aggregate to one presence per user, only changes
are published, reconcile clears users with no device left, every published change is followed by what depends on
it (an agent's availability), and its maps stay within their bound.
The store is an in-memory one with the shape of core.services.presence."""

from __future__ import annotations

import json
import time

from bson import ObjectId

from bridge.presence import PresenceTracker
from core import topics
from core.events import Delivery


class Store:
    """Stored presence in memory: what core.services.presence keeps in the users collection."""

    def __init__(self) -> None:
        self.status: dict[str, str] = {}

    async def record(self, user_id: str, status: str, at_ms: int) -> None:
        self.status[user_id] = status

    async def present(self) -> list[str]:
        return [uid for uid, status in self.status.items() if status in ("online", "away")]


    async def follow(self, user_id: str) -> list:
        """What follows a change (an agent's availability, in the bridge): a marker per user, to count them."""
        return [Delivery(f"followed/{user_id}", b'{"status": "followed"}')]


def tracker(store: Store, max_users: int = 100, changes: list[int] | None = None) -> PresenceTracker:
    counter = changes if changes is not None else []
    return PresenceTracker(lambda: counter.append(1), max_users, store.record, store.present, store.follow)


def published(deliveries: list) -> list[tuple[str, str]]:
    """The presence events among the deliveries; each must be followed by its follow-up (checked here)."""
    pairs = [(d.topic, json.loads(d.payload)["status"]) for d in deliveries]
    presence = pairs[::2]
    assert pairs[1::2] == [(f"followed/{topic.rsplit('/', 1)[1]}", "followed") for topic, _ in presence], pairs
    return presence


async def test_the_best_device_wins_and_only_changes_are_published() -> None:
    store, changes = Store(), []
    presence, user = tracker(store, changes=changes), str(ObjectId())
    assert published(await presence.device_changed(user, "phone", "away")) == [(topics.user_presence(user), "away")]
    assert published(await presence.device_changed(user, "laptop", "online")) == [(topics.user_presence(user), "online")]
    assert await presence.device_changed(user, "phone", "offline") == [], "laptop still online"
    assert published(await presence.device_changed(user, "laptop", "offline")) == [(topics.user_presence(user), "offline")]
    assert await presence.device_changed(user, "laptop", "offline") == []
    assert store.status == {user: "offline"} and len(changes) == 3


async def test_users_that_are_not_object_ids_are_ignored() -> None:
    store = Store()
    assert await tracker(store).device_changed("not-an-id", "phone", "online") == []
    assert store.status == {}


async def test_reconcile_clears_users_with_no_device_here() -> None:
    store = Store()
    presence, here, gone = tracker(store), str(ObjectId()), str(ObjectId())
    await presence.device_changed(here, "phone", "online")
    store.status[gone] = "away"  # left present by a bridge that stopped
    assert published(await presence.reconcile()) == [(topics.user_presence(gone), "offline")]
    assert store.status == {here: "online", gone: "offline"}


async def test_many_users_stay_within_the_bound() -> None:
    store = Store()
    presence = tracker(store, max_users=100)
    for n in range(3_000):
        user = str(ObjectId())
        await presence.device_changed(user, "phone", "online")
        if n % 2:
            await presence.device_changed(user, "phone", "offline")
        assert len(presence) <= 200, "devices and published aggregates, 100 users each at most"
    assert len(store.status) == 3_000


async def test_a_retained_state_sent_again_is_not_news_of_the_device() -> None:
    """What the broker replays on (re)subscribing is recorded, but only a state published live counts as hearing
    from the device (bridge.lost_wills spares a device heard from since its audit began)."""
    store = Store()
    presence, user = tracker(store), str(ObjectId())
    since = time.monotonic()
    assert published(await presence.device_changed(user, "phone", "online", replayed=True)) == [(topics.user_presence(user), "online")]
    assert presence.present_devices() == [(user, "phone")]
    assert not presence.heard_since("phone", since)
    await presence.device_changed(user, "phone", "online")
    assert presence.heard_since("phone", since)


async def test_a_device_that_said_offline_is_remembered_with_its_state_before() -> None:
    """bridge.lost_wills gives a device whose `offline` came late (a Will, while a node lists it connected) the state
    it had before: the tracker remembers it for an `offline` heard live, not for one replayed or never present."""
    store = Store()
    presence, user = tracker(store), str(ObjectId())
    await presence.device_changed(user, "phone", "away")
    await presence.device_changed(user, "laptop", "online", replayed=True)
    since = time.monotonic()
    await presence.device_changed(user, "phone", "offline")
    await presence.device_changed(user, "laptop", "offline", replayed=True)
    await presence.device_changed(user, "tablet", "offline")
    assert presence.gone_since(since) == [(user, "phone", "away")]
    assert presence.gone_since(time.monotonic()) == []
    assert (presence.state(user, "phone"), presence.state(user, "laptop")) == ("offline", "offline")
    await presence.device_changed(user, "phone", "away", replayed=True)  # given back its state
    assert presence.gone_since(since) == [] and presence.state(user, "phone") == "away"
