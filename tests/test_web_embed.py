"""The web client embedded in a shop's page on another origin, signed in with the platform's token.

A local HTTP server plays the shop: its page (http://127.0.0.1:<shop port>) mounts the client with
`mqchat-embed.js`, and its `/token` mints a fresh HS256 platform token, as the shop's backend would.
A second server is a third origin, not in MQCHAT_EMBED_ORIGINS. Everything runs in Debian's Chromium.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from core import topics
from core.settings import ConfigError, Settings
from mqchat.store import free_port
from tests.browser_support import chromium_mark, expect, new_page
from tests.browser_support import screenshot as shot
from tests.platform_support import Platform, account_of, exchange, provisioned
from tests.support import Account, System, device, open_conversation, running

if (mark := chromium_mark()) is not None:
    pytestmark = mark

# The shop's page: `?api=` is the mqchat to embed; the whole query goes to /token (which platform user).
SHOP_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shop</title></head>
<body>
  <h1>Shop</h1>
  <p>Tokens handed: <output id="tokens">0</output></p>
  <ol id="events"></ol>
  <div id="chat" style="width: 1000px; height: 640px"></div>
  <script src="MQCHAT/client/mqchat-embed.js"></script>
  <script>
    let handed = 0;
    window.chat = mqchat.mount(document.getElementById("chat"), {
      getPlatformToken: async () => {
        const token = await (await fetch("/token" + location.search)).text();
        document.getElementById("tokens").textContent = String(++handed);
        return token;
      },
      onEvent: (message) => document.getElementById("events").append(Object.assign(document.createElement("li"), { textContent: message.type })),
    });
  </script>
</body></html>
"""


class Site:
    """A web site on its own origin: SHOP_PAGE at `/`, fresh platform tokens of a buyer at `/token?user=&name=`,
    an empty page at `/blank`."""

    def __init__(self, platform: Platform, mqchat_url: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.origin = f"http://127.0.0.1:{self.port}"

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = {key: values[0] for key, values in parse_qs(url.query).items()}
                if url.path == "/token":
                    body, kind = platform.hs256(query["user"], "buyer", name=query.get("name", "Ana Buyer")), "text/plain"
                elif url.path == "/blank":
                    body, kind = "<!doctype html><title>Blank</title><h1>Blank</h1>", "text/html"
                else:
                    body, kind = SHOP_PAGE.replace("MQCHAT", query.get("api", mqchat_url)), "text/html"
                self.send_response(200)
                self.send_header("Content-Type", f"{kind}; charset=utf-8")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def page_url(self, user: str, **query: str) -> str:
        return httpx.URL(f"{self.origin}/", params={"user": user, **query}).__str__()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory, platform: Platform) -> Iterator[tuple[System, Site, Site]]:
    """A system trusting the platform, embeddable by the shop's origin only (sign-up closed); the shop; a third site."""
    shop_port = free_port()
    env = {**platform.env, "MQCHAT_EMBED_ORIGINS": f"http://127.0.0.1:{shop_port}", "MQCHAT_SIGNUP": "closed"}
    system = System.on_free_ports(tmp_path_factory.mktemp("mqchat-embed") / "data", **env)
    with running(system):
        shop, elsewhere = Site(platform, system.api_url, shop_port), Site(platform, system.api_url)
        yield system, shop, elsewhere
        shop.close()
        elsewhere.close()


@pytest.fixture
async def rest(sites: tuple[System, Site, Site]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sites[0].api_url, timeout=30) as client:
        yield client


async def exchanged(rest: httpx.AsyncClient, token: str) -> Account:
    """The platform user behind `token`, signed in over REST (`POST /api/auth/exchange`)."""
    return account_of(await exchange(rest, token))


async def screenshot(page: Any, name: str) -> None:
    await shot(page, "web-embed", name)


async def test_a_shop_page_embeds_the_client_and_its_buyer_chats_with_a_seller(
    browser: Any, sites: tuple[System, Site, Site], rest: httpx.AsyncClient, platform: Platform
) -> None:
    system, shop, _ = sites
    buyer_id, seller_id = f"user_{secrets.token_hex(4)}", f"user_{secrets.token_hex(4)}"
    seller = await exchanged(rest, platform.hs256(seller_id, "seller", name="Sam Seller"))

    page = await new_page(browser, shop.page_url(buyer_id))
    chat = page.frame_locator("#chat iframe")
    await expect(chat.locator("#connection")).to_have_text("online")
    await expect(chat.locator("#me")).to_have_text("Ana Buyer (customer)")
    await expect(page.locator("#events li")).to_have_text(["mqchat:signed-in"])
    await expect(chat.locator("#auth-view")).to_be_hidden()  # no password forms in embed mode
    await expect(chat.locator("#logout")).to_be_hidden()  # the shop owns the session

    # The seller opens the order's conversation and writes; it shows up inside the iframe.
    buyer = await exchanged(rest, platform.hs256(buyer_id, "buyer", name="Ana Buyer"))
    context = {"type": "order", "id": "o-42", "title": "Order 42"}
    cid = (await open_conversation(rest, seller, buyer, context=context))["id"]
    sent = await rest.post(f"/api/conversations/{cid}/messages", json={"body": "Your parcel left today"}, headers=seller.headers)
    assert sent.status_code == 201, sent.text
    await expect(chat.locator("#conversation-list .preview")).to_have_text("Sam Seller: Your parcel left today")
    await chat.locator("#conversation-list li").first.click()
    await expect(chat.locator("#conversation-title")).to_have_text("Sam Seller · Order 42")
    await expect(chat.locator(".message .body")).to_have_text(["Your parcel left today"])

    # The buyer answers from the iframe (MQTT over WebSocket); the seller's device receives it.
    async with device(system, seller) as seller_web:
        await chat.locator("#body").fill("Thank you!")
        await chat.locator("#body").press("Enter")
        [answer] = await seller_web.wait_for(1, "message.created", topics.user_inbox(seller.id))
    assert answer["message"]["sender_id"] == buyer.id and answer["message"]["body"] == "Thank you!"

    # The shop's backend posts a system message through the server API; it shows as "System".
    key = (await asyncio.to_thread(system.cli, "api-key", "create", "--name", "shop backend")).stdout.strip()
    notice = {"body": "Order 42 has shipped", "client_msg_id": "o-42-shipped"}
    posted = await rest.post(f"/api/platform/conversations/{cid}/messages", json=notice, headers={"Authorization": f"Bearer {key}"})
    assert posted.status_code == 201, posted.text
    await expect(chat.locator(".message.system .sender")).to_have_text("System")
    await expect(chat.locator(".message.system .body")).to_have_text("Order 42 has shipped")
    await screenshot(page, "shop-with-chat")

    # "Sign out everywhere" ends the embedded session too: the client asks the shop for a new platform
    # token instead of showing a password form, and carries on as the same user.
    assert (await rest.post("/api/auth/logout", headers=buyer.headers)).status_code == 204
    await expect(page.locator("#events li")).to_have_text(["mqchat:signed-in", "mqchat:token-needed", "mqchat:signed-in"])
    await expect(page.locator("#tokens")).to_have_text("2")
    await expect(chat.locator("#connection")).to_have_text("online")
    await rest.post(f"/api/conversations/{cid}/messages", json={"body": "Back again?"}, headers=seller.headers)
    await expect(chat.locator(".message .body")).to_have_text(
        ["Your parcel left today", "Thank you!", "Order 42 has shipped", "Back again?"]
    )
    await expect(chat.locator("#auth-view")).to_be_hidden()
    refused = f"Failed to load resource: the server responded with a status of 401 (Unauthorized) at {system.api_url}/api/auth/refresh"
    assert page.errors and set(page.errors) == {refused}, "the only errors are the revoked session's refused refresh"


async def test_a_token_from_an_origin_not_listed_is_ignored(
    browser: Any, sites: tuple[System, Site, Site], platform: Platform
) -> None:
    system, shop, elsewhere = sites
    buyer_id, intruder_id = f"user_{secrets.token_hex(4)}", f"user_{secrets.token_hex(4)}"
    page = await new_page(browser, shop.page_url(buyer_id, name="Bea Buyer"))
    chat = page.frame_locator("#chat iframe")
    await expect(chat.locator("#me")).to_have_text("Bea Buyer (customer)")

    # A frame of another origin inside the shop's page hands the client a valid platform token of its own.
    await page.evaluate("url => document.body.append(Object.assign(document.createElement('iframe'), {src: url}))",
                        f"{elsewhere.origin}/blank")  # fmt: skip
    await expect(page.frame_locator("body > iframe").locator("h1")).to_have_text("Blank")
    intruder = next(frame for frame in page.frames if frame.url.startswith(elsewhere.origin))
    await intruder.evaluate("token => parent.frames[0].postMessage({type: 'mqchat:token', token}, '*')",
                            platform.hs256(intruder_id, "buyer", name="Intruder"))  # fmt: skip

    # The shop hands its token once more; the client handles tokens in order, so once this one is
    # through, the intruder's has been dealt with: ignored, never exchanged.
    await page.evaluate("async (origin) => chat.frame.contentWindow.postMessage("
                        "{type: 'mqchat:token', token: await (await fetch('/token' + location.search)).text()}, origin)",
                        system.api_url)  # fmt: skip
    await expect(page.locator("#events li")).to_have_text(["mqchat:signed-in", "mqchat:signed-in"])
    await expect(chat.locator("#me")).to_have_text("Bea Buyer (customer)")
    assert await provisioned(system, intruder_id) == 0
    assert page.errors == []

    # The third site cannot even frame the client: the client's frame-ancestors names only the shop.
    framed = await new_page(browser)
    async with framed.expect_console_message(lambda message: "frame-ancestors" in message.text) as refusal:
        await framed.goto(elsewhere.page_url(intruder_id))
    blocked = f"Framing '{system.api_url}/' violates the following Content Security Policy directive: \"frame-ancestors {shop.origin}\"."
    assert (await refusal.value).text.startswith(blocked)
    assert await provisioned(system, intruder_id) == 0


async def test_only_the_client_is_framed_and_only_by_the_listed_origins(
    sites: tuple[System, Site, Site], rest: httpx.AsyncClient
) -> None:
    _, shop, _ = sites
    client = await rest.get("/client/")
    assert f"frame-ancestors {shop.origin}" in client.headers["content-security-policy"]
    assert "x-frame-options" not in client.headers
    for path in ("/api/health", "/api/client/config", "/"):
        other = await rest.get(path)
        assert "frame-ancestors 'none'" in other.headers["content-security-policy"] and other.headers["x-frame-options"] == "DENY"
    assert (await rest.get("/api/client/config")).json() == {"embed_origins": [shop.origin], "signup": "closed"}


async def test_without_embed_origins_the_client_refuses_framing(api: httpx.AsyncClient) -> None:
    client = await api.get("/client/")
    assert client.headers["x-frame-options"] == "DENY"
    assert client.headers["content-security-policy"].endswith("frame-ancestors 'none'")
    assert (await api.get("/api/client/config")).json() == {"embed_origins": [], "signup": "open"}


async def test_sign_up_is_not_offered_when_closed(browser: Any, sites: tuple[System, Site, Site]) -> None:
    page = await new_page(browser, f"{sites[0].api_url}/client/")
    await expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
    await expect(page.get_by_role("tab", name="Create account")).to_be_hidden()
    assert page.errors == []


def test_embed_origins_are_exact_origins(tmp_path: Path) -> None:
    """They go into a CSP header and are compared with `event.origin`: no wildcard, path or other directive."""
    env = {"MQCHAT_DATA_DIR": str(tmp_path), "MQCHAT_EMBED_ORIGINS": "https://Shop.example.com/, http://127.0.0.1:8080"}
    assert Settings.load(env, env_file=None).embed_origins == ("https://shop.example.com", "http://127.0.0.1:8080")
    for bad in ("*", "https://*.example.com", "https://shop.example.com/chat", "shop.example.com", "https://a.example; script-src *"):
        with pytest.raises(ConfigError, match="MQCHAT_EMBED_ORIGINS"):
            Settings.load({**env, "MQCHAT_EMBED_ORIGINS": bad}, env_file=None)
