"""The reference web client: static files under `/client/` (no build step), `/` pointing there, and its config."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from litestar import Request, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.di import NamedDependency
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from msgspec import Struct

from core.settings import Settings

CLIENT_DIR = Path(__file__).parent / "client"
CLIENT_PATH = "/client"


class ClientConfig(Struct):
    """What the web client needs before anyone signs in."""

    embed_origins: list[str]
    signup: Literal["open", "closed"]


@get("/", include_in_schema=False)
async def home(request: Request) -> Redirect:
    """The site root opens the web client, keeping the query (older digest links: `/?conversation=<id>`).

    A fragment (`/#/c/<id>`) never reaches the server; browsers carry it over the redirect themselves.
    """
    query = request.url.query
    return Redirect(f"{CLIENT_PATH}/" + (f"?{query}" if query else ""))


@get("/api/client/config", tags=["web client"], cache_control=CacheControlHeader(no_cache=True))
async def client_config(settings: NamedDependency[Settings]) -> ClientConfig:
    """Which origins may embed the web client (docs/web-embed.md) and whether password sign-up is open; no token."""
    return ClientConfig(embed_origins=list(settings.embed_origins), signup=settings.signup)


def client_routes() -> list[Router | object]:
    """Route handlers serving the web client; files are revalidated so an upgrade shows at once."""
    files = create_static_files_router(
        path=CLIENT_PATH, directories=[CLIENT_DIR], html_mode=True, name="client",
        cache_control=CacheControlHeader(no_cache=True),
    )  # fmt: skip
    return [home, client_config, files]
