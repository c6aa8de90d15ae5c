"""`python -m bench --count`: what one persisted chat message costs, counted per process (bench.counting).

Messages are sent one at a time, each after the previous one arrived: the everyday
case where every batch holds one message and batching saves nothing. The counts
divided by the number of messages are the cost per message. Then the API's store
commands per history request: a `before` cursor the API has not served (a message
id a client got over MQTT), the `next_before` of the page before, and `after_seq`.
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
from bench.rounds import NATIVE_BROKERS
from tests.support import System, open_conversation, signup, user_client

SITE = Path(__file__).parent / "count_site"
WARM_UP = 5  # messages before counting: caches filled, connections settled
SETTLE = 0.5  # seconds after the last arrival: the last acknowledgements are in


def counting_env(directory: Path) -> dict[str, str]:
    """The environment that makes `mqchat up`'s Python children count on SIGUSR1."""
    path = os.pathsep.join(filter(None, [str(SITE), os.environ.get("PYTHONPATH", "")]))
    return {"PYTHONPATH": path, counting.VARIABLE: str(directory)}


def _counted_children(processes: dict[str, psutil.Process]) -> dict[str, psutil.Process]:
    """mqchat's own Python processes (not the store, not Mosquitto or NATS nodes)."""
    return {role: p for role, p in processes.items() if role.split()[0] in ("broker", "bridge", "api") and p.name() not in NATIVE_BROKERS}


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
    arrivals: asyncio.Queue[str] = asyncio.Queue()
    ids: list[str] = []
    async with contextlib.AsyncExitStack() as stack:
        out = await stack.enter_async_context(user_client(system, sender, "count-s"))
        inbox = await stack.enter_async_context(user_client(system, receiver, "count-r"))
        await inbox.subscribe(f"chat/users/{receiver.id}/inbox", qos=1)

        async def receive() -> None:
            async for message in inbox.messages:
                event = json.loads(bytes(message.payload))  # type: ignore[arg-type]
                if event.get("type") == "message.created":
                    await arrivals.put(event["message"]["id"])

        receiving = asyncio.create_task(receive())

        async def one(n: int) -> None:
            payload = {"conversation_id": cid, "client_msg_id": f"count-{n}", "body": f"counted {n}"}
            await out.publish(f"chat/users/{sender.id}/outbox/send", json.dumps(payload), qos=1)
            ids.append(await asyncio.wait_for(arrivals.get(), 30))

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
        "history": await _count_history(api, {"api": processes["api"]}, directory, receiver.headers, cid, ids),
    }  # fmt: skip


HISTORY_REQUESTS = 3


async def _count_history(
    api: httpx.AsyncClient, children: dict[str, psutil.Process], directory: Path, headers: dict, cid: str, ids: list[str]
) -> dict[str, dict[str, float]]:
    """The API's store commands per history request, by kind of request."""
    url = f"/api/conversations/{cid}/messages"

    made = 0

    async def page(params: dict) -> dict:
        nonlocal made
        answer = await api.get(url, params={"limit": 2, **params}, headers=headers)
        assert answer.status_code == 200, answer.text
        made += 1
        return answer.json()

    async def unseen_cursors() -> None:  # the oldest message ids, which clients got over MQTT: served by no page yet
        for before in ids[1 : 1 + HISTORY_REQUESTS]:
            await page({"before": before})

    async def paging_back() -> None:  # each page's next_before, as a client scrolls back
        cursor = first["next_before"]
        while cursor is not None and made < HISTORY_REQUESTS:
            cursor = (await page({"before": cursor}))["next_before"]

    async def catching_up() -> None:
        for seq in range(HISTORY_REQUESTS):
            await page({"after_seq": seq})

    first = await page({})
    counted: dict[str, dict[str, float]] = {}
    for kind, requests in (("before: a cursor this API never served", unseen_cursors), ("before: next_before", paging_back),
                           ("after_seq", catching_up)):  # fmt: skip
        made = 0
        await _toggle(children, directory, closing=False)
        await requests()
        totals = (await _toggle(children, directory, closing=True)).get("api", {})
        counted[kind] = {k: round(v / max(made, 1), 2) for k, v in totals.items() if k.startswith("store.")}
    return counted


ROWS = [
    ("JSON encodes", "json.encode"), ("JSON decodes", "json.decode"), ("validation passes", "validation."),
    ("pydantic dumps", "pydantic.dump"), ("MQTT packets sent", "mqtt.sent."), ("MQTT packets received", "mqtt.received."),
    ("ACL decisions", ("acl.publish", "acl.subscribe", "acl.receive")), ("of which evaluated (not remembered)", "acl.evaluated"),
    ("asyncio tasks created", "asyncio.tasks"), ("timers set", "asyncio.timers"),
]  # fmt: skip


def markdown(report: dict) -> str:
    """A table per message (rows: what, columns: process), then every counter.

    Store commands get a row each (command.collection): the message path's are 1 or
    more per message, a background task's (the webhook sender's polls) a fraction.
    """
    per = report["per_message"]
    roles = list(per)
    lines = [f"# Cost of one persisted chat message ({report['broker']}, {report['messages']} messages one at a time)", "",
             "| per message | " + " | ".join(roles) + " |", "|---|" + "---|" * len(roles)]  # fmt: skip
    store = sorted({k for counted in per.values() for k in counted if k.startswith("store.")})
    for title, prefix in [(f"store {k[len('store.'):]}", k) for k in store] + ROWS:
        cells = [round(sum(v for k, v in per[role].items() if k.startswith(prefix)), 2) for role in roles]
        lines.append(f"| {title} | " + " | ".join(str(c) for c in cells) + " |")
    lines += ["", "Every counter:", ""]
    for role in roles:
        lines.append(f"- {role}: " + ", ".join(f"{k} {v}" for k, v in per[role].items()))
    lines += ["", "Store commands of the API per history request (`limit=2`):", ""]
    for kind, commands in report["history"].items():
        lines.append(f"- {kind}: {sum(commands.values())} (" + ", ".join(f"{k} {v}" for k, v in commands.items()) + ")")
    return "\n".join(lines) + "\n"
