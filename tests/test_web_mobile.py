"""The web client on phones (issue 19, item 1): Chromium under Playwright at 360x740 and 390x844.

The list and the conversation are two screens with a Back control, nothing is wider than the
viewport, everything one taps is at least 40 px each way, and the composer stays on screen when
the on-screen keyboard takes half the height. Screenshots go to `test-artifacts/web-mobile/`.
"""

from __future__ import annotations

import httpx
import pytest

from tests.browser_support import chromium_mark, expect, new_page, screenshot, sign_in
from tests.support import Account, System, create_staff, open_conversation, signup

if (mark := chromium_mark()) is not None:
    pytestmark = mark

PHONES = [(360, 740), (390, 844)]
TAP_MIN = 40

# Every element's box against the viewport, and every visible control's size.
MEASURE = """(tapMin) => {
  const width = document.documentElement.clientWidth;
  const describe = (node) => node.tagName.toLowerCase() + (node.id ? `#${node.id}` : "")
    + (typeof node.className === "string" && node.className ? `.${node.className.trim().split(/\\s+/).join(".")}` : "");
  const visible = (node) => node.checkVisibility({ opacityProperty: true, visibilityProperty: true });
  const overflowing = [];
  for (const node of document.body.querySelectorAll("*")) {
    if (!visible(node) || node.closest(".visually-hidden")) continue;
    const box = node.getBoundingClientRect();
    if (box.width && (box.left < -0.5 || box.right > width + 0.5)) {
      overflowing.push(`${describe(node)} ${Math.round(box.left)}..${Math.round(box.right)}`);
    }
    // a control whose own text spills out of it (squeezed by its neighbours)
    else if (node.matches("button, select") && node.scrollWidth > node.clientWidth + 1) overflowing.push(`${describe(node)} spills`);
  }
  const controls = "button, select, textarea, input:not([type=file]):not([type=checkbox]), label.attach, .list > li, a[href]";
  const small = [...document.body.querySelectorAll(controls)].filter(visible).map((node) => [node, node.getBoundingClientRect()])
    .filter(([, box]) => box.width < tapMin || box.height < tapMin)
    .map(([node, box]) => `${describe(node)} "${node.textContent.trim().slice(0, 20)}" ${Math.round(box.width)}x${Math.round(box.height)}`);
  return { pageWidth: document.documentElement.scrollWidth, width, overflowing, small };
}"""


async def fits(page, where: str) -> None:  # type: ignore[no-untyped-def]
    """Nothing sticks out of the viewport sideways, and every visible control is big enough to tap."""
    measured = await page.evaluate(MEASURE, TAP_MIN)
    assert not measured["overflowing"], f"{where}: wider than the viewport: {measured['overflowing']}"
    assert measured["pageWidth"] <= measured["width"], f"{where}: the page scrolls sideways"
    assert not measured["small"], f"{where}: tap targets under {TAP_MIN} px: {measured['small']}"


async def phone_page(browser, system: System, account: Account, size: tuple[int, int]):  # type: ignore[no-untyped-def]
    page = await new_page(browser, f"{system.api_url}/", width=size[0], height=size[1])
    await fits(page, "sign-in")
    await sign_in(page, account)
    await expect(page.locator("#connection")).to_have_text("online")
    return page


@pytest.mark.parametrize("size", PHONES, ids=[f"{w}x{h}" for w, h in PHONES])
async def test_list_and_conversation_are_two_screens(browser, web_system: System, rest: httpx.AsyncClient, size) -> None:  # type: ignore[no-untyped-def]
    name = f"{size[0]}x{size[1]}"
    shopper = await signup(rest, username="Maximiliane Oberhuber-Kaltenbrunner")
    seller = await signup(rest, role="merchant", username="Teapots and Kettles of the Northern Highlands Ltd")
    cid = (await open_conversation(rest, shopper, seller, context={"type": "order", "id": "A-1", "title": "Order A-1 (two kettles)"}))["id"]
    for body in ("Hello! Is the copper kettle still available?", "https://shop.example/kettles/" + "copper-kettle-" * 12, "Yes, shipping tomorrow."):
        sender = seller if body.startswith("Yes") else shopper
        assert (await rest.post(f"/api/conversations/{cid}/messages", json={"body": body}, headers=sender.headers)).status_code == 201

    page = await phone_page(browser, web_system, shopper, size)
    # the list screen: the conversation is not shown beside it
    await expect(page.locator("#conversation-list li")).to_have_count(1)
    await expect(page.locator("#sidebar")).to_be_visible()
    await expect(page.locator("#empty")).to_be_hidden()
    await fits(page, "list")
    await screenshot(page, "web-mobile", f"list-{name}")

    # the conversation screen replaces it, with a Back control
    await page.locator("#conversation-list li").first.click()
    await expect(page.locator(".message .body")).to_have_count(3)
    await expect(page.locator("#sidebar")).to_be_hidden()
    await expect(page.get_by_role("button", name="Back to conversations")).to_be_visible()
    await page.locator("#body").fill("Great, thank you!")
    await page.get_by_role("button", name="Send").click()
    await expect(page.locator(".message.mine .ticks")).to_have_count(3)  # the new one stored too
    await fits(page, "conversation")
    await screenshot(page, "web-mobile", f"conversation-{name}")

    # the on-screen keyboard takes about half the height: the composer and the newest message stay in view
    await page.set_viewport_size({"width": size[0], "height": size[1] // 2})
    await page.locator("#body").focus()
    await expect(page.locator("#composer")).to_be_in_viewport(ratio=1)
    await expect(page.locator(".message").last).to_be_in_viewport()
    await fits(page, "conversation with the keyboard up")
    await screenshot(page, "web-mobile", f"keyboard-{name}")
    await page.set_viewport_size({"width": size[0], "height": size[1]})

    # Back: the list again
    await page.get_by_role("button", name="Back to conversations").click()
    await expect(page.locator("#sidebar")).to_be_visible()
    await expect(page.locator("#conversation")).to_be_hidden()
    await fits(page, "list after Back")
    assert page.errors == []


async def test_agent_ticket_screen_fits_a_phone(browser, web_system: System, rest: httpx.AsyncClient) -> None:  # type: ignore[no-untyped-def]
    agent = await create_staff(web_system, rest, "agent")
    customer = await signup(rest, username="Erin")
    page = await phone_page(browser, web_system, agent, PHONES[0])
    await page.get_by_role("tab", name="Tickets").click()
    created = await rest.post("/api/tickets", json={
        "subject": "My parcel never arrived and the tracking page says it was delivered",
        "description": "Order 1234 shows delivered but nothing came.", "category": "shipping", "priority": "high",
    }, headers=customer.headers)  # fmt: skip
    assert created.status_code == 201, created.text
    ticket = page.locator("#ticket-list li", has_text="My parcel never arrived")
    await expect(ticket.locator(".status")).to_have_text("assigned")
    await fits(page, "ticket list")
    await screenshot(page, "web-mobile", "agent-tickets-360x740")
    await ticket.click()
    await expect(page.locator("#ticket-controls")).to_be_visible()
    await fits(page, "ticket conversation")
    await screenshot(page, "web-mobile", "agent-ticket-360x740")
    assert page.errors == []
