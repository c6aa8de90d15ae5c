"""`python -m bench --count`: what one persisted chat message costs, counted per process (bench.counting).

Messages are sent one at a time, each after the previous one arrived: the everyday
case where every batch holds one message and batching saves nothing. The counts
divided by the number of messages are the cost per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from pathlib import Path

import httpx
import psutil

from bench import counting
from tests.support import System, open_conversation, signup, user_client

SITE = Path(__file__).parent / "count_site"
WARM_UP = 5  # messages before counting: caches filled, connections settled
SETTLE = 0.5  # seconds after the last arrival: the last acknowledgements are in


def counting_env(directory: Path) -> dict[str, str]:
    """The environment that makes `mqchat up`'s Python children count on SIGUSR1."""
    path = os.pathsep.join(filter(None, [str(SITE), os.environ.get("PYTHONPATH", "")]))
    return {"PYTHONPATH": path, counting.VARIABLE: str(directory)}


def _counted_children(processes: dict[str, psutil.Process]) -> dict[str, psutil.Process]:
    """mqchat's own Python processes (not the store, not Mosquitto)."""
    return {role: p for role, p in processes.items() if role in ("broker", "bridge", "api") and p.name() != "mosquitto"}


async def _toggle(children: dict[str, psutil.Process], directory: Path, closing: bool) -> dict[str, dict[str, int]]:
    for process in children.values():
        process.send_signal(signal.SIGUSR1)
    if not closing:
        await asyncio.sleep(0.2)  # the handlers run between bytecodes: let every child open its window
        return {}
    found: dict[str, dict[str, int]] = {}
    deadline = time.monotonic() + 10
    while len(found) < len(children) and time.monotonic() < deadline:
        for role, process in children.items():
            written = directory / f"{process.pid}.json"
            if role not in found and written.exists():
                found[role] = json.loads(written.read_text())
                written.unlink()
        await asyncio.sleep(0.05)
    return found


async def count_costs(system: System, api: httpx.AsyncClient, processes: dict[str, psutil.Process], directory: Path, messages: int) -> dict:
    """Counts per persisted message, by process ("load generator" = this process's clients)."""
    sender, receiver = await signup(api), await signup(api)
    cid = (await open_conversation(api, sender, receiver))["id"]
    arrivals: asyncio.Queue[int] = asyncio.Queue()
    async with contextlib.AsyncExitStack() as stack:
        out = await stack.enter_async_context(user_client(system, sender, "count-s"))
        inbox = await stack.enter_async_context(user_client(system, receiver, "count-r"))
        await inbox.subscribe(f"chat/users/{receiver.id}/inbox", qos=1)

        async def receive() -> None:
            async for message in inbox.messages:
                event = json.loads(bytes(message.payload))  # type: ignore[arg-type]
                if event.get("type") == "message.created":
                    await arrivals.put(event["message"]["seq"])

        receiving = asyncio.create_task(receive())

        async def one(n: int) -> None:
            payload = {"conversation_id": cid, "client_msg_id": f"count-{n}", "body": f"counted {n}"}
            await out.publish(f"chat/users/{sender.id}/outbox/send", json.dumps(payload), qos=1)
            await asyncio.wait_for(arrivals.get(), 30)

        for n in range(WARM_UP):
            await one(n)
        children = _counted_children(processes)
        await _toggle(children, directory, closing=False)
        counting.start()
        for n in range(WARM_UP, WARM_UP + messages):
            await one(n)
        await asyncio.sleep(SETTLE)
        by_process = {"load generator": counting.stop(), **await _toggle(children, directory, closing=True)}
        receiving.cancel()
    return {
        "messages": messages, "broker": system.broker,
        "per_message": {role: {k: round(v / messages, 2) for k, v in counted.items()} for role, counted in by_process.items()},
    }  # fmt: skip


ROWS = [
    ("store commands", "store."), ("JSON encodes", "json.encode"), ("JSON decodes", "json.decode"),
    ("validation passes", "validation."), ("pydantic dumps", "pydantic.dump"), ("MQTT packets sent", "mqtt.sent."),
    ("MQTT packets received", "mqtt.received."), ("ACL decisions", "acl."), ("asyncio tasks created", "asyncio.tasks"),
    ("timers set", "asyncio.timers"),
]  # fmt: skip


def markdown(report: dict) -> str:
    """A table per message (rows: what, columns: process), then every counter."""
    per = report["per_message"]
    roles = list(per)
    lines = [f"# Cost of one persisted chat message ({report['broker']}, {report['messages']} messages one at a time)", "",
             "| per message | " + " | ".join(roles) + " |", "|---|" + "---|" * len(roles)]  # fmt: skip
    for title, prefix in ROWS:
        cells = [round(sum(v for k, v in per[role].items() if k.startswith(prefix)), 2) for role in roles]
        lines.append(f"| {title} | " + " | ".join(str(c) for c in cells) + " |")
    lines += ["", "Every counter:", ""]
    for role in roles:
        lines.append(f"- {role}: " + ", ".join(f"{k} {v}" for k, v in per[role].items()))
    return "\n".join(lines) + "\n"
