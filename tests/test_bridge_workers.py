"""Two bridge workers on Mosquitto, each conversation handled by one of them (bridge.affinity, issue 26
item 6): a burst is numbered in the order each sender sent, with no `seq` taken by the other worker;
one killed during a burst is restarted by `mqchat up` and resumes its share, nothing lost, nothing
stored twice, and the requests queued for it meanwhile are not refused as rate_limited (issue 24,
item 4). The workers keep conversations in memory, and a block reaches them at once (issue 26)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient

from bridge.affinity import worker_of
from core import topics
from tests.metrics_support import scrape, value
from tests.support import Account, Inbox, System, create_staff, device, logged_events, open_conversation, running, signup, worker_pid
from tests.test_blocks import block_holds_for_the_next_mqtt_messages

SENDERS_PER_WORKER = 2
ROUNDS = 40
KILL_AT_ROUND = 8
FLOOD = 30  # at once: more than both workers' bursts
INTERVAL = 0.25  # each sender: 4 requests/s
BURST_CONVERSATIONS = 3  # per worker, both members sending
BURST_ROUNDS = 15
BURST_PACE = 0.15  # each user: under 7 requests/s
QUEUED = 3  # requests each sender publishes while the bridge is down
# 10 requests/s per user and worker, bursts of 4: live traffic stays far below it, but the
# share queued for a dead worker during its restart (a few seconds) is more than a burst.
LIMITS = {"MQCHAT_SEND_RATE": "10", "MQCHAT_SEND_BURST": "4"}


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    data_dir = tmp_path_factory.mktemp("two-workers") / "data"
    with running(System.on_free_ports(data_dir, broker="mosquitto", MQCHAT_BRIDGE_WORKERS="2", **LIMITS)) as system:
        yield system


def client_msg_id(message: dict[str, Any]) -> Any:
    return message["client_msg_id"]


async def all_arrived(inbox: Inbox, expected: set[Any], key: Callable[[dict[str, Any]], Any] = client_msg_id) -> set[Any]:
    """`key` of every message.created the inbox got, once all `expected` are there (or after a minute)."""
    for _ in range(300):
        arrived = {key(event["message"]) for event in inbox.events("message.created")}
        if arrived >= expected:
            break
        await asyncio.sleep(0.2)
    return arrived


async def on_both_workers(new_conversation: Callable[[], Awaitable[tuple[str, Any]]], per_worker: int) -> list[tuple[str, Any]]:
    """Conversations from `new_conversation()` ((id, whatever goes with it)) until each of the two workers
    owns `per_worker` of them; the ids are random, the owner is their hash (bridge.affinity)."""
    owned: dict[int, list[tuple[str, Any]]] = {0: [], 1: []}
    while min(len(found) for found in owned.values()) < per_worker:
        made = await new_conversation()
        owned[worker_of(made[0], 2)].append(made)
    return owned[0][:per_worker] + owned[1][:per_worker]


def assert_numbered_in_send_order(items: list[dict[str, Any]], sent: int) -> None:
    """A conversation's history: `seq` 1..n, and each sender's messages (client_msg_id = its send number) in order."""
    items = sorted(items, key=lambda m: m["seq"])
    assert [m["seq"] for m in items] == list(range(1, len(items) + 1)), "seq unique, without gaps"
    senders = {m["sender_id"] for m in items}
    for sender in senders:
        numbers = [int(m["client_msg_id"]) for m in items if m["sender_id"] == sender]
        assert numbers == list(range(sent)), "each message stored once, numbered in the order its sender sent it"


async def collisions(api: httpx.AsyncClient, admin: Account) -> float:
    """Inserts of new messages refused so far because their `seq` was taken (another writer, a stale record)."""
    _, samples = await scrape(api, admin)
    return value(samples, "mqchat_message_seq_collisions_total")


async def test_a_burst_is_numbered_by_one_worker_per_conversation(two_workers: System) -> None:
    """Both members of each conversation send at the same instants; without affinity the two workers took each
    other's `seq` (retried inserts) and numbered a sender's messages out of order (docs/benchmarks.md)."""
    system = two_workers
    async with httpx.AsyncClient(base_url=system.api_url, timeout=30) as api, AsyncExitStack() as stack:
        admin = await create_staff(system, api, "admin")

        async def new_pair() -> tuple[str, tuple[Account, Account]]:
            first, second = await signup(api), await signup(api)
            return (await open_conversation(api, first, second))["id"], (first, second)

        conversations = await on_both_workers(new_pair, BURST_CONVERSATIONS)
        writers = [(cid, user) for cid, pair in conversations for user in pair]
        inboxes = [await stack.enter_async_context(device(system, user)) for _, user in writers]
        before = await collisions(api, admin)
        for n in range(BURST_ROUNDS):
            await asyncio.gather(*(
                inbox.client.publish(topics.user_outbox(user.id, "send"),
                                     json.dumps({"conversation_id": cid, "client_msg_id": f"{n}", "body": f"{n}"}), qos=1)
                for (cid, user), inbox in zip(writers, inboxes, strict=True)
            ))  # fmt: skip
            await asyncio.sleep(BURST_PACE)

        for (cid, _), inbox in zip(writers, inboxes, strict=True):
            expected = {(sender.id, f"{n}") for sender in dict(conversations)[cid] for n in range(BURST_ROUNDS)}
            assert await all_arrived(inbox, expected, lambda m: (m["sender_id"], m["client_msg_id"])) == expected
            assert inbox.events("error") == [], "nothing refused"
        assert await collisions(api, admin) == before, "no insert was refused: no seq taken by the other worker"
        for cid, (first, _) in conversations:
            page = (await api.get(f"/api/conversations/{cid}/messages", params={"limit": 100}, headers=first.headers)).json()
            assert_numbered_in_send_order(page["items"], BURST_ROUNDS)


async def test_a_worker_numbers_on_from_what_a_dead_predecessor_stored(two_workers: System) -> None:
    """A worker SIGKILLed between its insert and the conversation's record of `last_seq` leaves messages above the
    record; the worker that loads the conversation next checks the stored top too, so its first insert takes the
    next free `seq` instead of colliding and retrying (the refused inserts of the kill rounds, docs/benchmarks.md)."""
    system = two_workers
    async with httpx.AsyncClient(base_url=system.api_url, timeout=30) as api:
        admin, alice, bob = await create_staff(system, api, "admin"), await signup(api), await signup(api)
        cid = (await open_conversation(api, alice, bob))["id"]
        mongo: AsyncMongoClient = AsyncMongoClient(system.store_uri)
        try:  # what the dead worker stored: seq 1, while the conversation's record still says 0
            await mongo.mqchat.messages.insert_one({
                "_id": ObjectId(), "conversation_id": cid, "seq": 1, "sender_id": alice.id, "client_msg_id": "before",
                "kind": "text", "body": "stored before the kill", "attachment_ids": [], "attachments": [], "reply_to": None,
                "reply_to_seq": None, "created_at": datetime.now(UTC), "edited_at": None, "deleted": False,
                "search_indexed": 0, "reacted": 0,
            })  # fmt: skip
        finally:
            await mongo.close()
        before = await collisions(api, admin)
        async with device(system, alice) as inbox:
            request = {"conversation_id": cid, "client_msg_id": "after", "body": "sent after the restart"}
            await inbox.client.publish(topics.user_outbox(alice.id, "send"), json.dumps(request), qos=1)
            assert await all_arrived(inbox, {"after"}) == {"after"}
        assert await collisions(api, admin) == before, "no insert refused: numbered after the stored top"
        page = (await api.get(f"/api/conversations/{cid}/messages", headers=bob.headers)).json()["items"]
        assert [(m["seq"], m["client_msg_id"]) for m in page] == [(2, "after"), (1, "before")]


async def test_a_killed_worker_is_restarted_and_its_queued_share_is_served(two_workers: System) -> None:
    system = two_workers
    async with httpx.AsyncClient(base_url=system.api_url, timeout=30) as api, AsyncExitStack() as stack:
        carol = await signup(api)

        async def new_sender() -> tuple[str, Account]:
            sender = await signup(api)
            return (await open_conversation(api, sender, carol))["id"], sender

        made = await on_both_workers(new_sender, SENDERS_PER_WORKER)
        cids, senders = [cid for cid, _ in made], [sender for _, sender in made]
        recipient = await stack.enter_async_context(device(system, carol))
        devices = [await stack.enter_async_context(device(system, sender)) for sender in senders]

        async def send_round(n: int) -> None:
            await asyncio.gather(*(
                inbox.client.publish(
                    topics.user_outbox(sender.id, "send"),
                    json.dumps({"conversation_id": cid, "client_msg_id": f"{n}", "body": f"message {n}"}),
                    qos=1,
                )
                for sender, cid, inbox in zip(senders, cids, devices, strict=True)
            ))  # fmt: skip

        killed = worker_pid(system, "bridge-2")
        for n in range(ROUNDS):
            if n == KILL_AT_ROUND:
                os.kill(killed, signal.SIGKILL)
            await send_round(n)
            await asyncio.sleep(INTERVAL)

        expected = {f"{n}" for n in range(ROUNDS)}
        for inbox in devices:
            assert await all_arrived(inbox, expected) == expected, "every sender got every acknowledgement"
            refused = [event["error"] for event in inbox.events("error")]
            assert refused == [], "no request was refused (in particular not as rate_limited)"
        everything = {(cid, cmid) for cid in cids for cmid in expected}
        live = await all_arrived(recipient, everything, lambda m: (m["conversation_id"], m["client_msg_id"]))
        assert live == everything, "the recipient got every message live"
        for cid in cids:
            page = (await api.get(f"/api/conversations/{cid}/messages", params={"limit": 100}, headers=carol.headers)).json()
            assert_numbered_in_send_order(page["items"], ROUNDS)

        # once the backlog is served, the limit applies again: a flood is refused in part
        flooder, cid = devices[0], cids[0]
        for n in range(FLOOD):
            request = {"conversation_id": cid, "client_msg_id": f"flood-{n}", "body": "flood"}
            await flooder.client.publish(topics.user_outbox(senders[0].id, "send"), json.dumps(request), qos=1)
        refusals = await flooder.wait_for(1, "error", timeout=30)
        assert {event["error"]["code"] for event in refusals} == {"rate_limited"}
    assert worker_pid(system, "bridge-2") != killed, "mqchat up restarted the worker"
    health = httpx.get(f"{system.api_url}/api/health", timeout=10).json()
    assert health["status"] == "ok" and health["restarts"] == {"bridge-2": 1}, "the restart shows in /api/health"


async def test_a_block_reaches_every_worker_at_once(two_workers: System) -> None:
    """Each worker keeps who may write in its conversations: the block's notice must reach the one
    that owns the conversation, whichever it is (both hear every notice; paced for LIMITS)."""
    async with httpx.AsyncClient(base_url=two_workers.api_url, timeout=30) as api:
        await block_holds_for_the_next_mqtt_messages(two_workers, api, rounds=4, pace=0.1)


async def test_what_was_queued_is_served_once_when_the_worker_count_changes(two_workers: System) -> None:
    """2 workers -> 1 -> 2 (the module's system ends as it began), requests published while `mqchat up` is down:
    each is stored once, in order, also the share of the worker that is gone or new (bridge.layout);
    the session of the worker beyond the count is retired instead of queueing every request for 30 days."""
    system = two_workers
    async with httpx.AsyncClient(base_url=system.api_url, timeout=30) as api:
        carol = await signup(api)

        async def new_sender() -> tuple[str, Account]:
            sender = await signup(api)
            return (await open_conversation(api, sender, carol))["id"], sender

        made = await on_both_workers(new_sender, 1)
    async with AsyncExitStack() as stack:
        recipient = await stack.enter_async_context(device(system, carol))
        devices = [await stack.enter_async_context(device(system, sender)) for _, sender in made]
        for step, workers in enumerate((1, 2)):
            stopped = system.process  # `mqchat up`; Mosquitto keeps running and queueing
            assert stopped is not None
            stopped.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(stopped.wait, 60) == 0
            for n in range(step * QUEUED, (step + 1) * QUEUED):
                for (cid, sender), inbox in zip(made, devices, strict=True):
                    request = {"conversation_id": cid, "client_msg_id": f"{n}", "body": f"queued {n}"}
                    await inbox.client.publish(topics.user_outbox(sender.id, "send"), json.dumps(request), qos=1)
            system.extra_env["MQCHAT_BRIDGE_WORKERS"] = str(workers)
            await asyncio.to_thread(system.start)
            expected = {(cid, f"{n}") for cid, _ in made for n in range((step + 1) * QUEUED)}
            arrived = await all_arrived(recipient, expected, lambda m: (m["conversation_id"], m["client_msg_id"]))
            assert arrived == expected, f"everything queued while down was served with {workers} worker(s)"
        assert all(inbox.events("error") == [] for inbox in devices)
    async with httpx.AsyncClient(base_url=system.api_url, timeout=30) as api:
        for cid, _ in made:
            page = (await api.get(f"/api/conversations/{cid}/messages", params={"limit": 100}, headers=carol.headers)).json()
            assert_numbered_in_send_order(page["items"], 2 * QUEUED)
    retired = [entry["instances"] for entry in logged_events(system, "up", "bridge.sessions_retired")]
    assert retired == [["worker-2"]], "the second worker's session went when one worker was left"
