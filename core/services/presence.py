"""Stored presence: each user's aggregate status and `last_seen`, as the bridge's presence tracker decides them."""

from __future__ import annotations

from bson import ObjectId

from core.documents import User

PRESENT = ("online", "away")


async def record(user_id: str, status: str, at_ms: int) -> None:
    """Store `status` as the user's presence, seen at `at_ms`."""
    await User.get_pymongo_collection().update_one(
        {"_id": ObjectId(user_id)}, {"$set": {"presence_status": status, "last_seen_ms": at_ms}}
    )


async def present_user_ids() -> list[str]:
    """Ids of the users the store shows online or away."""
    cursor = User.get_pymongo_collection().find({"presence_status": {"$in": list(PRESENT)}}, {"_id": 1})
    return [str(doc["_id"]) async for doc in cursor]
