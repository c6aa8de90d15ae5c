"""The search indexer: writes the words of messages after they are stored, off the sending path.

Sending stores a message with `search_indexed` 0; an edit or a delete sets it to 0 again.
Every POLL_SECONDS the lead bridge worker (and `mqchat search-index`, once) takes those
messages in batches, writes their MessageWords (or removes them for a deleted message)
and sets `search_indexed` to 1 where the body is still the one indexed, so an edit made
meanwhile is indexed on the next pass. A new message is found by search within about a
second; sending pays for none of it (docs/store.md, docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import logging

from pymongo import DeleteOne, UpdateOne
from pymongo.errors import PyMongoError

from core.documents import Message, MessageWords
from core.services.search.folding import index_terms

log = logging.getLogger("mqchat.search")

BATCH = 500
POLL_SECONDS = 0.5


async def index_pending() -> int:
    """Index every message waiting for it (new, edited, deleted); how many were handled."""
    messages, words = Message.get_pymongo_collection(), MessageWords.get_pymongo_collection()
    handled = 0
    while page := await messages.find({"search_indexed": 0}, {"conversation_id": 1, "seq": 1, "body": 1, "deleted": 1}).limit(BATCH).to_list():
        await words.bulk_write([
            DeleteOne({"_id": str(stored["_id"])}) if stored.get("deleted") else UpdateOne(
                {"_id": str(stored["_id"])},  # $set, not a replace: nx-27017's upserting replace drops a string _id
                {"$set": {"conversation_id": stored["conversation_id"], "seq": stored["seq"], "body": stored["body"],
                          "search_text": index_terms(stored["body"])}},
                upsert=True,
            )
            for stored in page
        ], ordered=False)  # fmt: skip
        marked = await messages.bulk_write([
            UpdateOne({"_id": stored["_id"], "search_indexed": 0, "body": stored["body"]}, {"$set": {"search_indexed": 1}})
            for stored in page
        ], ordered=False)  # fmt: skip
        handled += len(page)
        if marked.modified_count == 0:  # all edited meanwhile (or the store ignored the update): next pass
            break
    return handled


async def index_older() -> int:
    """Queue the messages stored before message search existed (no `search_indexed`), then index them all."""
    await Message.get_pymongo_collection().update_many({"search_indexed": {"$exists": False}}, {"$set": {"search_indexed": 0}})
    return await index_pending()


async def keep_indexing() -> None:
    """Index what arrives, until cancelled; store outages are logged and waited out."""
    while True:
        try:
            await index_pending()
        except PyMongoError as exc:
            log.warning("search.store_unavailable", extra={"error": str(exc)})
        except Exception:  # a bug must not stop indexing for good: log it and try again
            log.exception("search.index_failed")
        await asyncio.sleep(POLL_SECONDS)
