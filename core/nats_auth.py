"""NATS auth callout, store-free: subjects, permissions and the signed answers (nkeys + nats-jwt).

A NATS cluster asks mqchat about every connection (MQTT, MQTT over WebSocket or
NATS) on `$SYS.REQ.USER.AUTH`, with a JWT the server signed. mqchat answers with an
`authorization_response` JWT carrying a user JWT whose permissions are the
contract's topic rules (core.acl) turned into NATS subjects:

- MQTT topic `a/b/c` is subject `a.b.c`; a `.` inside a level becomes `//`;
  filter `a/b/#` needs `a.b` and `a.b.>`;
- permissions are fixed for the life of a connection: a membership that ends or a
  token that is revoked cuts the user's connections (core.nats_rights.NatsRights),
  and their reconnection is asked again.

Both JWTs are signed with the issuer account key, derived from JWT_SECRET so every
node's config and every callout service agree on it without a key file.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import nats
import nkeys
from nats.aio.client import Client as NatsConnection
from nats.errors import NoServersError
from nats_jwt.nkeys_ext import keypair_from_pubkey
from nats_jwt.v2.claims import ClaimsData, GenericFields, _claim_data_config
from nats_jwt.v2.types import Permission
from nats_jwt.v2.user_claims import UserClaims

from core import topics
from core.acl import Principal
from core.roles import STAFF_ROLES, Role

CHAT_ACCOUNT = "CHAT"  # every MQTT client and mqchat's services
AUTH_ACCOUNT = "AUTH"  # the callout service
SYSTEM_ACCOUNT = "SYS"  # mqchat's services cut connections through it
AUTH_USER = "mqchat-auth"
SYSTEM_USER = "mqchat-system"
CALLOUT_SUBJECT = "$SYS.REQ.USER.AUTH"
CONNECTION_TYPES = ("MQTT", "MQTT_WS")  # mqchat's clients and services speak MQTT...
QUEUE_CONNECTION_TYPES = ("STANDARD",)  # ...except the bridge workers' native connection to the request queue

# The request queue (docs/broker.md): nats-server stores every MQTT QoS 1 publish in its `$MQTT_msgs`
# stream (interest retention, R3) under `$MQTT.msgs.<subject>` *before* it sends the PUBACK; each bridge
# worker has a durable pull consumer of its own on the outbox actions there, and handles its share.
QUEUE_STREAM = "$MQTT_msgs"
QUEUE_SUBJECT_PREFIX = "$MQTT.msgs."
QUEUE_SHARED_CONSUMER = "mqchat-bridge"  # the one consumer all workers shared before conversation affinity: retired
QUEUE_ACCOUNT = "mqchat-bridge"  # the service account whose native connection may consume it
QUEUE_MAX_WORKERS = 16  # bridge workers a NATS cluster may run (their consumers are named in the account's grant)


class InvalidRequest(Exception):
    """An authorization request that is not a well-formed JWT signed by a NATS server."""


def derived_secret(secret: str, purpose: str) -> bytes:
    """32 bytes for one purpose, derived from JWT_SECRET (never stored)."""
    return hmac.new(secret.encode(), f"nats:{purpose}".encode(), hashlib.sha256).digest()


def internal_password(secret: str, user: str) -> str:
    """The password of the callout service's and the system user's NATS connections."""
    return base64.urlsafe_b64encode(derived_secret(secret, f"password:{user}")).decode().rstrip("=")


def issuer_keys(secret: str) -> nkeys.KeyPair:
    """The account key pair that signs every authorization answer."""
    return nkeys.from_seed(nkeys.encode_seed(derived_secret(secret, "issuer"), nkeys.PREFIX_BYTE_ACCOUNT))


def subject(topic: str) -> str:
    """The NATS subject of an MQTT topic or filter without empty levels (`.` in a level becomes `//`)."""
    return "".join("." if c == "/" else "//" if c == "." else ">" if c == "#" else c for c in topic).replace("+", "*")


def topic_of(nats_subject: str) -> str:
    """The MQTT topic of a subject without wildcards (the inverse of `subject`)."""
    return nats_subject.replace("//", "\0").replace(".", "/").replace("\0", ".")


def filter_subjects(topic_filter: str) -> list[str]:
    """The subjects a client must be allowed to subscribe to for an MQTT filter (`a/#` is `a` and `a.>`)."""
    if topic_filter.endswith("/#"):
        return [subject(topic_filter[:-2]), subject(topic_filter)]
    return [subject(topic_filter)]


@dataclass(frozen=True)
class Grant:
    """What a connection may publish and subscribe to, as NATS subjects."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    publish_deny: tuple[str, ...] = ()


SERVICE_GRANT = Grant(publish=(topics.ROOT, f"{topics.ROOT}.>"), subscribe=(topics.ROOT, f"{topics.ROOT}.>"))
def queue_consumer(index: int) -> str:
    """The durable consumer of bridge worker `index` (0-based, bridge.affinity.Share), e.g. `mqchat-bridge-worker-1`."""
    return f"{QUEUE_ACCOUNT}-worker-{index + 1}"


def _consumer_api(consumer: str) -> tuple[str, ...]:
    """A worker consumer's API: CREATE, INFO, RESET, DELETE (`CONSUMER.<op>`), DURABLE.CREATE and MSG.NEXT
    (`CONSUMER.<op>.<op>`), and its acknowledgements."""
    name = f"{QUEUE_STREAM}.{consumer}"
    return f"$JS.API.CONSUMER.*.{name}", f"$JS.API.CONSUMER.*.*.{name}", f"$JS.ACK.{name}.>"


# The bridge's native connection: the stream's info (its last sequence), the workers' consumers (bridge.queue_layout:
# created, reset, read, pulled from, acknowledged, retired) and the retired shared one; it hears QoS 0 requests.
QUEUE_GRANT = Grant(
    publish=(f"$JS.API.STREAM.INFO.{QUEUE_STREAM}",
             f"$JS.API.CONSUMER.INFO.{QUEUE_STREAM}.{QUEUE_SHARED_CONSUMER}",
             f"$JS.API.CONSUMER.DELETE.{QUEUE_STREAM}.{QUEUE_SHARED_CONSUMER}",
             *(api for index in range(QUEUE_MAX_WORKERS) for api in _consumer_api(queue_consumer(index)))),
    subscribe=("_INBOX.>", subject(topics.ACTIONS_FILTER)),  # and QoS 0 requests, which nats-server does not store
)  # fmt: skip


def queue_filter() -> str:
    """The queue consumers' filter: the outbox actions (`chat/users/+/outbox/+`; device presence is not work to share)."""
    return QUEUE_SUBJECT_PREFIX + subject(topics.ACTIONS_FILTER)


def grant_for(principal: Principal, conversation_ids: Iterable[str]) -> Grant:
    """The contract's topic rules (core.acl.AccessPolicy) for one connection, given its memberships."""
    if principal.is_service:
        return SERVICE_GRANT
    uid = principal.name
    publish = (subject(topics.user_outbox(uid, "+")), subject(topics.device_presence(uid, principal.client_id)))
    if principal.role is Role.ADMIN:
        return Grant(publish, (topics.ROOT, f"{topics.ROOT}.>"), (subject(f"chat/users/{uid}/outbox/") + "/",))
    subscribe = [subject(topics.user_inbox(uid)), subject(f"{topics.ROOT}/presence/+")]
    if principal.role in STAFF_ROLES:
        subscribe.append(subject(topics.AGENT_TICKETS))
    for conversation_id in conversation_ids:
        subscribe += filter_subjects(f"{topics.ROOT}/conversations/{conversation_id}/#")
    return Grant(publish, tuple(subscribe), (subject(f"chat/users/{uid}/outbox/") + "/",))


@dataclass(frozen=True)
class AuthRequest:
    """What a server asks about one connection."""

    server_id: str
    user_nkey: str
    username: str
    password: str
    client_id: str  # the MQTT client id, or a NATS connection's name
    client_type: str  # "mqtt", "websocket", "nats", ...


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def decode_request(token: bytes) -> AuthRequest:
    """Verify a server's authorization request JWT (signed by its own server key) and read it."""
    try:
        header, payload, signature = token.decode().split(".")
        claims = json.loads(_b64decode(payload))
        issuer = claims["iss"]
        if not issuer.startswith("N"):
            raise InvalidRequest("not signed by a server key")
        keypair_from_pubkey(issuer.encode()).verify(f"{header}.{payload}".encode(), _b64decode(signature))
        request = claims["nats"]
        info, options = request.get("client_info", {}), request.get("connect_opts", {})
        return AuthRequest(
            server_id=request["server_id"]["id"], user_nkey=request["user_nkey"], username=options.get("user", ""),
            password=options.get("pass", ""), client_id=info.get("mqtt_id") or info.get("name", ""), client_type=info.get("type", ""),
        )  # fmt: skip
    except InvalidRequest:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, nkeys.ErrInvalidSignature) as exc:
        raise InvalidRequest(f"{type(exc).__name__}: {exc}") from None


@dataclass
class _AuthorizationResponse(GenericFields):
    jwt: str = field(default="", metadata=_claim_data_config)
    error: str = field(default="", metadata=_claim_data_config)


@dataclass
class _AuthorizationResponseClaims(ClaimsData):
    nats: _AuthorizationResponse = field(default_factory=_AuthorizationResponse)

    def update_version(self) -> None:
        self.nats.version = 2


def _response(issuer: nkeys.KeyPair, request: AuthRequest, **answer: str) -> bytes:
    claims = _AuthorizationResponseClaims(sub=request.user_nkey, name="", aud=request.server_id)
    claims.nats = _AuthorizationResponse(type="authorization_response", version=2, **answer)
    return claims.encode(issuer, claims).encode()


def allow(
    issuer: nkeys.KeyPair, request: AuthRequest, name: str, grant: Grant, connection_types: tuple[str, ...] = CONNECTION_TYPES
) -> bytes:
    """The signed answer placing the connection in the chat account with `grant`."""
    user = UserClaims(sub=request.user_nkey, name=name, aud=CHAT_ACCOUNT)
    user.nats.pub = Permission(allow=list(grant.publish), deny=list(grant.publish_deny))
    user.nats.sub = Permission(allow=list(grant.subscribe))
    user.nats.allowed_connection_types = list(connection_types)
    return _response(issuer, request, jwt=user.encode(issuer))


def refuse(issuer: nkeys.KeyPair, request: AuthRequest, reason: str) -> bytes:
    """The signed answer refusing the connection."""
    return _response(issuer, request, error=reason)


async def connect(servers: list[str], user: str, secret: str, name: str, timeout: float = 30.0) -> NatsConnection:
    """A NATS connection of one of mqchat's internal users, retried until a node answers (at most `timeout`)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await nats.connect(
                servers, user=user, password=internal_password(secret, user), name=name, connect_timeout=2,
                allow_reconnect=True, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
            )  # fmt: skip
        except (OSError, TimeoutError, NoServersError):
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)


def describe_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified (tests and logs)."""
    return json.loads(_b64decode(token.split(".")[1]))
