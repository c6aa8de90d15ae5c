"""Per-address, per-account and per-user request limits of the REST API.

Kept in this process's memory (token buckets) or, with `MQCHAT_RATE_LIMITS=store` (the default
when `MQCHAT_API_PROCESSES` > 1), in the store, shared by every API process (core.services.rate_windows).
"""

from __future__ import annotations

from typing import Protocol

from core.errors import RateLimited
from core.ratelimit import TokenBucket
from core.services.rate_windows import SharedWindow
from core.settings import Settings

AUTH_WINDOW = 60.0
LOGIN_WINDOW = 300.0
# user directory (and, separately, message) searches per user: enough for a people picker or a search
# box, too few to enumerate the directory or load the store
SEARCH_RATE = 0.5
SEARCH_BURST = 30


class Limit(Protocol):
    async def take(self, key: str) -> float | None:
        """Spend one action of `key`; None if allowed, else the seconds until one is."""
        ...


class LocalLimit:
    """A limit of this process alone (a token bucket per key)."""

    def __init__(self, rate: float, burst: int, max_keys: int) -> None:
        self._bucket = TokenBucket(rate, burst, max_keys=max_keys)

    async def take(self, key: str) -> float | None:
        return self._bucket.take(key)


class RequestLimits:
    """Auth attempts per client address, login attempts per account (whatever the address), message sends
    and searches per user, server API calls per API key."""

    def __init__(self, settings: Settings) -> None:
        self.shared = settings.rate_limits == "store"

        def limit(name: str, rate: float, burst: int) -> Limit:
            return SharedWindow(name, rate, burst) if self.shared else LocalLimit(rate, burst, settings.rate_limit_keys)

        self.auth = limit("auth", settings.auth_rate_limit / AUTH_WINDOW, settings.auth_rate_limit)
        self.login = limit("login", settings.account_login_limit / LOGIN_WINDOW, settings.account_login_limit)
        self.send = limit("send", settings.send_rate, settings.send_burst)
        self.search = limit("search", SEARCH_RATE, SEARCH_BURST)
        self.message_search = limit("message_search", SEARCH_RATE, SEARCH_BURST)
        self.platform = limit("platform", settings.platform_rate, settings.platform_burst)

    @staticmethod
    async def check(limit: Limit, key: str, what: str) -> None:
        """Raise 429 `rate_limited` (with Retry-After) when `key` has used up its allowance."""
        wait = await limit.take(key)
        if wait is not None:
            raise RateLimited(f"too many {what}, retry later", wait)
