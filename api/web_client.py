"""The reference web client: static files under `/client/` (no build step) and `/` pointing there."""

from __future__ import annotations

from pathlib import Path

from litestar import Router, get
from litestar.datastructures import CacheControlHeader
from litestar.response import Redirect
from litestar.static_files import create_static_files_router

CLIENT_DIR = Path(__file__).parent / "client"
CLIENT_PATH = "/client"


@get("/", include_in_schema=False)
async def home() -> Redirect:
    """The site root opens the web client."""
    return Redirect(f"{CLIENT_PATH}/")


def client_routes() -> list[Router | object]:
    """Route handlers serving the web client; files are revalidated so an upgrade shows at once."""
    files = create_static_files_router(
        path=CLIENT_PATH, directories=[CLIENT_DIR], html_mode=True, name="client",
        cache_control=CacheControlHeader(no_cache=True),
    )  # fmt: skip
    return [home, files]
