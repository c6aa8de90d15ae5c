"""Fixtures: one real `mqchat up` (nx-27017 + amqtt + bridge + API) for the session, on free ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import Account, System, create_staff, signup


@pytest.fixture(scope="session")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """The whole system as a user runs it, started once for the test session."""
    running = System.on_free_ports(tmp_path_factory.mktemp("mqchat") / "data")
    running.start()
    yield running
    assert running.stop() == 0, "mqchat up did not stop cleanly"


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
def fresh_data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"
