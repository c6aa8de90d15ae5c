"""The embedded broker's Session: amqtt's, without what made an idle session cost 26 KB.

amqtt 0.12.1 gives every Session a `transitions.Machine` for its three states (13 KB
and 0.23 ms of CPU per CONNECT: states, events, transitions and their callback lists,
each session's own) and two asyncio.Queues (3 KB each, empty). Here the states are
one attribute with the same interface (`state`, `is_connected()`, `connect()`,
`disconnect()`, the same enter callbacks), the queues are broker.lean.LeanQueues and
the in-flight tables plain dicts (insertion-ordered too). The Principal and the
remembered RECEIVE answers (broker.plugins, broker.decisions) have slots, so that
adding them keeps the instance dict's keys shared with every other session's.
"""

from __future__ import annotations

from typing import Any

from amqtt.session import Session
from transitions import MachineError

from broker.lean import LeanQueue

NEW, CONNECTED, DISCONNECTED = "new", "connected", "disconnected"


class SessionState:
    """A session's state machine as amqtt uses it: new -> connected <-> disconnected."""

    __slots__ = ("_session", "state")

    def __init__(self, session: Session) -> None:
        self._session = session
        self.state = NEW

    def is_connected(self) -> bool:
        return self.state == CONNECTED

    def is_disconnected(self) -> bool:
        return self.state == DISCONNECTED

    def connect(self) -> None:
        """new or disconnected -> connected (a connected session cannot connect again, as with amqtt's Machine)."""
        if self.state == CONNECTED:
            raise MachineError(f"Can't trigger event connect from state {CONNECTED}!")
        self.state = CONNECTED
        self._session._on_enter_connected()  # noqa: SLF001 - amqtt's enter callback

    def disconnect(self) -> None:
        """Any state -> disconnected (re-entered, as amqtt's reflexive transition)."""
        self.state = DISCONNECTED
        self._session._on_enter_disconnected()  # noqa: SLF001 - amqtt's enter callback


class LeanSession(Session):
    """amqtt's Session with a SessionState, LeanQueues and plain dicts."""

    __slots__ = ("principal", "receive_decisions")

    def __init__(self) -> None:
        super().__init__()
        self.inflight_out: dict[int, Any] = {}  # type: ignore[assignment]
        self.inflight_in: dict[int, Any] = {}  # type: ignore[assignment]
        self.retained_messages: LeanQueue[Any] = LeanQueue()  # type: ignore[assignment]
        self.delivered_message_queue: LeanQueue[Any] = LeanQueue()  # type: ignore[assignment]
        self.principal: Any = None
        self.receive_decisions: Any = None

    def _init_states(self) -> None:
        self.transitions = SessionState(self)  # type: ignore[assignment]
