"""The support desk: teams and category routing, team queues, availability, lead reassignment, escalation.

The routing is system-wide, so the scenario runs on a system of its own per single broker, and on the
session's NATS cluster (whose tests leave no ticket queued and no agent online), with short sweep and
escalation intervals. Team administration's refusals run on the
session's shared system.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from core import topics
from tests.conftest import BROKERS, DESK_TIMINGS
from tests.support import Account, System, create_staff, device, running, signup
from tests.test_api_auth import assert_error
from tests.test_tickets import eventually, online_agent, open_ticket, set_status, ticket, wait_presence


@pytest.fixture(params=(*BROKERS, "nats"))
def desk_system(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[System]:
    """A system of its own per single broker; on the cluster the session's, whose tests leave no ticket queued and
    no agent online, and which has the same sweeps (conftest.DESK_TIMINGS, TICKET_TIMINGS): a cluster start costs ~25 s."""
    if request.param == "nats":
        yield request.getfixturevalue("nats_system")
        return
    env = {"MQCHAT_ASSIGN_INTERVAL_MS": "300", **DESK_TIMINGS}
    with running(System.on_free_ports(tmp_path / "data", broker=request.param, **env)) as system:
        yield system


@pytest.fixture
async def dapi(desk_system: System) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=desk_system.api_url, timeout=60) as client:
        yield client


async def new_team(api: httpx.AsyncClient, admin: Account, *members: Account, leads: tuple[Account, ...] = (), **fields: object) -> dict:
    created = await api.post("/api/admin/teams", json={"name": f"team {secrets.token_hex(3)}", **fields}, headers=admin.headers)
    assert created.status_code == 201, created.text
    team = created.json()
    for member in (*members, *leads):
        added = await api.post(
            f"/api/admin/teams/{team['id']}/members", json={"user_id": member.id, "lead": member in leads}, headers=admin.headers
        )
        assert added.status_code == 200, added.text
        team = added.json()
    return team


async def availability(api: httpx.AsyncClient, agent: Account, choice: str) -> httpx.Response:
    return await api.put("/api/agents/me/availability", json={"availability": choice}, headers=agent.headers)


async def visible_ids(api: httpx.AsyncClient, viewer: Account) -> set[str]:
    return {t["id"] for t in (await api.get("/api/tickets", params={"limit": 100}, headers=viewer.headers)).json()["items"]}


async def test_routing_team_queues_availability_reassignment_and_escalation(desk_system: System, dapi: httpx.AsyncClient) -> None:
    system, api = desk_system, dapi
    admin, customer = await create_staff(system, api, "admin"), await signup(api)
    (first, first_desk), (lead, lead_desk) = await online_agent(system, api), await online_agent(system, api)
    payer = await create_staff(system, api, "agent")  # in payments, never connected
    shipping = await new_team(api, admin, first, leads=(lead,))
    payments = await new_team(api, admin, payer, escalate_after_seconds=1)
    assert set(shipping["lead_ids"]) == {lead.id} and set(shipping["member_ids"]) == {first.id, lead.id}
    assert {m["status"] for m in shipping["members"]} == {"online"}
    routing = {"routes": {"shipping": shipping["id"], "payment": payments["id"]}, "default_team_id": payments["id"]}
    found = (await api.get("/api/admin/ticket-routing", headers=admin.headers)).json()
    assert (await api.put("/api/admin/ticket-routing", json=routing, headers=admin.headers)).json() == routing

    async with device(system, lead, "queue", topics.AGENT_TICKETS) as lead_web:
        # routed to the team's least-loaded agent; unmatched categories go to the default team's queue
        parcel = await open_ticket(api, customer, category="shipping")
        assert parcel["team_id"] == shipping["id"] and parcel["assignee_id"] in (first.id, lead.id)
        card = await open_ticket(api, customer, category="payment")
        other = await open_ticket(api, customer, category="account")
        assert (card["team_id"], card["status"], other["team_id"], other["status"]) == (payments["id"], "open", payments["id"], "open")
        assert not {card["id"], other["id"]} & await visible_ids(api, first), "another team's queue"
        assert (await api.get(f"/api/tickets/{card['id']}", headers=first.headers)).status_code == 404
        assert {card["id"], other["id"]} <= await visible_ids(api, payer)

        # busy: keeps its tickets, gets no new ones; the desk hears of it
        busy_one = first if parcel["assignee_id"] == first.id else lead
        free_one = lead if busy_one is first else first
        assert (await availability(api, busy_one, "busy")).json() == {
            "user_id": busy_one.id, "username": busy_one.body["user"]["username"], "availability": "busy",
            "presence": "online", "status": "busy",
        }  # fmt: skip
        [event] = await lead_web.wait_for(1, "agent.availability")
        assert event["agent"]["user_id"] == busy_one.id and event["agent"]["status"] == "busy"
        boxes = [await open_ticket(api, customer, subject=f"box {n}", category="shipping") for n in range(2)]
        assert [box["assignee_id"] for box in boxes] == [free_one.id, free_one.id]
        assert (await ticket(api, admin, parcel["id"]))["assignee_id"] == busy_one.id

        # a lead reassigns within the team; others cannot
        lead_moves = await api.post(f"/api/tickets/{parcel['id']}/assign", json={"agent_id": free_one.id}, headers=lead.headers)
        if busy_one is lead:
            assert lead_moves.status_code == 200 and lead_moves.json()["assignee_id"] == first.id
            back = await api.post(f"/api/tickets/{parcel['id']}/assign", json={"agent_id": lead.id}, headers=first.headers)
            assert_error(back, 403, "forbidden")
        else:
            assert lead_moves.status_code == 200 and lead_moves.json()["assignee_id"] == lead.id
        outsider = await api.post(f"/api/tickets/{parcel['id']}/assign", json={"agent_id": payer.id}, headers=lead.headers)
        assert_error(outsider, 403, "forbidden")
        assert (await api.post(f"/api/tickets/{card['id']}/assign", json={"agent_id": first.id}, headers=lead.headers)).status_code == 404

        # waiting longer than the team's threshold: escalated once, flagged, announced
        escalated = await lead_web.wait_for(2, "ticket.escalated", timeout=15)
        assert {e["ticket"]["id"] for e in escalated} == {card["id"], other["id"]}
        flagged = await ticket(api, admin, card["id"])
        assert flagged["escalated"] is True and flagged["escalated_at"] >= flagged["created_at"]
        assert (await ticket(api, admin, parcel["id"]))["escalated"] is False, "shipping has no threshold (default 0)"

        # an admin moves a queued ticket to another team: offered to its agents at once
        moved = await api.post(f"/api/tickets/{card['id']}/team", json={"team_id": shipping["id"]}, headers=admin.headers)
        assert moved.status_code == 200 and moved.json()["team_id"] == shipping["id"]
        assert moved.json()["assignee_id"] == free_one.id
        assert_error(await api.post(f"/api/tickets/{other['id']}/team", json={"team_id": None}, headers=payer.headers), 403, "forbidden")
        assert_error(await api.delete(f"/api/admin/teams/{payments['id']}", headers=admin.headers), 409, "conflict")  # routed to

        # the last device leaving makes an agent offline whatever they chose
        desk = first_desk if busy_one is first else lead_desk
        desk.kill()
        await desk.wait()
        await wait_presence(api, admin, busy_one, "offline")
        team_view = (await api.get(f"/api/teams/{shipping['id']}", headers=free_one.headers)).json()
        [gone] = [m for m in team_view["members"] if m["user_id"] == busy_one.id]
        assert (gone["availability"], gone["presence"], gone["status"]) == ("busy", "offline", "offline")
        await eventually(lambda: _offline_announced(lead_web, busy_one))

        # the admins' roster: each member's status and load; erasing an agent requeues their tickets, which go on
        # to an available agent of the team (keeper, who joined with nothing to do) like any requeued ticket
        keeper, keeper_desk = await online_agent(system, api)
        joined = await api.post(f"/api/admin/teams/{shipping['id']}/members", json={"user_id": keeper.id}, headers=admin.headers)
        assert joined.status_code == 200, joined.text
        assert (await set_status(api, free_one, parcel["id"], "in_progress")).status_code == 200
        held = [parcel["id"], card["id"], *(box["id"] for box in boxes)]
        roster = (await api.get("/api/admin/agents", params={"team_id": shipping["id"]}, headers=admin.headers)).json()
        by_id = {agent["user_id"]: agent for agent in roster["items"]}
        assert set(by_id) == {first.id, lead.id, keeper.id} and roster["capacity"] == 5
        assert (by_id[free_one.id]["status"], by_id[free_one.id]["open_tickets"]) == ("online", len(held))
        assert [by_id[busy_one.id][key] for key in ("availability", "status", "open_tickets")] == ["busy", "offline", 0]
        assert (by_id[keeper.id]["open_tickets"], by_id[keeper.id]["team_ids"], by_id[keeper.id]["role"]) == (0, [shipping["id"]], "agent")
        async with device(system, admin, "console", topics.AGENT_TICKETS) as admin_web:  # free_one may be the lead
            erased = await api.delete(f"/api/admin/users/{free_one.id}", headers=admin.headers)
            assert erased.status_code == 200, erased.text
            for ticket_id in held:
                after = await ticket(api, admin, ticket_id)
                assert (after["assignee_id"], after["status"]) == (keeper.id, "assigned"), after
                assert [h["status"] for h in after["history"][-2:]] == ["open", "assigned"]
            updates = await admin_web.wait_for(2 * len(held), "ticket.updated")
        requeued = {e["ticket"]["id"] for e in updates if e["change"].get("assignee_id") == {"from": free_one.id, "to": None}}
        reassigned = {e["ticket"]["id"] for e in updates if e["change"].get("assignee_id") == {"from": None, "to": keeper.id}}
        assert requeued == reassigned == set(held)
        team_view = (await api.get(f"/api/teams/{shipping['id']}", headers=admin.headers)).json()
        assert free_one.id not in team_view["member_ids"] + team_view["lead_ids"], "an erased agent leaves their teams"
        roster = (await api.get("/api/admin/agents", params={"team_id": shipping["id"]}, headers=admin.headers)).json()
        assert {a["user_id"]: a["open_tickets"] for a in roster["items"]} == {busy_one.id: 0, keeper.id: len(held)}
    for process in (first_desk, lead_desk, keeper_desk):
        if process.returncode is None:
            process.kill()
            await process.wait()
    # the routing as found: on the cluster, the session's tickets go on to any agent (payments' two stay in its queue)
    assert (await api.put("/api/admin/ticket-routing", json=found, headers=admin.headers)).json() == found


async def _offline_announced(inbox, agent: Account) -> bool:  # type: ignore[no-untyped-def]
    return any(e["agent"]["user_id"] == agent.id and e["agent"]["status"] == "offline" for e in inbox.events("agent.availability"))


async def test_team_administration_refuses_bad_requests(system: System, api: httpx.AsyncClient, admin: Account) -> None:
    agent, other_agent, customer = await create_staff(system, api, "agent"), await create_staff(system, api, "agent"), await signup(api)
    team = await new_team(api, admin, agent)
    tid = team["id"]

    assert_error(await api.post("/api/admin/teams", json={"name": "x"}, headers=agent.headers), 403, "forbidden")
    assert_error(await api.post("/api/admin/teams", json={"name": team["name"].upper()}, headers=admin.headers), 409, "conflict")
    for bad in ({"name": ""}, {"name": "   "}, {"name": "a\nb"}, {"name": "x" * 65}, {"name": {"$ne": 1}}, {"name": "x", "extra": 1},
                {"name": "x", "escalate_after_seconds": -1}, {"name": "x", "escalate_after_seconds": "5"}):  # fmt: skip
        assert_error(await api.post("/api/admin/teams", json=bad, headers=admin.headers), 400, "invalid_input")
    for user_id in (customer.id, "0" * 24):
        member = await api.post(f"/api/admin/teams/{tid}/members", json={"user_id": user_id}, headers=admin.headers)
        assert_error(member, 400, "invalid_input")
    assert_error(await api.post(f"/api/admin/teams/{'0' * 24}/members", json={"user_id": agent.id}, headers=admin.headers), 404, "not_found")
    assert_error(await api.patch("/api/admin/teams/nope", json={"name": "y"}, headers=admin.headers), 404, "not_found")
    assert_error(await api.delete(f"/api/admin/teams/{tid}/members/{other_agent.id}", headers=admin.headers), 404, "not_found")

    renamed = await api.patch(f"/api/admin/teams/{tid}", json={"description": "Parcels", "escalate_after_seconds": 600}, headers=admin.headers)
    assert renamed.status_code == 200 and (renamed.json()["description"], renamed.json()["escalate_after_seconds"]) == ("Parcels", 600)

    # members see their team; others do not
    assert tid in {t["id"] for t in (await api.get("/api/teams", headers=agent.headers)).json()["items"]}
    assert (await api.get("/api/teams", headers=other_agent.headers)).json()["items"] == []
    assert_error(await api.get(f"/api/teams/{tid}", headers=other_agent.headers), 404, "not_found")
    assert_error(await api.get(f"/api/teams/{tid}", headers=customer.headers), 404, "not_found")

    # routing names existing teams and known categories only (the shared system's routing stays empty)
    for bad in ({"routes": {"shipping": "0" * 24}}, {"routes": {"bribes": tid}}, {"default_team_id": "zz"}, {"routes": []},
                {"default_team_id": "0" * 24}):  # fmt: skip
        assert_error(await api.put("/api/admin/ticket-routing", json=bad, headers=admin.headers), 400, "invalid_input")
    assert_error(await api.put("/api/admin/ticket-routing", json={}, headers=agent.headers), 403, "forbidden")
    assert (await api.get("/api/admin/ticket-routing", headers=admin.headers)).json() == {"routes": {}, "default_team_id": None}

    # the admins' roster of agents: by team or name; admins only
    name = agent.body["user"]["username"]
    [listed] = (await api.get("/api/admin/agents", params={"q": name, "team_id": tid}, headers=admin.headers)).json()["items"]
    assert listed | {"username": name} == {"user_id": agent.id, "username": name, "availability": "online", "presence": "offline",
                                            "status": "offline", "role": "agent", "open_tickets": 0, "team_ids": [tid]}  # fmt: skip
    assert (await api.get("/api/admin/agents", params={"q": "zz-nobody-zz"}, headers=admin.headers)).json()["items"] == []
    for bad in ({"team_id": "nope"}, {"team_id": {"$ne": 1}}, {"limit": 0}, {"q": "x" * 65}):
        assert_error(await api.get("/api/admin/agents", params=bad, headers=admin.headers), 400, "invalid_input")
    assert_error(await api.get("/api/admin/agents", params={"team_id": "0" * 24}, headers=admin.headers), 404, "not_found")
    for outsider in (agent, customer):
        assert_error(await api.get("/api/admin/agents", headers=outsider.headers), 403, "forbidden")
    assert (await api.delete(f"/api/admin/teams/{tid}", headers=admin.headers)).status_code == 204
    assert_error(await api.get(f"/api/teams/{tid}", headers=admin.headers), 404, "not_found")

    # availability: staff only, three choices
    assert_error(await availability(api, customer, "busy"), 403, "forbidden")
    for bad in ({"availability": "away"}, {"availability": None}, {}):
        assert_error(await api.put("/api/agents/me/availability", json=bad, headers=agent.headers), 400, "invalid_input")
    mine = await api.get("/api/agents/me/availability", headers=agent.headers)
    assert mine.json()["availability"] == "online" and mine.json()["status"] == "offline", "no device connected"
