"""Read and write rights on an external broker (Mosquitto 2.0) or a NATS cluster, kept in step with mqchat's data.

The embedded broker asks mqchat on every action (broker.plugins), so it needs
nothing here (`EmbeddedRights`). Mosquitto 2.0 cannot verify JWTs and its
dynamic-security ACLs have no `%u` substitution, so `MosquittoRights` provisions
literal rights through `$CONTROL/dynamic-security/v1`:

- role `users` (everyone): subscribe to and receive `chat/presence/<uid>` (literal topics);
- role `user-<uid>` (one per user): publish under `chat/users/<uid>/outbox/#`,
  subscribe to and receive `chat/users/<uid>/inbox`, plus subscribe/receive
  `chat/conversations/<cid>/#` for each conversation the user belongs to
  (added and removed as membership changes: ACL edits take effect at once and,
  unlike role assignments, do not disconnect the user's devices);
- roles `agents` (`chat/agents/tickets`), `admins` (read-only `chat/#`) and
  `service` (the bridge and the API: everything under `chat/`, shared subscriptions);
- receiving is denied by default, so every delivery is checked against these rights.

Concurrent calls are sent as one batch (dynamic-security rewrites its JSON file
on every command message: core.mqtt.dynsec).

A NATS cluster asks mqchat at every connection instead (`NatsRights`): only
connections whose rights shrank are cut.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

from cachetools import LRUCache
from nats.aio.client import Client as NatsConnection
from nats.aio.msg import Msg

from core import nats_auth, topics
from core.events import Delivery
from core.mqtt.dynsec import DynsecClient
from core.roles import Role
from core.security import SERVICE_ACCOUNTS, broker_password
from core.settings import Settings

KICK_TIMEOUT = 1.0  # per node answer: a membership change is enforced within 2 s
CONNZ_LIMIT = 10_000  # connections of one user asked of a node
SYSTEM_CONNECT_TIMEOUT = 5.0  # the cluster unreachable: the change fails (its events are not sent) rather than wait


@runtime_checkable
class BrokerRights(Protocol):
    async def ensure_user(self, user_id: str, role: Role, version: int) -> None: ...
    async def apply(self, deliveries: Iterable[Delivery]) -> None: ...
    async def close(self) -> None: ...


class EmbeddedRights:
    """The embedded broker checks mqchat's rules itself: nothing to provision."""

    async def ensure_user(self, user_id: str, role: Role, version: int) -> None:
        return None

    async def apply(self, deliveries: Iterable[Delivery]) -> None:
        return None

    async def close(self) -> None:
        return None


def _acl(acltype: str, topic: str, allow: bool = True) -> dict[str, Any]:
    return {"acltype": acltype, "topic": topic, "allow": allow}


def _read(topic_filter: str, literal: bool = False) -> list[dict[str, Any]]:
    """Subscribe to and receive a topic (filter)."""
    return [_acl("subscribeLiteral" if literal else "subscribePattern", topic_filter), _acl("publishClientReceive", topic_filter)]


def _user_role(user_id: str) -> dict[str, Any]:
    return {
        "command": "createRole",
        "rolename": f"user-{user_id}",
        "acls": [_acl("publishClientSend", f"chat/users/{user_id}/outbox/#"), *_read(topics.user_inbox(user_id), literal=True)],
    }


def _client_roles(user_id: str, role: Role) -> list[dict[str, str]]:
    """The dynamic-security roles of a user's broker account: everyone's, their own, and their role's."""
    roles = [{"rolename": "users"}, {"rolename": f"user-{user_id}"}]
    if role is Role.AGENT:
        roles.append({"rolename": "agents"})
    if role is Role.ADMIN:
        roles += [{"rolename": "agents"}, {"rolename": "admins"}]
    return roles


def bootstrap_commands(secret: str) -> list[dict[str, Any]]:
    """Static roles and the service accounts; safe to send again (existing objects are kept)."""
    return [
        {"command": "setDefaultACLAccess", "acls": [
            {"acltype": "publishClientSend", "allow": False}, {"acltype": "publishClientReceive", "allow": False},
            {"acltype": "subscribe", "allow": False}, {"acltype": "unsubscribe", "allow": True}]},
        {"command": "createRole", "rolename": "users", "acls": [
            {**_acl("subscribeLiteral", "chat/presence/+", allow=False), "priority": 10},
            *_read(f"{topics.ROOT}/presence/+")]},
        {"command": "createRole", "rolename": "agents", "acls": _read(topics.AGENT_TICKETS, literal=True)},
        {"command": "createRole", "rolename": "admins", "acls": _read(f"{topics.ROOT}/#")},
        {"command": "createRole", "rolename": "service", "acls": [
            _acl("publishClientSend", f"{topics.ROOT}/#"), *_read(f"{topics.ROOT}/#"), _acl("subscribePattern", topics.SHARED_ACTIONS_FILTER)]},
        *[{"command": "createClient", "username": account, "password": broker_password(secret, account),
           "roles": [{"rolename": "service"}]} for account in sorted(SERVICE_ACCOUNTS)],
    ]  # fmt: skip


class MosquittoRights:
    """Keeps Mosquitto's dynamic-security clients and ACLs in step with users and memberships."""

    def __init__(self, settings: Settings, dynsec: DynsecClient | None = None) -> None:
        self._secret = settings.jwt_secret
        self.dynsec = dynsec or DynsecClient(settings)
        self._known: LRUCache[tuple[str, int], bool] = LRUCache(settings.known_broker_accounts)  # (user, token version) known provisioned

    async def ensure_user(self, user_id: str, role: Role, version: int) -> None:
        """The user's broker account with its derived password and role rights."""
        if self._known.get((user_id, version)):
            return
        password = broker_password(self._secret, user_id, version)
        await self.dynsec.run([
            _user_role(user_id),
            {"command": "createClient", "username": user_id, "password": password, "roles": _client_roles(user_id, role)},
        ])  # fmt: skip
        self._known[(user_id, version)] = True

    async def apply(self, deliveries: Iterable[Delivery]) -> None:
        """Grant and revoke conversation read rights, and cut revoked users, as the control notices say."""
        commands: list[dict[str, Any]] = []
        for delivery in deliveries:
            if delivery.topic == topics.SESSIONS_CONTROL:
                commands += self._revocation(json.loads(delivery.payload))
                continue
            if delivery.topic != topics.MEMBERSHIP_CONTROL:
                continue
            notice = json.loads(delivery.payload)
            conversation_topics = f"chat/conversations/{notice['conversation_id']}/#"
            for user_id in notice["added"]:
                commands.append(_user_role(user_id))  # a member who never logged in has no role yet
                commands += [{"command": "addRoleACL", "rolename": f"user-{user_id}", **acl} for acl in _read(conversation_topics)]
            for user_id in notice["removed"]:
                commands += [{"command": "removeRoleACL", "rolename": f"user-{user_id}", "acltype": acl["acltype"],
                              "topic": conversation_topics} for acl in _read(conversation_topics)]  # fmt: skip
        if commands:
            await self.dynsec.run(commands)

    async def close(self) -> None:
        await self.dynsec.close()

    def _revocation(self, notice: dict[str, Any]) -> list[dict[str, Any]]:
        """New password for the new token version; disabling kicks the connected devices."""
        user_id = notice["user_id"]
        password = broker_password(self._secret, user_id, notice["version"])
        commands: list[dict[str, Any]] = [
            {"command": "setClientPassword", "username": user_id, "password": password},
            {"command": "disableClient", "username": user_id},
        ]
        if "role" in notice:  # the role may have changed: an existing client keeps the roles it was created with
            commands.append({"command": "modifyClient", "username": user_id, "roles": _client_roles(user_id, Role(notice["role"]))})
        if notice["active"]:
            commands.append({"command": "enableClient", "username": user_id})
            self._known[(user_id, notice["version"])] = True
        return commands


class NatsRights:
    """A NATS cluster asks mqchat at every connection (broker.nats_callout), and a connection keeps the
    permissions it was given: when a membership ends or a user's tokens are revoked, the user's
    connections on every node are cut through the system account (`$SYS.REQ.SERVER.<id>.KICK`), and
    their reconnection is decided afresh. A member who is added keeps receiving everything durable
    on its inbox; it may subscribe to the conversation's topics from its next connection on."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._connection: NatsConnection | None = None

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
        connection = await self._connected()
        closed = 0
        for user_id in user_ids:
            for server_id, cid in await self._connections_of(connection, user_id):
                await connection.request(f"$SYS.REQ.SERVER.{server_id}.KICK", json.dumps({"cid": cid}).encode(), timeout=KICK_TIMEOUT)
                closed += 1
        return closed

    async def _connected(self) -> NatsConnection:
        if self._connection is None or self._connection.is_closed:
            self._connection = await nats_auth.connect(
                self._settings.nats_servers, nats_auth.SYSTEM_USER, self._settings.jwt_secret, "mqchat-rights", timeout=SYSTEM_CONNECT_TIMEOUT
            )
        return self._connection

    async def _connections_of(self, connection: NatsConnection, user_id: str) -> list[tuple[str, int]]:
        """(server id, connection id) of the user's open connections, asked of every node at once."""
        inbox = connection.new_inbox()
        answers: asyncio.Queue[bytes] = asyncio.Queue()

        async def received(message: Msg) -> None:
            answers.put_nowait(message.data)

        subscription = await connection.subscribe(inbox, cb=received)
        found: list[tuple[str, int]] = []
        try:
            query = {"user": user_id, "state": 0, "limit": CONNZ_LIMIT}
            await connection.publish("$SYS.REQ.SERVER.PING.CONNZ", json.dumps(query).encode(), reply=inbox)
            for _ in range(self._settings.nats_nodes):
                try:
                    answer = json.loads(await asyncio.wait_for(answers.get(), KICK_TIMEOUT))
                except TimeoutError:
                    break  # a node that does not answer is down: its clients are disconnected anyway
                server_id = answer["server"]["id"]
                found += [(server_id, client["cid"]) for client in (answer.get("data") or {}).get("connections") or []]
        finally:
            await subscription.unsubscribe()
        return found

    async def close(self) -> None:
        if self._connection is not None and not self._connection.is_closed:
            await self._connection.close()


def rights_for(settings: Settings) -> EmbeddedRights | MosquittoRights | NatsRights:
    """The rights keeper for the configured broker."""
    if settings.broker == "nats":
        return NatsRights(settings)
    return MosquittoRights(settings) if settings.broker == "external" else EmbeddedRights()
