"""The admin console in a real browser (issue 22, item 6): reports as SVG charts, user management, the audit log,
at desktop width and on a 390 px phone. Screenshots go to `test-artifacts/web-console/`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.browser_support import chromium, chromium_mark, expect, new_page, screenshot
from tests.support import Account, System, create_staff, signup
from tests.test_web_mobile import fits

if (mark := chromium_mark()) is not None:
    pytestmark = mark


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    async with chromium() as browser:
        yield browser


async def console_page(browser, system: System, account: Account, width: int, height: int = 900):  # type: ignore[no-untyped-def]
    page = await new_page(browser, f"{system.api_url}/#/admin/reports", width=width, height=height)
    await page.get_by_label("Email").fill(account.email)
    await page.get_by_label("Password").fill(account.password)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.locator("#console")).to_be_visible()
    await expect(page.locator(".chart-svg")).to_have_count(4)
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

    page = await console_page(browser, system, admin, width=1280)
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

    phone = await console_page(browser, system, admin, width=390, height=844)
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
    page = await new_page(browser, f"{system.api_url}/#/admin/users", width=1100)
    await page.get_by_label("Email").fill(customer.email)
    await page.get_by_label("Password").fill(customer.password)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.locator("#connection")).to_have_text("online")
    await expect(page.locator("#open-console")).to_be_hidden()
    await expect(page.locator("#console")).to_be_hidden()
    assert not page.errors, page.errors
