"""The search indexer: writes the words of messages after they are stored, off the sending path.

Sending stores a message with `search_indexed` 0; an edit or a delete sets it to 0 again.
The lead bridge worker's SearchIndexer (and `mqchat search-index`, once) takes those
messages in batches (written CHUNK at a time, so that no write holds the store long),
writes their MessageWords (or removes them for a deleted message)
and sets `search_indexed` to 1 where the body is still the one indexed, so an edit made
meanwhile is indexed on the next pass. Sending pays for none of it (docs/store.md,
docs/benchmarks.md).

When: the bridge wakes the indexer after each batch that wrote messages (a pass at
once, then at most one per PAUSE seconds: a new message is found within about a
second); what other processes write (REST sends and edits in the API, other bridge
workers) is found by a slow poll every FALLBACK_POLL seconds. Indexing a message
costs the store about twice what storing it did (its FTS5 table), so while the
bridge works through a backlog (batches of BUSY_BATCH requests or more) the store is
left to it: the indexer waits until the bridge's batches are small again, at most
MAX_LAG seconds after its last pass, and then indexes everything waiting at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import DeleteOne, UpdateOne
from pymongo.errors import PyMongoError

from core.documents import Message, MessageWords
from core.services.search.folding import index_terms

log = logging.getLogger("mqchat.search")

BATCH = 500
# messages per write command: nx-27017 answers one command at a time, and a pass's writes of 200 messages at once held
# it while chat messages waited to be stored (E2E p99 at 200 msg/s 120-123 ms with 500, 60-70 ms with 25, quiet runs)
CHUNK = 25
PAUSE = 1.0  # seconds at least between passes: what is written meanwhile is indexed together
FALLBACK_POLL = 2.0  # seconds: a pass also without a wake-up, for what other processes wrote
BUSY_BATCH = 20  # a bridge batch this large means a backlog: sending goes first
MAX_LAG = 60.0  # seconds: a backlog delays indexing at most this long after the last pass


async def index_pending() -> int:
    """Index every message waiting for it (new, edited, deleted); how many were handled."""
    messages, words = Message.get_pymongo_collection(), MessageWords.get_pymongo_collection()
    handled = 0
    while page := await messages.find({"search_indexed": 0}, {"conversation_id": 1, "seq": 1, "body": 1, "deleted": 1}).limit(BATCH).to_list():
        marked = 0
        for start in range(0, len(page), CHUNK):
            marked += await _index_chunk(messages, words, page[start : start + CHUNK])
        handled += len(page)
        if marked == 0:  # all edited meanwhile (or the store ignored the update): next pass
            break
    return handled


async def _index_chunk(messages: Any, words: Any, chunk: list[dict]) -> int:
    """Write the words of these stored messages and mark them indexed (where the body is still the one indexed);
    how many were marked."""
    await words.bulk_write([
        DeleteOne({"_id": str(stored["_id"])}) if stored.get("deleted") else UpdateOne(
            {"_id": str(stored["_id"])},  # $set, not a replace: nx-27017's upserting replace drops a string _id
            {"$set": {"conversation_id": stored["conversation_id"], "seq": stored["seq"], "body": stored["body"],
                      "search_text": index_terms(stored["body"])}},
            upsert=True,
        )
        for stored in chunk
    ], ordered=False)  # fmt: skip
    marked = await messages.bulk_write([
        UpdateOne({"_id": stored["_id"], "search_indexed": 0, "body": stored["body"]}, {"$set": {"search_indexed": 1}})
        for stored in chunk
    ], ordered=False)  # fmt: skip
    return marked.modified_count


async def index_older() -> int:
    """Queue the messages stored before message search existed (no `search_indexed`), then index them all."""
    await Message.get_pymongo_collection().update_many({"search_indexed": {"$exists": False}}, {"$set": {"search_indexed": 0}})
    return await index_pending()


class SearchIndexer:
    """Runs `index` (a pass over what waits) when woken by this process's writes, at least every `poll` seconds."""

    def __init__(
        self, index: Callable[[], Awaitable[int]] = index_pending, pause: float = PAUSE, poll: float = FALLBACK_POLL,
        max_lag: float = MAX_LAG,
    ) -> None:  # fmt: skip
        self._index, self._pause, self._poll, self._max_lag = index, pause, poll, max_lag
        self._woken = asyncio.Event()
        self._busy_until = 0.0  # time.monotonic() until which the bridge counts as working through a backlog

    def wake(self, batch_size: int) -> None:
        """This process wrote messages, in a batch of `batch_size` requests: index them soon, or once the backlog
        a large batch shows is through."""
        if batch_size >= BUSY_BATCH:
            self._busy_until = time.monotonic() + self._pause
        self._woken.set()

    async def run(self) -> None:
        """Index until cancelled; store outages are logged and waited out."""
        last_pass = time.monotonic()
        while True:
            try:
                async with asyncio.timeout(self._poll):
                    await self._woken.wait()
            except TimeoutError:
                pass
            while (now := time.monotonic()) < min(self._busy_until, last_pass + self._max_lag):
                await asyncio.sleep(min(self._busy_until, last_pass + self._max_lag) - now)
            self._woken.clear()  # what is written from now on takes the next pass
            try:
                await self._index()
            except PyMongoError as exc:
                log.warning("search.store_unavailable", extra={"error": str(exc)})
            except Exception:  # a bug must not stop indexing for good: log it and try again
                log.exception("search.index_failed")
            last_pass = time.monotonic()
            await asyncio.sleep(self._pause)
