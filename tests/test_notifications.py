"""Email digests and Web Push for recipients who are away, against real protocol peers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes
from email.header import decode_header, make_header
from email.policy import default
from email.utils import parsedate_to_datetime

import httpx
import pytest
from aiosmtpd.controller import Controller

from mqchat.store import free_port
from tests.metrics_support import Samples, scrape, scrape_until, value
from tests.push_support import BrowserKeys, PushService, vapid_env
from tests.push_support import push_service as push_stand_in
from tests.support import (
    Account,
    System,
    crashable_device,
    create_staff,
    open_conversation,
    send_numbered,
    signup,
)


class Inbox:
    """An SMTP server (aiosmtpd) that keeps what it receives."""

    def __init__(self) -> None:
        self.mails: list[tuple[list[str], object]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.mails.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=default)))
        return "250 OK"


def public_url(system: System) -> str:
    """Where the server says it can be reached (MQCHAT_PUBLIC_HOST defaults to localhost)."""
    return f"http://localhost:{system.api_port}"


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Inbox, int]]:
    """The module's SMTP server: tests tell their mails apart by their fresh users' addresses (`mails_to`)."""
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
async def push_service() -> AsyncIterator[tuple[PushService, str]]:
    async with push_stand_in() as (service, base):
        yield service, f"{base}/device-1"


@pytest.fixture(scope="module")
def notify_system(tmp_path_factory: pytest.TempPathFactory, smtp: tuple[Inbox, int]) -> Iterator[System]:
    """A system that notifies a second after a message waits for someone away, by email and Web Push."""
    system = System.on_free_ports(
        tmp_path_factory.mktemp("mqchat-notify") / "data",
        SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp[1]), SMTP_TLS="none", SMTP_FROM="mqchat <chat@shop.example>",
        MQCHAT_NOTIFY_DELAY_MS="1000", **vapid_env(),
    )  # fmt: skip
    system.start()
    yield system
    assert system.stop() == 0


def mails_to(inbox: Inbox, *accounts: Account) -> list[tuple[list[str], object]]:
    """The mails sent to any of `accounts`, oldest first."""
    addresses = {account.email for account in accounts}
    return [mail for mail in inbox.mails if addresses & set(mail[0])]


async def wait_mails(inbox: Inbox, count: int, *to: Account, timeout: float = 15) -> None:
    for _ in range(int(timeout * 10)):
        if len(mails_to(inbox, *to)) >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"expected {count} emails, got {len(mails_to(inbox, *to))}")


async def test_one_email_digest_for_quick_messages(notify_system: System, smtp: tuple[Inbox, int]) -> None:
    system, (inbox, _) = notify_system, smtp
    async with httpx.AsyncClient(base_url=system.api_url, timeout=30) as api:
        alice, bob = await signup(api, username="Alice <Shop>"), await signup(api, username="Bob")
        cid = (await open_conversation(api, alice, bob, context={"type": "product", "id": "mug", "title": "Blue mug"}))["id"]
        long = "<b>bold & long</b> " + "x" * 400
        await send_numbered(system, alice, cid, 6, "quick", then=long)
        await wait_mails(inbox, 1, alice, bob)
        await asyncio.sleep(2.5)  # a second email would have come by now
        assert len(mails_to(inbox, alice, bob)) == 1
        recipients, mail = mails_to(inbox, alice, bob)[0]
        assert recipients == [bob.email]
        subject = str(make_header(decode_header(mail["Subject"])))
        assert "7 new messages" in subject and "Alice <Shop>" in subject and "Blue mug" in subject
        assert abs(parsedate_to_datetime(mail["Date"]).timestamp() - time.time()) < 120
        assert re.fullmatch(r"<[^<>@\s]+@shop\.example>", mail["Message-ID"])
        assert mail["List-Unsubscribe"] == f"<{public_url(system)}/client/#/settings/email>"

        # plain text and HTML, the newest 5 of 7, each cut to 200 characters, a deep link to the conversation
        assert mail.get_content_type() == "multipart/alternative"
        text = mail.get_body(("plain",)).get_content()
        html = mail.get_body(("html",)).get_content()
        link = f"{public_url(system)}/client/#/c/{cid}"
        for part in (text, html):
            assert "quick message 0" not in part and "quick message 1" not in part
            assert all(f"quick message {n}" in part for n in range(2, 6))
            assert "and 2 more" in part and link in part
            assert "x" * 200 not in part and "x" * 150 in part
        assert "Alice <Shop>: <b>bold & long</b> xxx" in text
        assert "<b>bold" not in html and "&lt;b&gt;bold &amp; long&lt;/b&gt;" in html and "Alice &lt;Shop&gt;" in html
        cut = next(line for line in text.splitlines() if "bold" in line).removeprefix("Alice <Shop>: ")
        assert len(cut) == 200 and cut.endswith("…")
        assert alice.email not in [r for r, _ in inbox.mails for r in r]

        # the root keeps an older link's query on its way to the client
        old = await api.get(f"/?conversation={cid}")
        assert old.status_code in (301, 302, 307, 308) and old.headers["location"] == f"/client/?conversation={cid}"

        # bob turns email off: nothing more
        off = await api.patch("/api/auth/me", json={"preferences": {"email_notifications": False}}, headers=bob.headers)
        assert off.status_code == 200 and off.json()["preferences"] == {"email_notifications": False}
        await send_numbered(system, alice, cid, 2, "muted")
        await asyncio.sleep(3)
        assert len(mails_to(inbox, alice, bob)) == 1


async def test_no_email_when_present_already_read_or_muted(notify_system: System, smtp: tuple[Inbox, int]) -> None:
    system, (inbox, _) = notify_system, smtp
    async with httpx.AsyncClient(base_url=system.api_url, timeout=30) as api:
        alice, bob, carol = await signup(api), await signup(api), await signup(api)
        with_bob = (await open_conversation(api, alice, bob))["id"]
        with_carol = (await open_conversation(api, alice, carol))["id"]

        phone = await crashable_device(system, bob, "phone")  # bob is online
        for _ in range(50):
            if (await api.get(f"/api/users/{bob.id}", headers=alice.headers)).json()["presence"]["status"] == "online":
                break
            await asyncio.sleep(0.1)
        await send_numbered(system, alice, with_bob, 2, "live")

        sent = (await api.post(f"/api/conversations/{with_carol}/messages", json={"body": "read me"}, headers=alice.headers)).json()
        await api.post(f"/api/conversations/{with_carol}/read", json={"message_id": sent["id"]}, headers=carol.headers)
        # dave muted his conversation with alice (per member: alice's side is not muted); erin did not
        dave, erin = await signup(api), await signup(api)
        with_dave, with_erin = (await open_conversation(api, alice, dave))["id"], (await open_conversation(api, alice, erin))["id"]
        muted = await api.patch(f"/api/conversations/{with_dave}/settings", json={"muted": True}, headers=dave.headers)
        assert muted.status_code == 200 and muted.json()["muted"] is True
        await send_numbered(system, alice, with_dave, 2, "to dave")
        await send_numbered(system, alice, with_erin, 1, "to erin")
        await wait_mails(inbox, 1, alice, bob, carol, dave, erin)
        await asyncio.sleep(2)  # dave's would have come by now
        assert [recipients for recipients, _ in mails_to(inbox, alice, bob, carol, dave, erin)] == [[erin.email]]
        phone.kill()
        await phone.wait()


async def test_web_push_is_encrypted_and_expired_subscriptions_are_removed(
    notify_system: System, push_service: tuple[PushService, str]
) -> None:
    system, (service, endpoint) = notify_system, push_service
    browser = BrowserKeys()
    async with httpx.AsyncClient(base_url=system.api_url, timeout=30) as api:
        alice, bob = await signup(api, username="Alice"), await signup(api)
        key = (await api.get("/api/push/vapid-public-key", headers=bob.headers)).json()["public_key"]
        assert key and len(base64.urlsafe_b64decode(key + "==")) == 65
        subscription = {"endpoint": endpoint, "keys": browser.keys}
        registered = await api.post("/api/push/subscriptions", json=subscription, headers=bob.headers)
        assert registered.status_code == 201
        bad = await api.post("/api/push/subscriptions", json={**subscription, "endpoint": "ftp://x"}, headers=bob.headers)
        assert bad.status_code == 400

        cid = (await open_conversation(api, alice, bob))["id"]
        await send_numbered(system, alice, cid, 3, "push")
        for _ in range(150):
            if service.received:
                break
            await asyncio.sleep(0.1)
        [(headers, body)] = service.received
        assert headers["Content-Encoding"] == "aes128gcm"
        assert headers["Authorization"].startswith("vapid t=") and f"k={key}" in headers["Authorization"]
        payload = browser.decrypt(body)
        assert payload["conversation_id"] == cid and payload["count"] == 3 and "Alice" in payload["title"]

        # the browser is gone: the push service answers 410 and the subscription is deleted
        service.gone = True
        await send_numbered(system, alice, cid, 1, "gone")
        for _ in range(150):
            if len(service.received) == 2:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        gone = await api.delete(f"/api/push/subscriptions/{registered.json()['id']}", headers=bob.headers)
        assert gone.status_code == 404, "already removed after the 410"


def log_events(system: System, event: str) -> list[dict]:
    """The `mqchat up` log's JSON lines for one event."""
    lines = (system.data_dir.parent / f"{system.data_dir.name}-up.log").read_text(errors="replace").splitlines()
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    return [entry for entry in entries if entry.get("event") == event]


async def wait_logged(system: System, event: str, timeout: float = 15, **match: str) -> dict:
    for _ in range(int(timeout * 10)):
        found = [e for e in log_events(system, event) if all(e.get(k) == v for k, v in match.items())]
        if found:
            return found[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {event} {match} in the log")


def gone_count(samples: Samples) -> float:
    return value(samples, "mqchat_notifications_total", channel="push", outcome="gone")


async def test_each_browser_is_pushed_on_its_own(notify_system: System, push_service: tuple[PushService, str]) -> None:
    """Issue 19, item 3: a dead subscription is retried alone, a 404 one deleted, the working one served at once."""
    system, (service, endpoint) = notify_system, push_service
    base = endpoint.rsplit("/", 1)[0]
    endpoints = {
        "dead": f"http://127.0.0.1:{free_port()}/push/dead",  # nothing listens there: refused, retried
        "expired": f"{base}/expired-1",  # the push service answers 404: the browser unsubscribed
        "working": f"{base}/working-1",
    }
    async with httpx.AsyncClient(base_url=system.api_url, timeout=30) as api:
        alice, bob, carol = await signup(api, username="Alice"), await signup(api, username="Bob"), await signup(api)
        ids, browsers = {}, {name: BrowserKeys() for name in endpoints}
        for name, url in endpoints.items():
            registered = await api.post("/api/push/subscriptions", json={"endpoint": url, "keys": browsers[name].keys}, headers=bob.headers)
            assert registered.status_code == 201
            ids[name] = registered.json()["id"]

        admin = await create_staff(system, api, "admin")
        gone_before = gone_count((await scrape(api, admin))[1])
        cid = (await open_conversation(api, alice, bob, carol, kind="group", title="Order 1234"))["id"]
        await send_numbered(system, alice, cid, 2, "fanout")

        # the working browser gets its push while the dead one is still being retried
        sent = await wait_logged(system, "notifier.sent", channel="push", subscription_id=ids["working"])
        assert sent["user_id"] == bob.id
        [body] = service.by_token["working-1"]
        payload = browsers["working"].decrypt(body)
        assert payload["conversation_id"] == cid and payload["count"] == 2
        await wait_logged(system, "notifier.send_failed", channel="push", subscription_id=ids["dead"])
        gave_up = [e for e in log_events(system, "notifier.gave_up") if e.get("subscription_id") in ids.values()]
        assert not gave_up, "the dead browser is still being retried on its own"

        # the expired one was asked once, deleted, and not retried
        await wait_logged(system, "notifier.recipient_gone", channel="push", subscription_id=ids["expired"])
        assert len(service.by_token["expired-1"]) == 1
        gone = await api.delete(f"/api/push/subscriptions/{ids['expired']}", headers=bob.headers)
        assert gone.status_code == 404, "deleted after the 404"
        await scrape_until(api, admin, {"one more push gone": lambda s: gone_count(s) == gone_before + 1})
        kept = await api.delete(f"/api/push/subscriptions/{ids['dead']}", headers=bob.headers)
        assert kept.status_code == 204, "an unreachable browser is retried, not deleted"

        # carol has no browser subscribed: her email goes out, and no push is claimed for her
        await wait_logged(system, "notifier.sent", channel="email", user_id=carol.id)
        push_lines = [e for e in log_events(system, "notifier.sent") if e.get("channel") == "push" and e.get("user_id") == bob.id]
        assert [e["subscription_id"] for e in push_lines] == [ids["working"]]
