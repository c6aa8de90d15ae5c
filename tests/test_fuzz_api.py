"""Schemathesis against the API's own OpenAPI schema: generated requests never cause a server error.

Bounded: a few examples per operation, against the running system, as a signed-in user.
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.support import System

EXAMPLES_PER_OPERATION = 8


@pytest.fixture(scope="module")
def fuzz_headers(amqtt_system: System) -> dict[str, str]:
    response = httpx.post(
        f"{amqtt_system.api_url}/api/auth/signup",
        json={"email": "fuzzer@example.com", "username": "fuzzer", "password": "fuzzer-password-1"},
    )
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture(scope="module")
def api_schema(amqtt_system: System):  # type: ignore[no-untyped-def]
    schema = schemathesis.openapi.from_url(f"{amqtt_system.api_url}/schema/openapi.json")
    # a body over its documented maxLength (or over 64 KiB) is refused with 413 payload_too_large
    rejection = schema.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413"]
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@pytest.mark.timeout(600)  # one test item for every operation (subtests): its time grows with the API
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests(case, amqtt_system: System, fuzz_headers: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    case.call_and_validate(base_url=amqtt_system.api_url, headers=fuzz_headers)
