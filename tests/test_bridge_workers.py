"""Two bridge workers on Mosquitto: one killed during a burst is restarted by `mqchat up` and resumes
its share; the requests queued for it meanwhile are not refused as rate_limited (issue 24, item 4).
Both workers keep conversations in memory, and a block reaches both at once (issue 26)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from core import topics
from tests.support import Inbox, System, device, open_conversation, running, signup, worker_pid
from tests.test_blocks import block_holds_for_the_next_mqtt_messages

SENDERS = 3
ROUNDS = 40
KILL_AT_ROUND = 8
FLOOD = 30  # at once: more than both workers' bursts
INTERVAL = 0.25  # each sender: 4 requests/s, about half of them to each worker
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


async def test_a_killed_worker_is_restarted_and_its_queued_share_is_served(two_workers: System) -> None:
    system = two_workers
    async with httpx.AsyncClient(base_url=system.api_url, timeout=30) as api, AsyncExitStack() as stack:
        carol = await signup(api)
        senders = [await signup(api) for _ in range(SENDERS)]
        cids = [(await open_conversation(api, sender, carol))["id"] for sender in senders]
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
            assert sorted(m["client_msg_id"] for m in page["items"]) == sorted(expected), "each stored once"

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
    """Requests are shared between the workers, and each keeps who may write in a conversation:
    the block's notice must reach both (4 messages a step: each worker serves some; paced for LIMITS)."""
    async with httpx.AsyncClient(base_url=two_workers.api_url, timeout=30) as api:
        await block_holds_for_the_next_mqtt_messages(two_workers, api, rounds=4, pace=0.1)
