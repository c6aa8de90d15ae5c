"""Hostile input the adversarial probe (issue 24, item 6) turned into 500s, and what the schema must say."""

from __future__ import annotations

import httpx
import pytest

from tests.support import Account, open_conversation
from tests.test_api_auth import assert_error

TOO_BIG = str(2**63)  # one more than the store's largest integer
DEEP = b"[" * 5000 + b"]" * 5000


async def test_integer_query_parameters_beyond_64_bits_are_refused(api: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    conversation = await open_conversation(api, alice, bob)
    for path, params in [
        ("/api/tickets", {"before": TOO_BIG}),
        ("/api/tickets", {"limit": TOO_BIG}),
        (f"/api/conversations/{conversation['id']}/messages", {"after_seq": TOO_BIG}),
        (f"/api/conversations/{conversation['id']}/messages", {"limit": TOO_BIG}),
        ("/api/conversations", {"limit": TOO_BIG}),
    ]:
        assert_error(await api.get(path, params=params, headers=alice.headers), 400, "invalid_input")
    largest = await api.get(f"/api/conversations/{conversation['id']}/messages", params={"after_seq": str(2**63 - 1)}, headers=alice.headers)
    assert largest.status_code == 200 and largest.json() == {"items": []}


@pytest.mark.parametrize(
    "raw",
    [b'{"email": "a@b.co", "password": "\xff\xfe"}', b'{"email": "\xc3(@b.co", "password": "x"}', DEEP, b'{"email": ' + DEEP + b"}"],
    ids=["invalid-utf8", "invalid-utf8-email", "deep-array", "deep-field"],
)
async def test_undecodable_json_bodies_are_400_everywhere(api: httpx.AsyncClient, alice: Account, raw: bytes) -> None:
    json = {"content-type": "application/json"}
    assert_error(await api.post("/api/auth/login", content=raw, headers=json), 400, "invalid_input")
    assert_error(await api.post("/api/auth/signup", content=raw, headers=json), 400, "invalid_input")
    assert_error(await api.patch("/api/auth/me", content=raw, headers={**json, **alice.headers}), 400, "invalid_input")
    assert_error(await api.post("/api/tickets", content=raw, headers={**json, **alice.headers}), 400, "invalid_input")


async def test_booleans_are_strict(api: httpx.AsyncClient, alice: Account, bob: Account, admin: Account) -> None:
    for flag in (0, 1, "true", "false", None):
        answer = await api.patch("/api/auth/me", json={"preferences": {"email_notifications": flag}}, headers=alice.headers)
        if flag is None:  # null means "unchanged"
            assert answer.status_code == 200
            continue
        assert_error(answer, 400, "invalid_input")
        assert "email_notifications" in answer.json()["error"]["message"]
        assert_error(await api.patch(f"/api/admin/users/{bob.id}", json={"active": flag}, headers=admin.headers), 400, "invalid_input")
    assert (await api.get("/api/auth/me", headers=alice.headers)).json()["preferences"] == {"email_notifications": True}
    assert (await api.get("/api/auth/me", headers=bob.headers)).status_code == 200, "bob was never disabled"


async def test_options_allow_lists_every_method_of_the_path(api: httpx.AsyncClient, alice: Account) -> None:
    paths = (await api.get("/schema/openapi.json")).json()["paths"]
    for path, operations in paths.items():
        concrete = path.replace("{", "").replace("}", "")  # any value does for a path parameter
        answer = await api.options(concrete, headers=alice.headers)
        assert answer.status_code == 204, path
        allowed = {method.strip() for method in answer.headers["allow"].split(",")}
        assert allowed == {method.upper() for method in operations} | {"OPTIONS"}, path


async def test_schema_states_the_rules_the_server_enforces(api: httpx.AsyncClient) -> None:
    schema = (await api.get("/schema/openapi.json")).json()
    components = schema["components"]["schemas"]
    hex_id = {"type": "string", "pattern": "^[0-9a-f]{24}$"}
    assert components["CreateConversationRequest"]["properties"]["participant_ids"]["items"] == hex_id
    assert components["SendMessageRequest"]["properties"]["attachment_ids"]["items"] == hex_id
    for request in ("SendMessageRequest", "EditMessageRequest"):
        assert components[request]["properties"]["body"]["maxLength"] == 10_000
    assert "invisible" in components["SignupRequest"]["properties"]["username"]["description"]
    history = {p["name"]: p["schema"] for p in schema["paths"]["/api/conversations/{conversation_id}/messages"]["get"]["parameters"]}
    tickets = {p["name"]: p["schema"] for p in schema["paths"]["/api/tickets"]["get"]["parameters"]}
    for bounded in (history["after_seq"], history["limit"], tickets["before"], tickets["limit"]):
        assert bounded["maximum"] == 2**63 - 1
    assert history["before"]["pattern"] == "^[0-9a-f]{24}$"
