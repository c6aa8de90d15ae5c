"""Who may connect: JWT passwords, client-id ownership and Will topics, decided before any session is touched."""

from __future__ import annotations

import logging

from core import topics
from core.acl import Principal
from core.security import SERVICE, InvalidToken, decode_token
from core.services.users import find_user

log = logging.getLogger("mqchat.broker.auth")


class Refused(Exception):
    """A CONNECT that must be refused; the message says why (logged, never sent)."""


class Authenticator:
    """Turns the credentials of a CONNECT into a Principal, or refuses it (returns None).

    username = user id (or service account name), password = access token whose
    `sub` is that username; the client id must start with the username; a Will is
    allowed only on the client's own presence topic.
    """

    def __init__(self, jwt_secret: str) -> None:
        self._secret = jwt_secret

    async def authenticate(
        self, username: str | None, password: str | bytes | None, client_id: str | None, will_topic: str | None
    ) -> Principal | None:
        """The connecting principal, or None when the CONNECT must be refused."""
        try:
            return await self._principal(username, password, client_id, will_topic)
        except Refused as refusal:
            log.info("mqtt.connect_refused", extra={"reason": str(refusal), "username": username, "client_id": client_id})
            return None

    async def _principal(
        self, username: str | None, password: str | bytes | None, client_id: str | None, will_topic: str | None
    ) -> Principal:
        if not username or not password:
            raise Refused("missing credentials")
        if not client_id or not topics.is_valid_client_id(client_id) or not client_id.startswith(username):
            raise Refused("client id must start with the username")
        try:
            claims = decode_token(password, self._secret)
        except InvalidToken:
            raise Refused("invalid token") from None
        if claims.subject != username:
            raise Refused("token subject does not match username")
        if claims.kind == SERVICE:
            if will_topic is not None:
                raise Refused("service accounts may not set a will")
            return Principal(name=username, client_id=client_id)
        user = await find_user(username)
        if user is None or not user.active:
            raise Refused("unknown or disabled user")
        if claims.version != user.token_version:
            raise Refused("revoked token")
        if will_topic is not None and will_topic != topics.device_presence(username, client_id):
            raise Refused("will topic must be the client's own presence topic")
        return Principal(name=username, client_id=client_id, role=user.role)
