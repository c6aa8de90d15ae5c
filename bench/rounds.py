"""A bench system's processes, its sender/receiver pairs, and one load round against it (bench.load)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import httpx
import psutil

from bench import calibration
from bench.lean_mqtt import LeanClient
from bench.load import STALL, LoadResult, run_load
from tests.support import NATS_NODES, Account, System, granted, open_conversation, signup

NATIVE_BROKERS = ("mosquitto", "nats-server")  # process names of the brokers that are not mqchat's Python


def components(system: System) -> dict[str, psutil.Process]:
    """The system's processes by role: broker, bridge, api, store, and this load generator.

    With several processes of a role (bridge workers, API processes, NATS nodes) the first is
    `bridge`, the others `bridge 2`, `bridge 3`, ...
    """
    assert system.process is not None
    found = {"load generator": psutil.Process()}
    roots = [psutil.Process(system.process.pid)] + ([psutil.Process(system.mosquitto.pid)] if system.mosquitto else [])
    for child in (c for root in roots for c in root.children(recursive=True)):
        cmdline = " ".join(child.cmdline())
        if child.name() in NATIVE_BROKERS:
            found[_free_name(found, "broker")] = child
        elif "nx_27017" in cmdline:
            found["store"] = child
        else:
            for role in ("broker", "bridge", "api"):
                if cmdline.endswith(f"mqchat {role}"):
                    found[_free_name(found, role)] = child
    return found


def _free_name(found: dict[str, psutil.Process], role: str) -> str:
    if role not in found:
        return role
    return next(f"{role} {n}" for n in range(2, 100) if f"{role} {n}" not in found)


def cpu_use(processes: dict[str, psutil.Process], previous: dict[str, float] | None = None) -> dict[str, float]:
    """CPU seconds each process used so far, or (given `previous`) since then (0 for one killed meanwhile)."""
    now = {role: _cpu_seconds(p, (previous or {}).get(role, 0.0)) for role, p in processes.items()}
    return {role: round(now[role] - previous[role], 2) for role in now} if previous else now


def _cpu_seconds(process: psutil.Process, otherwise: float) -> float:
    try:
        return sum(process.cpu_times()[:2])
    except psutil.NoSuchProcess:
        return otherwise


async def make_pairs(system: System, api: httpx.AsyncClient, count: int) -> tuple[list[tuple[Account, str, Account]], list[Account]]:
    """`count` (sender, conversation id, receiver), one direct conversation each, and every account made."""
    pairs, accounts = [], []
    for _ in range(count):
        sender, receiver = await signup(api), await signup(api)
        cid = (await open_conversation(api, sender, receiver))["id"]
        accounts += [sender, receiver]
        pairs.append((sender, cid, receiver))
    return pairs, accounts


def spread(system: System, n: int) -> System:
    """The system as client `n` reaches it: on a cluster node n % nodes, so senders and receivers sit on different nodes."""
    return system.node(n % NATS_NODES) if system.broker == "nats" else system


@contextlib.asynccontextmanager
async def connected(system: System, pairs: list, tag: str, e2e: bool, persistent: bool = False):  # type: ignore[no-untyped-def]
    """The pairs' clients, connected, receivers subscribed to their inbox: (sender client, sender id, cid, receiver client, receiver id).

    e2e: the senders are the users (outbox requests); raw: a service account publishing to the inboxes.
    persistent: the receivers' sessions are (clean session 0), so a receiver may reconnect to what was queued for it.
    """
    clients: list[tuple[LeanClient, str, str, LeanClient, str]] = []
    async with contextlib.AsyncExitStack() as stack:
        for n, (sender, cid, receiver) in enumerate(pairs):
            near, far = spread(system, n), spread(system, n + 1)
            out = (
                _lean(near, sender.id, sender.mqtt_password, f"{sender.id}-s{n}")
                if e2e
                else _lean(near, "mqchat-bridge", system.service_password(), f"mqchat-bridge-bench-{n}")
            )
            identifier = f"{receiver.id}-r{n}-{tag}-{int(e2e)}-{time.monotonic_ns()}"
            inbox = _lean(far, receiver.id, receiver.mqtt_password, identifier, clean_session=not persistent)
            for client in (out, inbox):
                await stack.enter_async_context(client)
            if not granted(await inbox.subscribe(f"chat/users/{receiver.id}/inbox", qos=1)):
                raise RuntimeError(f"the broker refused receiver {n}'s inbox subscription")
            clients.append((out, sender.id, cid, inbox, receiver.id))
        yield clients


def _lean(system: System, username: str, password: str, identifier: str, clean_session: bool = True) -> LeanClient:
    """A load-generator client (bench.lean_mqtt) of the system's broker, over TCP."""
    return LeanClient("127.0.0.1", system.mqtt_port, username=username, password=password, identifier=identifier, clean_session=clean_session)


async def load_round(
    system: System, pairs: list, rate: int, duration: float, e2e: bool,
    on_arrival: Callable[[dict], None] | None = None, stall: float = STALL, settle: float = 0.0,
) -> LoadResult:
    """One open-loop round (bench.load.run_load) with the CPU each process used and the load before it (waiting up
    to `settle` seconds for the machine to be quiet: calibration.settled_load)."""
    load_before = await calibration.settled_load(settle)
    async with connected(system, pairs, str(rate), e2e) as clients:
        processes = components(system)
        before = cpu_use(processes)
        result = await run_load(clients, rate, duration, e2e, on_arrival, stall)
        result.cpu_seconds = cpu_use(processes, before)
        result.load_before, result.flags = load_before, calibration.round_flags(load_before)
        return result


async def calibrated_rounds(
    system: System, pairs: list, rates: list[int], duration: float, runs: int, paths: tuple[bool, ...], points: list[float],
    settle: float = 0.0, shown: Callable[[int, LoadResult], None] | None = None,
) -> dict[str, list[LoadResult]]:
    """`runs` passes over every rate and path (`e2e` False: the raw relay), each followed by a calibration appended
    to `points`, whose drift flags that pass's rounds; the rounds by "path@rate". `shown(run, result)` after each."""
    load: dict[str, list[LoadResult]] = {}
    for run in range(runs):
        rounds = []
        for rate in rates:
            for e2e in paths:
                result = await load_round(system, pairs, rate, duration, e2e, settle=settle)
                result.run = run
                rounds.append(result)
                load.setdefault(f"{result.path}@{rate}", []).append(result)
                if shown is not None:
                    shown(run, result)
        points.append(calibration.calibrate())
        for result in rounds:
            result.flags += calibration.drift_flags(points[-2], points[-1])
    return load
