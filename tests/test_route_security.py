"""Every route declares who may call it (api/routes.py): no server needed, the app is only built."""

from __future__ import annotations

import warnings

import pytest
from litestar import Litestar
from litestar.exceptions import LitestarDeprecationWarning

from api.app import create_app
from api.auth import require_admin, require_api_key
from core.settings import Settings

PUBLIC = {"/api/auth/login", "/api/auth/signup", "/api/auth/refresh", "/api/auth/exchange", "/api/health", "/api/client/config"}


@pytest.fixture(scope="module")
def app() -> Litestar:
    return create_app(Settings())


def _operations(app: Litestar) -> list[tuple[str, str, list | None]]:
    schema = app.openapi_schema.to_schema()
    return [
        (path, method, operation.get("security"))
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def test_every_operation_outside_the_public_list_declares_its_credential(app: Litestar) -> None:
    operations = _operations(app)
    assert {path for path, _, security in operations if not security} == PUBLIC
    for path, method, security in operations:
        if path.startswith("/api/platform/"):
            assert security == [{"ApiKey": []}], (method, path)
        elif path not in PUBLIC:
            assert security == [{"BearerToken": []}], (method, path)


def test_admin_and_platform_routes_are_guarded(app: Litestar) -> None:
    guarded = {"admin": 0, "platform": 0}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            guards = handler.resolve_guards()
            if route.path.startswith("/api/admin") or route.path == "/metrics":
                assert require_admin in guards, route.path
                guarded["admin"] += 1
            elif route.path.startswith("/api/platform"):
                assert require_api_key in guards, route.path
                guarded["platform"] += 1
            else:
                assert require_admin not in guards and require_api_key not in guards, route.path
    assert guarded["admin"] >= 5 and guarded["platform"] >= 3


def test_every_parameter_is_declared_in_the_current_style() -> None:
    """Litestar deprecates inferred query parameters; building the app and its schema warns of none."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        create_app(Settings()).openapi_schema  # noqa: B018 - building the schema is the check
    assert [str(w.message) for w in caught if issubclass(w.category, LitestarDeprecationWarning)] == []
