"""The support desk in the web client (Chromium via Playwright): the availability switch, `/code` canned
responses in the composer, and the customer's rating card when the ticket is resolved."""

from __future__ import annotations

import httpx

from tests.browser_support import chromium_mark, expect, signed_in_page
from tests.browser_support import screenshot as shot
from tests.support import System, create_staff, signup
from tests.test_tickets import eventually, wait_presence

if (mark := chromium_mark()) is not None:
    pytestmark = mark


async def test_availability_canned_reply_and_rating_card(browser, web_system: System) -> None:  # type: ignore[no-untyped-def]
    """The ticket is given to this test's agent by an admin."""
    system = web_system
    async with httpx.AsyncClient(base_url=system.api_url, timeout=30) as rest:
        agent, customer = await create_staff(system, rest, "agent"), await signup(rest, username="Robin")
        admin = await create_staff(system, rest, "admin")
        saved = await rest.post("/api/canned", json={"short_code": "thanks", "content": "Thanks {{customer.name}}, #{{ticket.id}} is on its way."},
                                headers=agent.headers)  # fmt: skip
        assert saved.status_code == 201

        agent_page = await signed_in_page(browser, system, agent)
        await wait_presence(rest, agent, agent, "online")
        switch = agent_page.get_by_label("Availability")
        await expect(switch).to_have_value("online")
        await switch.select_option("busy")
        await eventually(lambda: _availability_is(rest, agent, "busy"))
        await expect(switch).to_have_attribute("data-status", "busy")
        await switch.select_option("online")
        await eventually(lambda: _availability_is(rest, agent, "online"))

        opened = await rest.post("/api/tickets", json={"subject": "Lamp arrived broken", "description": "Glass shattered."},
                                 headers=customer.headers)  # fmt: skip
        assert opened.status_code == 201
        number = opened.json()["number"]
        given = await rest.post(f"/api/tickets/{opened.json()['id']}/assign", json={"agent_id": agent.id}, headers=admin.headers)
        assert given.status_code == 200

        customer_page = await signed_in_page(browser, system, customer)
        await customer_page.get_by_role("tab", name="Tickets").click()
        await customer_page.locator("#ticket-list li", has_text="Lamp arrived broken").click()
        await agent_page.get_by_role("tab", name="Tickets").click()
        mine = agent_page.locator("#ticket-list li", has_text="Lamp arrived broken")
        await mine.click()
        await expect(agent_page.locator("#ticket-controls")).to_be_visible()

        # `/code` offers the reply filled in for this ticket; Tab takes it, Enter sends it
        expanded = f"Thanks Robin, #{number} is on its way."
        await agent_page.locator("#body").press_sequentially("/tha")
        await expect(agent_page.locator("#canned-suggestions li").first).to_contain_text(expanded)
        await agent_page.locator("#body").press("Tab")
        await expect(agent_page.locator("#body")).to_have_value(expanded)
        await expect(agent_page.locator("#canned-suggestions")).to_be_hidden()
        await agent_page.locator("#body").press("Enter")
        await expect(agent_page.locator(".message .body").last).to_have_text(expanded, timeout=15_000)  # stored and announced
        await expect(customer_page.locator(".message .body").last).to_have_text(expanded, timeout=15_000)

        # resolved: the customer rates it on the card in the conversation, once
        await agent_page.get_by_label("Status").select_option("in_progress")
        await expect(mine.locator(".status")).to_have_text("in progress")
        await agent_page.get_by_label("Status").select_option("resolved")
        card = customer_page.locator(".message.system form.csat")
        await expect(card).to_be_visible()
        await expect(agent_page.locator(".message.system form.csat")).to_have_count(0)
        await card.get_by_role("button", name="Rate 4 of 5").click()
        await card.get_by_label("Comment").fill("Quick replacement, thanks")
        await shot(customer_page, "web-desk", "rating-card")
        await card.get_by_role("button", name="Send rating").click()
        await expect(customer_page.locator(".csat-done")).to_have_text("Rated 4 of 5: “Quick replacement, thanks”. Thank you!")
        await expect(agent_page.locator(".csat-done")).to_have_text("Rated 4 of 5: “Quick replacement, thanks”.")
        rating = await rest.get(f"/api/tickets/{opened.json()['id']}/csat", headers=agent.headers)
        assert (rating.json()["csat"]["rating"], rating.json()["csat"]["agent_id"]) == (4, agent.id)
        await shot(agent_page, "web-desk", "agent-after-rating")
        assert agent_page.errors == [] and customer_page.errors == []


async def _availability_is(rest: httpx.AsyncClient, agent, choice: str) -> bool:  # type: ignore[no-untyped-def]
    return (await rest.get("/api/agents/me/availability", headers=agent.headers)).json()["availability"] == choice
