"""Build and run the embedded broker: TCP and WebSocket listeners with mqchat's plugins."""

from __future__ import annotations

import asyncio
import logging

from broker.authentication import Authenticator
from broker.decisions import ReceiveDecisions
from broker.secure_broker import SecureBroker
from core.acl import AccessPolicy
from core.db import init_db
from core.services.conversation_cache import ConversationCache
from core.settings import Settings

log = logging.getLogger("mqchat.broker")


def build_broker(settings: Settings) -> SecureBroker:
    """A SecureBroker listening on `MQCHAT_MQTT_PORT` (TCP) and `MQCHAT_WS_PORT` (WebSocket, path /mqtt)."""
    host = settings.bind_host
    membership = ConversationCache(settings.conversation_cache_ttl, settings.conversation_cache_size)
    decisions = ReceiveDecisions(settings.conversation_cache_ttl)
    config = {
        "listeners": {
            "default": {"type": "tcp", "bind": f"{host}:{settings.mqtt_port}"},
            "ws": {"type": "ws", "bind": f"{host}:{settings.ws_port}"},
        },
        "plugins": {
            "broker.plugins.JwtAuthPlugin": {"authenticator": Authenticator(settings.jwt_secret)},
            "broker.plugins.TopicAclPlugin": {"policy": AccessPolicy(membership.is_member), "decisions": decisions},
            "broker.plugins.MembershipControlPlugin": {"cache": membership, "decisions": decisions},
            "broker.plugins.PresenceJanitorPlugin": {},
            "broker.plugins.SessionControlPlugin": {},
            "broker.plugins.MetricsPlugin": {},
        },
    }
    return SecureBroker(
        config,
        connect_timeout=settings.connect_timeout_ms / 1000,
        pending_per_address=settings.pending_connections_per_address,
        max_inflight=settings.max_inflight,
        high_water=settings.backlog_high_water,
        backlog_limit=settings.backlog_limit,
    )


async def run_broker(settings: Settings, stop: asyncio.Event) -> None:
    """Serve MQTT until `stop` is set."""
    mongo = await init_db(settings)
    broker = build_broker(settings)
    try:
        await broker.start()
        log.info("broker.started", extra={"mqtt_port": settings.mqtt_port, "ws_port": settings.ws_port})
        await stop.wait()
    finally:
        await broker.shutdown()
        await mongo.close()
        log.info("broker.stopped")
