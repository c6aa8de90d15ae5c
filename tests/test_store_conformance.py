"""Every query and update shape mqchat relies on, pinned against the store in use.

Runs against the embedded nx-27017 in CI and is meant to pass unchanged against a
real MongoDB (`MONGODB_URI=... pytest tests/test_store_conformance.py`).
See docs/store.md for the nx-27017 gaps these shapes avoid.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId
from pymongo import ASCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from tests.support import System


@pytest.fixture
async def db(system: System) -> AsyncIterator[AsyncDatabase]:
    client: AsyncMongoClient = AsyncMongoClient(system.store_uri, tz_aware=True)
    name = f"conformance_{secrets.token_hex(4)}"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()


async def test_unique_index_refuses_duplicates(db: AsyncDatabase) -> None:
    await db.users.create_indexes([IndexModel([("email", ASCENDING)], name="users_email_unique", unique=True)])
    await db.users.insert_one({"email": "a@example.com"})
    with pytest.raises(DuplicateKeyError):
        await db.users.insert_one({"email": "a@example.com"})
    assert await db.users.count_documents({}) == 1


async def test_lookup_by_object_id_and_field(db: AsyncDatabase) -> None:
    inserted = await db.users.insert_one({"email": "b@example.com", "active": True})
    assert (await db.users.find_one({"_id": ObjectId(str(inserted.inserted_id))}))["email"] == "b@example.com"
    assert (await db.users.find_one({"email": "b@example.com"}))["_id"] == inserted.inserted_id
    assert await db.users.find_one({"email": "missing@example.com"}) is None


async def test_prefix_search_with_escaped_regex_role_and_sort(db: AsyncDatabase) -> None:
    await db.users.insert_many(
        [
            {"username": "Zed", "email": "zed@example.com", "role": "customer", "active": True},
            {"username": "anna", "email": "anna@example.com", "role": "customer", "active": True},
            {"username": "Andy", "email": "andy@example.com", "role": "agent", "active": True},
            {"username": "a.b", "email": "ab@example.com", "role": "customer", "active": True},
            {"username": "Anton", "email": "anton@example.com", "role": "customer", "active": False},
        ]
    )
    query = {
        "active": True,
        "role": "customer",
        "$or": [{"username": {"$regex": "^an", "$options": "i"}}, {"email": {"$regex": "^an"}}],
    }
    found = await db.users.find(query).sort("username").limit(10).to_list()
    assert [u["username"] for u in found] == ["anna"]
    escaped = await db.users.find({"username": {"$regex": r"^a\.", "$options": "i"}}).to_list()
    assert [u["username"] for u in escaped] == ["a.b"]
    limited = await db.users.find({"active": True}).sort("username").limit(2).to_list()
    assert [u["username"] for u in limited] == ["Andy", "Zed"]


async def test_datetimes_round_trip_and_compare(db: AsyncDatabase) -> None:
    now = datetime.now(UTC).replace(microsecond=123000)
    await db.events.insert_many([{"n": 1, "at": now - timedelta(hours=2)}, {"n": 2, "at": now}])
    stored = await db.events.find_one({"n": 2})
    assert stored["at"] == now and stored["at"].tzinfo is not None
    recent = await db.events.find({"at": {"$gt": now - timedelta(hours=1)}}).to_list()
    assert [e["n"] for e in recent] == [2]


async def test_replace_keeps_types(db: AsyncDatabase) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    inserted = await db.users.insert_one({"email": "c@example.com", "active": True, "last_seen": None})
    await db.users.replace_one({"_id": inserted.inserted_id}, {"email": "c@example.com", "active": False, "last_seen": now})
    stored = await db.users.find_one({"_id": inserted.inserted_id})
    assert stored["active"] is False and stored["last_seen"] == now
