"""Web Push test helpers: a server VAPID key pair, a browser's subscription keys, and a stand-in push service."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import http_ece
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from py_vapid import Vapid

from mqchat.store import free_port


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def vapid_env() -> dict[str, str]:
    """The environment of a server that sends Web Push: a fresh VAPID key pair."""
    vapid = Vapid()
    vapid.generate_keys()
    public = vapid.public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return {"VAPID_PRIVATE_KEY": vapid.private_pem().decode(), "VAPID_PUBLIC_KEY": b64(public), "VAPID_SUBJECT": "mailto:ops@shop.example"}


class BrowserKeys:
    """A browser's subscription keys: `keys` is what it registers, `decrypt` reads what the server pushed to it."""

    def __init__(self) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.auth_secret = os.urandom(16)
        p256dh = self.private_key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        self.keys = {"p256dh": b64(p256dh), "auth": b64(self.auth_secret)}

    def decrypt(self, body: bytes) -> dict:
        """The JSON payload of an aes128gcm push body."""
        return json.loads(http_ece.decrypt(body, private_key=self.private_key, auth_secret=self.auth_secret, version="aes128gcm"))


class PushService:
    """A stand-in push service: records encrypted pushes; answers 201, or 410 once told the subscription is gone,
    and always 404 for subscriptions whose token starts with `expired`."""

    def __init__(self) -> None:
        self.received: list[tuple[dict, bytes]] = []
        self.by_token: dict[str, list[bytes]] = {}
        self.gone = False

    async def handle(self, request: web.Request) -> web.Response:
        token, body = request.match_info["token"], await request.read()
        self.received.append((dict(request.headers), body))
        self.by_token.setdefault(token, []).append(body)
        if token.startswith("expired"):
            return web.Response(status=404)
        return web.Response(status=410 if self.gone else 201)


@asynccontextmanager
async def push_service() -> AsyncIterator[tuple[PushService, str]]:
    """A stand-in push service on 127.0.0.1 and its base URL: subscriptions are `<base>/<token>`."""
    service = PushService()
    app = web.Application()
    app.router.add_post("/push/{token}", service.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield service, f"http://127.0.0.1:{port}/push"
    finally:
        await runner.cleanup()
