"""Credentials: argon2 password hashing (off the event loop) and signed access tokens.

Access tokens are HS256 JWTs. A user token has `sub` = user id and `typ` = "access";
a service token (bridge, API) has `sub` = the service account name and `typ` = "service".
The broker accepts the same tokens as MQTT passwords.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

import jwt
from passlib.context import CryptContext

from core.clock import utcnow
from core.settings import Settings

ALGORITHM = "HS256"
ACCESS = "access"
SERVICE = "service"
SERVICE_TOKEN_TTL = 3600
SERVICE_ACCOUNTS = frozenset({"mqchat-bridge", "mqchat-api"})
BROKER_ADMIN = "mqchat-admin"  # provisions Mosquitto's dynamic-security plugin

_passwords = CryptContext(schemes=["argon2"], deprecated="auto")


def configure_password_hashing(settings: Settings) -> None:
    """Hash new passwords with the settings' argon2id parameters (each process that hashes calls it once at start)."""
    global _passwords
    _passwords = CryptContext(
        schemes=["argon2"], deprecated="auto", argon2__memory_cost=settings.argon2_memory_kib,
        argon2__rounds=settings.argon2_time_cost, argon2__parallelism=settings.argon2_parallelism,
    )  # fmt: skip
    _dummy_hash.cache_clear()


@functools.cache
def _dummy_hash() -> str:
    """A valid hash of a random password, made on first use rather than at every process start: verifying
    against it when the email is unknown costs the same time as a real check, so response times do not reveal accounts."""
    return _passwords.hash(secrets.token_urlsafe(16))


class InvalidToken(Exception):
    """The token is malformed, forged, expired or of the wrong kind."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a verified token says; `version` must equal the user's `token_version` (revocation)."""

    subject: str
    kind: str
    expires_at: int
    version: int = 0


async def hash_password(password: str) -> str:
    """Hash a password with argon2 in a worker thread."""
    return await asyncio.to_thread(_passwords.hash, password)


async def verify_password(password: str, password_hash: str | None) -> bool:
    """Check a password in a worker thread; with no hash, burn the same time and return False."""
    if password_hash is None:
        await asyncio.to_thread(lambda: _passwords.verify(password, _dummy_hash()))
        return False
    try:
        return await asyncio.to_thread(_passwords.verify, password, password_hash)
    except ValueError:
        return False


def issue_token(subject: str, secret: str, ttl_seconds: int, kind: str = ACCESS, version: int = 0) -> str:
    """Sign a token for `subject` valid for `ttl_seconds`; `version` ties it to the user's current token version."""
    now = utcnow()
    claims = {
        "sub": subject,
        "typ": kind,
        "ver": version,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_seconds)).timestamp()),
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def issue_service_token(account: str, secret: str) -> str:
    """Sign a token for one of the service accounts (bridge, API)."""
    if account not in SERVICE_ACCOUNTS:
        raise ValueError(f"unknown service account {account!r}")
    return issue_token(account, secret, SERVICE_TOKEN_TTL, kind=SERVICE)


def decode_token(token: str | bytes, secret: str) -> TokenClaims:
    """Verify signature and expiry and return the claims; raise InvalidToken otherwise."""
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp", "typ"]})
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    subject, kind, version = claims.get("sub"), claims.get("typ"), claims.get("ver", 0)
    if not isinstance(subject, str) or kind not in (ACCESS, SERVICE) or not isinstance(version, int):
        raise InvalidToken("unexpected claims")
    if kind == SERVICE and subject not in SERVICE_ACCOUNTS:
        raise InvalidToken("unknown service account")
    return TokenClaims(subject=subject, kind=kind, expires_at=int(claims["exp"]), version=version)


def hash_refresh_token(token: str) -> str:
    """Refresh tokens are stored only as their SHA-256 (they are random, so no salt is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def broker_password(secret: str, username: str, version: int = 0) -> str:
    """The password of `username` on an external broker (Mosquitto): derived from JWT_SECRET, never stored.

    Mosquitto 2.0 cannot verify JWTs, so mqchat provisions each user and service
    account with this derived password. It changes with the user's token version,
    so logout, a password change or disabling the account also changes it.
    """
    digest = hmac.new(secret.encode(), f"mqtt-password:{username}:{version}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")
