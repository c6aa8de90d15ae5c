"""Staff availability: what an agent chose (online | busy | offline) combined with whether a device is connected.

An agent is offline whenever no device of theirs is connected, whatever they
chose; otherwise they are what they chose. Only "online" agents get new tickets
automatically; "busy" ones keep the tickets they have.
"""

from __future__ import annotations

from core import events
from core.documents import User
from core.errors import Forbidden
from core.events import Delivery
from core.payloads import AgentStatusOut
from core.roles import STAFF_ROLES
from core.services.lookup import get_by_id
from core.services.presence import PRESENT

TAKES_TICKETS = "online"


def effective(user: User) -> str:
    """Offline without a connected device, else the chosen availability."""
    return user.availability if user.presence_status in PRESENT else "offline"


def status_out(user: User) -> AgentStatusOut:
    """The choice, the connection state and the result."""
    return AgentStatusOut(user_id=str(user.id), username=user.username, availability=user.availability,
                          presence=user.presence_status, status=effective(user))  # fmt: skip


async def set_availability(user: User, choice: str) -> tuple[AgentStatusOut, list[Delivery]]:
    """Store a staff member's choice; `agent.availability` to the desk when it changed."""
    if user.role not in STAFF_ROLES:
        raise Forbidden("only agents and admins have an availability")
    await User.get_pymongo_collection().update_one({"_id": user.id}, {"$set": {"availability": choice}})
    changed = choice != user.availability
    user.availability = choice
    view = status_out(user)
    return view, events.availability_event(view) if changed else []


async def presence_changed(user_id: str) -> list[Delivery]:
    """After a staff member's connections changed: their availability as the desk now sees it."""
    user = await get_by_id(User, user_id)
    if user is None or user.role not in STAFF_ROLES:
        return []
    return events.availability_event(status_out(user))
