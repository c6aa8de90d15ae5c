"""`mqchat up`: the embedded store plus broker, bridge and API as child processes, stopped together.

Each component runs as `python -m mqchat <component>`, so split deployments run
exactly the same code. A bridge worker that dies is started again: its persistent
session keeps its share of the requests queued meanwhile, and the restarted worker
resumes it. If any other child dies, or a worker keeps dying (RESTART_LIMIT times
within RESTART_WINDOW seconds), everything is stopped and `up` exits 1; on
SIGINT/SIGTERM everything is stopped in reverse order and `up` exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from dataclasses import dataclass, field

from core.settings import Settings
from mqchat.children import die_with_parent
from mqchat.net import port_open
from mqchat.store import EmbeddedStore

log = logging.getLogger("mqchat.up")

STOP_TIMEOUT = 15.0
READY_TIMEOUT = 60.0
RESTART_DELAY = 1.0
RESTART_LIMIT = 5
RESTART_WINDOW = 60.0


@dataclass
class Child:
    name: str
    process: asyncio.subprocess.Process
    component: str
    env: dict[str, str]
    restarts: list[float] = field(default_factory=list)  # loop times of recent restarts


async def _wait_for_port(child: Child, host: str, port: int) -> None:
    deadline = asyncio.get_running_loop().time() + READY_TIMEOUT
    while not await port_open(host, port):
        if child.process.returncode is not None:
            raise RuntimeError(f"{child.name} exited with {child.process.returncode} during start-up")
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(f"{child.name} did not open port {port} within {READY_TIMEOUT:.0f}s")
        await asyncio.sleep(0.1)


async def _spawn(name: str, env: dict[str, str], label: str | None = None) -> Child:
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "mqchat", name, env=env, preexec_fn=die_with_parent)
    log.info("up.component_started", extra={"component": label or name, "pid": process.pid})
    return Child(label or name, process, name, env)


async def _restarted(child: Child) -> bool:
    """Start a dead bridge worker again, after RESTART_DELAY; False for other children and crash loops."""
    now = asyncio.get_running_loop().time()
    child.restarts = [at for at in child.restarts if now - at < RESTART_WINDOW]
    if child.component != "bridge" or len(child.restarts) >= RESTART_LIMIT:
        return False
    await asyncio.sleep(RESTART_DELAY)
    child.process = (await _spawn(child.component, child.env, child.name)).process
    child.restarts.append(now)
    return True


async def _watch(children: list[Child], stop: asyncio.Event) -> list[Child]:
    """Wait for `stop` (returns []) or for children that died for good (returned); restarts bridge workers."""
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
                log.error("up.component_died", extra={"component": child.name, "returncode": child.process.returncode})
                if not await _restarted(child):
                    failed.append(child)
            if failed:
                return failed
    finally:
        stopping.cancel()


def bridge_workers(settings: Settings) -> int:
    """How many bridge workers to run: one on the embedded broker (it has no shared subscriptions)."""
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
    log.info("up.component_stopped", extra={"component": child.name, "returncode": child.process.returncode})


async def run_up(settings: Settings, stop: asyncio.Event) -> int:
    """Start everything, wait for a signal or a failing child, stop everything; the exit code."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store: EmbeddedStore | None = None
    children: list[Child] = []
    env = {**os.environ, "JWT_SECRET": settings.jwt_secret, "MQCHAT_DATA_DIR": str(settings.data_dir)}
    local = "127.0.0.1" if settings.bind_host in ("0.0.0.0", "::") else settings.bind_host
    try:
        if not settings.mongodb_uri:
            store = EmbeddedStore(settings.data_dir, settings.store_port)
            await store.start()
            store.publish_address()
            env["MONGODB_URI"] = store.uri
        if settings.broker == "embedded":
            children.append(await _spawn("broker", env))
            await _wait_for_port(children[-1], local, settings.mqtt_port)
        children.append(api := await _spawn("api", env))
        for n in range(1, bridge_workers(settings) + 1):
            children.append(await _spawn("bridge", {**env, "MQCHAT_BRIDGE_INSTANCE": f"worker-{n}"}, f"bridge-{n}"))
        await _wait_for_port(api, local, settings.api_port)
        log.info("up.ready", extra={"api": f"http://{settings.public_host}:{settings.api_port}", "mqtt_port": settings.mqtt_port, "ws_port": settings.ws_port})

        return 1 if await _watch(children, stop) else 0
    except Exception as exc:
        log.error("up.failed", extra={"error": str(exc)})
        return 1
    finally:
        for child in reversed(children):
            await _terminate(child)
        if store is not None:
            store.withdraw_address()
            await store.stop()
