"""Every error response in the contract's shape: `{"error": {"code", "message"}}`; no stack traces."""

from __future__ import annotations

import logging

import msgspec
from litestar import Litestar, MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Schema
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from msgspec import Struct

from core import payloads, webhook_payloads
from core.errors import DomainError, RateLimited
from core.payloads import ErrorDetail, ErrorResponse

log = logging.getLogger("mqchat.api")

_CODES = {
    400: "invalid_input",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "unavailable",
}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response[ErrorResponse]:
    """A response carrying the contract's error body."""
    return Response(
        ErrorResponse(error=ErrorDetail(code=code, message=message)),
        status_code=status,
        media_type=MediaType.JSON,
        headers=headers,
    )


def _validation_message(exc: ValidationException) -> str:
    extra = exc.extra if isinstance(exc.extra, list) else []
    details = "; ".join(
        f"{item.get('key') or 'body'}: {item.get('message')}" for item in extra if isinstance(item, dict)
    )
    return details or "the request is malformed"


def handle_domain_error(_: Request, exc: DomainError) -> Response[ErrorResponse]:
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    return error_response(exc.status, exc.code, exc.message, headers)


def handle_http_exception(_: Request, exc: HTTPException) -> Response[ErrorResponse]:
    status = exc.status_code
    if status >= 500:
        return handle_internal_error(_, exc)
    headers = dict(exc.headers or {})
    if isinstance(exc, ValidationException):
        message = _validation_message(exc)
    else:
        message = exc.detail if isinstance(exc.detail, str) and exc.detail else "request refused"
    return error_response(status, _CODES.get(status, "invalid_input"), message, headers)


def handle_internal_error(request: Request, exc: Exception) -> Response[ErrorResponse]:
    log.error("api.internal_error", exc_info=exc, extra={"path": request.url.path, "method": request.method})
    return error_response(HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "internal server error")


ERROR_STATUSES = {
    400: "Malformed or invalid input",
    401: "Missing, invalid or expired credentials",
    403: "Not allowed for this user",
    404: "Unknown, or not visible to this user",
    405: "Method not allowed",
    409: "Conflicts with the current state",
    413: "Payload too large",
    415: "Unsupported media type",
    429: "Rate limited (see Retry-After)",
    500: "Internal error (no details)",
}


def document_errors(app: Litestar) -> None:
    """Make the OpenAPI schema say what the API does: every handler may answer with the contract's
    error shape, and request bodies refuse unknown fields (`additionalProperties: false`)."""
    errors = {code: ResponseSpec(ErrorResponse, description=text) for code, text in ERROR_STATUSES.items()}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            handler.responses = {**errors, **(handler.responses or {})}
    components = app.openapi_schema.components.schemas or {}
    for name, struct in [*vars(payloads).items(), *vars(webhook_payloads).items()]:
        forbids_unknown = isinstance(struct, type) and issubclass(struct, Struct) and struct.__struct_config__.forbid_unknown_fields
        if forbids_unknown and name in components:
            components[name].additional_properties = False
            _copy_msgspec_patterns(components[name], struct)


def _copy_msgspec_patterns(schema: Schema, struct: type[Struct]) -> None:
    """Litestar leaves out the patterns of list items (`participant_ids` are 24-hex ids) and those given
    through `extra_json_schema` (the exact rule of a username): copy msgspec's."""
    fields = msgspec.json.schema(struct)["$defs"][struct.__name__]["properties"]
    for field, rules in fields.items():
        target = (schema.properties or {}).get(field)
        if not isinstance(target, Schema):
            continue
        items = rules.get("items", {})
        if isinstance(target.items, Schema) and "pattern" in items:
            target.items.pattern = items["pattern"]
        pattern = next((r["pattern"] for r in [rules, *rules.get("anyOf", [])] if "pattern" in r), None)
        if pattern is not None:  # also of an optional field (anyOf with null)
            target.pattern = pattern


EXCEPTION_HANDLERS = {
    DomainError: handle_domain_error,
    HTTPException: handle_http_exception,
    Exception: handle_internal_error,
}
