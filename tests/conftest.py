"""Fixtures: real systems (`mqchat up`: nx-27017 + broker + bridge + API) on free ports.

`system` is the embedded-broker system; a module that runs on both brokers sets
`pytestmark = BOTH_BROKERS` and gets each test once per broker (Mosquitto via
`mqchat mosquitto` + `MQCHAT_BROKER=external`); `EVERY_BROKER` adds the NATS cluster
(`MQCHAT_BROKER=nats`). Each broker's system starts once per session, when first asked for.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.db import init_db
from core.settings import Settings
from tests.platform_support import Platform
from tests.support import (
    Account,
    System,
    create_staff,
    running,
    signup,
    split_deployment,
)

BROKERS = ("amqtt", "mosquitto")
BOTH_BROKERS = pytest.mark.parametrize("system", BROKERS, indirect=True)
# A module that also holds on the NATS cluster (MQCHAT_BROKER=nats, 3 nodes) runs each test on all three.
EVERY_BROKER = pytest.mark.parametrize("system", (*BROKERS, "nats"), indirect=True)
# Short ticket timings (grace before an abandoned ticket is requeued, queue sweep): tests/test_tickets.py's systems,
# and the session's cluster, where its tests on every broker run.
TICKET_TIMINGS = {"MQCHAT_REASSIGN_GRACE": "2", "MQCHAT_ASSIGN_INTERVAL_MS": "300"}
# The desk's escalation sweep every 0.3 s and no threshold by default (a team sets its own): tests/test_desk.py's
# systems, and the session's cluster, where its scenario runs too.
DESK_TIMINGS = {"MQCHAT_ESCALATION_INTERVAL_MS": "300", "MQCHAT_ESCALATE_AFTER": "0"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """With `-n N --dist loadgroup` (scripts/test): a module's tests run on one worker, in order, sharing its
    module's fixtures; every test on the NATS cluster runs on one worker, so that it starts one cluster."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_nats = "nats_system" in item.fixturenames or (callspec is not None and callspec.params.get("system") == "nats")
        item.add_marker(pytest.mark.xdist_group("nats" if on_nats else item.module.__name__))


@pytest.fixture(scope="session")
def platform() -> Iterator[Platform]:
    """The host platform's auth backend (signing keys, JWKS over HTTP) that the session's systems trust."""
    issuer = Platform()
    issuer.serve()
    yield issuer
    issuer.close()


def _running(tmp_path_factory: pytest.TempPathFactory, broker: str, platform: Platform, **extra_env: str) -> Iterator[System]:
    data_dir = tmp_path_factory.mktemp(f"mqchat-{broker}") / "data"
    with running(System.on_free_ports(data_dir, broker=broker, **platform.env, **extra_env)) as system:
        yield system


@pytest.fixture(scope="session")
def amqtt_system(tmp_path_factory: pytest.TempPathFactory, platform: Platform) -> Iterator[System]:
    """The whole system with the embedded broker, started once for the test session."""
    yield from _running(tmp_path_factory, "amqtt", platform)


@pytest.fixture(scope="session")
def mosquitto_system(tmp_path_factory: pytest.TempPathFactory, platform: Platform) -> Iterator[System]:
    """The whole system with Mosquitto as the external broker, started once for the test session."""
    yield from _running(tmp_path_factory, "mosquitto", platform)


@pytest.fixture(scope="session")
def nats_system(tmp_path_factory: pytest.TempPathFactory, platform: Platform) -> Iterator[System]:
    """The whole system on a 3-node NATS JetStream cluster (`mqchat up`, MQCHAT_BROKER=nats), started once for the test session.
    tests/test_tickets.py runs its assignment tests here too, and tests/test_desk.py its routing scenario: a test on it
    leaves no ticket in the queue, no agent online."""
    # the default per-account login limit, so that a test can use it up through one API process and see the other refuse
    yield from _running(tmp_path_factory, "nats", platform, MQCHAT_ACCOUNT_LOGIN_LIMIT="10", **TICKET_TIMINGS, **DESK_TIMINGS)


@pytest.fixture(scope="session")
def web_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """The browser tests' system, apart from the session's: no other tests' agents there to take their tickets."""
    with running(System.on_free_ports(tmp_path_factory.mktemp("mqchat-web") / "data")) as system:
        yield system


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    """A headless Chromium for the module's tests (tests.browser_support)."""
    from tests.browser_support import chromium

    async with chromium() as browser:
        yield browser


@pytest.fixture
async def rest(web_system: System) -> AsyncIterator[httpx.AsyncClient]:
    """A REST client of the browser tests' system."""
    async with httpx.AsyncClient(base_url=web_system.api_url, timeout=30) as client:
        yield client


@pytest.fixture
def system(request: pytest.FixtureRequest) -> System:
    """The system of the test's broker (the embedded one unless parametrized with BOTH_BROKERS)."""
    return request.getfixturevalue(f"{getattr(request, 'param', 'amqtt')}_system")


@pytest.fixture
async def api(system: System) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=system.api_url, timeout=30) as client:
        yield client


@pytest.fixture
async def alice(api: httpx.AsyncClient) -> Account:
    return await signup(api)


@pytest.fixture
async def bob(api: httpx.AsyncClient) -> Account:
    return await signup(api)


@pytest.fixture
async def admin(system: System, api: httpx.AsyncClient) -> Account:
    return await create_staff(system, api, "admin")


@pytest.fixture
async def store(system: System, tmp_path: Path) -> AsyncIterator[None]:
    """Beanie in this process on the session system's store, for services called directly."""
    settings = Settings.load({"MQCHAT_DATA_DIR": str(tmp_path), "MONGODB_URI": system.store_uri}, env_file=None)
    client = await init_db(settings)
    yield
    await client.close()


@pytest.fixture
def fresh_data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def split_system(tmp_path: Path) -> Iterator[tuple[System, dict]]:
    """store, broker, api and bridge as separate processes (a split deployment)."""
    system = System.on_free_ports(tmp_path / "data")
    with split_deployment(system) as processes:
        yield system, processes
