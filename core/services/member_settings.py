"""Each member's own view of a conversation: archived and muted, stored per member.

Archiving hides a conversation from the member's main list until a message newer than
the moment it was archived arrives (it comes back, as on WhatsApp), unless it is also
muted: muted archived conversations stay archived. Muted conversations send no email or
push and do not count in the member's total unread badge.
"""

from __future__ import annotations

from core.documents import Conversation, MemberSettings


def _key(conversation_id: str, user_id: str) -> str:
    return f"{conversation_id}:{user_id}"


def is_archived(settings: MemberSettings | None, conversation: Conversation) -> bool:
    """Archived and not brought back by a newer message (a muted one stays archived)."""
    return settings is not None and settings.archived and (settings.muted or conversation.last_seq <= settings.archived_seq)


async def of_member(conversation_id: str, user_id: str) -> MemberSettings | None:
    return await MemberSettings.get(_key(conversation_id, user_id))


async def of_user(user_id: str) -> dict[str, MemberSettings]:
    """The user's settings by conversation id (one store round trip)."""
    return {s.conversation_id: s for s in await MemberSettings.find({"user_id": user_id}).to_list()}


async def change(conversation: Conversation, user_id: str, archived: bool | None, muted: bool | None) -> MemberSettings:
    """Archive/unarchive and mute/unmute for one member (None keeps the setting); written whole."""
    cid = str(conversation.id)
    settings = await of_member(cid, user_id) or MemberSettings(id=_key(cid, user_id), conversation_id=cid, user_id=user_id)
    settings.archived = is_archived(settings, conversation)  # one that came back is no longer archived
    if archived is not None:
        settings.archived, settings.archived_seq = archived, conversation.last_seq if archived else 0
    if muted is not None:
        settings.muted = muted
    document = settings.model_dump(by_alias=True, exclude={"revision_id"})
    await MemberSettings.get_pymongo_collection().replace_one({"_id": settings.id}, document, upsert=True)
    return settings
