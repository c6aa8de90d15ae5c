"""The request queue's layout on NATS: a durable consumer per bridge worker, set up again when the count changes.

Worker i (`worker-<i+1>`) pulls every outbox request from a consumer of its own
(core.nats_auth.queue_consumer) and handles its share (bridge.affinity.Share), the
others' being acknowledged with its batches. All consumers start at one stream
sequence, so each sees the same requests; acknowledged in order (AckPolicy.ALL), a
consumer's ack floor says up to where its worker has handled its share. The layout
the consumers were set up under (the worker count, and what was handled before it)
is in each consumer's metadata.

With `MQCHAT_BRIDGE_WORKERS` changed between runs (M -> N), the lead (worker-1) sets
the queue up again before any worker pulls:

1. the snapshot: each old consumer's ack floor (worker j handled its share of every
   request up to it), recorded in consumer 1's metadata, not ready, before any
   consumer moves;
2. consumers 1..N are created or reset at `start`, the lowest floor + 1 (the first
   request some old worker had not handled);
3. the consumers beyond N, and the one all workers shared before affinity, are
   deleted: `$MQTT_msgs` keeps a message until every consumer interested in it has
   acknowledged it, so one left behind would keep every request forever;
4. consumer 1's metadata says ready (the commit); the other workers wait for it.

Then the request at sequence s goes to its owner under N unless s <= the floor of its
owner under M (handled before, `Layout.handled_before`): each is handled once. A
set-up that was interrupted is done again from the recorded snapshot (nobody pulled
meanwhile).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, replace

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, ConsumerInfo, DeliverPolicy
from nats.js.errors import ConsumerInvalidResetError, NotFoundError

from bridge.affinity import worker_index, worker_of
from core.nats_auth import QUEUE_MAX_WORKERS, QUEUE_SHARED_CONSUMER, QUEUE_STREAM, queue_consumer, queue_filter
from core.settings import Settings

log = logging.getLogger("mqchat.bridge.queue_layout")

REDELIVER_AFTER = 10.0  # seconds a fetched request may stay unacknowledged before its worker's consumer hands it out again
MAX_ACK_PENDING = 20_000  # requests handed to a worker and not yet acknowledged
METADATA_KEY = "mqchat.layout"
LEAD_WAIT = 0.5  # seconds between a worker's looks at whether the lead has set the queue up


@dataclass(frozen=True)
class Layout:
    """What the consumers were set up under: `workers`, and what the `before` workers had handled then."""

    workers: int
    before: int  # the worker count the floors were reached under
    floors: tuple[int, ...]  # by old worker index: the stream sequence up to which it had handled its share
    start: int  # the stream sequence the consumers start at
    ready: bool = False

    @property
    def same(self) -> tuple[int, int, tuple[int, ...], int]:
        """The layout without its `ready` flag: a consumer set up under it carries the same."""
        return self.workers, self.before, self.floors, self.start

    def handled_before(self, key: str, sequence: int) -> bool:
        """Whether the request at stream `sequence` with affinity `key` was handled under the count before."""
        return sequence <= self.floors[worker_of(key, self.before)]

    def encode(self) -> str:
        return json.dumps({"workers": self.workers, "before": self.before, "floors": self.floors, "start": self.start, "ready": self.ready})

    @classmethod
    def of(cls, info: ConsumerInfo | None) -> Layout | None:
        """The layout in a consumer's metadata; None without one (or an unreadable one)."""
        raw = ((info.config.metadata or {}) if info is not None else {}).get(METADATA_KEY)
        try:
            data = json.loads(raw or "")
            return cls(int(data["workers"]), int(data["before"]), tuple(int(f) for f in data["floors"]), int(data["start"]), bool(data["ready"]))
        except (ValueError, TypeError, KeyError):
            return None


async def settle(js: JetStreamContext, settings: Settings) -> Layout:
    """The layout this worker pulls under, once it holds for `MQCHAT_BRIDGE_WORKERS`: the lead sets it up
    (after a change of the count, or on the first start), the others wait for it."""
    workers = settings.bridge_workers
    if workers > QUEUE_MAX_WORKERS:
        raise ValueError(f"MQCHAT_BRIDGE_WORKERS={workers}: a NATS cluster runs at most {QUEUE_MAX_WORKERS} bridge workers")
    index = worker_index(settings)
    if index > 0:
        return await _wait_for_the_lead(js, index, workers)
    current = Layout.of(await _info(js, queue_consumer(0)))
    if current is not None and current.ready and current.workers == workers:
        return current
    return await _set_up(js, workers, current)


async def _wait_for_the_lead(js: JetStreamContext, index: int, workers: int) -> Layout:
    waited = False
    while True:
        lead = Layout.of(await _info(js, queue_consumer(0)))
        own = Layout.of(await _info(js, queue_consumer(index)))
        if lead is not None and lead.ready and lead.workers == workers and own is not None and own.same == lead.same:
            return lead
        if not waited:
            log.info("bridge.queue_layout_waiting", extra={"worker": index + 1, "workers": workers})
            waited = True
        await asyncio.sleep(LEAD_WAIT)


async def _set_up(js: JetStreamContext, workers: int, current: Layout | None) -> Layout:
    """Steps 1-4 of the module's doc."""
    if current is not None and not current.ready:  # interrupted: nobody pulled since its snapshot
        before, floors = current.before, current.floors
    elif current is not None:
        before = current.workers
        floors = tuple([await _floor(js, queue_consumer(index), current.start - 1) for index in range(before)])
    else:  # the first start: after the shared consumer, or on a new cluster (requests from now on)
        shared = await _info(js, QUEUE_SHARED_CONSUMER)
        before, floors = 1, ((await js.stream_info(QUEUE_STREAM)).state.last_seq if shared is None else shared.ack_floor.stream_seq,)
    layout = Layout(workers, before, floors, min(floors) + 1)
    for index in range(workers):  # consumer 1 first: it records the snapshot before any consumer moves
        await _place(js, queue_consumer(index), layout)
    retired = [name for name in [*map(queue_consumer, range(workers, QUEUE_MAX_WORKERS)), QUEUE_SHARED_CONSUMER] if await _delete(js, name)]
    ready = replace(layout, ready=True)
    await _tag(js, queue_consumer(0), ready)
    extra = {"workers": workers, "before": before, "floors": list(floors), "start": layout.start, "retired": retired}
    log.info("bridge.queue_layout_set", extra=extra)
    return ready


def _config(name: str, layout: Layout) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=name, filter_subject=queue_filter(), ack_policy=AckPolicy.ALL, ack_wait=REDELIVER_AFTER,
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=layout.start, max_ack_pending=MAX_ACK_PENDING,
        max_deliver=-1, metadata={METADATA_KEY: layout.encode()},
    )  # fmt: skip


async def _place(js: JetStreamContext, name: str, layout: Layout) -> None:
    """The consumer, tagged with `layout`, delivers from `layout.start` on (created, or tagged and reset)."""
    if await _info(js, name) is None:
        await js.add_consumer(QUEUE_STREAM, _config(name, layout))
        return
    await _tag(js, name, layout)
    try:
        await js.reset_consumer(QUEUE_STREAM, name, layout.start)
    except ConsumerInvalidResetError:  # made to start later than that (by hand): made again
        await js.delete_consumer(QUEUE_STREAM, name)
        await js.add_consumer(QUEUE_STREAM, _config(name, layout))


async def _tag(js: JetStreamContext, name: str, layout: Layout) -> None:
    """Record `layout` in the consumer's metadata (the rest of its configuration unchanged)."""
    info = await js.consumer_info(QUEUE_STREAM, name)
    await js.add_consumer(QUEUE_STREAM, replace(info.config, name=None, metadata={METADATA_KEY: layout.encode()}))


async def _floor(js: JetStreamContext, name: str, missing: int) -> int:
    info = await _info(js, name)
    return missing if info is None else info.ack_floor.stream_seq


async def _info(js: JetStreamContext, name: str) -> ConsumerInfo | None:
    try:
        return await js.consumer_info(QUEUE_STREAM, name)
    except NotFoundError:
        return None


async def _delete(js: JetStreamContext, name: str) -> bool:
    """Delete the consumer if it exists; whether it did."""
    try:
        return await js.delete_consumer(QUEUE_STREAM, name)
    except NotFoundError:
        return False
