"""Browser tests' common ground: Debian's Chromium under Playwright, error capture, screenshots."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

playwright_api = pytest.importorskip("playwright.async_api")
expect = playwright_api.expect

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TIMEOUT_MS = 15_000
_ARTIFACTS = Path(os.environ.get("MQCHAT_TEST_ARTIFACTS", Path(__file__).parent.parent / "test-artifacts"))


def chromium_mark() -> pytest.MarkDecorator | None:
    """Skip (or, in CI, fail as expected) a module's browser tests when Chromium is missing; None when it is there."""
    if Path(CHROMIUM).exists():
        return None
    reason = "Debian's chromium is not installed (scripts/test installs it)"
    return pytest.mark.skip(reason=reason) if not os.environ.get("CI") else pytest.mark.xfail(reason=reason, strict=True)


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """A headless Chromium, closed on exit."""
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
        )
        try:
            yield browser
        finally:
            await browser.close()


async def screenshot(page: Any, folder: str, name: str) -> None:
    """`test-artifacts/<folder>/<name>.png` (or under `$MQCHAT_TEST_ARTIFACTS`)."""
    target = _ARTIFACTS / folder
    target.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(target / f"{name}.png"), full_page=True)


async def new_page(browser: Any, url: str | None = None, *, width: int = 1100, height: int = 900) -> Any:
    """A page in a fresh browser context (its own storage), on `url` if given; `page.errors` collects every
    frame's page errors and console errors (CSP violations among them), and dialogs are accepted."""
    context = await browser.new_context(viewport={"width": width, "height": height})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and page.errors.append(f"{message.text} at {message.location['url']}"))
    page.on("dialog", lambda dialog: dialog.accept())
    if url:
        await page.goto(url)
    return page


async def sign_in(page: Any, account: Any) -> None:
    """Fill the web client's login form with `account`'s credentials and submit it."""
    await page.get_by_label("Email").fill(account.email)
    await page.get_by_label("Password").fill(account.password)
    await page.get_by_role("button", name="Sign in", exact=True).click()


async def signed_in_page(
    browser: Any, system: Any, account: Any, *, path: str = "/", width: int = 1100, height: int = 760, init_script: str | None = None
) -> Any:
    """A fresh browser context on `system`'s web client (`tests.support.System`) at `path`, `account` signed in
    through the login form and connected; `init_script` runs in every page of the context before the client's own scripts."""
    page = await new_page(browser, width=width, height=height)
    if init_script:
        await page.context.add_init_script(script=init_script)
    await page.goto(f"{system.api_url}{path}")
    await sign_in(page, account)
    await expect(page.locator("#connection")).to_have_text("online")
    return page
