"""Security headers on every HTTP response, errors and 404s included (a `before_send` hook)."""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

API_CSP = "default-src 'none'; frame-ancestors 'none'"
# The OpenAPI viewers at /schema load their scripts and styles from a CDN.
SCHEMA_CSP = "default-src 'self' https: 'unsafe-inline'; img-src 'self' data: https:; frame-ancestors 'none'"
HSTS = "max-age=31536000; includeSubDomains"


async def add_security_headers(message: Message, scope: Scope) -> None:
    """nosniff, no referrer, no framing, a CSP, and HSTS when the request came over TLS."""
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Content-Security-Policy", SCHEMA_CSP if scope["path"].startswith("/schema") else API_CSP)
    if scope.get("scheme") == "https":
        headers.setdefault("Strict-Transport-Security", HSTS)
