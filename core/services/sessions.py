"""Signing users in and out: access tokens, rotating refresh tokens, the `mqtt` block, revocation.

Every token carries the user's `token_version`; logout, a password change,
disabling an account and a replayed refresh token bump it, which invalidates
all access tokens at once (API and broker check it), deletes the refresh tokens
and announces `chat/system/sessions` so brokers cut the user's live connections.
"""

from __future__ import annotations

import secrets

from beanie import PydanticObjectId
from pymongo import ReturnDocument

from core import events
from core.broker_rights import BrokerRights
from core.clock import to_ms, utcnow
from core.documents import RefreshToken, User
from core.errors import Unauthorized
from core.events import Delivery
from core.payloads import AuthResponse, MqttConnectInfo
from core.security import broker_password, hash_refresh_token, issue_token
from core.services.users import user_out
from core.settings import Settings

INVALID_REFRESH = "invalid or expired refresh token"


class RefreshTokenReplayed(Unauthorized):
    """A used refresh token came back: all the owner's tokens are revoked; publish `deliveries` (brokers cut them)."""

    def __init__(self, deliveries: list[Delivery]) -> None:
        super().__init__(INVALID_REFRESH)
        self.deliveries = deliveries


def mqtt_connect_info(settings: Settings, user: User, access_token: str) -> MqttConnectInfo:
    """How `user` connects to the broker configured in `settings`.

    The embedded broker takes the access token as password; an external broker
    (Mosquitto) takes the user's derived broker password, provisioned at login.
    """
    user_id = str(user.id)
    external = settings.broker == "external"
    return MqttConnectInfo(
        host=settings.public_host,
        port=settings.external_mqtt_port if external else settings.mqtt_port,
        ws_url=settings.ws_url,
        username=user_id,
        password=broker_password(settings.jwt_secret, user_id, user.token_version) if external else access_token,
        client_id_prefix=user_id,
    )


async def _new_refresh_token(settings: Settings, user: User, family: str) -> str:
    token = secrets.token_urlsafe(32)
    await RefreshToken(
        id=hash_refresh_token(token), user_id=str(user.id), family=family, version=user.token_version,
        expires_ms=to_ms(utcnow()) + settings.refresh_token_ttl * 1000,
    ).insert()  # fmt: skip
    return token


async def start_session(settings: Settings, user: User, family: str | None = None) -> AuthResponse:
    """Issue an access token and a refresh token for `user`, and say how to reach the broker."""
    token = issue_token(str(user.id), settings.jwt_secret, settings.access_token_ttl, version=user.token_version)
    refresh = await _new_refresh_token(settings, user, family or secrets.token_hex(12))
    return AuthResponse(
        user=user_out(user, viewer=user),
        access_token=token,
        expires_in=settings.access_token_ttl,
        mqtt=mqtt_connect_info(settings, user, token),
        refresh_token=refresh,
        refresh_expires_in=settings.refresh_token_ttl,
    )


async def signed_in(settings: Settings, rights: BrokerRights, user: User) -> AuthResponse:
    """Provision the user's broker account (external brokers), then issue their tokens: every sign-in's answer."""
    await rights.ensure_user(str(user.id), user.role, user.token_version)
    return await start_session(settings, user)


async def refresh_session(settings: Settings, refresh_token: str) -> tuple[User, AuthResponse]:
    """Exchange a refresh token for new tokens (rotation); presenting a used one revokes every session of its user."""
    collection = RefreshToken.get_pymongo_collection()
    now_ms = to_ms(utcnow())
    digest = hash_refresh_token(refresh_token)
    claimed = await collection.find_one_and_update(
        {"_id": digest, "used_ms": 0}, {"$set": {"used_ms": now_ms}}, return_document=ReturnDocument.AFTER
    )
    if claimed is None:
        reused = await collection.find_one({"_id": digest})
        owner = await User.get(PydanticObjectId(reused["user_id"])) if reused is not None else None
        if owner is not None:  # a stolen copy, or a replay: end the owner's sessions, access tokens included
            _, deliveries = await revoke_sessions(owner)
            raise RefreshTokenReplayed(deliveries)
        raise Unauthorized(INVALID_REFRESH)
    user = await User.get(PydanticObjectId(claimed["user_id"]))
    if user is None or not user.active or claimed["expires_ms"] < now_ms or claimed["version"] != user.token_version:
        raise Unauthorized(INVALID_REFRESH)
    return user, await start_session(settings, user, family=claimed["family"])


async def revoke_sessions(user: User) -> tuple[User, list[Delivery]]:
    """Invalidate all tokens and refresh tokens of `user`; brokers cut their connections."""
    bumped = await User.get_pymongo_collection().find_one_and_update(
        {"_id": user.id}, {"$inc": {"token_version": 1}}, return_document=ReturnDocument.AFTER
    )
    await RefreshToken.get_pymongo_collection().delete_many({"user_id": str(user.id)})
    fresh = await User.get(user.id)
    assert fresh is not None and bumped is not None
    return fresh, events.sessions_revoked(str(user.id), fresh.token_version, fresh.active, fresh.role.value)
