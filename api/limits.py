"""Per-account and per-user request limits of the REST API (per process)."""

from __future__ import annotations

from core.errors import RateLimited
from core.ratelimit import TokenBucket
from core.settings import Settings

LOGIN_WINDOW = 300.0
# user directory (and, separately, message) searches per user: enough for a people picker or a search
# box, too few to enumerate the directory or load the store
SEARCH_RATE = 0.5
SEARCH_BURST = 30


class RequestLimits:
    """Login attempts per account (whatever the address), message sends per user, server API calls per API key."""

    def __init__(self, settings: Settings) -> None:
        keys = settings.rate_limit_keys
        self.login = TokenBucket(settings.account_login_limit / LOGIN_WINDOW, settings.account_login_limit, max_keys=keys)
        self.send = TokenBucket(settings.send_rate, settings.send_burst, max_keys=keys)
        self.search = TokenBucket(SEARCH_RATE, SEARCH_BURST, max_keys=keys)
        self.message_search = TokenBucket(SEARCH_RATE, SEARCH_BURST, max_keys=keys)
        self.platform = TokenBucket(settings.platform_rate, settings.platform_burst, max_keys=keys)

    @staticmethod
    def check(bucket: TokenBucket, key: str, what: str) -> None:
        """Raise 429 `rate_limited` (with Retry-After) when `key` has used up its allowance."""
        wait = bucket.take(key)
        if wait is not None:
            raise RateLimited(f"too many {what}, retry later", wait)
