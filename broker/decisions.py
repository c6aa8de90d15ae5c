"""RECEIVE decisions remembered per session and topic, so a delivery is usually not re-decided.

Every delivery asks whether its subscriber may receive the topic. The answer depends
only on the session's Principal and the topic, except on conversation topics, where
it also depends on membership. So each session keeps its answers by topic (for the
Principal it holds: a resumed session may bring a new one); an answer about a
conversation topic is valid only while no membership notice arrived since it was
decided (`membership_changed` moves a generation on) and at most `ttl` seconds, the
bound the membership cache itself keeps if a notice were ever lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core import topics
from core.acl import Principal

MAX_TOPICS_PER_SESSION = 256  # beyond this a session's answers start over (e.g. a client of many presence topics)
_CONVERSATIONS = f"{topics.ROOT}/conversations/"


@dataclass(slots=True)
class _SessionDecisions:
    principal: Principal
    by_topic: dict[str, tuple[bool, int, float]] = field(default_factory=dict)  # topic -> (allowed, generation, decided at)


class ReceiveDecisions:
    """Remembered RECEIVE answers, kept on each amqtt Session as `session.receive_decisions`."""

    def __init__(self, ttl: float, timer: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._timer = timer
        self._generation = 0

    def membership_changed(self) -> None:
        """A membership notice arrived: answers about conversation topics decided before it no longer hold."""
        self._generation += 1

    def generation(self) -> int:
        """Read before deciding; pass to `remember`, so an answer decided across a notice is not kept as current."""
        return self._generation

    def recall(self, session: Any, principal: Principal, topic: str) -> bool | None:
        """The remembered answer, or None when it must be decided."""
        decisions = getattr(session, "receive_decisions", None)
        if decisions is None or decisions.principal is not principal:
            return None
        entry = decisions.by_topic.get(topic)
        if entry is None:
            return None
        allowed, generation, decided_at = entry
        if topic.startswith(_CONVERSATIONS) and (generation != self._generation or self._timer() - decided_at > self._ttl):
            return None
        return allowed

    def remember(self, session: Any, principal: Principal, topic: str, allowed: bool, generation: int) -> None:
        """Keep an answer decided with `generation` read before deciding."""
        decisions = getattr(session, "receive_decisions", None)
        if decisions is None or decisions.principal is not principal or len(decisions.by_topic) >= MAX_TOPICS_PER_SESSION:
            decisions = _SessionDecisions(principal)
            session.receive_decisions = decisions
        decisions.by_topic[topic] = (allowed, generation, self._timer())
