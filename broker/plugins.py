"""amqtt plugins that hand authentication and topic decisions to mqchat's Authenticator and AccessPolicy.

amqtt combines plugin answers with all(): both plugins always return an explicit bool.
The connection's Principal is kept on the amqtt Session as `session.principal`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from amqtt.contexts import Action as AmqttAction
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from core.acl import Action, Principal

log = logging.getLogger("mqchat.broker.acl")

_ACTIONS = {
    AmqttAction.PUBLISH: Action.PUBLISH,
    AmqttAction.SUBSCRIBE: Action.SUBSCRIBE,
    AmqttAction.RECEIVE: Action.RECEIVE,
}


def session_principal(session: Session | None) -> Principal | None:
    """The Principal authenticated for this session, if any."""
    principal = getattr(session, "principal", None)
    return principal if isinstance(principal, Principal) else None


class JwtAuthPlugin(BaseAuthPlugin):
    """Authenticates CONNECTs with broker.authentication.Authenticator."""

    @dataclass
    class Config:
        authenticator: Any

    async def authenticate(self, *, session: Session) -> bool:
        try:
            principal = await self.config.authenticator.authenticate(
                session.username, session.password, session.client_id, session.will_topic if session.will_flag else None
            )
        except Exception:
            log.exception("mqtt.auth_error")
            principal = None
        session.principal = principal
        return principal is not None


class TopicAclPlugin(BaseTopicPlugin):
    """Authorizes publish, subscribe and every delivery with core.acl.AccessPolicy."""

    @dataclass
    class Config:
        policy: Any

    async def topic_filtering(
        self, *, session: Session | None = None, topic: str | None = None, action: AmqttAction | None = None
    ) -> bool:
        principal = session_principal(session)
        if principal is None or not topic or action not in _ACTIONS:
            return False
        try:
            allowed: bool = await self.config.policy.allows(principal, _ACTIONS[action], topic)
        except Exception:
            log.exception("mqtt.acl_error", extra={"topic": topic})
            return False
        if not allowed and action is not AmqttAction.RECEIVE:
            log.info("mqtt.denied", extra={"action": str(action), "topic": topic, "username": principal.name})
        return allowed
