"""Support tickets: lifecycle, roles, auto-assignment, backlog, grace-period requeue, concurrency, stats.

Each test gets its own system (fresh queue and agents) with short timings; those that run on every broker share
the session's NATS cluster there (its system takes the same timings).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient

from core import topics
from tests.conftest import BROKERS, TICKET_TIMINGS
from tests.support import (
    Account,
    System,
    crashable_device,
    create_staff,
    device,
    eventually,
    signup,
)


@pytest.fixture
def ticket_system(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[System]:
    """A system of the test's own (the embedded broker unless parametrized with ON_EVERY_BROKER); on the NATS
    cluster the session's, which has the same short timings (tests/conftest.py): tests that run there leave
    no agent of theirs online and no ticket in the queue."""
    broker = getattr(request, "param", "amqtt")
    if broker == "nats":
        yield request.getfixturevalue("nats_system")
        return
    marker = request.node.get_closest_marker("capacity")
    system = System.on_free_ports(
        tmp_path / "data",
        broker=broker,
        MQCHAT_AGENT_CAPACITY=str(marker.args[0] if marker else 20),
        **TICKET_TIMINGS,
    )
    system.start()
    yield system
    assert system.stop() == 0


@pytest.fixture
async def tapi(ticket_system: System) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=ticket_system.api_url, timeout=60) as client:
        yield client


async def wait_presence(api: httpx.AsyncClient, viewer: Account, user: Account, status: str) -> None:
    for _ in range(100):
        if (await api.get(f"/api/users/{user.id}", headers=viewer.headers)).json()["presence"]["status"] == status:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{user.id} never became {status}")


async def online_agent(system: System, api: httpx.AsyncClient) -> tuple[Account, asyncio.subprocess.Process]:
    """An agent with a connected device, on the cluster's node 1 (`crash` takes the agent offline)."""
    agent = await create_staff(system, api, "agent")
    process = await crashable_device(system.node(1), agent, "desk")
    await wait_presence(api, agent, agent, "online")
    return agent, process


async def crash(api: httpx.AsyncClient, agent: Account, desk: asyncio.subprocess.Process) -> None:
    """The agent's device crashes (no DISCONNECT): its Will takes the agent offline, as the API sees it."""
    desk.kill()
    await desk.wait()
    await wait_presence(api, agent, agent, "offline")


async def open_ticket(api: httpx.AsyncClient, customer: Account, subject: str = "Where is my order?", **extra: object) -> dict:
    response = await api.post(
        "/api/tickets", json={"subject": subject, "description": "It has been a week.", **extra}, headers=customer.headers
    )
    assert response.status_code == 201, response.text
    return response.json()


async def ticket(api: httpx.AsyncClient, viewer: Account, ticket_id: str) -> dict:
    response = await api.get(f"/api/tickets/{ticket_id}", headers=viewer.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def set_status(api: httpx.AsyncClient, actor: Account, ticket_id: str, status: str) -> httpx.Response:
    return await api.post(f"/api/tickets/{ticket_id}/status", json={"status": status}, headers=actor.headers)


# For the tests where the broker takes part beyond delivering events (presence, Wills): the assignment
# logic itself is the same code whichever broker runs, and each system here is started for one test
# (on the cluster, the session's).
ON_EVERY_BROKER = pytest.mark.parametrize("ticket_system", (*BROKERS, "nats"), indirect=True)


@ON_EVERY_BROKER
async def test_full_lifecycle(ticket_system: System, tapi: httpx.AsyncClient) -> None:
    system, api = ticket_system, tapi
    agent, desk = await online_agent(system, api)
    customer = await signup(api)
    async with device(system.node(2), agent, "queue", topics.AGENT_TICKETS) as agent_web, device(system, customer) as customer_web:
        created = await open_ticket(api, customer, category="shipping", priority="high", order_id="order-42")
        assert created["number"] >= 1 and created["customer_id"] == customer.id
        assert (created["category"], created["priority"], created["order_id"]) == ("shipping", "high", "order-42")
        assert created["status"] == "assigned" and created["assignee_id"] == agent.id
        assert [h["status"] for h in created["history"]] == ["open", "assigned"]
        assert created["history"][0]["by"] == customer.id and created["history"][1]["by"] == "system"

        queue = await agent_web.wait_for(2, topic=topics.AGENT_TICKETS)
        assert [e["type"] for e in queue] == ["ticket.created", "ticket.updated"]
        assert queue[1]["change"]["assignee_id"] == {"from": None, "to": agent.id}
        await customer_web.wait_for(1, "ticket.updated")
        [joined] = await agent_web.wait_for(1, "conversation.created")
        cid = created["conversation_id"]
        assert joined["conversation"]["id"] == cid and set(joined["conversation"]["participant_ids"]) == {customer.id, agent.id}

        assert (await set_status(api, agent, created["id"], "in_progress")).status_code == 200
        await agent_web.client.publish(
            topics.user_outbox(agent.id, "send"),
            json.dumps({"conversation_id": cid, "client_msg_id": "hello-1", "body": "Hi! Checking your order."}),
            qos=1,
        )
        [message] = await customer_web.wait_for(1, "message.created")
        assert message["message"]["sender_id"] == agent.id
        answered = await eventually(lambda: _first_response(api, customer, created["id"]))
        assert answered >= created["created_at"]

        assert (await set_status(api, agent, created["id"], "resolved")).status_code == 200
        assert (await set_status(api, customer, created["id"], "in_progress")).status_code == 200  # reopen
        assert (await set_status(api, agent, created["id"], "resolved")).status_code == 200
        closed = await set_status(api, customer, created["id"], "closed")
        assert closed.status_code == 200 and closed.json()["status"] == "closed"
        history = closed.json()["history"]
        assert [h["status"] for h in history] == ["open", "assigned", "in_progress", "resolved", "in_progress", "resolved", "closed"]
        assert [h["by"] for h in history][2:] == [agent.id, agent.id, customer.id, agent.id, customer.id]
        assert all(h["at"].endswith("Z") for h in history)
        updates = await customer_web.wait_for(7, "ticket.updated")
        assert updates[-1]["change"] == {"status": {"from": "resolved", "to": "closed"}}

        # a closed ticket takes no more messages, over MQTT or REST, and says why
        await customer_web.client.publish(
            topics.user_outbox(customer.id, "send"),
            json.dumps({"conversation_id": cid, "client_msg_id": "after-close", "body": "One more thing"}),
            qos=1,
        )
        [refused] = await customer_web.wait_for(1, "error")
        assert refused["client_msg_id"] == "after-close" and refused["error"]["code"] == "conflict"
        assert f"ticket #{created['number']} is closed" in refused["error"]["message"]
        late = {"client_msg_id": "after-close-2", "body": "Hello?"}
        rest = await api.post(f"/api/conversations/{cid}/messages", json=late, headers=customer.headers)
        assert rest.status_code == 409 and "open a new ticket" in rest.json()["error"]["message"]
        stored = (await api.get(f"/api/conversations/{cid}/messages", headers=customer.headers)).json()["items"]
        assert [m["body"] for m in stored if m["kind"] != "system"] == ["Hi! Checking your order."]
        assert [m["client_msg_id"] for m in stored if m["kind"] == "system"] == [f"csat:{created['id']}"], "the rating survey"
    await crash(api, agent, desk)


async def _first_response(api: httpx.AsyncClient, viewer: Account, ticket_id: str) -> str | None:
    return (await ticket(api, viewer, ticket_id))["first_response_at"]


async def test_forbidden_transitions_and_roles(ticket_system: System, tapi: httpx.AsyncClient) -> None:
    system, api = ticket_system, tapi
    customer, other_customer = await signup(api), await signup(api, role="merchant")
    admin = await create_staff(system, api, "admin")
    agent, other_agent = await create_staff(system, api, "agent"), await create_staff(system, api, "agent")
    queued = await open_ticket(api, customer)  # nobody online: stays in the queue
    assert queued["status"] == "open" and queued["assignee_id"] is None

    assert (await api.post("/api/tickets", json={"subject": "x", "description": "y"}, headers=agent.headers)).status_code == 403
    for bad in ({"subject": "", "description": "y"}, {"subject": "x", "description": "y", "category": "bribe"},
                {"subject": "x", "description": "y", "priority": "asap"}, {"subject": {"$ne": 1}, "description": "y"}):  # fmt: skip
        assert (await api.post("/api/tickets", json=bad, headers=customer.headers)).status_code == 400, bad

    # only via /assign out of the queue; nothing skips a step
    assert (await set_status(api, admin, queued["id"], "assigned")).status_code == 409
    assert (await set_status(api, admin, queued["id"], "in_progress")).status_code == 409
    assert (await api.post(f"/api/tickets/{queued['id']}/assign", json={}, headers=customer.headers)).status_code == 403
    assert (await api.post(f"/api/tickets/{queued['id']}/assign", json={"agent_id": other_agent.id}, headers=agent.headers)).status_code == 403
    taken = await api.post(f"/api/tickets/{queued['id']}/assign", json={}, headers=agent.headers)
    assert taken.status_code == 200 and taken.json()["assignee_id"] == agent.id and taken.json()["status"] == "assigned"
    assert (await api.post(f"/api/tickets/{queued['id']}/assign", json={}, headers=other_agent.headers)).status_code == 404

    assert (await set_status(api, customer, queued["id"], "in_progress")).status_code == 403
    assert (await set_status(api, other_agent, queued["id"], "in_progress")).status_code == 404
    assert (await set_status(api, agent, queued["id"], "resolved")).status_code == 409
    assert (await set_status(api, agent, queued["id"], "in_progress")).status_code == 200
    assert (await set_status(api, customer, queued["id"], "resolved")).status_code == 403
    assert (await set_status(api, agent, queued["id"], "resolved")).status_code == 200
    assert (await set_status(api, admin, queued["id"], "closed")).status_code == 200
    for status in ("open", "assigned", "in_progress", "resolved"):
        assert (await set_status(api, admin, queued["id"], status)).status_code == 409
    assert (await set_status(api, admin, queued["id"], "reopened")).status_code == 400

    # customers see only their own tickets, and cannot touch the ticket's conversation membership
    assert (await api.get(f"/api/tickets/{queued['id']}", headers=other_customer.headers)).status_code == 404
    assert queued["id"] not in {t["id"] for t in (await api.get("/api/tickets", headers=other_customer.headers)).json()["items"]}
    members = await api.post(f"/api/conversations/{queued['conversation_id']}/members", json={"user_id": other_customer.id}, headers=customer.headers)
    assert members.status_code == 403


async def test_auto_assign_picks_the_least_loaded_online_agent(ticket_system: System, tapi: httpx.AsyncClient) -> None:
    system, api = ticket_system, tapi
    admin, customer = await create_staff(system, api, "admin"), await signup(api)
    (busy, busy_desk), (light, light_desk) = await online_agent(system, api), await online_agent(system, api)
    offline_idle = await create_staff(system, api, "agent")  # no tickets, but offline
    for agent, count in ((busy, 2), (light, 1)):
        for _ in range(count):
            t = await open_ticket(api, customer)
            if t["assignee_id"] != agent.id:
                reassigned = await api.post(f"/api/tickets/{t['id']}/assign", json={"agent_id": agent.id}, headers=admin.headers)
                assert reassigned.status_code == 200
    loads = Counter(t["assignee_id"] for t in (await api.get("/api/tickets", headers=admin.headers)).json()["items"])
    assert loads == {busy.id: 2, light.id: 1}
    fresh = await open_ticket(api, customer)
    assert fresh["assignee_id"] == light.id, "fewest open tickets among online agents"
    another = await open_ticket(api, customer)
    assert another["assignee_id"] in (busy.id, light.id) and offline_idle.id not in (fresh["assignee_id"], another["assignee_id"])
    for desk in (busy_desk, light_desk):
        desk.kill()
        await desk.wait()


@pytest.mark.capacity(2)
async def test_backlog_is_assigned_when_agents_come_online_or_free_up(ticket_system: System, tapi: httpx.AsyncClient) -> None:
    system, api = ticket_system, tapi
    customer = await signup(api)
    waiting = [await open_ticket(api, customer, subject=f"ticket {n}") for n in range(3)]
    assert {t["status"] for t in waiting} == {"open"}
    agent, desk = await online_agent(system, api)

    async def assigned_ids() -> set[str]:
        items = (await api.get("/api/tickets", params={"status": "assigned"}, headers=agent.headers)).json()["items"]
        return {t["id"] for t in items if t["assignee_id"] == agent.id}

    await eventually(lambda: _has(assigned_ids, 2))
    assert await assigned_ids() == {waiting[0]["id"], waiting[1]["id"]}, "oldest first, within capacity"
    assert (await ticket(api, customer, waiting[2]["id"]))["status"] == "open"
    assert (await api.post(f"/api/tickets/{waiting[2]['id']}/assign", json={}, headers=agent.headers)).status_code == 409

    for status in ("in_progress", "resolved"):
        assert (await set_status(api, agent, waiting[0]["id"], status)).status_code == 200
    last = await eventually(lambda: _assigned(api, customer, waiting[2]["id"]))
    assert last["assignee_id"] == agent.id
    desk.kill()
    await desk.wait()


async def _has(ids, count: int) -> bool:  # type: ignore[no-untyped-def]
    return len(await ids()) >= count


async def _assigned(api: httpx.AsyncClient, viewer: Account, ticket_id: str) -> dict | None:
    current = await ticket(api, viewer, ticket_id)
    return current if current["status"] == "assigned" else None


@pytest.mark.capacity(1)
async def test_a_request_waits_for_another_assigners_hold_and_assigns_the_ticket(ticket_system: System, tapi: httpx.AsyncClient) -> None:
    """A request that frees an agent's slot assigns the queued ticket even while another assigner (the bridge's
    sweep; here the test) holds it for a moment: it waits for the hold to go rather than leave the ticket open."""
    system, api = ticket_system, tapi
    customer = await signup(api)
    agent, desk = await online_agent(system, api)
    first = await open_ticket(api, customer, subject="first")
    queued = await open_ticket(api, customer, subject="second")
    assert (first["assignee_id"], queued["status"]) == (agent.id, "open"), "a capacity of one"
    mongo: AsyncMongoClient = AsyncMongoClient(system.store_uri)
    held = {"_id": ObjectId(queued["id"])}
    try:
        await mongo.mqchat.tickets.update_one(held, {"$set": {"held_until_ms": int(time.time() * 1000) + 30_000}})

        async def let_go() -> None:
            await asyncio.sleep(0.5)
            await mongo.mqchat.tickets.update_one(held, {"$set": {"held_until_ms": 0}})

        letting_go = asyncio.create_task(let_go())
        for status in ("in_progress", "resolved"):
            assert (await set_status(api, agent, first["id"], status)).status_code == 200
        after = await ticket(api, customer, queued["id"])
        assert (after["status"], after["assignee_id"]) == ("assigned", agent.id)
        await letting_go
    finally:
        await mongo.close()
    desk.kill()
    await desk.wait()


@ON_EVERY_BROKER
async def test_unanswered_ticket_is_reassigned_after_the_grace_period(ticket_system: System, tapi: httpx.AsyncClient) -> None:
    system, api = ticket_system, tapi
    customer = await signup(api)
    first, first_desk = await online_agent(system, api)
    unanswered = await open_ticket(api, customer, subject="unanswered")
    answered = await open_ticket(api, customer, subject="answered")
    for created in (unanswered, answered):  # at once, or by the queue sweep if it held the ticket at that instant
        await eventually(lambda created=created: _assignee_is(api, customer, created["id"], first.id))
    reply = await api.post(f"/api/conversations/{answered['conversation_id']}/messages", json={"body": "On it"}, headers=first.headers)
    assert reply.status_code == 201
    await eventually(lambda: _first_response(api, customer, answered["id"]))

    await crash(api, first, first_desk)  # the agent's app crashes and does not come back
    second, second_desk = await online_agent(system, api)
    # the swap shows first; its history entry and the conversation's members follow within a few store commands
    # (the agent's ticket.updated event goes out after all of them)
    moved = await eventually(lambda: _moved_with_history(api, customer, unanswered["id"], second.id), timeout=15)
    assert [h["status"] for h in moved["history"]] == ["open", "assigned", "open", "assigned"]
    assert moved["history"][2]["by"] == "system"
    members = await eventually(lambda: _members_if(api, customer, unanswered["conversation_id"], {customer.id, second.id}))
    assert members == {customer.id, second.id}
    assert (await ticket(api, customer, answered["id"]))["assignee_id"] == first.id, "an answered ticket stays"
    taken = await api.post(f"/api/conversations/{unanswered['conversation_id']}/messages", json={"body": "Taking over"}, headers=second.headers)
    assert taken.status_code == 201
    await eventually(lambda: _first_response(api, customer, unanswered["id"]))  # so it stays theirs, out of the queue
    await crash(api, second, second_desk)


async def _moved_with_history(api: httpx.AsyncClient, viewer: Account, ticket_id: str, agent_id: str) -> dict | None:
    current = await _assignee_is(api, viewer, ticket_id, agent_id)
    return current if current and len(current["history"]) == 4 else None


async def _members_if(api: httpx.AsyncClient, viewer: Account, conversation_id: str, expected: set[str]) -> set[str] | None:
    members = set((await api.get(f"/api/conversations/{conversation_id}", headers=viewer.headers)).json()["participant_ids"])
    return members if members == expected else None


async def _assignee_is(api: httpx.AsyncClient, viewer: Account, ticket_id: str, agent_id: str) -> dict | None:
    current = await ticket(api, viewer, ticket_id)
    return current if current["assignee_id"] == agent_id else None


async def test_concurrent_tickets_are_spread_evenly(ticket_system: System, tapi: httpx.AsyncClient) -> None:
    system, api = ticket_system, tapi
    admin = await create_staff(system, api, "admin")
    agents = [await online_agent(system, api) for _ in range(3)]
    customers = [await signup(api) for _ in range(5)]
    created = await asyncio.gather(*(open_ticket(api, customers[n % 5], subject=f"rush {n}") for n in range(50)))
    assert len({t["number"] for t in created}) == 50
    listed = []
    before = None
    while True:
        page = (await api.get("/api/tickets", params={"limit": 20, **({"before": before} if before else {})}, headers=admin.headers)).json()
        listed += page["items"]
        before = page["next_before"]
        if before is None:
            break
    assert len(listed) == 50 and len({t["id"] for t in listed}) == 50
    loads = Counter(t["assignee_id"] for t in listed)
    assert set(loads) == {agent.id for agent, _ in agents}, loads
    assert max(loads.values()) - min(loads.values()) <= 1 and max(loads.values()) <= 20, loads
    for t in listed:
        assert [h["status"] for h in t["history"]] == ["open", "assigned"], "assigned exactly once"
    mine = (await api.get("/api/tickets", params={"assignee_id": agents[0][0].id, "limit": 100}, headers=admin.headers)).json()
    assert len(mine["items"]) == loads[agents[0][0].id]
    for _, desk in agents:
        desk.kill()
        await desk.wait()


async def test_admin_stats(ticket_system: System, tapi: httpx.AsyncClient) -> None:
    system, api = ticket_system, tapi
    admin, customer = await create_staff(system, api, "admin"), await signup(api)
    agent, desk = await online_agent(system, api)
    answered = await open_ticket(api, customer)
    await api.post(f"/api/conversations/{answered['conversation_id']}/messages", json={"body": "Hello"}, headers=agent.headers)
    await eventually(lambda: _first_response(api, customer, answered["id"]))
    await crash(api, agent, desk)
    queued = await open_ticket(api, customer)
    assert queued["status"] == "open"

    assert (await api.get("/api/admin/stats", headers=customer.headers)).status_code == 403
    stats = (await api.get("/api/admin/stats", headers=admin.headers)).json()
    assert stats["users_by_role"] == {"customer": 1, "merchant": 0, "designer": 0, "agent": 1, "admin": 1}
    assert stats["online_now"] == 0 and stats["conversations"] == 2 and stats["messages_last_24h"] == 1
    assert stats["tickets_by_status"] == {"open": 1, "assigned": 1, "in_progress": 0, "resolved": 0, "closed": 0}
    assert 0 <= stats["median_first_response_seconds"] < 30
    assert stats["open_backlog"] == 1 and stats["oldest_open_ticket_age_seconds"] >= 0
