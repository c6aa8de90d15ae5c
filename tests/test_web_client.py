"""The web client in a real browser (Debian's Chromium driven by Playwright) against its own `mqchat up`.

Two customers chat both ways, an agent takes a ticket from the live queue, a customer reacts, reports,
blocks, mutes and archives. Screenshots of
the views are written to `test-artifacts/web-client/` (or `$MQCHAT_TEST_ARTIFACTS`).
"""

from __future__ import annotations

import re
import struct
import zlib

import httpx

from tests.browser_support import TIMEOUT_MS, chromium_mark, expect, new_page, sign_in, signed_in_page
from tests.browser_support import screenshot as shot
from tests.support import System, create_staff, open_conversation, signup
from tests.test_search import indexed

if (mark := chromium_mark()) is not None:
    pytestmark = mark


def tiny_png(size: int = 2) -> bytes:
    """A valid red PNG, 2x2 unless told."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * size for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


async def screenshot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    await shot(page, "web-client", name)


async def test_two_customers_chat_live_in_the_browser(browser, web_system: System, rest: httpx.AsyncClient) -> None:  # type: ignore[no-untyped-def]
    alice, bob = await signup(rest, username="Alice"), await signup(rest, username="Bob")
    alice_page = await signed_in_page(browser, web_system, alice)
    bob_page = await signed_in_page(browser, web_system, bob)

    # Alice starts a conversation with Bob through the picker.
    await alice_page.get_by_role("button", name="New conversation").click()
    await alice_page.get_by_label("Find people").fill("Bob")
    await alice_page.get_by_label("Bob · customer").check()
    await alice_page.get_by_role("button", name="Start").click()
    await expect(alice_page.locator("#conversation-title")).to_have_text("Bob")
    await expect(alice_page.locator("#conversation-presence")).to_have_attribute("data-status", "online")
    await expect(alice_page.locator("#notify")).to_be_hidden()  # this server has no VAPID key: no "Notify me"

    # Typing reaches Bob once he has the conversation open; the message arrives live.
    await expect(bob_page.locator("#conversation-list li")).to_have_count(1)
    await bob_page.locator("#conversation-list li").first.click()
    await alice_page.locator("#body").press_sequentially("hello bob")
    await expect(bob_page.locator("#typing")).to_have_text("Alice is typing…")
    await alice_page.locator("#body").press("Enter")
    await expect(bob_page.locator(".message .body")).to_have_text(["hello bob"])
    await expect(bob_page.locator("#typing")).to_have_text("")

    # Bob has it open, so it is read: Alice sees the read ticks.
    await expect(alice_page.locator(".message.mine .ticks")).to_have_attribute("data-read", "true")

    # And back.
    await bob_page.locator("#body").fill("hi alice")
    await bob_page.get_by_role("button", name="Send").click()
    await expect(alice_page.locator(".message .body")).to_have_text(["hello bob", "hi alice"])

    # Edit and delete one's own message: both sides see it.
    await alice_page.locator(".message.mine").get_by_role("button", name="Edit").click()
    await alice_page.locator("#body").fill("hello, bob")
    await alice_page.locator("#body").press("Enter")
    await expect(bob_page.locator(".message .body").first).to_have_text("hello, bob")
    await expect(bob_page.locator(".message .meta").first).to_contain_text("edited")

    # An image: uploaded, sent, previewed on the other side (fetched with the token).
    await alice_page.locator("#file").set_input_files({"name": "red.png", "mimeType": "image/png", "buffer": tiny_png()})
    await expect(alice_page.locator("#pending-files")).to_contain_text("red.png")
    await alice_page.locator("#body").fill("a picture")
    await alice_page.locator("#body").press("Enter")
    image = bob_page.locator(".message img[alt='red.png']")
    await expect(image).to_have_js_property("naturalWidth", 2)

    # Bob deletes his message; Alice sees the tombstone.
    await bob_page.locator(".message.mine").get_by_role("button", name="Delete").click()
    await expect(alice_page.locator(".message.deleted .body")).to_have_text("This message was deleted")
    await screenshot(alice_page, "alice-conversation")
    await screenshot(bob_page, "bob-conversation")

    # A reload keeps the session (sessionStorage) and shows the history from REST.
    await bob_page.reload()
    await expect(bob_page.locator("#connection")).to_have_text("online")
    await bob_page.locator("#conversation-list li").first.click()
    await expect(bob_page.locator(".message .body")).to_have_text(["hello, bob", "This message was deleted", "a picture"])

    # The connection drops; what is sent meanwhile arrives after the reconnect.
    await bob_page.evaluate("window.mqchat.live.client.stream.destroy()")
    await rest.post(f"/api/conversations/{(await open_conversation(rest, alice, bob))['id']}/messages",
                    json={"body": "while you were away"}, headers=alice.headers)  # fmt: skip
    await expect(bob_page.locator(".message .body").last).to_have_text("while you were away")
    await expect(bob_page.locator("#connection")).to_have_text("online")

    assert alice_page.errors == [] and bob_page.errors == []


async def test_history_scrolls_back_and_unread_badges(browser, web_system: System, rest: httpx.AsyncClient) -> None:  # type: ignore[no-untyped-def]
    carol, dave = await signup(rest, username="Carol"), await signup(rest, username="Dave")
    cid = (await open_conversation(rest, carol, dave))["id"]
    for n in range(1, 121):
        response = await rest.post(f"/api/conversations/{cid}/messages", json={"body": f"note {n}"}, headers=carol.headers)
        assert response.status_code == 201

    page = await signed_in_page(browser, web_system, dave, width=375)
    await expect(page.locator("#conversation-list .badge")).to_have_text("120")
    await screenshot(page, "dave-list-375px")
    await page.locator("#conversation-list li").first.click()
    messages = page.locator(".message .body")
    await expect(messages.last).to_have_text("note 120")
    assert await messages.count() == 50
    for expected in (100, 120):
        await page.locator("#messages").evaluate("list => list.scrollTop = 0")
        await expect(messages).to_have_count(expected)
    await expect(messages.first).to_have_text("note 1")
    await expect(page.locator(".history-end")).to_have_text("Beginning of the conversation")
    await screenshot(page, "dave-conversation-375px")

    unread = (await rest.get("/api/unread", headers={"Authorization": f"Bearer {dave.token}"})).json()
    assert unread["by_conversation"].get(cid, 0) == 0, "opening the conversation marked it read"
    assert page.errors == []


async def test_agent_takes_a_ticket_from_the_live_queue(browser, web_system: System, rest: httpx.AsyncClient) -> None:  # type: ignore[no-untyped-def]
    agent = await create_staff(web_system, rest, "agent")
    customer = await signup(rest, username="Erin")
    agent_page = await signed_in_page(browser, web_system, agent)
    await agent_page.get_by_role("tab", name="Tickets").click()
    await expect(agent_page.locator("#ticket-list-title")).to_have_text("Queue and my tickets")

    customer_page = await signed_in_page(browser, web_system, customer)
    await customer_page.get_by_role("tab", name="Tickets").click()
    await customer_page.get_by_label("Subject").fill("Parcel never arrived")
    await customer_page.get_by_label("What happened?").fill("Order 1234 shows delivered but nothing came.")
    await customer_page.get_by_label("Category").select_option("shipping")
    await customer_page.get_by_role("button", name="Open ticket").click()
    await expect(customer_page.locator("#conversation-title")).to_contain_text("Parcel never arrived")

    # The only agent is online: the ticket is assigned to them and shows up live in their list.
    ticket = agent_page.locator("#ticket-list li", has_text="Parcel never arrived")
    await expect(ticket.locator(".status")).to_have_text("assigned")
    await ticket.click()
    await expect(agent_page.locator("#ticket-controls")).to_be_visible()
    await expect(agent_page.locator("#ticket-description")).to_have_text("Order 1234 shows delivered but nothing came.")
    await agent_page.locator("#body").fill("Sorry about that, checking with the carrier.")
    await agent_page.locator("#body").press("Enter")
    await expect(customer_page.locator(".message .body").last).to_have_text("Sorry about that, checking with the carrier.")

    await agent_page.get_by_label("Status").select_option("in_progress")
    await expect(ticket.locator(".status")).to_have_text("in progress")
    await expect(customer_page.locator("#ticket-list li .status")).to_have_text("in progress")
    await screenshot(agent_page, "agent-ticket")
    await screenshot(customer_page, "customer-ticket")
    assert agent_page.errors == [] and customer_page.errors == []


async def test_each_tab_keeps_its_own_stable_session(browser, web_system: System, rest: httpx.AsyncClient) -> None:  # type: ignore[no-untyped-def]
    frank, grace = await signup(rest, username="Frank"), await signup(rest, username="Grace")
    cid = (await open_conversation(rest, grace, frank))["id"]
    first = await signed_in_page(browser, web_system, frank)
    second = await first.context.new_page()  # same browser profile: shares localStorage, not sessionStorage
    second.set_default_timeout(TIMEOUT_MS)
    await second.goto(f"{web_system.api_url}/")
    await sign_in(second, frank)
    await expect(second.locator("#connection")).to_have_text("online")

    client_id = "window.mqchat.live.clientId"
    ids = [await first.evaluate(client_id), await second.evaluate(client_id)]
    assert ids[0] != ids[1] and all(i.startswith(f"{frank.id}-web-") for i in ids)
    await first.reload()
    await expect(first.locator("#connection")).to_have_text("online")
    assert await first.evaluate(client_id) == ids[0], "a reload resumes the same persistent session"

    await rest.post(f"/api/conversations/{cid}/messages", json={"body": "to both tabs"}, headers=grace.headers)
    for page in (first, second):
        await expect(page.locator("#connection")).to_have_text("online")
        await expect(page.locator("#conversation-list .preview")).to_have_text("Grace: to both tabs")


async def test_digest_links_open_the_conversation_after_sign_in(browser, web_system: System, rest: httpx.AsyncClient) -> None:  # type: ignore[no-untyped-def]
    """Issue 19, item 4: `/#/c/<id>` (digests, push) and the older `/?conversation=<id>` survive the redirect and sign-in."""
    hana, ivan = await signup(rest, username="Hana"), await signup(rest, username="Ivan")
    cid = (await open_conversation(rest, hana, ivan))["id"]
    await rest.post(f"/api/conversations/{cid}/messages", json={"body": "your parcel left"}, headers=hana.headers)
    for link in (f"/#/c/{cid}", f"/?conversation={cid}"):
        page = await new_page(browser, f"{web_system.api_url}{link}")
        await sign_in(page, ivan)
        await expect(page.locator("#conversation-title")).to_have_text("Hana")
        await expect(page.locator(".message .body")).to_have_text(["your parcel left"])
        assert page.url == f"{web_system.api_url}/client/#/c/{cid}"
        # Back shows the list again, as on a phone
        await page.go_back()
        await expect(page.locator("#empty")).to_be_visible()
        assert page.errors == []
        await page.context.close()

    # a conversation one is not part of: the list, and a word why
    page = await signed_in_page(browser, web_system, hana)
    await page.goto(f"{web_system.api_url}/client/#/c/{'0' * 24}")
    await expect(page.locator("#empty-note")).to_contain_text("not available")

    # the digests' List-Unsubscribe link: email notifications off in one click
    await page.goto(f"{web_system.api_url}/client/#/settings/email")
    await page.get_by_role("button", name="Stop emails").click()
    await expect(page.get_by_role("button", name="Turn emails on")).to_be_visible()
    me = (await rest.get("/api/auth/me", headers=hana.headers)).json()
    assert me["preferences"] == {"email_notifications": False}


async def test_page_details_right_to_left_image_scroll_plain_errors(browser, web_system: System, rest: httpx.AsyncClient) -> None:  # type: ignore[no-untyped-def]
    """Issue 19, item 5: errors in plain words, right-to-left text, the newest message in view after an image."""
    page = await new_page(browser, f"{web_system.api_url}/", width=390, height=760)
    await page.get_by_role("tab", name="Create account").click()
    await page.get_by_label("Email").fill("lena@example.com")
    await page.get_by_label("Password").fill("short")
    await page.get_by_role("button", name="Create account").click()
    await expect(page.locator("#auth-error")).to_have_text("Password must be at least 8 characters")
    await page.context.close()

    lena, omar = await signup(rest, username="Lena"), await signup(rest, username="Omar")
    cid = (await open_conversation(rest, omar, lena))["id"]
    for body in [f"line {n}" for n in range(25)] + ["مرحبا، هل الطلب جاهز؟", "plain left to right"]:
        assert (await rest.post(f"/api/conversations/{cid}/messages", json={"body": body}, headers=omar.headers)).status_code == 201
    page = await signed_in_page(browser, web_system, lena, width=390)
    await page.locator("#conversation-list li").first.click()
    await expect(page.locator(".message .body", has_text="مرحبا")).to_have_css("direction", "rtl")
    await expect(page.locator(".message .body", has_text="plain left")).to_have_css("direction", "ltr")

    # an image taller than the "near the bottom" margin: once it has loaded, it is still in view
    await page.locator("#file").set_input_files({"name": "big.png", "mimeType": "image/png", "buffer": tiny_png(240)})
    await expect(page.locator("#pending-files")).to_contain_text("big.png")
    await page.locator("#body").press("Enter")
    await expect(page.locator(".message img[alt='big.png']")).to_have_js_property("naturalWidth", 240)
    await expect(page.locator(".message").last).to_be_in_viewport(ratio=1)
    await screenshot(page, "image-sent-390px")
    assert page.errors == []


async def menu(page, item: str) -> None:  # type: ignore[no-untyped-def]
    """Choose an item of the open conversation's ⋯ menu."""
    await page.get_by_label("Conversation options").click()
    await page.locator(".menu-items").get_by_role("button", name=item).click()


async def test_react_report_block_mute_and_archive(browser, web_system: System, rest: httpx.AsyncClient) -> None:  # type: ignore[no-untyped-def]
    alice, bob = await signup(rest, username="Alice"), await signup(rest, username="Bob")
    admin = await create_staff(web_system, rest, "admin")
    cid = (await open_conversation(rest, alice, bob))["id"]
    sent = await rest.post(f"/api/conversations/{cid}/messages", json={"body": "buy cheap watches"}, headers=bob.headers)
    mid = sent.json()["id"]
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
    await screenshot(bob_page, "bob-blocked")

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
    await screenshot(alice_page, "alice-archived")
    await alice_page.get_by_role("button", name="Back to chats").click()
    await expect(alice_page.locator("#conversation-list li")).to_have_count(0)
    assert alice_page.errors == [] and bob_page.errors == []
async def test_search_jumps_to_messages_and_replies_quote(browser, web_system: System, rest: httpx.AsyncClient) -> None:  # type: ignore[no-untyped-def]
    erin, frank = await signup(rest, username="Erin"), await signup(rest, username="Frank")
    cid = (await open_conversation(rest, erin, frank))["id"]
    url = f"/api/conversations/{cid}/messages"
    for n in range(1, 81):
        body = "the Café order 4711 is packed" if n == 3 else f"note {n}"
        assert (await rest.post(url, json={"body": body}, headers=erin.headers)).status_code == 201
    old = (await rest.get(f"{url}?after_seq=2&limit=1", headers=erin.headers)).json()["items"][0]
    await indexed(web_system, cid)  # every message, not one: the indexer marks them in chunks
    page = await signed_in_page(browser, web_system, frank)

    # Search all conversations: the match is marked; choosing it loads the older pages and shows the message.
    await page.get_by_placeholder("Search messages").fill("cafe 4711")
    hit = page.locator("#search-results li")
    await expect(hit).to_have_count(1)
    await expect(hit.locator("mark")).to_have_text(["Café", "4711"])
    await expect(hit.locator(".title")).to_have_text("Erin")
    await hit.click()
    target = page.locator(f".message[data-id='{old['id']}']")
    await expect(target).to_be_in_viewport()
    await expect(target).to_have_class(re.compile("flash"))

    # Search in the open conversation.
    await page.get_by_role("button", name="Search in this conversation").click()
    await page.get_by_placeholder("Search in this conversation").fill("note 79")
    await page.get_by_placeholder("Search in this conversation").press("Enter")
    await expect(page.locator("#search-here-results li").first.locator("mark")).to_have_text(["note", "79"])
    await page.locator("#search-here-results li").first.click()
    await expect(page.locator(".message", has_text="note 79")).to_be_in_viewport()
    await screenshot(page, "frank-search")

    # Reply: the quote shows the original and goes to it.
    await page.locator(".message", has_text="the Café order").get_by_role("button", name="Reply").click()
    await expect(page.locator("#replying")).to_contain_text("Erin: the Café order 4711 is packed")
    await page.locator("#body").fill("thanks!")
    await page.locator("#body").press("Enter")
    mine = page.locator(".message.mine", has_text="thanks!")
    await expect(mine.locator(".quote")).to_contain_text("the Café order 4711 is packed")
    await expect(page.locator("#replying")).to_be_hidden()
    await page.locator(".messages").evaluate("list => list.scrollTop = list.scrollHeight")
    await mine.locator(".quote").click()
    await expect(target).to_be_in_viewport()
    stored = (await rest.get(f"{url}?limit=1", headers=erin.headers)).json()["items"][0]
    assert stored["body"] == "thanks!" and stored["reply_to"] == old["id"]

    # The original deleted: the quote says so, live.
    assert (await rest.delete(f"/api/messages/{old['id']}", headers=erin.headers)).status_code == 200
    await expect(mine.locator(".quote-body")).to_have_text("deleted message")
    await screenshot(page, "frank-reply")
    assert page.errors == []
