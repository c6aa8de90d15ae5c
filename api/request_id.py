"""A request id on every HTTP response (`X-Request-ID`) and on every log line written while serving it.

A sane incoming `X-Request-ID` (a proxy's or a client's: 1-128 of `A-Za-z0-9._:-`) is
kept, anything else is replaced by a fresh one. Each request ends with an
`http.request` line (method, route template, status, duration): DEBUG when it
succeeded, WARNING for 5xx; the same facts go to the HTTP metrics (core.metrics).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextvars import ContextVar

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from core import metrics

HEADER = "x-request-id"
SANE = re.compile(r"[A-Za-z0-9._:-]{1,128}")

current: ContextVar[str | None] = ContextVar("request_id", default=None)
log = logging.getLogger("mqchat.api.http")


def request_id_from(scope: Scope) -> str:
    """The incoming id when it is sane, else a new one."""
    for name, value in scope.get("headers", ()):
        if name == HEADER.encode():
            candidate = value.decode("latin-1")
            if SANE.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    """The matched route's path template (`/api/conversations/{conversation_id:str}`), never the raw path.

    A controller's handler knows only its path within the controller (`/`), so the full
    template is looked up among the app's routes (a map kept in the app's state).
    """
    handler = scope.get("route_handler")
    if handler is None:
        return "unmatched"
    app = scope.get("litestar_app")
    if app is not None:
        templates = app.state.get("route_templates")
        if templates is None:
            templates = {id(h): route.path for route in app.routes for h in getattr(route, "route_handlers", ())}
            app.state.route_templates = templates
        if id(handler) in templates:
            return str(templates[id(handler)])
    paths = getattr(handler, "paths", None)
    return sorted(paths)[0] if paths else "unmatched"


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: sets the id for the request's logs and on its response."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        request_id = request_id_from(scope)
        token = current.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != HEADER.encode()]
                message = {**message, "headers": [*headers, (HEADER.encode(), request_id.encode())]}
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            elapsed, route = time.perf_counter() - started, route_template(scope)
            level = logging.WARNING if status >= 500 else logging.DEBUG
            log.log(level, "http.request", extra={
                "method": scope.get("method"), "route": route, "status": status, "duration_ms": round(elapsed * 1000, 1),
            })  # fmt: skip
            metrics.http_request(str(scope.get("method")), route, status, elapsed)
            current.reset(token)

    return middleware


def install_log_field() -> None:
    """Every log record created while a request is served carries its `request_id` (idempotent)."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "adds_request_id", False):
        return

    def with_request_id(*args: object, **kwargs: object) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        request_id = current.get()
        if request_id is not None:
            record.request_id = request_id
        return record

    with_request_id.adds_request_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(with_request_id)
