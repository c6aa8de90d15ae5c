"""A stand-in for the host platform's auth backend: it signs JWTs and serves its JWKS over real HTTP.

The test systems trust it (`Platform.env`): an HS256 shared secret, an RSA public key
given as PEM, and the JWKS URL of a local HTTP server whose keys a test can rotate.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pymongo import AsyncMongoClient

from mqchat.store import free_port
from tests.support import Account, System

ISSUER = "https://shop.test"
AUDIENCE = "mqchat"
ROLE_MAP = "buyer=customer,seller=merchant,employee=agent,boss=admin"


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


class Platform:
    """The platform's signing keys and its JWKS endpoint (started with `serve`, stopped with `close`)."""

    def __init__(self) -> None:
        self.secret = secrets.token_urlsafe(48)
        self.pem_key = _rsa_key()  # verified through MQCHAT_PLATFORM_JWT_PUBLIC_KEY (tokens without kid)
        self.jwks_keys: dict[str, rsa.RSAPrivateKey] = {"key-1": _rsa_key()}  # served at the JWKS URL
        self.jwks_fetches = 0
        self.port = free_port()
        self._server: ThreadingHTTPServer | None = None

    @property
    def jwks_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/.well-known/jwks.json"

    @property
    def env(self) -> dict[str, str]:
        """What a system needs to trust this platform (and the server API's rate per key)."""
        return {
            "MQCHAT_PLATFORM_JWT_SECRET": self.secret,
            "MQCHAT_PLATFORM_JWT_PUBLIC_KEY": public_pem(self.pem_key),
            "MQCHAT_PLATFORM_JWKS_URL": self.jwks_url,
            "MQCHAT_PLATFORM_JWT_ISSUER": ISSUER,
            "MQCHAT_PLATFORM_JWT_AUDIENCE": AUDIENCE,
            "MQCHAT_PLATFORM_CLAIM_USER_ID": "userId",
            "MQCHAT_PLATFORM_ROLE_MAP": ROLE_MAP,
            # low enough that a test exceeds one key's allowance, high enough for every other test
            "MQCHAT_PLATFORM_RATE": "5",
            "MQCHAT_PLATFORM_BURST": "30",
        }

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key in self.jwks_keys.items():
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": keys}

    def rotate(self) -> str:
        """Replace the JWKS's key by a new one with a new kid; returns the kid."""
        kid = f"key-{len(self.jwks_keys) + 1}-{secrets.token_hex(2)}"
        self.jwks_keys = {kid: _rsa_key()}
        return kid

    def claims(self, user_id: str | None, role: Any = "buyer", **extra: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600, "role": role}
        if user_id is not None:
            claims["userId"] = user_id
        claims.update(extra)
        return {k: v for k, v in claims.items() if v is not None}

    def hs256(self, user_id: str | None, role: Any = "buyer", **extra: Any) -> str:
        return jwt.encode(self.claims(user_id, role, **extra), self.secret, algorithm="HS256")

    def rs256(self, user_id: str, role: Any = "buyer", kid: str | None = None, **extra: Any) -> str:
        """Signed with the JWKS key `kid` (default: the current one), or with the PEM key when `kid` is ""."""
        if kid == "":
            return jwt.encode(self.claims(user_id, role, **extra), self.pem_key, algorithm="RS256")
        kid = kid or next(iter(self.jwks_keys))
        return jwt.encode(self.claims(user_id, role, **extra), self.jwks_keys[kid], algorithm="RS256", headers={"kid": kid})

    def serve(self) -> None:
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                platform.jwks_fetches += 1
                body = json.dumps(platform.jwks()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


async def exchange(api: httpx.AsyncClient, token: str, status: int = 200) -> dict[str, Any]:
    """`POST /api/auth/exchange` with a platform token; the answer, after checking its status."""
    response = await api.post("/api/auth/exchange", json={"token": token})
    assert response.status_code == status, response.text
    return response.json()


def account_of(body: dict[str, Any]) -> Account:
    """An Account from a login-shaped answer (exchange, server API tokens)."""
    user = body["user"]
    return Account(user["id"], user.get("email") or "", "", body["access_token"], user["role"], body)


async def provisioned(system: System, external_id: str) -> int:
    """How many accounts the store holds for this platform user id."""
    mongo: AsyncMongoClient = AsyncMongoClient(system.store_uri)
    try:
        return await mongo["mqchat"]["users"].count_documents({"external_id": external_id})
    finally:
        await mongo.close()
