"""Serve the API with uvicorn until the stop event is set."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn

from api.app import create_app
from core.settings import Settings


class _Server(uvicorn.Server):
    """uvicorn server whose shutdown is driven by mqchat's stop event, not its own signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_api(settings: Settings, stop: asyncio.Event) -> None:
    """Run the REST API on `MQCHAT_API_PORT` (plus `MQCHAT_API_INSTANCE`) until `stop` is set."""
    config = uvicorn.Config(
        create_app(settings),
        host=settings.bind_host,
        port=settings.api_listen_port,
        log_config=None,
        access_log=False,
        lifespan="on",
        proxy_headers=True,
    )
    server = _Server(config)
    serving = asyncio.create_task(server.serve())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stopping.cancel()
    await serving
