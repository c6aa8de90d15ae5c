"""Reactions: one emoji per user per emoji and message, at most a few different emoji per message.

A message's reactions are one `ReactionSet` of `<user id>:<emoji>` entries in the order they
were added, changed only by a single-document `$addToSet`/`$pull` of one entry: two people
reacting at once both count, and a repeat is no second reaction. The limit on different emoji
is checked on the set as it was just before the change: an emoji that would rank beyond the
limit (by first appearance) is taken back at once and refused, so concurrent newcomers can
never push a message past it.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import regex
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from core.documents import Conversation, Message, ReactionSet
from core.errors import Conflict, InvalidInput
from core.payloads import MessageOut, ReactionOut
from core.services import blocks
from core.services.messages import get_message_for_member

MAX_EMOJI_CODEPOINTS = 16  # the longest family/flag sequences are ~10
_GRAPHEME = regex.compile(r"\X")
# A reaction is an emoji (or a pictographic symbol): letters, digits and punctuation alone are not.
_SYMBOL_CATEGORIES = frozenset({"So", "Sk", "Sm"})
_KEYCAP = "\u20e3"


def valid_emoji(emoji: str) -> str:
    """The emoji if it is one: a single grapheme with a symbol in it, no spaces or controls; InvalidInput otherwise."""
    if (
        len(emoji) > MAX_EMOJI_CODEPOINTS
        or not _GRAPHEME.fullmatch(emoji)
        or any(unicodedata.category(char) in ("Cc", "Zs", "Zl", "Zp") for char in emoji)
        or not any(unicodedata.category(char) in _SYMBOL_CATEGORIES or char == _KEYCAP for char in emoji)
    ):
        raise InvalidInput("emoji must be a single emoji")
    return emoji


def summarize(entries: list[str]) -> list[ReactionOut]:
    """Entries as the view shows them: per emoji (in order of first use) its count and who."""
    by_emoji: dict[str, list[str]] = {}
    for entry in entries:
        user_id, _, emoji = entry.partition(":")
        by_emoji.setdefault(emoji, []).append(user_id)
    return [ReactionOut(emoji=emoji, count=len(users), user_ids=users) for emoji, users in by_emoji.items()]


@dataclass(frozen=True, slots=True)
class Reacted:
    """A reaction request's outcome: the message, its conversation, its reactions now, and whether they changed."""

    message: Message
    conversation: Conversation
    reactions: list[ReactionOut]
    changed: bool


async def react(user_id: str, message_id: str, emoji: str, on: bool, max_distinct: int) -> Reacted:
    """Add (`on`) or take back the user's `emoji` on a message of a conversation they belong to."""
    emoji = valid_emoji(emoji)
    message, conversation = await get_message_for_member(message_id, user_id)
    if message.deleted:
        raise Conflict("the message was deleted")
    await blocks.check_may_write(conversation, user_id)
    entry = f"{user_id}:{emoji}"
    if on and message.reacted != 1:  # before the set changes: a page that sees the reaction sees the flag
        await Message.get_pymongo_collection().update_one({"_id": message.id}, {"$set": {"reacted": 1}})
    before = await _change(message, entry, on)
    if not on:
        return Reacted(message, conversation, summarize([e for e in before if e != entry]), entry in before)
    after = before if entry in before else [*before, entry]
    if _distinct(after).index(emoji) >= max_distinct:
        await _change(message, entry, on=False)
        raise Conflict(f"a message has at most {max_distinct} different reactions")
    return Reacted(message, conversation, summarize(after), entry not in before)


def _distinct(entries: list[str]) -> list[str]:
    return list(dict.fromkeys(entry.partition(":")[2] for entry in entries))


async def _change(message: Message, entry: str, on: bool) -> list[str]:
    """Add or pull one entry in one atomic update; the entries just before it."""
    collection = ReactionSet.get_pymongo_collection()
    update = {"$addToSet": {"entries": entry}} if on else {"$pull": {"entries": entry}}
    message_id = str(message.id)
    before = await collection.find_one_and_update({"_id": message_id}, update, return_document=ReturnDocument.BEFORE)
    if before is None and on:  # the message's first reaction: create its (empty) set, then add
        try:
            await collection.insert_one({"_id": message_id, "conversation_id": message.conversation_id, "entries": []})
        except DuplicateKeyError:  # someone else created it meanwhile
            pass
        before = await collection.find_one_and_update({"_id": message_id}, update, return_document=ReturnDocument.BEFORE)
    return list(before["entries"]) if before else []


async def attach(views: list[MessageOut]) -> list[MessageOut]:
    """Fill in the reactions of message views (one store round trip); deleted messages show none."""
    return fill(views, await entries_of([view.id for view in views if not view.deleted]))


async def entries_of(message_ids: list[str]) -> dict[str, list[str]]:
    """The reaction entries of these messages (one store round trip, none for no ids), by message id."""
    if not message_ids:
        return {}
    sets = ReactionSet.get_pymongo_collection().find({"_id": {"$in": message_ids}}, {"entries": 1})
    return {doc["_id"]: doc["entries"] for doc in await sets.to_list()}


def may_have_reactions(stored: dict) -> bool:
    """Whether a stored message may have reactions to look up: not deleted, and reacted to (or stored before
    messages recorded that)."""
    return not stored.get("deleted") and stored.get("reacted") != 0


def fill(views: list[MessageOut], entries: dict[str, list[str]]) -> list[MessageOut]:
    """Set the reactions of message views from `entries_of` them; deleted messages show none."""
    for view in views:
        if not view.deleted:
            view.reactions = summarize(entries.get(view.id, []))
    return views


async def clear(message_id: str) -> None:
    """A deleted message loses its reactions."""
    await ReactionSet.get_pymongo_collection().delete_one({"_id": message_id})
