"""Searching the messages of the caller's conversations.

The store's text index finds the newest CANDIDATES messages having every term of the
query (`$text` over MessageWords, written by core.services.search.indexer, both on
MongoDB and nx-27017); they are ranked here (core.services.search.ranking), best first
and then newest first. A page continues after the `before` message of the previous
one: its score is computed again, so the cursor stays valid while messages arrive.
Deleted messages lose their words; one deleted or edited since its words were written is
left out until the indexer's next pass.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from core.documents import Conversation, Message, MessageWords
from core.errors import InvalidInput
from core.payloads import SearchHit
from core.services import conversations, messages
from core.services.lookup import get_by_id
from core.services.messages import StoredMessage
from core.services.search.folding import Query, parse_query
from core.services.search.ranking import score, snippet

# the newest matches that are ranked; older ones need a narrower query. The store's time grows with
# the matches it sorts and returns (docs/benchmarks.md)
CANDIDATES = 200
DEFAULT_PAGE = 20
MAX_PAGE = 50

Ranked = tuple[int, str, StoredMessage]  # (score, message id, its MessageWords as stored)


async def search(
    user_id: str, typed: str, conversation_id: str | None, before: str | None, limit: int | None
) -> tuple[list[SearchHit], str | None]:
    """A page of the caller's messages matching `typed` (in one conversation of theirs, or in all),
    and the `before` cursor of the next page (None on the last)."""
    query = parse_query(typed)
    if query is None:
        raise InvalidInput("q must contain a letter or a digit")
    if conversation_id is not None:
        await conversations.get_for_member(conversation_id, user_id)
        scope = [conversation_id]
    else:
        scope = await _conversation_ids(user_id)
    ranked = await _ranked(query, scope)
    if before is not None:
        cursor = await _cursor(query, before, scope)
        ranked = [found for found in ranked if found[:2] < cursor]
    size = max(1, min(limit or DEFAULT_PAGE, MAX_PAGE))
    page = ranked[:size]
    next_before = page[-1][1] if len(ranked) > size else None
    return await _hits(query, page), next_before


async def _conversation_ids(user_id: str) -> list[str]:
    found = await Conversation.get_pymongo_collection().find({"participant_ids": user_id}, {"_id": 1}).to_list()
    return [str(conversation["_id"]) for conversation in found]


async def _ranked(query: Query, scope: list[str]) -> list[Ranked]:
    """The newest CANDIDATES matches in `scope`, best first. Ids are 24-hex strings: they sort as the ObjectIds."""
    if not scope:
        return []
    found = await MessageWords.get_pymongo_collection().find(
        {"$text": {"$search": query.text_search}, "conversation_id": scope[0] if len(scope) == 1 else {"$in": scope}},
        {"search_text": 0},
    ).sort([("_id", -1)]).limit(CANDIDATES).to_list()  # fmt: skip
    return sorted(((score(query, words["body"]), words["_id"], words) for words in found), key=lambda f: f[:2], reverse=True)


async def _cursor(query: Query, before: str, scope: list[str]) -> tuple[int, str]:
    """Where the previous page ended: the `before` message's (score, id), scored on the words it was ranked by."""
    words = await MessageWords.get_pymongo_collection().find_one({"_id": before}, {"conversation_id": 1, "body": 1})
    if words is not None and words["conversation_id"] in scope:
        return score(query, words["body"]), before
    message = await get_by_id(Message, before)
    if message is None or message.conversation_id not in scope:
        raise InvalidInput("before must be a message of the searched conversations")
    return score(query, message.body), before


async def _hits(query: Query, page: list[Ranked]) -> list[SearchHit]:
    """The page's messages as they are now (one query per conversation), deleted ones left out, with snippets."""
    wanted: dict[str, list[int]] = defaultdict(list)
    for _, _, words in page:
        wanted[words["conversation_id"]].append(words["seq"])
    cids = sorted(wanted)
    found, watermarks = await asyncio.gather(
        asyncio.gather(*(Message.get_pymongo_collection().find({"conversation_id": cid, "seq": {"$in": wanted[cid]}}).to_list()
                         for cid in cids)),
        asyncio.gather(*(messages.read_states(cid) for cid in cids)),
    )  # fmt: skip
    current = {str(stored["_id"]): stored for group in found for stored in group if not stored.get("deleted")}
    # what changed since it was indexed is left out until the indexer's next pass (within a second)
    shown = [current[message_id] for _, message_id, words in page if current.get(message_id, {}).get("body") == words["body"]]
    previews = await messages.reply_previews(shown)
    by_conversation = dict(zip(cids, watermarks, strict=True))
    return [
        SearchHit(
            message=messages.stored_message_out(stored, by_conversation[stored["conversation_id"]], previews),
            snippet=snippet(query, stored["body"]),
        )
        for stored in shown
    ]
