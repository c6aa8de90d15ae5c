"""Customer satisfaction: the survey in the conversation when a ticket is resolved, one answer per ticket, results."""

from __future__ import annotations

import httpx

from core import topics
from tests.conftest import EVERY_BROKER
from tests.support import Account, System, create_staff, device, signup
from tests.test_api_auth import assert_error
from tests.test_desk import new_team
from tests.test_tickets import open_ticket, set_status

pytestmark = EVERY_BROKER


async def rate(api: httpx.AsyncClient, who: Account, ticket_id: str, **body: object) -> httpx.Response:
    return await api.post(f"/api/tickets/{ticket_id}/csat", json=body, headers=who.headers)


async def test_survey_rating_and_results(system: System, api: httpx.AsyncClient, admin: Account) -> None:
    agent, customer, stranger = await create_staff(system, api, "agent"), await signup(api), await signup(api)
    team = await new_team(api, admin, agent)
    opened = await open_ticket(api, customer, subject="Broken lamp")
    tid = opened["id"]
    assert (await api.post(f"/api/tickets/{tid}/assign", json={"agent_id": agent.id}, headers=admin.headers)).status_code == 200
    assert (await api.post(f"/api/tickets/{tid}/team", json={"team_id": team["id"]}, headers=admin.headers)).status_code == 200
    assert_error(await rate(api, customer, tid, rating=5), 409, "conflict")  # not resolved yet
    assert (await api.get(f"/api/tickets/{tid}/csat", headers=customer.headers)).json() == {"csat": None}
    assert_error(await api.get(f"/api/tickets/{tid}/csat", headers=stranger.headers), 404, "not_found")

    async with device(system.node(1), customer) as phone, device(system.node(2), agent, "desk", topics.AGENT_TICKETS) as desk:
        for status in ("in_progress", "resolved"):
            assert (await set_status(api, agent, tid, status)).status_code == 200
        [survey] = await phone.wait_for(1, "message.created")
        message = survey["message"]
        assert (message["kind"], message["sender_id"], message["client_msg_id"]) == ("system", None, f"csat:{tid}")
        assert message["conversation_id"] == opened["conversation_id"] and f"#{opened['number']}" in message["body"]

        # reopened and resolved again: no second survey
        for status in ("in_progress", "resolved"):
            assert (await set_status(api, customer if status == "in_progress" else agent, tid, status)).status_code == 200
        history = await api.get(f"/api/conversations/{opened['conversation_id']}/messages", headers=customer.headers)
        assert [m["client_msg_id"] for m in history.json()["items"]] == [f"csat:{tid}"]

        for bad in ({"rating": 0}, {"rating": 6}, {"rating": "5"}, {"rating": 4.5}, {"rating": True}, {}, {"rating": 3, "comment": "x" * 2001},
                    {"rating": {"$gt": 0}}, {"rating": 3, "agent_id": agent.id}):  # fmt: skip
            assert_error(await rate(api, customer, tid, **bad), 400, "invalid_input")
        assert_error(await rate(api, agent, tid, rating=1), 403, "forbidden")
        assert_error(await rate(api, stranger, tid, rating=1), 404, "not_found")
        assert_error(await rate(api, customer, "0" * 24, rating=1), 404, "not_found")

        answered = await rate(api, customer, tid, rating=4.0, comment="  Quick and kind.  ")  # 4.0 is the integer 4
        assert answered.status_code == 201, answered.text
        rating = answered.json()
        assert {k: rating[k] for k in ("ticket_id", "customer_id", "agent_id", "team_id", "rating", "comment")} == {
            "ticket_id": tid, "customer_id": customer.id, "agent_id": agent.id, "team_id": team["id"],
            "rating": 4, "comment": "Quick and kind.",
        }  # fmt: skip
        assert rating["created_at"].endswith("Z")
        assert_error(await rate(api, customer, tid, rating=1), 409, "conflict")
        [submitted] = await desk.wait_for(1, "csat.submitted", topic=topics.AGENT_TICKETS)
        assert submitted["csat"] == rating
        await phone.wait_for(1, "csat.submitted")

    assert (await api.get(f"/api/tickets/{tid}/csat", headers=agent.headers)).json() == {"csat": rating}
    assert (await set_status(api, customer, tid, "closed")).status_code == 200

    assert_error(await api.get("/api/admin/csat", headers=agent.headers), 403, "forbidden")
    results = (await api.get("/api/admin/csat", headers=admin.headers)).json()
    [mine] = [figures for figures in results["by_agent"] if figures["id"] == agent.id]
    [ours] = [figures for figures in results["by_team"] if figures["id"] == team["id"]]
    for figures in (mine, ours):
        assert figures == {"id": figures["id"], "count": 1, "average": 4.0, "distribution": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 0}}
    assert results["overall"]["count"] >= 1
    later = await api.get("/api/admin/csat", params={"since": "2999-01-01T00:00:00Z"}, headers=admin.headers)
    assert later.json()["overall"] == {"id": None, "count": 0, "average": None, "distribution": {str(n): 0 for n in range(1, 6)}}
    assert (await api.get("/api/admin/csat", params={"since": "yesterday"}, headers=admin.headers)).status_code == 400
