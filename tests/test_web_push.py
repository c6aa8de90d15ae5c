"""Issue 19 in the web client: Web Push from the page, a closed ticket's note, what a new conversation is about.

Headless Chromium under Playwright against its own `mqchat up` with a VAPID key. What Chromium cannot do here,
and how the test goes around it:
- it has no push service to subscribe with (its incognito-like contexts refuse the Push API, a persistent profile
  waits for Google's servers forever): the page's handling of that refusal is checked first; then a stand-in
  replaces `PushManager.subscribe`/`getSubscription` (STAND_IN), handing out a subscription at a stand-in push
  service with the test's keys, so that the server's real push can be read and handed to the service worker with
  DevTools' `ServiceWorker.deliverPushMessage`;
- a notification cannot be clicked: the click's decisions (`api/client/notification.js`) are checked as functions,
  and the open tab's side by having the service worker post to it what a click posts.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.browser_support import chromium_mark, expect, signed_in_page
from tests.browser_support import screenshot as shot
from tests.push_support import BrowserKeys, push_service, vapid_env
from tests.support import System, create_staff, open_conversation, running, signup

if (mark := chromium_mark()) is not None:
    pytestmark = mark

# Runs before the client's scripts. The subscription is kept in localStorage (a browser keeps it across reloads);
# `subscribe` records the options it was given.
STAND_IN = """(() => {
  const SETUP = %s;
  const STORE = "push-stand-in";
  const saved = () => JSON.parse(localStorage.getItem(STORE) || "{}");
  const save = (changes) => localStorage.setItem(STORE, JSON.stringify({ ...saved(), ...changes }));
  const subscription = (record) => ({
    endpoint: SETUP.endpoint,
    options: { userVisibleOnly: record.userVisibleOnly, applicationServerKey: new Uint8Array(record.key).buffer },
    toJSON: () => ({ endpoint: SETUP.endpoint, expirationTime: null, keys: SETUP.keys }),
    unsubscribe: async () => { save({ active: false, unsubscribed: (saved().unsubscribed ?? 0) + 1 }); return true; },
  });
  PushManager.prototype.subscribe = async function (options) {
    save({ active: true, userVisibleOnly: options.userVisibleOnly, key: [...new Uint8Array(options.applicationServerKey)] });
    return subscription(saved());
  };
  PushManager.prototype.getSubscription = async function () {
    return saved().active ? subscription(saved()) : null;
  };
})();"""

NO_PUSH = "delete window.PushManager;"

# The click's decisions, run in the page with the module the service worker uses.
CLICK_DECISIONS = """async ([scope, cid]) => {
  const { clickTarget, notificationOf, tabFor } = await import("/client/notification.js");
  const tab = (url, focused = false, visibilityState = "hidden") => ({ url, focused, visibilityState });
  const elsewhere = tab("http://elsewhere.example/client/", true, "visible");
  const hidden = tab(`${scope}#/c/${cid}`), visible = tab(scope, false, "visible"), focused = tab(scope, true, "visible");
  return {
    target: clickTarget(scope, { conversation_id: cid }),
    targetOfNonsense: clickTarget(scope, { conversation_id: "../../admin" }),
    focusedFirst: tabFor([elsewhere, hidden, visible, focused], scope) === focused,
    thenVisible: tabFor([elsewhere, hidden, visible], scope) === visible,
    thenAny: tabFor([elsewhere, hidden], scope) === hidden,
    noneOfOurs: tabFor([elsewhere], scope),
    garbled: notificationOf("not an object"),
  };
}"""


@pytest.fixture(scope="module")
def push_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """A system that sends Web Push a second after a message waits for someone who is away."""
    data = tmp_path_factory.mktemp("mqchat-web-push") / "data"
    with running(System.on_free_ports(data, MQCHAT_NOTIFY_DELAY_MS="1000", **vapid_env())) as system:
        yield system


@pytest.fixture
async def rest(push_system: System) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=push_system.api_url, timeout=30) as client:
        yield client


async def screenshot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    await shot(page, "web-push", name)


async def shown_notifications(page) -> list[dict]:  # type: ignore[no-untyped-def]
    """The notifications the service worker shows now."""
    return await page.evaluate("""navigator.serviceWorker.ready.then((r) => r.getNotifications())
      .then((shown) => shown.map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data })))""")


async def deliver_push(page, origin: str, data: str) -> None:  # type: ignore[no-untyped-def]
    """Hand `data` to the page's service worker as a push message, as the browser does when one arrives."""
    cdp = await page.context.new_cdp_session(page)
    registrations: list[dict] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda event: registrations.extend(event["registrations"]))
    await cdp.send("ServiceWorker.enable")
    for _ in range(50):
        if registrations:
            break
        await asyncio.sleep(0.1)
    [registration] = [r for r in registrations if not r["isDeleted"]]
    await cdp.send("ServiceWorker.deliverPushMessage", {"origin": origin, "registrationId": registration["registrationId"], "data": data})


async def test_notify_me_subscribes_a_push_shows_and_sign_out_unsubscribes(browser, push_system: System, rest: httpx.AsyncClient) -> None:  # type: ignore[no-untyped-def]
    origin, scope = push_system.api_url, f"{push_system.api_url}/client/"
    alice, bob = await signup(rest, username="Alice"), await signup(rest, username="Bob")
    cid = (await open_conversation(rest, alice, bob))["id"]
    server_key = (await rest.get("/api/push/vapid-public-key", headers=bob.headers)).json()["public_key"]

    # a browser without the Push API is not offered what it cannot do
    page = await signed_in_page(browser, push_system, bob, init_script=NO_PUSH)
    await expect(page.locator("#notify")).to_be_hidden()
    assert await page.evaluate("navigator.serviceWorker.getRegistrations().then((r) => r.length)") == 0
    await page.context.close()

    # The service worker is registered for /client/ and active; CSP allows it (no errors at the end).
    page = await signed_in_page(browser, push_system, bob)
    await expect(page.get_by_role("button", name="Notify me")).to_be_visible()
    assert await page.evaluate("navigator.serviceWorker.ready.then((r) => [r.scope, r.active.state])") == [scope, "activated"]

    # Real headless Chromium refuses to subscribe: the page says so and offers the control again.
    await page.context.grant_permissions(["notifications"], origin=origin)
    await page.get_by_role("button", name="Notify me").click()
    await expect(page.locator("#notify-error")).to_contain_text("Notifications could not be turned on: ")
    await expect(page.get_by_role("button", name="Notify me")).to_be_visible()
    await page.context.close()

    # With the stand-in: "Notify me" subscribes with the server's key and registers the subscription.
    async with push_service() as (service, base):
        device = BrowserKeys()
        stand_in = STAND_IN % json.dumps({"endpoint": f"{base}/bob-browser", "keys": device.keys})
        page = await signed_in_page(browser, push_system, bob, init_script=stand_in)
        await page.context.grant_permissions(["notifications"], origin=origin)
        async with page.expect_response(lambda r: r.url.endswith("/api/push/subscriptions")) as posted:
            await page.get_by_role("button", name="Notify me").click()
        registered = await (await posted.value).json()
        assert (await posted.value).status == 201 and registered["endpoint"] == f"{base}/bob-browser"
        await expect(page.locator("#notify-state")).to_have_text("Notifications are on in this browser.")
        await expect(page.get_by_role("button", name="Turn off")).to_be_visible()
        subscribed = json.loads(await page.evaluate("localStorage.getItem('push-stand-in')"))
        assert subscribed["userVisibleOnly"] is True
        assert bytes(subscribed["key"]) == base64.urlsafe_b64decode(server_key + "=="), "subscribed with the server's VAPID key"
        kept = json.loads(await page.evaluate("localStorage.getItem('mqchat.push')"))
        assert kept == {"user_id": bob.id, "id": registered["id"]}
        await screenshot(page, "notifications-on")

        # Bob goes away; Alice writes: the server pushes to the subscription the page registered...
        await page.evaluate("window.mqchat.live.stop()")
        for _ in range(100):
            if (await rest.get(f"/api/users/{bob.id}", headers=bob.headers)).json()["presence"]["status"] == "offline":
                break
            await asyncio.sleep(0.1)
        assert (await rest.post(f"/api/conversations/{cid}/messages", json={"body": "your parcel left"}, headers=alice.headers)).status_code == 201
        for _ in range(150):
            if service.by_token.get("bob-browser"):
                break
            await asyncio.sleep(0.1)
        [body] = service.by_token["bob-browser"]
        payload = device.decrypt(body)
        assert payload["conversation_id"] == cid and payload["body"] == "Alice: your parcel left"

        # ...and the service worker shows it, one notification per conversation.
        # CDP's delivery was once not acted on within 5 s in CI (not reproduced): hand it over again, as a push
        # service retries; the notification's tag makes a repeat replace, not add
        for _ in range(3):
            await deliver_push(page, origin, json.dumps(payload))
            for _ in range(30):
                if shown := await shown_notifications(page):
                    break
                await asyncio.sleep(0.1)
            if shown:
                break
        expected = {"title": payload["title"], "body": "Alice: your parcel left", "tag": f"conversation-{cid}"}
        assert shown == [{**expected, "data": {"conversation_id": cid}}]

        # A click opens the conversation's deep link, in our focused tab, else a visible one, else any.
        decisions = await page.evaluate(CLICK_DECISIONS, [scope, cid])
        assert decisions == {
            "target": f"{scope}#/c/{cid}", "targetOfNonsense": scope, "focusedFirst": True, "thenVisible": True,
            "thenAny": True, "noneOfOurs": None, "garbled": {"title": "New messages", "options": {"body": "", "data": {"conversation_id": None}}},
        }  # fmt: skip

        # A reload signs Bob in again with the subscription registered anew; the worker asks the tab to open a conversation.
        async with page.expect_response(lambda r: r.url.endswith("/api/push/subscriptions")) as posted:
            await page.reload()
        again = await (await posted.value).json()
        await expect(page.locator("#connection")).to_have_text("online")
        await expect(page.locator("#notify-state")).to_have_text("Notifications are on in this browser.")
        [worker] = page.context.service_workers
        await worker.evaluate("""async (cid) => {
          const [tab] = await self.clients.matchAll({ type: "window" });
          tab.postMessage({ type: "mqchat:open-conversation", conversation_id: cid });
        }""", cid)  # fmt: skip
        await expect(page.locator("#conversation-title")).to_have_text("Alice")
        await expect(page.locator(".message .body")).to_have_text(["your parcel left"])
        assert page.url == f"{scope}#/c/{cid}"

        # Sign-out deletes the subscription on the server and unsubscribes the browser.
        async with page.expect_response(lambda r: r.request.method == "DELETE") as deleted:
            await page.get_by_role("button", name="Sign out").click()
        assert (await deleted.value).url.endswith(f"/api/push/subscriptions/{again['id']}") and (await deleted.value).status == 204
        await expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
        assert json.loads(await page.evaluate("localStorage.getItem('push-stand-in')"))["active"] is False
        assert await page.evaluate("localStorage.getItem('mqchat.push')") is None
        assert (await rest.delete(f"/api/push/subscriptions/{again['id']}", headers=bob.headers)).status_code == 404
        assert page.errors == []


async def test_closed_ticket_note_and_conversation_context(browser, push_system: System, rest: httpx.AsyncClient) -> None:  # type: ignore[no-untyped-def]
    """A closed ticket's conversation shows why nothing can be written; the picker attaches an order, the header shows it."""
    customer, seller = await signup(rest, username="Nora"), await signup(rest, role="merchant", username="Teapot Shop")
    agent, admin = await asyncio.gather(create_staff(push_system, rest, "agent"), create_staff(push_system, rest, "admin"))
    ticket = (await rest.post("/api/tickets", json={"subject": "Lid cracked", "description": "The lid arrived cracked."},
                              headers=customer.headers)).json()  # fmt: skip
    assigned = await rest.post(f"/api/tickets/{ticket['id']}/assign", json={"agent_id": agent.id}, headers=admin.headers)
    assert assigned.status_code == 200, assigned.text
    for status in ("in_progress", "resolved"):
        moved = await rest.post(f"/api/tickets/{ticket['id']}/status", json={"status": status}, headers=agent.headers)
        assert moved.status_code == 200, moved.text

    page = await signed_in_page(browser, push_system, customer)
    await page.get_by_role("tab", name="Tickets").click()
    await page.locator("#ticket-list li", has_text="Lid cracked").click()
    await expect(page.locator("#composer")).to_be_visible()
    await expect(page.locator("#ticket-closed")).to_be_hidden()

    # closed while open: the composer gives way to the note at once
    closed = await rest.post(f"/api/tickets/{ticket['id']}/status", json={"status": "closed"}, headers=customer.headers)
    assert closed.status_code == 200, closed.text
    note = f"Ticket #{ticket['number']} is closed: open a new ticket to continue."
    await expect(page.locator("#ticket-closed")).to_have_text(note)
    await expect(page.locator("#composer")).to_be_hidden()
    await screenshot(page, "closed-ticket")

    # The picker: a half-filled "About" is refused in plain words; an order is attached and shown in the header.
    await page.get_by_role("tab", name="Chats").click()
    await page.get_by_role("button", name="New conversation").click()
    await page.get_by_label("Find people").fill("Teapot")
    await page.get_by_label("Teapot Shop · merchant").check()
    await page.get_by_label("Kind").select_option("order")
    await page.get_by_role("button", name="Start").click()
    await expect(page.locator("#picker-error")).to_have_text("Give the order's number or reference")
    await page.get_by_label("Number or reference").fill("A-1001")
    await page.locator("#context-title").fill("Blue teapot, 1 l")
    await page.get_by_role("button", name="Start").click()
    await expect(page.locator("#conversation-context")).to_have_text("Order A-1001 · Blue teapot, 1 l")
    await expect(page.locator("#composer")).to_be_visible()
    conversations = (await rest.get("/api/conversations", headers=seller.headers)).json()["items"]
    assert [c["context"] for c in conversations] == [{"type": "order", "id": "A-1001", "title": "Blue teapot, 1 l"}]
    await screenshot(page, "conversation-context")

    # back on the ticket: the note again; another conversation has no context line
    await page.get_by_role("tab", name="Tickets").click()
    await page.locator("#ticket-list li", has_text="Lid cracked").click()
    await expect(page.locator("#ticket-closed")).to_have_text(note)
    await expect(page.locator("#conversation-context")).to_be_hidden()
    assert page.errors == []
