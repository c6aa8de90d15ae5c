"""The web client's reactions, report, block, mute and archive controls in a real browser (Chromium, Playwright)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.browser_support import chromium, chromium_mark, expect, new_page
from tests.browser_support import screenshot as shot
from tests.support import Account, System, create_staff, open_conversation, running, signup

if (mark := chromium_mark()) is not None:
    pytestmark = mark


@pytest.fixture(scope="module")
def web_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    with running(System.on_free_ports(tmp_path_factory.mktemp("mqchat-social") / "data")) as system:
        yield system


@pytest.fixture
async def rest(web_system: System) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=web_system.api_url, timeout=30) as client:
        yield client


async def signed_in_page(browser, system: System, account: Account):  # type: ignore[no-untyped-def]
    page = await new_page(browser, f"{system.api_url}/", width=1100, height=760)
    await page.get_by_label("Email").fill(account.email)
    await page.get_by_label("Password").fill(account.password)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.locator("#connection")).to_have_text("online")
    return page


async def menu(page, item: str) -> None:  # type: ignore[no-untyped-def]
    """Choose an item of the open conversation's ⋯ menu."""
    await page.get_by_label("Conversation options").click()
    await page.locator(".menu-items").get_by_role("button", name=item).click()


async def test_react_report_block_mute_and_archive_in_the_browser(web_system: System, rest: httpx.AsyncClient) -> None:
    alice, bob = await signup(rest, username="Alice"), await signup(rest, username="Bob")
    admin = await create_staff(web_system, rest, "admin")
    cid = (await open_conversation(rest, alice, bob))["id"]
    sent = await rest.post(f"/api/conversations/{cid}/messages", json={"body": "buy cheap watches"}, headers=bob.headers)
    mid = sent.json()["id"]
    async with chromium() as browser:
        alice_page, bob_page = await signed_in_page(browser, web_system, alice), await signed_in_page(browser, web_system, bob)
        await alice_page.locator("#conversation-list li").first.click()
        await bob_page.locator("#conversation-list li").first.click()

        # Alice reacts from the palette; Bob sees it live and adds his own by clicking the chip.
        await alice_page.locator(".message").get_by_role("button", name="React", exact=True).click()
        await alice_page.get_by_role("button", name="React 👍").click()
        await expect(bob_page.locator(".reaction")).to_have_text(["👍 1"])
        await expect(bob_page.locator(".reaction")).to_have_attribute("aria-pressed", "false")
        await bob_page.locator(".reaction").click()
        await expect(alice_page.locator(".reaction")).to_have_text(["👍 2"])
        await expect(bob_page.locator(".reaction")).to_have_attribute("aria-pressed", "true")
        await expect(alice_page.locator(".reaction")).to_have_attribute("title", "You, Bob")

        # Alice reports the message: a dialog asks why.
        await alice_page.locator(".message").get_by_role("button", name="Report").click()
        await alice_page.get_by_label("Why are you reporting this?").fill("  ")
        await alice_page.get_by_role("button", name="Send report").click()
        await expect(alice_page.locator("#report-error")).not_to_be_empty()
        await alice_page.get_by_label("Why are you reporting this?").fill("Spam or abuse")
        await alice_page.get_by_role("button", name="Send report").click()
        await expect(alice_page.locator("#moderation-note")).to_have_text("Thank you: the report went to the moderators.")
        queue = (await rest.get(f"/api/admin/reports?user_id={bob.id}", headers=admin.headers)).json()["items"]
        assert [(r["message_id"], r["reason"], r["message"]["body"]) for r in queue] == [(mid, "Spam or abuse", "buy cheap watches")]

        # Alice blocks Bob: his next message is refused with a plain error.
        await menu(alice_page, "Block Bob")
        await expect(alice_page.locator("#moderation-note")).to_have_text("Bob is blocked.")
        await bob_page.locator("#body").fill("why?")
        await bob_page.locator("#body").press("Enter")
        await expect(bob_page.locator("#composer-error")).to_contain_text("does not accept your messages")
        await shot(bob_page, "web-social", "bob-blocked")

        # Mute, then archive: the conversation leaves the list and stays archived even when a message comes.
        await menu(alice_page, "Mute")
        await alice_page.get_by_label("Conversation options").click()
        await expect(alice_page.get_by_role("button", name="Unmute")).to_be_visible()
        await alice_page.get_by_role("button", name="Archive", exact=True).click()
        await expect(alice_page.locator("#conversation-list li")).to_have_count(0)
        await expect(alice_page.locator("#conversation")).to_be_hidden()
        await rest.delete(f"/api/blocks/{bob.id}", headers=alice.headers)
        assert (await rest.post(f"/api/conversations/{cid}/messages", json={"body": "ok"}, headers=bob.headers)).status_code == 201
        await alice_page.get_by_role("button", name="Archived chats").click()
        await expect(alice_page.locator("#conversation-list li")).to_have_count(1)
        await shot(alice_page, "web-social", "alice-archived")
        await alice_page.get_by_role("button", name="Back to chats").click()
        await expect(alice_page.locator("#conversation-list li")).to_have_count(0)
        assert alice_page.errors == [] and bob_page.errors == []
