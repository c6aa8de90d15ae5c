"""The NATS auth callout service: mqchat decides who connects to the cluster and what they may do.

Every node asks on `$SYS.REQ.USER.AUTH` (the cluster routes the request to this
service wherever it is connected); the credentials are checked exactly as on the
embedded broker (broker.authentication.Authenticator: user id + access token, or
a service account + service token; the client id must start with the username),
and the answer carries the connection's permissions (core.nats_auth.grant_for)
with the user's current memberships. Only MQTT connections get in, except the
bridge workers' native NATS connection (named `mqchat-bridge-...`), which may
only consume the request queue (core.nats_auth.QUEUE_GRANT).
"""

from __future__ import annotations

import asyncio
import logging

from nats.aio.client import Client as NatsConnection
from nats.aio.msg import Msg

from broker.authentication import Authenticator
from core.documents import Conversation
from core.nats_auth import (
    AUTH_USER,
    CALLOUT_SUBJECT,
    QUEUE_ACCOUNT,
    QUEUE_CONNECTION_TYPES,
    QUEUE_GRANT,
    AuthRequest,
    InvalidRequest,
    allow,
    connect,
    decode_request,
    grant_for,
    issuer_keys,
    refuse,
)
from core.settings import Settings

log = logging.getLogger("mqchat.nats.callout")

MAX_CONCURRENT_ANSWERS = 256  # requests being decided at once; more are left unanswered (refused, retried by clients)


async def memberships(user_id: str, limit: int) -> list[str]:
    """Ids of at most `limit` conversations the user belongs to now, the most recently active first.

    Every subject granted makes the user's JWT ~50 bytes longer, and an answer must fit in one
    NATS message (1 MB by default): a user in thousands of conversations could not connect at
    all. The conversations beyond the limit still reach the user through its inbox, which
    carries every event a member gets; only their conversation topics are not granted.
    """
    cursor = Conversation.get_pymongo_collection().find({"participant_ids": user_id}, {"_id": 1})
    return [str(document["_id"]) async for document in cursor.sort("updated_ms", -1).limit(limit)]


class CalloutService:
    """Answers the cluster's authorization requests until closed."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._issuer = issuer_keys(settings.jwt_secret)
        self._authenticator = Authenticator(settings.jwt_secret)
        self._connection: NatsConnection | None = None
        self._answering: set[asyncio.Task[None]] = set()

    async def start(self, servers: list[str]) -> None:
        """Connect to the cluster (any node; it reconnects to the others) and subscribe to the callout subject."""
        self._connection = await connect(servers, AUTH_USER, self._settings.jwt_secret, "mqchat-auth-callout")
        await self._connection.subscribe(CALLOUT_SUBJECT, queue="mqchat-auth", cb=self._answer)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.drain()
        await asyncio.gather(*self._answering, return_exceptions=True)

    async def _answer(self, message: Msg) -> None:
        """Answer each request in a task of its own: nats-py runs a subscription's callbacks one at a time,
        and a reconnection storm (a node died) must not queue every CONNECT behind the store lookups of the others."""
        if len(self._answering) >= MAX_CONCURRENT_ANSWERS:
            log.warning("nats.callout_busy", extra={"answering": len(self._answering)})
            return  # no answer: the server refuses the connection when its request times out, and the client retries
        task = asyncio.create_task(self._respond(message))
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)

    async def _respond(self, message: Msg) -> None:
        try:
            request = decode_request(message.data)
        except InvalidRequest as exc:
            log.warning("nats.callout_invalid_request", extra={"cause": str(exc)})
            return
        try:
            answer = await self.decide(request)
        except Exception as exc:  # noqa: BLE001 - the store failed: the server refuses on time-out, the client retries
            log.error("nats.callout_failed", extra={"cause": f"{type(exc).__name__}: {exc}", "username": request.username})
            return
        await message.respond(answer)

    async def decide(self, request: AuthRequest) -> bytes:
        """The signed answer for one request: allowed with its permissions, or refused with a reason."""
        if request.client_type not in ("mqtt", "nats"):
            return refuse(self._issuer, request, "only MQTT clients may connect")
        principal = await self._authenticator.authenticate(request.username, request.password, request.client_id, None)
        if principal is None:
            return refuse(self._issuer, request, "not authorized")
        if request.client_type == "nats":  # only the bridge workers' connection to the request queue
            if principal.name != QUEUE_ACCOUNT:
                return refuse(self._issuer, request, "only MQTT clients may connect")
            return allow(self._issuer, request, principal.name, QUEUE_GRANT, QUEUE_CONNECTION_TYPES)
        conversations = [] if principal.is_service else await memberships(principal.name, self._settings.nats_granted_conversations)
        return allow(self._issuer, request, principal.name, grant_for(principal, conversations))
