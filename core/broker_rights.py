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

A NATS cluster asks mqchat at every connection instead (`core.nats_rights.NatsRights`):
only connections whose rights shrank are cut.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

from cachetools import LRUCache

from core import topics
from core.events import Delivery
from core.mqtt.dynsec import DynsecClient
from core.roles import Role
from core.security import SERVICE_ACCOUNTS, broker_password
from core.settings import Settings


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


def rights_for(settings: Settings) -> BrokerRights:
    """The rights keeper for the configured broker."""
    if settings.broker == "nats":
        from core.nats_rights import NatsRights  # the nats client (~130 ms to import) only where it is used

        return NatsRights(settings)
    return MosquittoRights(settings) if settings.broker == "external" else EmbeddedRights()
