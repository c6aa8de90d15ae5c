"""Named sequences (ticket numbers, the audit log's order): one atomic `$inc` each."""

from __future__ import annotations

from pymongo import ReturnDocument

from core.documents import Counter


async def next_value(name: str) -> int:
    """The next number of the sequence `name` (1, 2, 3...); concurrent callers never get the same one."""
    counter = await Counter.get_pymongo_collection().find_one_and_update(
        {"_id": name}, {"$inc": {"value": 1}}, upsert=True, return_document=ReturnDocument.AFTER
    )
    return int(counter["value"])
