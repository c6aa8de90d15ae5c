"""`create_app(settings)`: the Litestar application with its store connection, routes and policies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from litestar import Litestar, Request
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from pymongo import AsyncMongoClient

from api.auth import provide_current_user
from api.errors import EXCEPTION_HANDLERS, document_errors
from api.headers import security_headers
from api.limits import RequestLimits
from api.options import allow_every_method
from api.publisher import EventPublisher
from api.request_id import install_log_field, request_id_middleware
from api.requests import StrictJSONRequest
from api.routes import route_groups
from core import __version__
from core.broker_rights import BrokerRights, rights_for
from core.db import init_db
from core.platform_tokens import PlatformTokenVerifier
from core.security import configure_password_hashing
from core.services import rate_windows
from core.services.messages import CursorPositions
from core.settings import Settings
from core.tasks import cancel_and_wait

AUTH_PATHS = ("/api/auth/login", "/api/auth/signup", "/api/auth/refresh", "/api/auth/password", "/api/auth/exchange")
MAX_REQUEST_BODY = 64 * 1024


def _limit_auth_attempts(limits: RequestLimits) -> Callable[[Request], Awaitable[None]]:
    """The app's `before_request` hook: auth attempts per client address (before the body is read); other paths
    pass. Litestar runs only the innermost layer's hook, so no controller or route may set its own."""

    async def check(request: Request) -> None:
        if request.url.path in AUTH_PATHS:
            address = request.client.host if request.client else "unknown"
            await limits.check(limits.auth, address, "sign-in attempts from this address")

    return check


def create_app(settings: Settings) -> Litestar:
    """Build the REST API for `settings`; the store is connected during the app's lifespan."""

    @asynccontextmanager
    async def connections(app: Litestar) -> AsyncIterator[None]:
        app.state.mongo = await init_db(settings)
        app.state.publisher = EventPublisher(settings, rights)
        await app.state.publisher.start()
        sweeping = asyncio.create_task(rate_windows.keep_sweeping()) if limits.shared else None
        try:
            yield
        finally:
            if sweeping is not None:
                await cancel_and_wait(sweeping)
            await app.state.publisher.stop()
            await rights.close()
            await app.state.mongo.close()

    configure_password_hashing(settings)
    rights = rights_for(settings)
    limits = RequestLimits(settings)
    platform_tokens = PlatformTokenVerifier(settings)
    cursor_positions = CursorPositions(settings.cursor_positions)

    def provide_settings() -> Settings:
        return settings

    def provide_rights() -> BrokerRights:
        return rights

    def provide_limits() -> RequestLimits:
        return limits

    def provide_platform_tokens() -> PlatformTokenVerifier:
        return platform_tokens

    def provide_cursor_positions() -> CursorPositions:
        return cursor_positions

    def provide_mongo() -> AsyncMongoClient:
        return app.state.mongo

    def provide_publisher() -> EventPublisher:
        return app.state.publisher

    app = Litestar(
        route_handlers=route_groups(),
        dependencies={
            "settings": Provide(provide_settings, sync_to_thread=False),
            "mongo": Provide(provide_mongo, sync_to_thread=False),
            "publisher": Provide(provide_publisher, sync_to_thread=False),
            "rights": Provide(provide_rights, sync_to_thread=False),
            "limits": Provide(provide_limits, sync_to_thread=False),
            "platform_tokens": Provide(provide_platform_tokens, sync_to_thread=False),
            "cursor_positions": Provide(provide_cursor_positions, sync_to_thread=False),
            "current_user": Provide(provide_current_user),
        },
        lifespan=[connections],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        before_send=[security_headers(settings.ws_url, settings.embed_origins), allow_every_method],
        request_class=StrictJSONRequest,
        before_request=_limit_auth_attempts(limits),
        cors_config=CORSConfig(allow_origins=list(settings.cors_origins), expose_headers=["X-Request-ID"]) if settings.cors_origins else None,
        request_max_body_size=MAX_REQUEST_BODY,
        logging_config=None,
        openapi_config=OpenAPIConfig(
            title="mqchat",
            version=__version__,
            path="/schema",
            components=Components(
                security_schemes={
                    "BearerToken": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT"),
                    "ApiKey": SecurityScheme(
                        type="http", scheme="bearer", description="An API key (mqk_...) for /api/platform/*"
                    ),
                }
            ),
        ),
    )
    app.state.settings = settings
    app.state.limits = limits  # for guards (api.auth.require_api_key), which get no dependencies
    document_errors(app)
    install_log_field()
    app.asgi_handler = request_id_middleware(app.asgi_handler)  # outermost: 404s and 429s get an id too
    return app
