"""Canned responses: personal and team scopes, who may write them, `/short_code` expansion for a ticket, bad input."""

from __future__ import annotations

import httpx

from tests.support import Account, System, create_staff, signup
from tests.test_api_auth import assert_error
from tests.test_desk import new_team
from tests.test_tickets import open_ticket


async def canned(api: httpx.AsyncClient, author: Account, **fields: object) -> httpx.Response:
    return await api.post("/api/canned", json=fields, headers=author.headers)


async def codes(api: httpx.AsyncClient, viewer: Account, **params: str) -> list[str]:
    response = await api.get("/api/canned", params=params, headers=viewer.headers)
    assert response.status_code == 200, response.text
    return [item["short_code"] for item in response.json()["items"]]


async def test_scopes_expansion_and_rights(system: System, api: httpx.AsyncClient, admin: Account) -> None:
    agent, lead, outsider = [await create_staff(system, api, "agent") for _ in range(3)]
    team = await new_team(api, admin, agent, leads=(lead,))
    customer = await signup(api, username="Dana Smith")
    queued = await open_ticket(api, customer, subject="Late parcel", category="shipping", order_id="order-77")
    assigned = await api.post(f"/api/tickets/{queued['id']}/assign", json={"agent_id": agent.id}, headers=admin.headers)
    assert assigned.status_code == 200

    # a team's response: admins and its leads write it, members use it
    assert_error(await canned(api, agent, short_code="hi", content="x", team_id=team["id"]), 403, "forbidden")
    greeting = "Hi {{customer.name}}, about ticket #{{ ticket.id }} ({{order.id}}): {{agent.name}} here. <b>{{nope}}</b>"
    team_hi = await canned(api, lead, short_code="hi", content=greeting, team_id=team["id"])
    assert team_hi.status_code == 201 and team_hi.json()["team_id"] == team["id"] and team_hi.json()["owner_id"] is None
    refund = await canned(api, admin, short_code="refund", content="Refunds take 5 days.", team_id=team["id"])
    assert refund.status_code == 201
    mine = await canned(api, agent, short_code="sig", content="-- {{agent.name}}")
    assert mine.status_code == 201 and mine.json()["owner_id"] == agent.id
    assert_error(await canned(api, agent, short_code="sig", content="again"), 409, "conflict")
    assert (await canned(api, outsider, short_code="sig", content="another agent's own")).status_code == 201

    assert await codes(api, agent) == ["hi", "refund", "sig"]
    assert await codes(api, agent, q="r") == ["refund"]
    assert await codes(api, outsider) == ["sig"]

    # expansion: placeholders from the ticket and customer, plain text, unknown ones kept
    expected = f"Hi Dana Smith, about ticket #{queued['number']} (order-77): {agent.body['user']['username']} here. <b>{{{{nope}}}}</b>"
    expanded = await api.post("/api/canned/expand", json={"ticket_id": queued["id"], "short_code": "hi"}, headers=agent.headers)
    assert expanded.status_code == 200 and expanded.json() == {"short_code": "hi", "text": expected}
    listed = (await api.get("/api/canned", params={"ticket_id": queued["id"], "q": "hi"}, headers=agent.headers)).json()["items"]
    assert [item["expanded"] for item in listed] == [expected]
    # one's own response wins over the team's of the same code
    assert (await canned(api, agent, short_code="refund", content="My refund text")).status_code == 201
    mine_first = await api.post("/api/canned/expand", json={"ticket_id": queued["id"], "short_code": "refund"}, headers=agent.headers)
    assert mine_first.json()["text"] == "My refund text"
    # only for a ticket one may see, with a code one may use
    hidden = await api.post("/api/canned/expand", json={"ticket_id": queued["id"], "short_code": "sig"}, headers=outsider.headers)
    assert_error(hidden, 404, "not_found")
    unknown = await api.post("/api/canned/expand", json={"ticket_id": queued["id"], "short_code": "nope"}, headers=agent.headers)
    assert_error(unknown, 404, "not_found")

    # owners, leads and admins edit and delete; nobody else
    sig_id, hi_id = mine.json()["id"], team_hi.json()["id"]
    assert_error(await api.patch(f"/api/canned/{sig_id}", json={"content": "x"}, headers=outsider.headers), 404, "not_found")
    assert_error(await api.patch(f"/api/canned/{hi_id}", json={"content": "x"}, headers=agent.headers), 403, "forbidden")
    edited = await api.patch(f"/api/canned/{hi_id}", json={"short_code": "hello"}, headers=lead.headers)
    assert edited.status_code == 200 and (edited.json()["short_code"], edited.json()["content"]) == ("hello", greeting)
    assert_error(await api.patch(f"/api/canned/{hi_id}", json={"short_code": "refund"}, headers=admin.headers), 409, "conflict")
    assert (await api.patch(f"/api/canned/{sig_id}", json={"content": "-- cheers"}, headers=agent.headers)).json()["content"] == "-- cheers"
    assert await codes(api, admin, owner_id=agent.id) == ["refund", "sig"]
    assert_error(await api.get("/api/canned", params={"owner_id": agent.id}, headers=outsider.headers), 403, "forbidden")
    assert (await api.delete(f"/api/canned/{sig_id}", headers=admin.headers)).status_code == 204
    assert (await api.delete(f"/api/canned/{hi_id}", headers=lead.headers)).status_code == 204
    assert await codes(api, agent) == ["refund", "refund"]


async def test_bad_input_and_outsiders(system: System, api: httpx.AsyncClient, admin: Account) -> None:
    agent, customer = await create_staff(system, api, "agent"), await signup(api)
    assert_error(await canned(api, customer, short_code="hi", content="x"), 403, "forbidden")
    assert_error(await api.get("/api/canned", headers=customer.headers), 403, "forbidden")
    for bad in ({"short_code": "Hi", "content": "x"}, {"short_code": "/hi", "content": "x"}, {"short_code": "", "content": "x"},
                {"short_code": "a" * 33, "content": "x"}, {"short_code": "hi", "content": ""},
                {"short_code": {"$ne": 1}, "content": "x"}, {"short_code": "hi", "content": "x", "owner_id": admin.id},
                {"short_code": "hi", "content": "x", "team_id": "zz"}, {"short_code": "hi"}):  # fmt: skip
        assert_error(await canned(api, agent, **bad), 400, "invalid_input")
    assert_error(await canned(api, agent, short_code="hi", content="x" * 10_001), 400, "invalid_input")
    assert_error(await canned(api, admin, short_code="hi", content="x", team_id="0" * 24), 404, "not_found")
    assert await codes(api, agent) == [], "nothing half-written"
    for path in ("/api/canned/nope", f"/api/canned/{'0' * 24}"):
        assert_error(await api.patch(path, json={"content": "x"}, headers=agent.headers), 404, "not_found")
        assert_error(await api.delete(path, headers=agent.headers), 404, "not_found")
    for bad in ({"ticket_id": "0" * 24, "short_code": "hi"}, {"ticket_id": "x", "short_code": "hi"}, {"short_code": "hi"}):
        status = 404 if bad.get("ticket_id") == "0" * 24 else 400
        assert (await api.post("/api/canned/expand", json=bad, headers=agent.headers)).status_code == status
    assert (await api.get("/api/canned", params={"ticket_id": "$ne"}, headers=agent.headers)).status_code == 400
