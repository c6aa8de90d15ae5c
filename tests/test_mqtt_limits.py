"""MQTT abuse limits in the bridge: per-user request rate and typing floods."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core import topics
from tests.support import System, device, open_conversation, running, signup, user_client


@pytest.fixture
def limited_system(tmp_path: Path) -> Iterator[System]:
    with running(System.on_free_ports(tmp_path / "data", MQCHAT_SEND_RATE="2", MQCHAT_SEND_BURST="5")) as system:
        yield system


async def test_request_flood_is_refused_for_that_user_only(limited_system: System) -> None:
    system = limited_system
    async with httpx.AsyncClient(base_url=system.api_url, timeout=30) as api:
        alice, bob = await signup(api), await signup(api)
        cid = (await open_conversation(api, alice, bob))["id"]
        typing_topic = topics.conversation(cid, "typing")
        async with device(system, alice) as alice_web, device(system, bob, "web", typing_topic) as bob_web:
            for n in range(20):
                request = {"conversation_id": cid, "client_msg_id": f"flood-{n}", "body": f"flood {n}"}
                await alice_web.client.publish(topics.user_outbox(alice.id, "send"), json.dumps(request), qos=1)
            errors = await alice_web.wait_for(10, "error")
            assert {e["error"]["code"] for e in errors} == {"rate_limited"}
            accepted = await alice_web.wait_for(5, "message.created")
            await asyncio.sleep(1.0)
            stored = (await api.get(f"/api/conversations/{cid}/messages", params={"limit": 100}, headers=bob.headers)).json()["items"]
            assert 5 <= len(stored) < 20 and len(stored) == len(alice_web.events("message.created"))
            assert len(accepted) + len(alice_web.events("error")) == 20, "every request got an answer"

            # bob is not slowed down by alice's flood
            request = {"conversation_id": cid, "client_msg_id": "b1", "body": "hi"}
            await bob_web.client.publish(topics.user_outbox(bob.id, "send"), json.dumps(request), qos=1)
            await bob_web.wait_for(1, "message.created")

            # a typing flood reaches the others as one indicator per change
            await asyncio.sleep(3)  # let bob's allowance refill
            async with device(system, alice, "watch", typing_topic) as watcher:
                async with user_client(system, bob, "typer") as typer:
                    for typing in (True, True, True, False, False):
                        await typer.publish(
                            topics.user_outbox(bob.id, "typing"), json.dumps({"conversation_id": cid, "typing": typing}), qos=1
                        )
                await asyncio.sleep(1.0)
                indicators = watcher.events(topic=typing_topic)
            assert [i["typing"] for i in indicators] == [True, False], indicators
