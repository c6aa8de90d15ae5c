"""Security headers on every HTTP response, errors and 404s included (a `before_send` hook)."""

from __future__ import annotations

from urllib.parse import urlsplit

from litestar.datastructures import MutableScopeHeaders
from litestar.types import BeforeMessageSendHookHandler, Message, Scope

from api.web_client import CLIENT_PATH

API_CSP = "default-src 'none'; frame-ancestors 'none'"
# The OpenAPI viewers at /schema load their scripts and styles from a CDN.
SCHEMA_CSP = "default-src 'self' https: 'unsafe-inline'; img-src 'self' data: https:; frame-ancestors 'none'"
HSTS = "max-age=31536000; includeSubDomains"


def client_csp(ws_url: str, embed_origins: tuple[str, ...] = ()) -> str:
    """The web client's policy: its own files, the API, the broker's WebSocket, mqtt.js's timer worker (a blob) and
    the service worker of Web Push (`/client/sw.js`).

    Only the host pages of `MQCHAT_EMBED_ORIGINS` may frame it (docs/web-embed.md); nobody when there are none.
    """
    broker = urlsplit(ws_url)
    ancestors = " ".join(embed_origins) or "'none'"
    return (
        "default-src 'none'; script-src 'self'; worker-src 'self' blob:; style-src 'self'; img-src 'self' blob:; "
        f"connect-src 'self' {broker.scheme}://{broker.netloc}; form-action 'self'; base-uri 'none'; frame-ancestors {ancestors}"
    )


def security_headers(ws_url: str, embed_origins: tuple[str, ...] = ()) -> BeforeMessageSendHookHandler:
    """A hook adding nosniff, no referrer, no framing, a CSP per area, and HSTS when the request came over TLS.

    Only the client may be framed, by `embed_origins`: its CSP's frame-ancestors, and no X-Frame-Options then.
    """
    csp_for_client = client_csp(ws_url, embed_origins)

    async def add_security_headers(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        path = scope["path"]
        client = path == CLIENT_PATH or path.startswith(f"{CLIENT_PATH}/")
        csp = SCHEMA_CSP if path.startswith("/schema") else csp_for_client if client else API_CSP
        headers = MutableScopeHeaders.from_message(message)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        if not (client and embed_origins):  # the CSP's frame-ancestors says who may frame the client
            headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Content-Security-Policy", csp)
        if scope.get("scheme") == "https":
            headers.setdefault("Strict-Transport-Security", HSTS)

    return add_security_headers
