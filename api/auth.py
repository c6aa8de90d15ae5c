"""Bearer-token authentication for REST handlers and the role guards."""

from __future__ import annotations

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers import BaseRouteHandler

from api.limits import RequestLimits
from core.documents import User
from core.errors import Forbidden, Unauthorized
from core.roles import Role
from core.security import ACCESS, InvalidToken, decode_token
from core.services.api_keys import authenticate_api_key, looks_like_api_key
from core.services.users import find_user
from core.settings import Settings


def _bearer_token(connection: ASGIConnection) -> str:
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token")
    return token.strip()


async def _signed_in_user(connection: ASGIConnection, jwt_secret: str) -> User:
    """The active user named by the connection's bearer token; 401 otherwise (an API key is no user token)."""
    try:
        claims = decode_token(_bearer_token(connection), jwt_secret)
    except InvalidToken:
        raise Unauthorized("invalid or expired token") from None
    if claims.kind != ACCESS:
        raise Unauthorized("invalid or expired token")
    user = await find_user(claims.subject)
    if user is None or not user.active or claims.version != user.token_version:
        raise Unauthorized("invalid or expired token")
    return user


async def provide_current_user(request: Request, settings: NamedDependency[Settings]) -> User:
    """The signed-in user (found already by a guard, or from the bearer token now); 401 otherwise."""
    user = getattr(request.state, "user", None)
    if user is None:
        user = request.state.user = await _signed_in_user(request, settings.jwt_secret)
    return user


async def require_admin(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Guard of admin routes: 401 without a valid user token, 403 `forbidden` for anyone but an admin.

    Like every guard it runs before the body is read; OPTIONS needs no token.
    """
    if connection.scope.get("method") == "OPTIONS":
        return
    settings: Settings = connection.app.state.settings
    user = connection.state.user = await _signed_in_user(connection, settings.jwt_secret)
    if user.role is not Role.ADMIN:
        raise Forbidden("admin only")


async def require_api_key(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Guard of `/api/platform/*`: a known API key as bearer token (401 otherwise), within its rate (429).

    A guard runs before the request body is read, so a caller without a key learns nothing
    from the body's validation. OPTIONS (what a path allows, CORS preflights) needs no key,
    as everywhere else in the API.
    """
    if connection.scope.get("method") == "OPTIONS":
        return
    token = _bearer_token(connection)
    if not looks_like_api_key(token):
        raise Unauthorized("this endpoint needs an API key (mqk_...), not a user token")
    key = await authenticate_api_key(token)
    if key is None:
        raise Unauthorized("unknown or revoked API key")
    limits: RequestLimits = connection.app.state.limits
    await limits.check(limits.platform, str(key.id), "requests for this API key")
