"""API keys of the host platform's backend: created by an admin, shown once, stored hashed, revoked at once.

A key is `mqk_` followed by 43 random URL-safe characters (256 bits), so its
SHA-256 is enough to store it (no salt or slow hash needed, as for refresh tokens).
Every request looks the key up in the store: a revoked key stops working on the
next request, in every API process.
"""

from __future__ import annotations

import hashlib
import secrets

from core.clock import iso
from core.documents import ApiKey
from core.errors import NotFound
from core.payloads import ApiKeyCreated, ApiKeyOut
from core.services.lookup import get_by_id

KEY_PREFIX = "mqk_"
SHOWN_PREFIX = 12  # "mqk_" and 8 characters


def looks_like_api_key(token: str) -> bool:
    """True when a bearer token has the form of an API key (and so is not a user's JWT)."""
    return token.startswith(KEY_PREFIX)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_api_key(name: str, created_by: str) -> ApiKeyCreated:
    """A new key; the answer is the only place its secret ever appears."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    stored = ApiKey(name=name.strip(), key_hash=_digest(key), prefix=key[:SHOWN_PREFIX], created_by=created_by)
    await stored.insert()
    return ApiKeyCreated(
        id=str(stored.id), name=stored.name, key=key, prefix=stored.prefix, created_at=iso(stored.created_at) or ""
    )


async def list_api_keys() -> list[ApiKeyOut]:
    """Every key, oldest first, without secrets."""
    return [_out(key) for key in await ApiKey.find({}).sort("created_at").to_list()]


async def revoke_api_key(key_id: str) -> None:
    """Delete a key; NotFound if there is none with this id."""
    found = await get_by_id(ApiKey, key_id)
    if found is None:
        raise NotFound("api key not found")
    await found.delete()


async def authenticate_api_key(key: str) -> ApiKey | None:
    """The stored key matching `key`, or None (unknown or revoked)."""
    if not looks_like_api_key(key) or len(key) > 200:
        return None
    return await ApiKey.find_one({"key_hash": _digest(key)})


def _out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=str(key.id), name=key.name, prefix=key.prefix, created_at=iso(key.created_at) or "", created_by=key.created_by
    )
