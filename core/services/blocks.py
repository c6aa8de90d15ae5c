"""Blocks: a user stops another from reaching them in direct conversations.

Once A blocks B, B cannot open a direct conversation with A nor send, react or type in
their existing ones (`forbidden`); like WhatsApp, A cannot write to B there either until A
unblocks. Groups and ticket conversations are not affected. Staff (agents, admins) cannot
be blocked: such a block is recorded (`enforced: false`, visible to admins) but a shop's
support can always reach its customer.

The bridge keeps who may write in a direct conversation beside the conversation
(core.services.conversation_cache); blocking and unblocking return the notices that make
every process forget the pair's direct conversations, to be published after the change.
"""

from __future__ import annotations

from pymongo.errors import DuplicateKeyError

from core import events
from core.clock import iso
from core.documents import Block, Conversation, User, direct_key_prefix
from core.errors import Forbidden, InvalidInput, NotFound
from core.events import Delivery
from core.payloads import AdminBlockOut, BlockOut
from core.roles import STAFF_ROLES
from core.services.users import find_user

MAX_LIST = 100


def _key(blocker_id: str, blocked_id: str) -> str:
    return f"{blocker_id}:{blocked_id}"


async def block(blocker: User, user_id: str) -> tuple[BlockOut, bool, list[Delivery]]:
    """Block `user_id`; (the block, whether it is new, the notices to publish). Blocking again answers the existing block."""
    blocker_id = str(blocker.id)
    if user_id == blocker_id:
        raise InvalidInput("you cannot block yourself")
    target = await find_user(user_id)
    if target is None:
        raise NotFound("user not found")
    record = Block(id=_key(blocker_id, user_id), blocker_id=blocker_id, blocked_id=user_id,
                   enforced=target.role not in STAFF_ROLES)  # fmt: skip
    try:
        await record.insert()
    except DuplicateKeyError:
        existing = await Block.get(record.id)
        if existing is None:  # pragma: no cover - unblocked in between
            raise
        return block_out(existing), False, []
    return block_out(record), True, await _pair_changed(blocker_id, user_id)


async def unblock(blocker_id: str, user_id: str) -> list[Delivery]:
    """Lift a block; the notices to publish. NotFound when there is none."""
    result = await Block.get_pymongo_collection().delete_one({"_id": _key(blocker_id, user_id)})
    if result.deleted_count == 0:
        raise NotFound("you have not blocked this user")
    return await _pair_changed(blocker_id, user_id)


async def _pair_changed(a: str, b: str) -> list[Delivery]:
    """A notice for each direct conversation of the pair (one per context): processes forget what they know of it."""
    prefix = direct_key_prefix(a, b)  # every key of the pair starts with it, and sorts below the same ending in ";"
    found = await Conversation.get_pymongo_collection().find(
        {"unique_key": {"$gte": prefix, "$lt": prefix[:-1] + ";"}}, projection={"_id": 1}
    ).to_list()
    return [notice for conversation in found for notice in events.conversation_changed(str(conversation["_id"]))]


async def blocked_by(blocker_id: str) -> list[BlockOut]:
    """The users `blocker_id` blocked, newest first."""
    found = await Block.find({"blocker_id": blocker_id}).sort([("created_at", -1)]).limit(MAX_LIST).to_list()
    return [block_out(record) for record in found]


async def recent(limit: int) -> list[AdminBlockOut]:
    """Every block, newest first (admins), the unenforced ones against staff included."""
    found = await Block.find({}).sort([("created_at", -1)]).limit(max(1, min(limit, MAX_LIST))).to_list()
    return [AdminBlockOut(blocker_id=b.blocker_id, blocked_id=b.blocked_id, enforced=b.enforced,
                          created_at=iso(b.created_at) or "") for b in found]  # fmt: skip


def block_out(record: Block) -> BlockOut:
    return BlockOut(user_id=record.blocked_id, enforced=record.enforced, created_at=iso(record.created_at) or "")


async def refusals(a: str, b: str) -> dict[str, str]:
    """Who of the pair may not write to the other, and why (one store round trip)."""
    found = await Block.get_pymongo_collection().find({"_id": {"$in": [_key(a, b), _key(b, a)]}}).to_list()
    refused: dict[str, str] = {}
    for record in found:
        if record["enforced"]:
            refused[record["blocked_id"]] = "this user does not accept your messages"
            refused.setdefault(record["blocker_id"], "you blocked this user: unblock them to write to them")
    return refused


async def refused_writers(conversation: Conversation) -> dict[str, str]:
    """The members who may not write in this conversation because of a block, and why (only direct ones have any)."""
    if conversation.kind != "direct" or len(conversation.participant_ids) != 2:
        return {}
    return await refusals(*conversation.participant_ids)


async def check_may_write(conversation: Conversation, user_id: str) -> None:
    """Forbidden when a block stands between `user_id` and the other member of a direct conversation."""
    if conversation.kind == "direct" and len(conversation.participant_ids) == 2:
        await check_may_write_to(user_id, next(uid for uid in conversation.participant_ids if uid != user_id))


async def check_may_write_to(writer_id: str, other_id: str) -> None:
    """Forbidden when a block stands between the two (either way), for a direct conversation."""
    refusal = (await refusals(writer_id, other_id)).get(writer_id)
    if refusal is not None:
        raise Forbidden(refusal)
