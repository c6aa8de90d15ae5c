"""`mqchat up`: the embedded store plus broker, bridge and API as child processes, stopped together.

Each component runs as `python -m mqchat <component>`, so split deployments run
exactly the same code. MQCHAT_API_PROCESSES API processes run (2 on NATS, else 1), process i
on MQCHAT_API_PORT + i; several share their rate limits through the store (api.limits). Start-up checks the ports first, then starts the parts in
order and calls the system ready (`up.ready`, and a banner on a terminal) only once
each one answered its probe: the store a ping, the broker an MQTT CONNECT, the API
`/api/health`, every bridge worker its `bridge.connected` report. A part that dies
or does not answer during start-up stops everything; `up` exits 1 with a last line
naming the part and the cause. Once ready, a child that dies is started again after
a backoff (1 s, 2 s, 4 s, ...); one that dies RESTART_LIMIT times within
RESTART_WINDOW seconds stops everything and `up` exits 1. On SIGINT/SIGTERM
everything is stopped in reverse order and `up` exits 0.

Children log JSON lines to a pipe; `up` passes them on in its own format (mqchat.relay).
They keep their metrics in `<data dir>/metrics` (mqchat.metrics_dir), added up by the API's `/metrics`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from core import restarts
from core.logs import resolve_format
from core.settings import Settings
from mqchat import metrics_dir
from mqchat.banner import addresses, print_banner
from mqchat.causes import describe, redact_uri
from mqchat.children import die_with_parent
from mqchat.probes import NotReady, api_healthy, broker_answers, check_port_free, store_answers
from mqchat.relay import LINE_LIMIT, ChildLog
from mqchat.store import EmbeddedStore, StoreError

log = logging.getLogger("mqchat.up")

STOP_TIMEOUT = 15.0
READY_TIMEOUT = 60.0
NATS_TIMEOUT = 120.0  # the cluster elects its JetStream leader and creates the MQTT streams first
EXTERNAL_TIMEOUT = 10.0  # an external broker that does not answer within this is reported
STORE_TIMEOUT = 5.0  # MONGODB_URI: the server selection time-out of the start-up ping
PROBE_INTERVAL = 0.2
RESTART_DELAY = 1.0
RESTART_LIMIT = 5
RESTART_WINDOW = 60.0


class StartFailed(Exception):
    """A part of the system could not start; `cause` is in plain words."""

    def __init__(self, component: str, cause: str) -> None:
        super().__init__(f"{component}: {cause}")
        self.component = component
        self.cause = cause


@dataclass
class Child:
    name: str
    process: asyncio.subprocess.Process
    component: str
    env: dict[str, str]
    log: ChildLog
    relay: asyncio.Task[None]
    restarts: list[float] = field(default_factory=list)  # loop times of recent restarts


async def _spawn(name: str, env: dict[str, str], log_format: str, label: str | None = None) -> Child:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mqchat", name, env=env, stderr=asyncio.subprocess.PIPE, limit=LINE_LIMIT,
        preexec_fn=die_with_parent,
    )  # fmt: skip
    assert process.stderr is not None
    child_log = ChildLog(process.stderr, log_format)
    log.info("up.component_started", extra={"component": label or name, "pid": process.pid})
    return Child(label or name, process, name, env, child_log, asyncio.create_task(child_log.relay()))


def _died(child: Child) -> StartFailed:
    return StartFailed(child.name, child.log.failure or f"exited with code {child.process.returncode}")


async def _until_ready(name: str, probe: Callable[[], Awaitable[None]], children: list[Child], timeout: float = READY_TIMEOUT) -> None:
    """Probe until it passes; StartFailed when a child dies meanwhile or on time-out."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        for child in children:
            if child.process.returncode is not None:
                await asyncio.wait_for(asyncio.shield(child.relay), 2.0)  # its last words, with the cause
                raise _died(child)
        try:
            await probe()
            return
        except NotReady as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise StartFailed(name, f"not ready within {timeout:.0f}s: {exc}") from None
        await asyncio.sleep(PROBE_INTERVAL)


def _reported(child: Child, event: str, what: str) -> Callable[[], Awaitable[None]]:
    async def probe() -> None:
        if event not in child.log.events:
            raise NotReady(what)

    return probe


async def _restarted(child: Child, log_format: str) -> bool:
    """Start a dead child again after a growing delay; False when it keeps dying (a crash loop)."""
    now = asyncio.get_running_loop().time()
    child.restarts = [at for at in child.restarts if now - at < RESTART_WINDOW]
    if len(child.restarts) >= RESTART_LIMIT:
        return False
    delay = RESTART_DELAY * 2 ** len(child.restarts)
    metrics_dir.forget(Path(child.env[metrics_dir.VARIABLE]), child.process.pid)
    log.warning("up.component_restarting", extra={"component": child.name, "in_seconds": delay, "cause": child.log.failure})
    await asyncio.sleep(delay)
    fresh = await _spawn(child.component, child.env, child.log.log_format, child.name)
    child.process, child.log, child.relay = fresh.process, fresh.log, fresh.relay
    child.restarts.append(now)
    await asyncio.to_thread(restarts.record, Path(child.env["MQCHAT_DATA_DIR"]), child.name)
    return True


async def _watch(children: list[Child], stop: asyncio.Event, log_format: str) -> list[Child]:
    """Wait for `stop` (returns []) or for children that died for good (returned); restarts the others."""
    stopping = asyncio.create_task(stop.wait())
    try:
        while True:
            waits = {asyncio.create_task(child.process.wait()): child for child in children}
            done, _ = await asyncio.wait({stopping, *waits}, return_when=asyncio.FIRST_COMPLETED)
            for task in waits:
                task.cancel()
            if stopping in done:
                return []
            failed = []
            for child in (waits[task] for task in done):
                await asyncio.wait({child.relay}, timeout=2.0)
                log.error("up.component_died", extra={"component": child.name, "returncode": child.process.returncode, "cause": child.log.failure})
                if not await _restarted(child, log_format):
                    failed.append(child)
            if failed:
                return failed
    finally:
        stopping.cancel()


async def _some_node_answers(settings: Settings) -> None:
    """An MQTT CONNECT succeeds through one of the cluster's nodes (the services fail over between them)."""
    causes = []
    for address in settings.mqtt_endpoints:
        try:
            await broker_answers(settings, address)
            return
        except NotReady as exc:
            causes.append(f"{address[0]}:{address[1]}: {exc}")
    raise NotReady("; ".join(causes))


def _api_name(settings: Settings, instance: int) -> str:
    """"api" alone, or "api-1", "api-2", ... with several API processes (MQCHAT_API_PROCESSES)."""
    return "api" if settings.api_processes == 1 else f"api-{instance + 1}"


def bridge_workers(settings: Settings) -> int:
    """How many bridge workers to run: one on the embedded broker (no shared subscriptions), else MQCHAT_BRIDGE_WORKERS
    (on Mosquitto they share a shared subscription, on NATS the request queue's consumer: 2 by default)."""
    if settings.broker == "embedded" and settings.bridge_workers > 1:
        log.warning("up.one_bridge_worker", extra={"reason": "amqtt has no shared subscriptions", "asked": settings.bridge_workers})
        return 1
    return settings.bridge_workers


async def _terminate(child: Child) -> None:
    if child.process.returncode is None:
        child.process.terminate()
        try:
            await asyncio.wait_for(child.process.wait(), STOP_TIMEOUT)
        except TimeoutError:
            log.warning("up.component_killed", extra={"component": child.name})
            child.process.kill()
            await child.process.wait()
    await asyncio.wait({child.relay}, timeout=5.0)
    metrics_dir.forget(Path(child.env[metrics_dir.VARIABLE]), child.process.pid)
    log.info("up.component_stopped", extra={"component": child.name, "returncode": child.process.returncode})


def _check_ports(settings: Settings) -> None:
    """Every port `up` will listen on is free, before anything starts (nothing to undo then)."""
    wanted = [] if settings.mongodb_uri else [("store", "127.0.0.1", settings.store_port)]
    if settings.broker == "embedded":
        wanted += [("broker", settings.bind_host, settings.mqtt_port), ("broker", settings.bind_host, settings.ws_port)]
    if settings.broker == "nats" and not settings.nats_hosts:
        local = settings.local_host
        for node in range(settings.nats_nodes):
            wanted += [("nats", settings.bind_host, settings.mqtt_port + node), ("nats", settings.bind_host, settings.ws_port + node),
                       ("nats", local, settings.nats_port + node), ("nats", local, settings.nats_cluster_port + node)]  # fmt: skip
    wanted += [("api", settings.bind_host, settings.api_port + instance) for instance in range(settings.api_processes)]
    for component, host, port in wanted:
        try:
            check_port_free(host, port)
        except NotReady as exc:
            raise StartFailed(component, str(exc)) from None


async def _start(
    settings: Settings, env: dict[str, str], log_format: str, children: list[Child], store_box: list[EmbeddedStore]
) -> dict[str, str | int]:
    """Start every part in order and wait for each probe; the facts of the banner."""
    _check_ports(settings)
    if settings.mongodb_uri:
        uri = settings.mongodb_uri
        try:
            await store_answers(uri, STORE_TIMEOUT)
        except NotReady as exc:
            raise StartFailed("store", f"cannot reach MongoDB at {redact_uri(uri)}: {exc}") from None
    else:
        store = EmbeddedStore(settings.data_dir, settings.store_port)
        store_box.append(store)
        try:
            await store.start()
        except StoreError as exc:
            raise StartFailed("store", str(exc)) from None
        store.publish_address()
        uri = env["MONGODB_URI"] = store.uri
    probe_settings = settings.with_store_uri(uri)
    if settings.broker == "embedded":
        children.append(await _spawn("broker", env, log_format))
        await _until_ready("broker", lambda: broker_answers(probe_settings), children)
    elif settings.broker == "nats" and settings.nats_hosts:  # one node per machine, each run by `mqchat nats --node i`
        await _until_ready("nats", partial(_some_node_answers, probe_settings), children, NATS_TIMEOUT)
    elif settings.broker == "nats":
        nats = await _spawn("nats", env, log_format)
        children.append(nats)
        await _until_ready("nats", _reported(nats, "nats.ready", "an MQTT client cannot connect through every node yet"), children, NATS_TIMEOUT)
    else:
        host, port = settings.broker_address
        try:
            await _until_ready("broker", lambda: broker_answers(probe_settings), children, EXTERNAL_TIMEOUT)
        except StartFailed as exc:
            raise StartFailed("broker", f"cannot reach the MQTT broker at {host}:{port}: {exc.cause}") from None
    apis = [await _spawn("api", {**env, "MQCHAT_API_INSTANCE": str(i)}, log_format, _api_name(settings, i)) for i in range(settings.api_processes)]
    children += apis
    for n in range(1, bridge_workers(settings) + 1):
        children.append(await _spawn("bridge", {**env, "MQCHAT_BRIDGE_INSTANCE": f"worker-{n}"}, log_format, f"bridge-{n}"))
    local = settings.local_host
    for instance, api in enumerate(apis):
        await _until_ready(api.name, partial(api_healthy, f"http://{local}:{settings.api_port + instance}"), children)
    for child in children:
        if child.component == "bridge":
            await _until_ready(child.name, _reported(child, "bridge.connected", "has not connected to the broker"), children)
    return addresses(settings, uri, embedded_store=not settings.mongodb_uri)


async def run_up(settings: Settings, stop: asyncio.Event) -> int:
    """Start everything, wait for a signal or a failing child, stop everything; the exit code."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    restarts.reset(settings.data_dir)
    log_format = resolve_format(settings.log_format)
    stores: list[EmbeddedStore] = []
    children: list[Child] = []
    env = {
        **os.environ, "JWT_SECRET": settings.jwt_secret, "MQCHAT_DATA_DIR": str(settings.data_dir), "MQCHAT_LOG_FORMAT": "json",
        metrics_dir.VARIABLE: str(metrics_dir.prepare(settings.data_dir)),
    }  # fmt: skip
    failure: StartFailed | None = None
    try:
        starting = asyncio.create_task(_start(settings, env, log_format, children, stores))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not starting.done():  # Ctrl-C during start-up
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            return 0
        facts = starting.result()
        log.info("up.ready", extra=facts)
        if log_format == "console":
            print_banner(facts)
        dead = await _watch(children, stop, log_format)
        if dead:
            failure = StartFailed(dead[0].name, dead[0].log.failure or f"exited with code {dead[0].process.returncode}, again")
    except StartFailed as exc:
        failure = exc
    except Exception as exc:
        debug = log.isEnabledFor(logging.DEBUG)
        failure = StartFailed("up", describe(exc))
        log.error("up.error", extra={"cause": failure.cause}, exc_info=exc if debug else None)
    finally:
        for child in reversed(children):
            await _terminate(child)
        for store in stores:
            store.withdraw_address()
            await store.stop()
    if failure is None:
        return 0
    if log_format == "json":  # the plain line below is all a person on a terminal needs
        log.error("up.failed", extra={"component": failure.component, "cause": failure.cause})
    print(f"mqchat: {failure.component} failed: {failure.cause}", file=sys.stderr, flush=True)
    return 1
