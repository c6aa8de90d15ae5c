"""Reading `/metrics` in tests: scrape as an admin, parse the exposition, wait for figures to show up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support import Account

SETTLE = 30.0  # how long a figure may take to show up (the broker samples its gauges every 2 s)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of the exposition: (name, labels) -> value."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (n, found), v in samples.items() if n == name and wanted <= found)


async def scrape(api: httpx.AsyncClient, admin: Account) -> tuple[str, Samples]:
    response = await api.get("/metrics", headers=admin.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text, parse(response.text)


async def scrape_until(api: httpx.AsyncClient, admin: Account, checks: dict[str, Callable[[Samples], bool]]) -> Samples:
    """Scrape until every check holds (each process writes its figures when it gets to them); fails naming the others."""
    deadline = asyncio.get_running_loop().time() + SETTLE
    while True:
        _, samples = await scrape(api, admin)
        failing = [what for what, holds in checks.items() if not holds(samples)]
        if not failing:
            return samples
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"never saw: {failing}")
        await asyncio.sleep(0.3)
