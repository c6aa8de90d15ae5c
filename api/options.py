"""The `Allow` header of automatic OPTIONS answers, listing every method of the path.

Litestar 2 builds a path's OPTIONS answer when its first handler is registered, so
a path served by several handlers (GET and POST /api/tickets) announced only one of
them (litestar-org/litestar#4169, fixed in Litestar 3). This hook sets the route's
real methods; drop it with Litestar 3.
"""

from __future__ import annotations

from functools import cache

from litestar import Litestar
from litestar.datastructures import MutableScopeHeaders
from litestar.routes import HTTPRoute
from litestar.types import Message, Scope


@cache
def _allowed(app: Litestar) -> dict[str, str]:
    """Path template -> its methods, as an `Allow` value."""
    return {route.path_format: ", ".join(sorted(route.methods)) for route in app.routes if isinstance(route, HTTPRoute)}


async def allow_every_method(message: Message, scope: Scope) -> None:
    """A `before_send` hook: an OPTIONS answer's `Allow` names every method of its route."""
    if message["type"] != "http.response.start" or scope.get("method") != "OPTIONS":
        return
    headers = MutableScopeHeaders.from_message(message)
    allowed = _allowed(scope["litestar_app"]).get(scope.get("path_template", ""))
    if "allow" in headers and allowed:
        headers["Allow"] = allowed
