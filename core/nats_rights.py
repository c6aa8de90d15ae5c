"""Rights on a NATS cluster: the connections of users whose rights shrank are cut (core.broker_rights.rights_for).

Imported only when the broker is NATS: the nats client costs ~130 ms to import.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable

from nats.aio.client import Client as NatsConnection
from nats.aio.msg import Msg

from core import nats_auth, topics
from core.events import Delivery
from core.roles import Role
from core.settings import Settings

KICK_TIMEOUT = 1.0  # per node answer: a membership change is enforced within 2 s
CONNZ_LIMIT = 10_000  # connections of one user asked of a node
SYSTEM_CONNECT_TIMEOUT = 5.0  # the cluster unreachable: the change fails (its events are not sent) rather than wait


class SystemConnection:
    """A connection to the cluster as its system account (`$SYS` requests), made on first use and again
    after it closed."""

    def __init__(self, settings: Settings, name: str, timeout: float) -> None:
        self._settings, self._name, self._timeout = settings, name, timeout
        self._connection: NatsConnection | None = None

    async def get(self) -> NatsConnection:
        """The open connection (connecting now if there is none)."""
        if self._connection is None or self._connection.is_closed:
            self._connection = await nats_auth.connect(
                self._settings.nats_servers, nats_auth.SYSTEM_USER, self._settings.jwt_secret, self._name, timeout=self._timeout
            )
        return self._connection

    async def close(self) -> None:
        if self._connection is not None and not self._connection.is_closed:
            await self._connection.close()


class NatsRights:
    """A NATS cluster asks mqchat at every connection (broker.nats_callout), and a connection keeps the
    permissions it was given: when a membership ends or a user's tokens are revoked, the user's
    connections on every node are cut through the system account (`$SYS.REQ.SERVER.<id>.KICK`), and
    their reconnection is decided afresh. A member who is added keeps receiving everything durable
    on its inbox; it may subscribe to the conversation's topics from its next connection on."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._system = SystemConnection(settings, "mqchat-rights", SYSTEM_CONNECT_TIMEOUT)

    async def ensure_user(self, user_id: str, role: Role, version: int) -> None:
        return None

    async def apply(self, deliveries: Iterable[Delivery]) -> None:
        """Cut the connections of removed members and of users whose sessions were revoked."""
        users: set[str] = set()
        for delivery in deliveries:
            if delivery.topic == topics.SESSIONS_CONTROL:
                users.add(json.loads(delivery.payload)["user_id"])
            elif delivery.topic == topics.MEMBERSHIP_CONTROL:
                users.update(json.loads(delivery.payload)["removed"])
        if users:
            await self.cut(users)

    async def cut(self, user_ids: Iterable[str]) -> int:
        """Close every connection of these users on every node; how many were closed."""
        connection = await self._system.get()
        closed = 0
        for user_id in user_ids:
            for server_id, cid in await self._connections_of(connection, user_id):
                await connection.request(f"$SYS.REQ.SERVER.{server_id}.KICK", json.dumps({"cid": cid}).encode(), timeout=KICK_TIMEOUT)
                closed += 1
        return closed

    async def _connections_of(self, connection: NatsConnection, user_id: str) -> list[tuple[str, int]]:
        """(server id, connection id) of the user's open connections, asked of every node at once."""
        query = {"user": user_id, "state": 0, "limit": CONNZ_LIMIT}
        answers = await ask_every_node(connection, "CONNZ", query, self._settings.nats_nodes, KICK_TIMEOUT)
        # a node that does not answer is down: its clients are disconnected anyway
        return [(answer["server"]["id"], client["cid"]) for answer in answers for client in connections_in(answer)]

    async def close(self) -> None:
        await self._system.close()


async def ask_every_node(connection: NatsConnection, request: str, query: dict, nodes: int, timeout: float) -> list[dict]:
    """The nodes' answers to `$SYS.REQ.SERVER.PING.<request>` (CONNZ, HEALTHZ...) through a system account connection:
    at most `nodes`, each awaited at most `timeout` (a node that does not answer by then is counted down)."""
    inbox = connection.new_inbox()
    answers: asyncio.Queue[bytes] = asyncio.Queue()

    async def received(message: Msg) -> None:
        answers.put_nowait(message.data)

    subscription = await connection.subscribe(inbox, cb=received)
    found: list[dict] = []
    try:
        await connection.publish(f"$SYS.REQ.SERVER.PING.{request}", json.dumps(query).encode(), reply=inbox)
        for _ in range(nodes):
            try:
                async with asyncio.timeout(timeout):
                    found.append(json.loads(await answers.get()))
            except TimeoutError:
                break
    finally:
        await subscription.unsubscribe()
    return found


def connections_in(answer: dict) -> list[dict]:
    """The connections a node listed in its CONNZ answer."""
    return (answer.get("data") or {}).get("connections") or []
