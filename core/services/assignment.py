"""Agent capacity and choice: who gets the next ticket, claimed atomically.

Each agent's open (assigned + in_progress) tickets are counted in an AgentLoad
document. A claim is a compare-and-swap: `open_count` goes from the value just
read to one more, so concurrent assigners (API processes, bridge sweeps) can
never exceed the capacity nor all pile onto the agent that looked least loaded.
"""

from __future__ import annotations

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from core.clock import to_ms, utcnow
from core.documents import AgentLoad, Team, User
from core.roles import Role
from core.services.availability import TAKES_TICKETS
from core.services.lookup import get_by_id

MAX_CLAIM_ATTEMPTS = 50
_PRESENCE_RANK = {"online": 0, "away": 1}


async def _loads(agent_ids: list[str]) -> dict[str, AgentLoad]:
    loads = {load.id: load for load in await AgentLoad.find({"_id": {"$in": agent_ids}}).to_list()}
    for agent_id in agent_ids:
        if agent_id not in loads:
            try:
                await AgentLoad(id=agent_id).insert()
            except DuplicateKeyError:
                pass
            loads[agent_id] = AgentLoad(id=agent_id)
    return loads


async def candidates(capacity: int, team_id: str | None = None) -> list[tuple[str, int]]:
    """Available agents below capacity (of the team, if given), best first: online before away, fewest open,
    longest since assigned. Available: connected, and they chose "online" (not busy, not offline)."""
    found = await User.find(
        {"role": Role.AGENT.value, "active": True, "presence_status": {"$in": list(_PRESENCE_RANK)}}
    ).to_list()
    team = await get_by_id(Team, team_id) if team_id else None
    members = None if team_id is None else set(team.member_ids if team else ())
    agents = [a for a in found if a.availability == TAKES_TICKETS and (members is None or str(a.id) in members)]
    if not agents:
        return []
    loads = await _loads([str(agent.id) for agent in agents])
    ranked = sorted(
        agents,
        key=lambda a: (_PRESENCE_RANK[a.presence_status], loads[str(a.id)].open_count, loads[str(a.id)].last_assigned_ms),
    )
    return [(str(a.id), loads[str(a.id)].open_count) for a in ranked if loads[str(a.id)].open_count < capacity]


async def claim_slot(agent_id: str, observed: int) -> bool:
    """Take one slot of the agent if its load is still `observed`."""
    claimed = await AgentLoad.get_pymongo_collection().find_one_and_update(
        {"_id": agent_id, "open_count": observed},
        {"$inc": {"open_count": 1}, "$set": {"last_assigned_ms": to_ms(utcnow())}},
        return_document=ReturnDocument.AFTER,
    )
    return claimed is not None


async def claim_best(capacity: int, only: str | None = None, team_id: str | None = None) -> str | None:
    """Claim a slot of the best available agent of the team (or of `only`), retrying on contention; the agent id or None."""
    for _ in range(MAX_CLAIM_ATTEMPTS):
        ranked = await candidates(capacity, None if only else team_id)
        if only is not None:
            ranked = [(agent_id, load) for agent_id, load in ranked if agent_id == only] or await _below(only, capacity)
        if not ranked:
            return None
        agent_id, observed = ranked[0]
        if await claim_slot(agent_id, observed):
            return agent_id
    return None


async def _below(agent_id: str, capacity: int) -> list[tuple[str, int]]:
    """An agent who is not "available" (e.g. offline) but may still take a ticket they ask for."""
    load = (await _loads([agent_id]))[agent_id]
    return [(agent_id, load.open_count)] if load.open_count < capacity else []


async def add_load(agent_id: str, delta: int) -> None:
    """Change an agent's load without a capacity check (release, reopen, an admin's explicit choice)."""
    await _loads([agent_id])
    await AgentLoad.get_pymongo_collection().update_one({"_id": agent_id}, {"$inc": {"open_count": delta}})
