"""The admin console in a real browser (issue 22, item 6): reports as SVG charts, user management, the audit log,
the live queue per team, agents with their status and load, the moderation queue, teams, routing and canned replies,
at desktop width and on a 390 px phone. Screenshots go to `test-artifacts/web-console/`.
"""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

import httpx
from bson import ObjectId
from pymongo import AsyncMongoClient

from tests.browser_support import chromium_mark, expect, screenshot, signed_in_page
from tests.support import Account, System, crashable_device, create_staff, open_conversation, signup
from tests.test_web_mobile import fits

if (mark := chromium_mark()) is not None:
    pytestmark = mark


async def console_page(browser, system: System, account: Account, tab: str, width: int, height: int = 900):  # type: ignore[no-untyped-def]
    """The admin console on `tab`, `account` signed in and connected."""
    page = await signed_in_page(browser, system, account, path=f"/#/admin/{tab}", width=width, height=height)
    await expect(page.locator(f"#console-{tab}")).to_be_visible()
    return page


async def desk_day(api: httpx.AsyncClient, admin: Account, agent: Account, customer: Account) -> None:
    """A ticket answered and resolved by `agent`, and one waiting: something for the charts."""
    for resolve in (True, False):
        ticket = (await api.post("/api/tickets", json={"subject": "Late parcel", "description": "Order 5"}, headers=customer.headers)).json()
        assigned = await api.post(f"/api/tickets/{ticket['id']}/assign", json={"agent_id": agent.id}, headers=admin.headers)
        assert assigned.status_code == 200, assigned.text
        if resolve:
            await api.post(f"/api/conversations/{ticket['conversation_id']}/messages", json={"body": "Checking"}, headers=agent.headers)
            for status in ("in_progress", "resolved"):
                assert (await api.post(f"/api/tickets/{ticket['id']}/status", json={"status": status}, headers=agent.headers)).status_code == 200


async def test_admin_console_reports_users_and_audit(browser, system: System, api: httpx.AsyncClient, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    admin, agent = await create_staff(system, api, "admin"), await create_staff(system, api, "agent")
    customer = await signup(api, username=f"Console {agent.id[-6:]}")
    await desk_day(api, admin, agent, customer)

    page = await console_page(browser, system, admin, "reports", width=1280)
    await expect(page.locator(".chart-svg")).to_have_count(4)
    await expect(page.locator("#open-console")).to_be_visible()
    opened = int(await page.locator(".figure").filter(has_text="opened").locator(".figure-value").text_content())
    assert opened >= 2
    await page.get_by_label("Split by").select_option("agent")
    agent_name = agent.body["user"]["username"]
    await expect(page.locator(".report-table tbody th").filter(has_text=agent_name)).to_have_count(1)
    assert not page.errors, page.errors
    await screenshot(page, "web-console", "reports-desktop")

    await page.get_by_role("tab", name="Users").click()
    assert page.url.endswith("#/admin/users")
    await page.get_by_label("Find users").fill(customer.body["user"]["username"])
    await page.get_by_role("button", name="Find", exact=True).click()
    row = page.locator(f"[data-user='{customer.id}']")
    await expect(row.locator(".status")).to_have_text("active")
    await row.get_by_label(f"Role of {customer.body['user']['username']}").select_option("merchant")
    await expect(row.get_by_label(f"Role of {customer.body['user']['username']}")).to_have_value("merchant")
    await row.get_by_role("button", name="Deactivate").click()
    await expect(row.locator(".status")).to_have_text("deactivated")
    assert (await api.get("/api/auth/me", headers=customer.headers)).status_code == 401, "signed out everywhere"
    async with page.expect_download() as download_info:
        await row.get_by_role("button", name="Export").click()
    exported = json.loads(Path(await (await download_info.value).path()).read_text())
    assert exported["user"]["id"] == customer.id and exported["user"]["role"] == "merchant"
    await screenshot(page, "web-console", "users-desktop")
    await row.get_by_role("button", name="Erase").click()  # the confirmation is accepted (new_page)
    await expect(row).to_have_count(0)  # now "Deleted user": found by id
    await page.get_by_label("Find users").fill(customer.id)
    await page.get_by_role("button", name="Find", exact=True).click()
    await expect(row.locator(".status")).to_have_text("erased")
    await expect(row.get_by_role("button", name="Erase")).to_be_disabled()

    await page.get_by_role("tab", name="Audit log").click()
    rows = page.locator("#audit-rows tr")
    await expect(rows.first).to_contain_text("user.erased")
    for action in ("user.exported", "user.deactivated", "user.role_changed"):
        await expect(rows.filter(has_text=action).filter(has_text=customer.id).first).to_be_visible()
    await page.get_by_label("Action").select_option("user.role_changed")
    await expect(rows.first).to_contain_text("from: customer, to: merchant")
    assert not page.errors, page.errors
    await screenshot(page, "web-console", "audit-desktop")
    await page.get_by_role("button", name="Back to chats").click()
    await expect(page.locator("#sidebar")).to_be_visible()

    phone = await console_page(browser, system, admin, "reports", width=390, height=844)
    await expect(phone.locator(".chart-svg")).to_have_count(4)
    await fits(phone, "console reports on a phone")
    await screenshot(phone, "web-console", "reports-phone")
    for tab, name in (("Users", "users-phone"), ("Audit log", "audit-phone")):
        await phone.get_by_role("tab", name=tab).click()
        if tab == "Users":
            await phone.get_by_role("button", name="Find", exact=True).click()
            await expect(phone.locator(".user-row").first).to_be_visible()
        else:
            await expect(phone.locator("#audit-rows tr").first).to_be_visible()
        await fits(phone, f"console {tab} on a phone")
        await screenshot(phone, "web-console", name)
    assert not phone.errors, phone.errors


async def test_the_console_is_for_admins_only(browser, system: System, api: httpx.AsyncClient) -> None:  # type: ignore[no-untyped-def]
    customer = await signup(api)
    page = await signed_in_page(browser, system, customer, path="/#/admin/users")
    await expect(page.locator("#open-console")).to_be_hidden()
    await expect(page.locator("#console")).to_be_hidden()
    assert not page.errors, page.errors


def unexpected(page) -> list[str]:  # type: ignore[no-untyped-def]
    """The page's errors but the browser's notes of the 4xx answers the test provoked (shown in the page instead)."""
    return [error for error in page.errors if "the server responded with a status of 4" not in error]


async def report_a_message(api: httpx.AsyncClient, body: str) -> dict:
    """Someone reports a message someone else sent them: an open report for the moderation queue."""
    writer, reader = await signup(api), await signup(api)
    chat = await open_conversation(api, reader, writer)
    sent = await api.post(f"/api/conversations/{chat['id']}/messages", json={"body": body}, headers=writer.headers)
    filed = await api.post("/api/reports", json={"message_id": sent.json()["id"], "reason": "rude"}, headers=reader.headers)
    assert filed.status_code == 201, filed.text
    return filed.json()


async def test_the_desk_console_queue_agents_moderation_teams_routing_and_canned_replies(  # type: ignore[no-untyped-def]
    browser, system: System, api: httpx.AsyncClient
) -> None:
    """An admin sets up a team with its routing, watches its queue and agents live, assigns by hand, clears the
    moderation queue and writes canned replies; refusals show in the page; the team's lead gets the desk console."""
    admin, ann, ben = await create_staff(system, api, "admin"), await create_staff(system, api, "agent"), await create_staff(system, api, "agent")
    customer = await signup(api)
    name = f"Returns {secrets.token_hex(3)}"
    ann_name, ben_name = ann.body["user"]["username"], ben.body["user"]["username"]
    assert (await api.put("/api/agents/me/availability", json={"availability": "busy"}, headers=ann.headers)).status_code == 200
    ann_desk = await crashable_device(system, ann, "desk")  # connected, but busy: tickets wait in the queue
    try:
        page = await console_page(browser, system, admin, "teams", width=1280)

        # teams: create (a duplicate name is refused in the page), add members by name, a lead, rename
        form = page.locator("#team-form")
        await form.get_by_label("New team").fill(name)
        await form.get_by_label("Escalate after (minutes)").fill("45")
        await form.get_by_role("button", name="Create team").click()
        card = page.locator(".team-card", has=page.get_by_role("heading", name=name, exact=True))
        await expect(card).to_have_count(1)
        await form.get_by_label("New team").fill(name.upper())
        await form.get_by_role("button", name="Create team").click()
        await expect(page.locator("#teams-error")).to_have_text("a team with this name exists")
        team_id = await card.get_attribute("data-team")
        for who, lead in ((ann_name, True), (ben_name, False)):
            await card.get_by_label("Add agent").fill(who)
            await card.get_by_label("as lead").set_checked(lead)
            await card.get_by_role("button", name="Add", exact=True).click()
            await expect(card.locator(f".member-row:has-text('{who}')")).to_have_count(1)
        await card.get_by_label("Add agent").fill("zz-nobody")
        await card.get_by_role("button", name="Add", exact=True).click()
        await expect(card.locator(".error")).to_have_text('No active agent or admin is called "zz-nobody".')
        await expect(card.get_by_label(f"{ann_name} leads {name}")).to_be_checked()
        await expect(card.get_by_label(f"{ben_name} leads {name}")).not_to_be_checked()
        name = f"{name} desk"
        await card.get_by_label("Name", exact=True).fill(name)
        await card.get_by_role("button", name="Save").click()
        card = page.locator(f".team-card[data-team='{team_id}']")
        await expect(card.get_by_role("heading")).to_have_text(name)
        team = (await api.get(f"/api/teams/{team_id}", headers=admin.headers)).json()
        assert (team["name"], team["lead_ids"], set(team["member_ids"]), team["escalate_after_seconds"]) == (name, [ann.id], {ann.id, ben.id}, 2700)
        assert not unexpected(page), page.errors
        await screenshot(page, "web-console", "teams-desktop")

        # routing: returns go to the team (the shared system's routing is put back in `finally`)
        await page.get_by_role("tab", name="Routing").click()
        await page.get_by_label("Team for returns").select_option(team_id)
        await expect(page.locator("#routing-escalation-returns")).to_have_text("45m 0s")
        await page.get_by_role("button", name="Save routing").click()
        await expect(page.locator("#routing-status")).to_contain_text("Saved")
        routing = (await api.get("/api/admin/ticket-routing", headers=admin.headers)).json()
        assert routing == {"routes": {"returns": team_id}, "default_team_id": None}
        await screenshot(page, "web-console", "routing-desktop")
        await page.get_by_role("tab", name="Teams").click()
        await card.get_by_role("button", name="Delete team").click()  # confirmed (new_page accepts dialogs)
        await expect(card.locator(".error")).to_have_text("the routing sends tickets to this team: change it first")

        # the queue: tickets routed to the team appear live and wait, their times counting up
        await page.get_by_role("tab", name="Queue").click()
        section = page.locator(f"[data-queue-team='{team_id}']")
        await expect(section).to_contain_text("nobody waiting")
        first, second = [(await api.post("/api/tickets", json={"subject": f"Refund {n}", "description": "Broken", "category": "returns"},
                                          headers=customer.headers)).json() for n in (1, 2)]  # fmt: skip
        assert first["team_id"] == team_id and first["status"] == "open"
        row = section.locator(f"[data-queue-ticket='{first['number']}']")
        await expect(section.locator(".queue-row")).to_have_count(2)
        await expect(section.locator(".queue-summary")).to_contain_text("2 waiting")
        before = await row.locator(".waiting").text_content()
        await expect(row.locator(".waiting")).not_to_have_text(before)  # ticking
        # escalated (as the bridge's sweep would mark it): the REST reload shows the flag
        mongo: AsyncMongoClient = AsyncMongoClient(system.store_uri_from_file())
        try:
            await mongo.mqchat.tickets.update_one({"_id": ObjectId(first["id"])}, {"$set": {"escalated_ms": 1}})
        finally:
            await mongo.close()
        await page.get_by_role("tab", name="Queue").click()
        await expect(row.locator(".escalated")).to_have_text("escalated")
        await expect(section.locator(".queue-summary")).to_contain_text("1 escalated")
        assert not unexpected(page), page.errors
        await screenshot(page, "web-console", "queue-desktop")
        await row.get_by_label(f"Assign ticket #{first['number']}").select_option(label=f"{ben_name} (offline)")
        await expect(row).to_have_count(0)
        assert (await api.get(f"/api/tickets/{first['id']}", headers=admin.headers)).json()["assignee_id"] == ben.id

        # agents: status and load, both live
        await page.get_by_role("tab", name="Agents").click()
        await page.locator("#agents-form").get_by_label("Team").select_option(team_id)
        ann_row, ben_row = page.locator(f"[data-agent='{ann.id}']"), page.locator(f"[data-agent='{ben.id}']")
        await expect(ann_row.locator(".agent-status")).to_have_text("busy")
        await expect(ben_row.locator(".agent-status")).to_have_text("offline (chose online)")
        await expect(ann_row.locator(".agent-presence")).to_have_text("online")
        await expect(ben_row.locator(".agent-load")).to_have_text(re.compile(r"^1 / \d+$"))
        await expect(page.locator("#agents-rows tr")).to_have_count(2)
        assert (await api.put("/api/agents/me/availability", json={"availability": "offline"}, headers=ann.headers)).status_code == 200
        await expect(ann_row.locator(".agent-status")).to_have_text("offline")
        given = await api.post(f"/api/tickets/{second['id']}/assign", json={"agent_id": ben.id}, headers=admin.headers)
        assert given.status_code == 200, given.text
        await expect(ben_row.locator(".agent-load")).to_have_text(re.compile(r"^2 / \d+$"))
        assert not unexpected(page), page.errors
        await screenshot(page, "web-console", "agents-desktop")

        # moderation: the copied message, resolved with a note
        report = await report_a_message(api, f"you are a fool {secrets.token_hex(2)}")
        await page.get_by_role("tab", name="Moderation").click()
        report_card = page.locator(f"[data-report='{report['id']}']")
        await expect(report_card.locator(".reported-message")).to_contain_text(report["message"]["body"])
        await expect(report_card).to_contain_text("rude")
        await screenshot(page, "web-console", "moderation-desktop")
        await report_card.get_by_label("Resolution note").fill("Warned the writer")
        await report_card.get_by_role("button", name="Resolve").click()
        await expect(report_card).to_have_count(0)
        [resolved] = (await api.get(f"/api/admin/reports?status=resolved&user_id={report['user_id']}", headers=admin.headers)).json()["items"]
        assert (resolved["resolution_note"], resolved["resolved_by"]) == ("Warned the writer", admin.id)

        # canned replies: personal and the team's; a taken short code is refused in the page; edit; delete
        code = f"thanks-{secrets.token_hex(2)}"
        await page.get_by_role("tab", name="Canned replies").click()
        canned = page.locator("#canned-form")
        for count, scope in enumerate(("me (personal)", f"team {name}"), start=1):
            await canned.get_by_label("Short code").fill(code)
            await canned.locator("[name=team_id]").select_option(label=scope)
            await canned.locator("[name=content]").fill("Thanks {{customer.name}}!")
            await canned.get_by_role("button", name="Add reply").click()
            await expect(page.locator(f"[data-canned='{code}']")).to_have_count(count)
        await expect(page.locator("#canned-error")).to_have_text("")
        await canned.get_by_label("Short code").fill(code)
        await canned.locator("[name=team_id]").select_option(label="me (personal)")
        await canned.locator("[name=content]").fill("again")
        await canned.get_by_role("button", name="Add reply").click()
        await expect(page.locator("#canned-error")).to_have_text(f"/{code} exists already")
        team_reply = page.locator(f"[data-canned='{code}']", has_text=name)
        await team_reply.get_by_role("button", name=f"Edit /{code}").click()
        await team_reply.locator("[name=content]").fill("Thank you, {{customer.name}}.")
        await team_reply.get_by_role("button", name="Save").click()
        await expect(team_reply.locator(".canned-content")).to_have_text("Thank you, {{customer.name}}.")
        await page.locator("#canned-filter").select_option(label=f"team {name}")
        await expect(page.locator("#canned-list > li")).to_have_count(1)
        assert not unexpected(page), page.errors
        await screenshot(page, "web-console", "canned-desktop")
        await page.locator("#canned-filter").select_option(label="my personal replies")
        await page.locator(f"[data-canned='{code}']").get_by_role("button", name=f"Delete /{code}").click()
        await expect(page.locator(f"[data-canned='{code}']")).to_have_count(0)
        mine = (await api.get("/api/canned", params={"q": code}, headers=admin.headers)).json()["items"]
        assert [(r["team_id"], r["content"]) for r in mine] == [(team_id, "Thank you, {{customer.name}}.")]
        # an admin manages an agent's personal replies too
        theirs = await api.post("/api/canned", json={"short_code": f"ann-{code}", "content": "Ann's"}, headers=ann.headers)
        assert theirs.status_code == 201, theirs.text
        await page.locator("#canned-show").get_by_label("Personal replies of").fill(ann_name)
        await page.get_by_role("button", name="Show theirs").click()
        ann_reply = page.locator(f"[data-canned='ann-{code}']")
        await expect(ann_reply.locator(".canned-scope")).to_have_text(f"personal, of {ann_name}")
        await ann_reply.get_by_role("button", name=f"Delete /ann-{code}").click()
        await expect(ann_reply).to_have_count(0)
        assert (await api.get("/api/canned", params={"q": f"ann-{code}"}, headers=ann.headers)).json()["items"] == []

        # a phone: every new tab fits 390 px
        phone = await console_page(browser, system, admin, "queue", width=390, height=844)
        for tab, ready in (("Queue", f"[data-queue-team='{team_id}']"), ("Agents", "#agents-rows tr"), ("Moderation", "#moderation-list > li"),
                           ("Teams", f".team-card[data-team='{team_id}']"), ("Routing", "#routing-rows tr"),
                           ("Canned replies", "#canned-list > li")):  # fmt: skip
            await phone.get_by_role("tab", name=tab).click()
            await expect(phone.locator(ready).first).to_be_visible()
            await fits(phone, f"console {tab} on a phone")
            await screenshot(phone, "web-console", f"{tab.split()[0].lower()}-phone")
        assert not unexpected(phone), phone.errors

        # the team's lead: the desk console with the queue and canned replies only, the team's replies theirs to write
        lead = await console_page(browser, system, ann, "canned", width=1280)
        await expect(lead.locator("#open-console")).to_have_text("Desk")
        await expect(lead.locator("[data-console-tab]:visible")).to_have_count(2)
        await expect(lead.locator(f"[data-canned='{code}']").get_by_role("button", name=f"Edit /{code}")).to_be_visible()
        await lead.get_by_role("tab", name="Queue").click()
        await expect(lead.locator(f"[data-queue-team='{team_id}']")).to_contain_text("nobody waiting")
        assert not unexpected(lead), lead.errors
    finally:
        await api.put("/api/admin/ticket-routing", json={}, headers=admin.headers)
        ann_desk.kill()
        await ann_desk.wait()
