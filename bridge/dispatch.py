"""Routes each outbox request to its handler by the action in the topic."""

from __future__ import annotations

import logging

import aiomqtt

from core import topics

log = logging.getLogger("mqchat.bridge.dispatch")


class Dispatcher:
    """Decodes the topic of an outbox request and hands it to the handler of its action."""

    async def handle(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        """Process one delivery from `chat/users/+/outbox/#`."""
        parsed = topics.parse(message.topic.value)
        if parsed is None:
            log.warning("bridge.unroutable", extra={"topic": message.topic.value})
            return
        log.info("bridge.request", extra={"user_id": parsed.owner, "action": parsed.rest, "kind": parsed.kind})
