"""Bearer-token authentication for REST handlers and the role guards."""

from __future__ import annotations

from litestar import Request
from litestar.di import NamedDependency

from core.documents import User
from core.errors import Forbidden, Unauthorized
from core.roles import Role
from core.security import ACCESS, InvalidToken, decode_token
from core.services.users import find_user
from core.settings import Settings


async def provide_current_user(request: Request, settings: NamedDependency[Settings]) -> User:
    """The active user named by the request's bearer token; 401 otherwise."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing bearer token")
    try:
        claims = decode_token(token.strip(), settings.jwt_secret)
    except InvalidToken:
        raise Unauthorized("invalid or expired token") from None
    if claims.kind != ACCESS:
        raise Unauthorized("invalid or expired token")
    user = await find_user(claims.subject)
    if user is None or not user.active or claims.version != user.token_version:
        raise Unauthorized("invalid or expired token")
    request.state.user = user
    return user


def require_admin(user: User) -> None:
    """403 unless `user` is an admin."""
    if user.role is not Role.ADMIN:
        raise Forbidden("admin only")
