"""The desk's staff as its admins see them: each agent's availability (core.services.availability) and load.

The load is the count auto-assignment compares with MQCHAT_AGENT_CAPACITY: the
agent's assigned and in-progress tickets (core.services.assignment's AgentLoad).
"""

from __future__ import annotations

import re

import msgspec
from bson import ObjectId

from core.documents import AgentLoad, Team, User
from core.payloads import AgentOut
from core.roles import STAFF_ROLES
from core.services import availability, teams

MAX_LISTED = 200


async def roster(team_id: str | None, query: str | None, limit: int) -> list[AgentOut]:
    """Active agents and admins (of the team, if given; whose name starts with `query`), by name; at most `limit`."""
    conditions: dict[str, object] = {"active": True, "role": {"$in": [role.value for role in STAFF_ROLES]}}
    if team_id is not None:
        team = await teams.get_team(team_id)
        conditions["_id"] = {"$in": [ObjectId(uid) for uid in team.member_ids]}
    if query and query.strip():
        conditions["username"] = {"$regex": "^" + re.escape(query.strip().lower()), "$options": "i"}
    staff = await User.find(conditions).sort("username").limit(max(1, min(limit, MAX_LISTED))).to_list()
    ids = [str(user.id) for user in staff]
    loads = {load.id: load.open_count for load in await AgentLoad.find({"_id": {"$in": ids}}).to_list()}
    memberships: dict[str, list[str]] = {}
    for team in await Team.find_all().sort([("name_key", 1)]).to_list():  # a shop has a handful of teams
        for uid in team.member_ids:
            memberships.setdefault(uid, []).append(str(team.id))
    return [
        AgentOut(**msgspec.structs.asdict(availability.status_out(user)), role=user.role.value,
                 open_tickets=max(0, loads.get(str(user.id), 0)), team_ids=memberships.get(str(user.id), []))
        for user in staff
    ]  # fmt: skip
