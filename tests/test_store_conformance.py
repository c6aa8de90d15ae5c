"""Every query and update shape mqchat relies on, pinned against the store in use.

Runs against the embedded nx-27017 in CI and is meant to pass unchanged against a
real MongoDB (`MONGODB_URI=... pytest tests/test_store_conformance.py`).
See docs/store.md for the nx-27017 gaps these shapes avoid.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId
from pymongo import ASCENDING, AsyncMongoClient, IndexModel, UpdateOne
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


async def test_string_prefix_as_a_range_on_a_unique_key(db: AsyncDatabase) -> None:
    """core.services.blocks: the direct conversations of a pair, whatever their context, by a range of
    `unique_key` (`direct:<a>:<b>:` up to the same ending in ";"), not a regex."""
    await db.conversations.create_indexes([IndexModel([("unique_key", ASCENDING)], name="conversations_unique_key", unique=True)])
    keys = ["direct:a:b:-", "direct:a:b:order:7", "direct:a:b:product:\U0001f600", "direct:a:bc:-", "direct:a:b;", "direct:a:a:-"]
    await db.conversations.insert_many([{"unique_key": key} for key in keys])
    found = await db.conversations.find({"unique_key": {"$gte": "direct:a:b:", "$lt": "direct:a:b;"}}).to_list()
    assert sorted(doc["unique_key"] for doc in found) == sorted(keys[:3])


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


async def test_compound_unique_indexes_and_ordered_bulk_insert(db: AsyncDatabase) -> None:
    from pymongo.errors import BulkWriteError

    await db.messages.create_indexes([
        IndexModel([("conversation_id", ASCENDING), ("seq", ASCENDING)], name="messages_conversation_seq", unique=True),
        IndexModel([("conversation_id", ASCENDING), ("sender_id", ASCENDING), ("client_msg_id", ASCENDING)],
                   name="messages_idempotency", unique=True),
    ])  # fmt: skip
    await db.messages.insert_many([{"conversation_id": "c", "seq": n, "sender_id": "u", "client_msg_id": f"k{n}"} for n in (1, 2)])
    batch = [{"conversation_id": "c", "seq": 3, "sender_id": "u", "client_msg_id": "k3"},
             {"conversation_id": "c", "seq": 4, "sender_id": "u", "client_msg_id": "k1"},  # a duplicate request
             {"conversation_id": "c", "seq": 5, "sender_id": "u", "client_msg_id": "k5"}]  # fmt: skip
    with pytest.raises(BulkWriteError) as failure:
        await db.messages.insert_many(batch, ordered=True)
    assert failure.value.details["nInserted"] == 1, "ordered: stops at the first failing document"
    with pytest.raises(DuplicateKeyError):
        await db.messages.insert_one({"conversation_id": "c", "seq": 2, "sender_id": "x", "client_msg_id": "other"})
    top = await db.messages.find({"conversation_id": "c"}).sort([("seq", -1)]).limit(1).to_list()
    assert top[0]["seq"] == 3
    found = await db.messages.find({"conversation_id": "c", "client_msg_id": {"$in": ["k1", "k3", "zz"]}}).to_list()
    assert sorted(m["client_msg_id"] for m in found) == ["k1", "k3"]
    unread = {"conversation_id": "c", "seq": {"$gt": 1}, "sender_id": {"$ne": "someone"}, "deleted": {"$ne": True}}
    assert await db.messages.count_documents(unread) == 2


async def test_array_membership_updates_and_queries(db: AsyncDatabase) -> None:
    await db.conversations.insert_one({"_id": "g", "participant_ids": ["a", "b"], "updated_ms": 1, "last_seq": 0})
    await db.conversations.update_one({"_id": "g"}, {"$addToSet": {"participant_ids": "c"}})
    await db.conversations.update_one({"_id": "g"}, {"$addToSet": {"participant_ids": "c"}})
    await db.conversations.update_one({"_id": "g"}, {"$pull": {"participant_ids": "a"}})
    assert (await db.conversations.find_one({"_id": "g"}))["participant_ids"] == ["b", "c"]
    assert await db.conversations.count_documents({"participant_ids": "c"}) == 1
    assert await db.conversations.count_documents({"participant_ids": "a"}) == 0
    moved = await db.conversations.update_one({"_id": "g", "last_seq": {"$lt": 5}}, {"$set": {"last_seq": 5, "updated_ms": 9}})
    stale = await db.conversations.update_one({"_id": "g", "last_seq": {"$lt": 3}}, {"$set": {"last_seq": 3, "updated_ms": 2}})
    assert (moved.modified_count, stale.modified_count) == (1, 0)
    assert (await db.conversations.find_one({"_id": "g"}))["updated_ms"] == 9


async def test_watermark_upsert_only_moves_forward(db: AsyncDatabase) -> None:
    await db.read_states.update_one({"_id": "c:u", "last_read_seq": {"$lt": 5}}, {"$set": {"last_read_seq": 5}}, upsert=True)
    with pytest.raises(DuplicateKeyError):  # already further on: the conditional upsert collides with the existing _id
        await db.read_states.update_one({"_id": "c:u", "last_read_seq": {"$lt": 3}}, {"$set": {"last_read_seq": 3}}, upsert=True)
    assert (await db.read_states.find_one({"_id": "c:u"}))["last_read_seq"] == 5


async def test_compare_and_swap_counters_and_null_matching(db: AsyncDatabase) -> None:
    from pymongo import ReturnDocument

    first = await db.counters.find_one_and_update({"_id": "tickets"}, {"$inc": {"value": 1}}, upsert=True, return_document=ReturnDocument.AFTER)
    second = await db.counters.find_one_and_update({"_id": "tickets"}, {"$inc": {"value": 1}}, upsert=True, return_document=ReturnDocument.AFTER)
    assert (first["value"], second["value"]) == (1, 2)

    await db.agent_loads.insert_many([{"_id": "a1", "open_count": 0}, {"_id": "a2", "open_count": 0}])
    assert await db.agent_loads.count_documents({"_id": {"$in": ["a1", "a2", "zz"]}}) == 2

    async def claim() -> bool:
        current = await db.agent_loads.find_one({"_id": "a1"})
        swapped = await db.agent_loads.find_one_and_update(
            {"_id": "a1", "open_count": current["open_count"]}, {"$inc": {"open_count": 1}}
        )
        return swapped is not None

    results = await asyncio.gather(*(claim() for _ in range(20)))
    assert (await db.agent_loads.find_one({"_id": "a1"}))["open_count"] == sum(results)

    await db.tickets.insert_one({"_id": "t", "status": "open", "assignee_id": None, "first_response_ms": None})
    assert await db.tickets.count_documents({"assignee_id": {"$eq": None}}) == 1
    unassigned = {"_id": "t", "status": "open", "assignee_id": {"$eq": None}}
    claimed = await db.tickets.update_one(unassigned, {"$set": {"status": "assigned", "assignee_id": "a1"}})
    again = await db.tickets.update_one(unassigned, {"$set": {"status": "assigned", "assignee_id": "a2"}})
    assert (claimed.modified_count, again.modified_count) == (1, 0)
    await db.tickets.update_one({"_id": "t"}, {"$set": {"status": "open", "assignee_id": None}})
    assert (await db.tickets.find_one({"_id": "t"}))["assignee_id"] is None
    first_response = await db.tickets.update_one({"_id": "t", "first_response_ms": {"$eq": None}}, {"$set": {"first_response_ms": 5}})
    assert first_response.modified_count == 1 and await db.tickets.count_documents({"first_response_ms": {"$gt": 0}}) == 1


async def test_shared_rate_windows_count_atomically_and_are_swept(db: AsyncDatabase) -> None:
    """core.services.rate_windows: a conditional `$inc` upsert (with a `$set` int) counts up to a bound and
    then collides with the existing `_id` (DuplicateKeyError), also under concurrent callers; windows are
    read back by `_id` and swept by an int field. Not used: `$setOnInsert` (nx-27017 ignores it) and
    `find_one_and_update` for the bound (on nx-27017 its colliding upsert answers None, not an error)."""
    await db.rate_windows.create_indexes([IndexModel([("until_ms", ASCENDING)], name="rate_windows_until")])

    async def take(window_id: str, room: int) -> bool:
        for _ in range(2):  # a window created by another caller at the same moment: once more
            try:
                await db.rate_windows.update_one(
                    {"_id": window_id, "n": {"$lt": room}}, {"$inc": {"n": 1}, "$set": {"until_ms": 2_000}}, upsert=True
                )
                return True
            except DuplicateKeyError:
                found = await db.rate_windows.find_one({"_id": window_id}, {"n": 1})
                if found is not None and found["n"] >= room:
                    return False
        return False

    results = await asyncio.gather(*(take("login|a@example.com|7", 5) for _ in range(20)))
    assert sum(results) == 5
    assert await db.rate_windows.find_one({"_id": "login|a@example.com|7"}) == {"_id": "login|a@example.com|7", "n": 5, "until_ms": 2_000}
    assert await take("login|a@example.com|7", 6) and not await take("login|a@example.com|7", 6), "a larger room allows more"
    await db.rate_windows.insert_one({"_id": "login|b|9", "n": 1, "until_ms": 9_000})
    swept = await db.rate_windows.delete_many({"until_ms": {"$lt": 5_000}})
    assert swept.deleted_count == 1 and [d["_id"] for d in await db.rate_windows.find({}).to_list()] == ["login|b|9"]


async def test_find_by_array_member_through_the_declared_indexes(db: AsyncDatabase) -> None:
    await db.messages.create_indexes([IndexModel([("attachment_ids", ASCENDING), ("conversation_id", ASCENDING)], name="messages_attachments")])
    await db.conversations.create_indexes([IndexModel([("participant_ids", ASCENDING), ("updated_ms", -1)], name="conversations_member_activity")])
    await db.messages.insert_many([{"conversation_id": "c", "attachment_ids": ["f1", "f2"]}, {"conversation_id": "c", "attachment_ids": []}])
    await db.conversations.insert_one({"participant_ids": ["u1", "u2"], "updated_ms": 1})
    assert len(await db.messages.find({"attachment_ids": "f2", "deleted": {"$ne": True}}).to_list()) == 1
    assert len(await db.conversations.find({"participant_ids": "u2"}).sort([("updated_ms", -1)]).to_list()) == 1


async def test_messages_bulk_form_is_what_beanie_stores(system: System) -> None:
    """core.services.messages inserts `Message.stored_form()` directly and reads history pages as raw
    documents; both must agree with Beanie's own encoding and decoding."""
    from beanie import PydanticObjectId, init_beanie
    from beanie.odm.utils.dump import get_dict

    from core.clock import utcnow
    from core.documents import AttachmentRef, Message
    from core.services.messages import message_out, stored_message_out

    client: AsyncMongoClient = AsyncMongoClient(system.store_uri, tz_aware=True)
    name = f"conformance_{secrets.token_hex(4)}"
    try:
        await init_beanie(database=client[name], document_models=[Message])
        attachment = AttachmentRef(id="f" * 24, filename="a.png", content_type="image/png", size=3, kind="image")
        message = Message(
            id=PydanticObjectId(), conversation_id="c" * 24, seq=7, sender_id="s" * 24, client_msg_id="m-1", kind="image",
            body="hi", attachment_ids=[attachment.id], attachments=[attachment], reply_to="r" * 24, reply_to_seq=3,
        )  # fmt: skip
        assert message.stored_form() == get_dict(message, to_db=True, keep_nulls=True)
        await Message.get_pymongo_collection().insert_many([message.stored_form()])
        assert await Message.get(message.id) == message
        message.body, message.edited_at = "edited", utcnow()
        await message.replace()  # what edits and deletes do: Beanie's own encoding
        raw = await Message.get_pymongo_collection().find_one({"_id": message.id})
        watermarks = {"r" * 24: 7, "s" * 24: 7, "o" * 24: 6}
        previews = {"r" * 24: None}
        assert stored_message_out(raw, watermarks, previews) == message_out(await Message.get(message.id), watermarks, previews)
        assert stored_message_out(raw, watermarks, {}).edited_at is not None
    finally:
        await client.drop_database(name)
        await client.close()


async def test_text_search_over_folded_terms(db: AsyncDatabase) -> None:
    """core.services.search: a `$text` index over `message_words.search_text` (folded by mqchat,
    language "none"; created again by each process that starts), every quoted term required,
    combined with the conversation scope, newest first (string ids); words replaced and removed
    by the indexer. Quoted replies and a search page's messages are read by `seq $in`."""
    from pymongo import DeleteOne

    from core.db import ensure_search_index
    from core.services.search.folding import index_terms, parse_query

    await ensure_search_index(db.message_words)
    bodies = {
        1: ("a", "Is the Café open on Sunday?"), 2: ("a", "CAFE closed: coffee shop moved"), 3: ("b", "café in another conversation"),
        4: ("a", "Привет, КОФЕ здесь"), 5: ("a", "東京で会いましょう"), 6: ("a", "Die Straße ist groß"),
        7: ("a", "running shoes"), 8: ("a", "snake_case e-mail"),
    }  # fmt: skip

    def words(n: int, cid: str, body: str) -> UpdateOne:  # what the indexer writes
        document = {"conversation_id": cid, "seq": n, "body": body, "search_text": index_terms(body)}
        return UpdateOne({"_id": f"{n:024x}"}, {"$set": document}, upsert=True)

    await db.message_words.bulk_write([words(n, cid, body) for n, (cid, body) in bodies.items()], ordered=False)
    await ensure_search_index(db.message_words)  # every process does at start; nx-27017 refuses it over documents

    async def found(typed: str, scope: list[str]) -> list[int]:
        query = parse_query(typed)
        assert query is not None
        cursor = db.message_words.find({"$text": {"$search": query.text_search}, "conversation_id": {"$in": scope}}, {"search_text": 0})
        return [doc["seq"] for doc in await cursor.sort([("_id", -1)]).limit(50).to_list()]

    assert await found("cafe", ["a"]) == [2, 1]
    assert await found("CAFÉ", ["a", "b"]) == [3, 2, 1]
    assert await found("caf", ["a"]) == [2, 1], "a word's beginning"
    assert await found("cafe open", ["a"]) == [1], "every word"
    assert await found("coffee sunday", ["a"]) == []
    assert await found("кофе", ["a"]) == [4]
    assert await found("東京", ["a"]) == [5] and await found("会い", ["a"]) == [5] and await found("京都", ["a"]) == []
    assert await found("strasse GROSS", ["a"]) == [6]
    assert await found("run", ["a"]) == [7] and await found("runs", ["a"]) == [], "no stemming"
    assert await found("snake case", ["a"]) == [8] and await found("mail", ["a"]) == [8]
    assert await found("cafe", ["z"]) == []

    await db.message_words.bulk_write([words(1, "a", "the cafe moved"), DeleteOne({"_id": f"{2:024x}"})], ordered=False)
    assert await found("cafe", ["a"]) == [1] and await found("sunday", ["a"]) == []


async def test_search_indexer_queue(db: AsyncDatabase) -> None:
    """core.services.search.indexer: messages waiting for indexing (`search_indexed` 0, indexed),
    marked done only if their body is still the one indexed; older messages queued with `$exists`."""
    await db.messages.create_indexes([IndexModel([("search_indexed", ASCENDING)], name="messages_search_pending")])
    await db.messages.insert_many([
        {"conversation_id": "a", "seq": n, "body": f"m{n}", "search_indexed": 0} for n in (1, 2, 3)
    ] + [{"conversation_id": "a", "seq": 4, "body": "older"}])  # fmt: skip
    pending = await db.messages.find({"search_indexed": 0}, {"body": 1, "seq": 1}).limit(500).to_list()
    assert sorted(doc["seq"] for doc in pending) == [1, 2, 3]
    await db.messages.replace_one({"seq": 2}, {"conversation_id": "a", "seq": 2, "body": "edited", "search_indexed": 0})
    marked = await db.messages.bulk_write([
        UpdateOne({"_id": doc["_id"], "search_indexed": 0, "body": doc["body"]}, {"$set": {"search_indexed": 1}}) for doc in pending
    ], ordered=False)  # fmt: skip
    assert marked.modified_count == 2 and [d["seq"] for d in await db.messages.find({"search_indexed": 0}).to_list()] == [2]
    await db.messages.update_many({"search_indexed": {"$exists": False}}, {"$set": {"search_indexed": 0}})
    assert sorted(d["seq"] for d in await db.messages.find({"search_indexed": 0}).to_list()) == [2, 4]
    quoted = await db.messages.find({"conversation_id": "a", "seq": {"$in": [1, 4, 9]}}).to_list()
    assert sorted(doc["seq"] for doc in quoted) == [1, 4]


async def test_webhook_recording_fan_out_and_leased_claims(db: AsyncDatabase) -> None:
    """core.services.webhook_events and core.webhook_delivery: idempotent unordered inserts, the ordered
    window, claims with a lease, `$in` over string ids, and TTL indexes that are accepted."""
    from pymongo import ReturnDocument
    from pymongo.errors import BulkWriteError

    await db.webhook_events.create_indexes([
        IndexModel([("fanned", ASCENDING), ("recorded_ms", ASCENDING)], name="webhook_events_unfanned"),
        IndexModel([("expires_at", ASCENDING)], name="webhook_events_ttl", expireAfterSeconds=0),
    ])  # fmt: skip
    later = datetime.now(UTC) + timedelta(days=30)
    await db.webhook_events.insert_many([{"_id": "message.created:a", "fanned": 0, "recorded_ms": 1, "expires_at": later}], ordered=False)
    with pytest.raises(BulkWriteError) as duplicate:  # a redelivered request records its events again
        await db.webhook_events.insert_many(
            [{"_id": "message.created:a", "fanned": 0, "recorded_ms": 1, "expires_at": later},
             {"_id": "message.created:b", "fanned": 0, "recorded_ms": 2, "expires_at": later}], ordered=False,
        )  # fmt: skip
    assert [e["code"] for e in duplicate.value.details["writeErrors"]] == [11000]
    assert await db.webhook_events.count_documents({"fanned": 0, "recorded_ms": {"$lte": 5}}) == 2, "the new one is kept"
    fanned = await db.webhook_events.update_many({"_id": {"$in": ["message.created:a", "message.created:b"]}}, {"$set": {"fanned": 1}})
    assert fanned.modified_count == 2 and await db.webhook_events.count_documents({"fanned": 0}) == 0

    await db.webhook_deliveries.insert_many([
        {"_id": f"e|{n}", "endpoint_id": "e", "stream": f"s{n % 2}", "seq": n // 2, "rank": n % 3, "recorded_ms": 10 - n,
         "next_at_ms": 0 if n == 0 else 100, "held_until_ms": 0, "attempts": 0}
        for n in range(6)
    ])  # fmt: skip
    window = await db.webhook_deliveries.find({"endpoint_id": "e", "next_at_ms": {"$gt": 0}}).sort(
        [("seq", 1), ("rank", 1), ("recorded_ms", 1)]
    ).to_list()
    assert [d["_id"] for d in window] == ["e|1", "e|3", "e|2", "e|4", "e|5"]  # (seq, rank, recorded_ms)

    async def claim(now_ms: int) -> dict | None:
        return await db.webhook_deliveries.find_one_and_update(
            {"_id": "e|1", "next_at_ms": {"$gt": 0, "$lte": now_ms}, "held_until_ms": {"$lt": now_ms}},
            {"$set": {"held_until_ms": now_ms + 1000}}, return_document=ReturnDocument.AFTER,
        )  # fmt: skip

    assert await claim(50) is None, "not due yet"
    claims = await asyncio.gather(*(claim(200) for _ in range(10)))
    assert sum(c is not None for c in claims) == 1, "one sender wins the lease"
    assert await claim(1100) is None and await claim(1300) is not None, "a lapsed lease can be claimed again"
    await db.webhook_deliveries.update_one(
        {"_id": "e|1"}, {"$set": {"status": "delivered", "next_at_ms": 0, "held_until_ms": 0, "last_error": ""}, "$inc": {"attempts": 1}}
    )
    done = await db.webhook_deliveries.find_one({"_id": "e|1"})
    assert (done["status"], done["next_at_ms"], done["attempts"]) == ("delivered", 0, 1)

    await db.webhook_endpoints.insert_one({"_id": "w", "disabled_reason": "", "consecutive_failures": 0, "failing_since_ms": 0})
    failed = await db.webhook_endpoints.find_one_and_update({"_id": "w"}, {"$inc": {"consecutive_failures": 1}}, return_document=ReturnDocument.AFTER)
    assert failed["consecutive_failures"] == 1
    await db.webhook_endpoints.update_one({"_id": "w", "disabled_reason": ""}, {"$set": {"disabled_reason": "5 failures"}})
    assert await db.webhook_endpoints.count_documents({"disabled_reason": ""}) == 0


async def test_reaction_sets_grow_and_shrink_atomically_in_order(db: AsyncDatabase) -> None:
    """core.services.reactions: one document per message holding `<user>:<emoji>` strings, created empty with
    an insert (nx-27017 drops the `$addToSet` of an upsert), then `$addToSet`/`$pull`ed and read back after
    the update in insertion order; concurrent adds all count. (An `entries.<n>` path matches nothing on nx-27017.)"""
    from pymongo import ReturnDocument

    async def react(entry: str, on: bool = True) -> list[str] | None:
        """The entries just before the update (ReturnDocument.BEFORE), None if there is no set."""
        update = {"$addToSet": {"entries": entry}} if on else {"$pull": {"entries": entry}}
        before = await db.reactions.find_one_and_update({"_id": "m1"}, update, return_document=ReturnDocument.BEFORE)
        return None if before is None else before["entries"]

    assert await react("u1:👍") is None, "no set yet: nothing changed"
    assert await db.reactions.count_documents({}) == 0
    await db.reactions.insert_one({"_id": "m1", "entries": []})
    with pytest.raises(DuplicateKeyError):
        await db.reactions.insert_one({"_id": "m1", "entries": []})
    assert await react("u1:👍") == []
    assert await react("u1:👍") == ["u1:👍"], "a repeat is no second entry"
    await asyncio.gather(*(react(f"u{n}:❤️") for n in range(2, 22)))
    entries = (await db.reactions.find_one({"_id": "m1"}))["entries"]
    assert entries[0] == "u1:👍" and sorted(entries[1:]) == sorted(f"u{n}:❤️" for n in range(2, 22))
    assert await react("u1:👍", on=False) == entries
    assert (await db.reactions.find_one({"_id": "m1"}))["entries"] == entries[1:], "taken back, order kept"
    await db.reactions.insert_one({"_id": "m2", "entries": ["u9:🎉"]})
    found = await db.reactions.find({"_id": {"$in": ["m1", "m2", "m3"]}}).to_list()
    assert sorted(doc["_id"] for doc in found) == ["m1", "m2"]


async def test_member_settings_replaced_whole_keep_their_types(db: AsyncDatabase) -> None:
    """core.services.member_settings and blocks: whole documents with string ids, upserted by replace."""
    await db.member_settings.replace_one({"_id": "c:u"}, {"_id": "c:u", "user_id": "u", "archived_seq": 3, "muted": True}, upsert=True)
    await db.member_settings.replace_one({"_id": "c:u"}, {"_id": "c:u", "user_id": "u", "archived_seq": 0, "muted": False}, upsert=True)
    [stored] = await db.member_settings.find({"user_id": "u"}).to_list()
    assert stored["muted"] is False and stored["archived_seq"] == 0
    await db.blocks.insert_many([{"_id": "a:b", "enforced": True}, {"_id": "c:d", "enforced": False}])
    found = await db.blocks.find({"_id": {"$in": ["a:b", "b:a", "c:d"]}}).to_list()
    assert {doc["_id"]: doc["enforced"] for doc in found} == {"a:b": True, "c:d": False}


async def test_support_desk_shapes(db: AsyncDatabase) -> None:
    """Teams (members by array updates), routing (one replaced document with a map), team queues ($or with a null team)."""
    team_ids = [ObjectId(), ObjectId()]
    await db.teams.insert_many([{"_id": team_ids[0], "name_key": "a", "member_ids": [], "lead_ids": []},
                                {"_id": team_ids[1], "name_key": "b", "member_ids": ["u1"], "lead_ids": []}])  # fmt: skip
    await db.teams.update_one({"_id": team_ids[0]}, {"$addToSet": {"member_ids": "u1"}})
    await db.teams.update_one({"_id": team_ids[0]}, {"$addToSet": {"lead_ids": "u1"}})
    assert len(await db.teams.find({"member_ids": "u1"}).to_list()) == 2
    await db.teams.update_one({"_id": team_ids[0]}, {"$pull": {"member_ids": "u1", "lead_ids": "u1"}})
    assert await db.teams.find_one({"_id": team_ids[0]}) == {"_id": team_ids[0], "name_key": "a", "member_ids": [], "lead_ids": []}
    # listed, not counted: nx-27017's count_documents with `_id: {$in: [ObjectId...]}` answers 0 (docs/store.md)
    assert len(await db.teams.find({"_id": {"$in": [*team_ids, ObjectId()]}}).to_list()) == 2
    # an erased agent leaves every team at once
    await db.teams.update_one({"_id": team_ids[0]}, {"$addToSet": {"member_ids": "u1"}})
    left = await db.teams.update_many({"member_ids": "u1"}, {"$pull": {"member_ids": "u1", "lead_ids": "u1"}})
    assert left.modified_count == 2 and await db.teams.find({"member_ids": "u1"}).to_list() == []
    # the admins' roster: a team's active staff by id, role and name prefix, sorted and limited
    staff = [ObjectId() for _ in range(3)]
    await db.users.insert_many([
        {"_id": staff[0], "username": "ann", "role": "agent", "active": True},
        {"_id": staff[1], "username": "Anna", "role": "admin", "active": True},
        {"_id": staff[2], "username": "andy", "role": "agent", "active": False},
    ])  # fmt: skip
    roster = {"active": True, "role": {"$in": ["agent", "admin"]}, "_id": {"$in": staff}, "username": {"$regex": "^an", "$options": "i"}}
    assert [doc["username"] for doc in await db.users.find(roster).sort("username").limit(200).to_list()] == ["Anna", "ann"]

    routing = {"_id": "routing", "routes": {"shipping": str(team_ids[0])}, "default_team_id": None}
    await db.ticket_routing.replace_one({"_id": "routing"}, routing, upsert=True)
    routing["routes"] = {"payment": str(team_ids[1])}
    await db.ticket_routing.replace_one({"_id": "routing"}, routing, upsert=True)
    assert await db.ticket_routing.find_one({"_id": "routing"}) == routing

    await db.tickets.insert_many([
        {"_id": "q0", "status": "open", "team_id": None, "assignee_id": None, "escalated_ms": None},
        {"_id": "q1", "status": "open", "team_id": "t1", "assignee_id": None, "escalated_ms": None},
        {"_id": "q2", "status": "open", "team_id": "t2", "assignee_id": None, "escalated_ms": None},
        {"_id": "m1", "status": "assigned", "team_id": "t2", "assignee_id": "u1", "escalated_ms": None},
        {"_id": "x3", "status": "assigned", "team_id": "t3", "assignee_id": "u9", "escalated_ms": None},
    ])  # fmt: skip
    sees = {"$or": [{"assignee_id": "u1"}, {"status": "open", "team_id": {"$eq": None}},
                    {"status": "open", "team_id": {"$in": ["t1"]}}, {"team_id": {"$in": ["t3"]}}]}  # fmt: skip
    assert sorted(doc["_id"] for doc in await db.tickets.find(sees).to_list()) == ["m1", "q0", "q1", "x3"]
    flag = await db.tickets.update_one({"_id": "q1", "escalated_ms": {"$eq": None}}, {"$set": {"escalated_ms": 7}})
    again = await db.tickets.update_one({"_id": "q1", "escalated_ms": {"$eq": None}}, {"$set": {"escalated_ms": 8}})
    assert (flag.modified_count, again.modified_count) == (1, 0)
    waiting = {"status": {"$in": ["open", "assigned"]}, "escalated_ms": {"$eq": None}}
    assert sorted(doc["_id"] for doc in await db.tickets.find(waiting).to_list()) == ["m1", "q0", "q2", "x3"]
    moved = await db.tickets.update_one({"_id": "q2", "team_id": {"$eq": "t2"}}, {"$set": {"team_id": None}})
    assert moved.modified_count == 1 and (await db.tickets.find_one({"_id": "q2"}))["team_id"] is None

    await db.csat_ratings.insert_one({"_id": "q0", "rating": 4, "created_at": datetime(2026, 1, 2, tzinfo=UTC)})
    with pytest.raises(DuplicateKeyError):
        await db.csat_ratings.insert_one({"_id": "q0", "rating": 1, "created_at": datetime(2026, 1, 3, tzinfo=UTC)})
    window = {"created_at": {"$gte": datetime(2026, 1, 1, tzinfo=UTC), "$lt": datetime(2026, 1, 3, tzinfo=UTC)}}
    assert [doc["rating"] async for doc in db.csat_ratings.find(window, {"rating": 1})] == [4]


async def test_report_aggregations_bucket_and_group_epoch_ms_fields(db: AsyncDatabase) -> None:
    """core.services.analytics_scan (the full scans `mqchat desk-rollups --check` compares the counters with):
    `$match` on an ms range, `$bucket` by given boundaries, `$group` by a plain field
    (a missing one groups under null), `$avg` of a `$subtract`, an unset field skipped by `$avg`."""
    day = 86_400_000
    start = 1_790_000_000_000 - 1_790_000_000_000 % day
    await db.tickets.insert_many([
        {"created_ms": start + 1000, "first_response_ms": start + 61_000, "assignee_id": "a", "team_id": "t"},
        {"created_ms": start + 2000, "first_response_ms": start + 32_000, "assignee_id": "a"},
        {"created_ms": start + day + 5, "first_response_ms": None, "assignee_id": None, "team_id": "t"},
        {"created_ms": start + 3 * day, "assignee_id": "b"},  # outside the period
    ])  # fmt: skip
    match = {"$match": {"created_ms": {"$gte": start, "$lt": start + 2 * day}}}
    output = {"count": {"$sum": 1}, "average": {"$avg": {"$subtract": ["$first_response_ms", "$created_ms"]}}}
    bucket = {"groupBy": "$created_ms", "boundaries": [start, start + day, start + 2 * day], "output": output}
    bucketed = await (await db.tickets.aggregate([match, {"$bucket": bucket}])).to_list()
    assert [(int(row["_id"]), row["count"], row["average"]) for row in bucketed] == [(start, 2, 45_000), (start + day, 1, None)]
    by_agent = await (await db.tickets.aggregate([match, {"$group": {"_id": "$assignee_id", **output}}])).to_list()
    assert sorted((row["_id"] or "", row["count"]) for row in by_agent) == [("", 1), ("a", 2)]
    by_team = await (await db.tickets.aggregate([match, {"$group": {"_id": "$team_id", "count": {"$sum": 1}}}])).to_list()
    assert sorted((row["_id"] or "", row["count"]) for row in by_team) == [("", 1), ("t", 2)]
    await db.tickets.update_one({"assignee_id": "b"}, {"$set": {"resolved_ms": start + 4 * day}})
    await db.tickets.update_one({"assignee_id": "b"}, {"$set": {"resolved_ms": None}})
    assert await db.tickets.count_documents({"resolved_ms": {"$gte": start}}) == 0


async def test_desk_counters_inc_upserts_swaps_and_reads(db: AsyncDatabase) -> None:
    """core.services.rollups: `$inc` upserts of flat counter names (with `$set` of the cell) under a string `_id`,
    in an unordered `bulk_write`; the tickets' compare-and-swap of (`rollup`, `rollup_due`) and the backfill's
    marking of documents without the fields; core.services.analytics' range read with a projection of totals."""
    def cell(day: int, agent: str, counts: dict[str, int]) -> UpdateOne:
        return UpdateOne({"_id": f"{day}|{agent}|t"}, {"$inc": counts, "$set": {"day_ms": day, "agent_id": agent, "team_id": "t"}}, upsert=True)

    first = [cell(0, "a", {"o_t": 1, "o_37": 1, "fs_t": 500, "fs_37": 500}), cell(86_400_000, "", {"o_t": 1, "o_2": 1})]
    await db.desk_rollups.bulk_write(first, ordered=False)
    second = [cell(0, "a", {"o_t": 2, "o_40": 2, "fs_t": -500, "fs_37": -500}), cell(0, "b", {"cn_t": 1})]
    await db.desk_rollups.bulk_write(second, ordered=False)
    assert await db.desk_rollups.find_one({"_id": "0|a|t"}) == {
        "_id": "0|a|t", "day_ms": 0, "agent_id": "a", "team_id": "t", "o_t": 3, "o_37": 1, "o_40": 2, "fs_t": 0, "fs_37": 0,
    }  # fmt: skip
    window = {"day_ms": {"$gte": 0, "$lt": 86_400_000}, "team_id": "t"}
    totals = await db.desk_rollups.find(window, {"day_ms": 1, "agent_id": 1, "team_id": 1, "o_t": 1}).sort([("_id", 1)]).to_list()
    assert totals == [
        {"_id": "0|a|t", "day_ms": 0, "agent_id": "a", "team_id": "t", "o_t": 3},
        {"_id": "0|b|t", "day_ms": 0, "agent_id": "b", "team_id": "t"},
    ]
    assert [doc["_id"] for doc in await db.desk_rollups.find({**window, "agent_id": ""}).to_list()] == []
    # core.services.analytics: `$group` by a plain field, `$sum` of flat counters (missing from every document
    # of a group: 0 on MongoDB, null on nx-27017; read with `or 0`)
    sums = {name: {"$sum": f"${name}"} for name in ("o_t", "o_37", "cn_t")}
    by_day = await (await db.desk_rollups.aggregate([{"$match": {"day_ms": {"$gte": 0, "$lt": 2 * 86_400_000}}},
                                                      {"$group": {"_id": "$day_ms", **sums}}])).to_list()  # fmt: skip
    assert sorted((int(r["_id"]), r["o_t"], r["o_37"] or 0, r["cn_t"] or 0) for r in by_day) == [(0, 3, 1, 1), (86_400_000, 1, 0, 0)]
    by_agent = await (await db.desk_rollups.aggregate([{"$match": window}, {"$group": {"_id": "$agent_id", **sums}}])).to_list()
    assert sorted((r["_id"], r["o_t"] or 0, r["cn_t"] or 0) for r in by_agent) == [("a", 3, 0), ("b", 0, 1)]

    await db.tickets.insert_many([{"_id": "old", "created_ms": 5}, {"_id": "new", "rollup": "", "rollup_due": 1}])
    marked = await db.tickets.update_many({"rollup_due": {"$exists": False}}, {"$set": {"rollup": "", "rollup_due": 1}})
    assert marked.modified_count == 1
    await db.tickets.update_one({"_id": "new"}, {"$set": {"assignee_id": "a"}, "$inc": {"rollup_due": 1}})  # a change
    due = await db.tickets.find({"rollup_due": {"$gt": 0}}).sort([("_id", 1)]).to_list()
    assert [(doc["_id"], doc["rollup_due"]) for doc in due] == [("new", 2), ("old", 1)]
    stale = await db.tickets.update_one({"_id": "new", "rollup": "", "rollup_due": 1}, {"$set": {"rollup": "[]", "rollup_due": 0}})
    swapped = await db.tickets.update_one({"_id": "new", "rollup": "", "rollup_due": 2}, {"$set": {"rollup": '["a"]', "rollup_due": 0}})
    again = await db.tickets.update_one({"_id": "new", "rollup": "", "rollup_due": 2}, {"$set": {"rollup": '["a"]', "rollup_due": 0}})
    assert (stale.modified_count, swapped.modified_count, again.modified_count) == (0, 1, 0)
    assert await db.tickets.count_documents({"rollup_due": {"$gt": 0}}) == 1

    # the backfill: swaps of documents without the fields in one unordered bulk write, its own found by token
    older = [ObjectId() for _ in range(3)]
    await db.tickets.insert_many([{"_id": oid, "created_ms": 7} for oid in older])
    await db.tickets.update_one({"_id": older[1]}, {"$inc": {"rollup_due": 1}})  # changed meanwhile
    never = {"rollup": {"$exists": False}, "rollup_due": {"$exists": False}}
    swaps = [UpdateOne({"_id": oid, **never}, {"$set": {"rollup": "[]", "rollup_due": 0, "rollup_by": "run1"}}) for oid in older]
    assert (await db.tickets.bulk_write(swaps, ordered=False)).modified_count == 2
    mine = await db.tickets.find({"_id": {"$in": older}, "rollup_by": "run1"}, {"_id": 1}).to_list()
    assert sorted(doc["_id"] for doc in mine) == sorted([older[0], older[2]])
