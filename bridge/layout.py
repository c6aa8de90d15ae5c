"""A change of the bridge worker count between runs on Mosquitto (bridge.affinity splits the requests by it).

Every worker's persistent session holds every request published while the worker
was away. With the same count as before, each worker serves its share of that
backlog. After a change:

- `queued_under` tells a worker the count its session's backlog was queued under
  (its record in the store, which it then sets to the current count). Until its
  first fence returns, the worker splits that backlog over the workers both counts
  have (`Share.queued_under`): every such session holds all of it, so each request
  is served once, also the share of a worker that is gone or new.
- `retire_sessions`: the lead removes the Mosquitto sessions of workers beyond the
  count, and their records; left alone, each would queue every request for
  `persistent_client_expiration` (30 days). What such a worker had received and not
  acknowledged when it stopped (at most one in-flight window) is dropped with it:
  senders resend what got no `message.created`.
"""

from __future__ import annotations

import logging

import aiomqtt
from pymongo import ReturnDocument

from bridge.affinity import Share
from core.documents import BridgeWorker
from core.mqtt import service_client
from core.settings import Settings

log = logging.getLogger("mqchat.bridge.layout")

ACCOUNT = "mqchat-bridge"  # the service account, and the prefix of every worker's client id


async def prepare(settings: Settings, share: Share | None) -> None:
    """At a worker's start on Mosquitto, before it connects: split its session's backlog by the count it was
    queued under; the lead also retires the sessions of workers beyond the count."""
    previous = await queued_under(settings)
    if share is not None:
        share.queued_under(previous)
    if previous != settings.bridge_workers:
        log.info("bridge.worker_count_changed", extra={"instance": settings.bridge_instance, "before": previous, "now": settings.bridge_workers})
    if settings.is_lead_bridge:
        await retire_sessions(settings)


async def queued_under(settings: Settings) -> int:
    """The worker count this worker last started under (the current one if it never started); records the current one."""
    before = await BridgeWorker.get_pymongo_collection().find_one_and_update(
        {"_id": settings.bridge_instance}, {"$set": {"workers": settings.bridge_workers}},
        upsert=True, return_document=ReturnDocument.BEFORE,
    )  # fmt: skip
    return settings.bridge_workers if before is None else int(before["workers"])


async def retire_sessions(settings: Settings) -> list[str]:
    """Remove the persistent sessions (and records) of workers beyond `MQCHAT_BRIDGE_WORKERS`; the instances retired.

    A connection with a clean session replaces the old session, and the broker forgets it on disconnect.
    A broker that cannot be reached is logged; the records stay, so the next start tries again."""
    collection = BridgeWorker.get_pymongo_collection()
    retired = []
    async for record in collection.find({}, projection={"_id": 1}):
        number = str(record["_id"]).removeprefix("worker-")
        if not number.isdigit() or int(number) > settings.bridge_workers:
            retired.append(str(record["_id"]))
    for instance in retired:
        try:
            async with service_client(settings, ACCOUNT, instance, clean_session=True):
                pass
        except aiomqtt.MqttError as exc:
            log.warning("bridge.session_not_retired", extra={"instance": instance, "error": str(exc)})
            return []
        await collection.delete_one({"_id": instance})
    if retired:
        log.info("bridge.sessions_retired", extra={"instances": retired, "workers": settings.bridge_workers})
    return retired
