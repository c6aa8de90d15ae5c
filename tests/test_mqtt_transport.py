"""The transport helpers without servers: backoff delays, and the bound on accounts known to Mosquitto."""

from __future__ import annotations

from typing import Any

import pytest

from core import backoff as backoff_module
from core.backoff import Backoff
from core.broker_rights import MosquittoRights
from core.roles import Role
from core.settings import Settings


async def test_backoff_doubles_up_to_its_cap_and_resets(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr(backoff_module.asyncio, "sleep", sleep)
    backoff = Backoff(0.5, cap=3.0)
    for _ in range(5):
        await backoff.wait()
    backoff.reset()
    await backoff.wait()
    assert slept == [0.5, 1.0, 2.0, 3.0, 3.0, 0.5]


class RecordingDynsec:
    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []

    async def run(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.batches.append(commands)
        return [{} for _ in commands]


async def test_known_accounts_stay_within_their_bound() -> None:
    dynsec = RecordingDynsec()
    rights = MosquittoRights(Settings().model_copy(update={"jwt_secret": "s" * 32, "known_broker_accounts": 100}), dynsec)
    for n in range(1_000):
        await rights.ensure_user(f"{n:024x}", Role.CUSTOMER, 0)
    assert len(rights._known) == 100
    await rights.ensure_user(f"{999:024x}", Role.CUSTOMER, 0)  # recent: still known, nothing sent
    assert len(dynsec.batches) == 1_000
    await rights.ensure_user(f"{0:024x}", Role.CUSTOMER, 0)  # forgotten: provisioned again (idempotent)
    assert len(dynsec.batches) == 1_001
