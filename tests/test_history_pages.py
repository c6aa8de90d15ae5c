"""A history page's exact JSON: every field of every kind of message, paged back with `next_before` and caught up
with `after_seq`, with the members' watermarks (`read_by`) and reactions read beside the page."""

from __future__ import annotations

from typing import Any

import httpx
from bson import ObjectId
from pymongo import AsyncMongoClient

from core.documents import Message
from core.services.messages.edit import _replace_as_read
from tests.support import Account, System, open_conversation, signup
from tests.test_attachments import PNG, upload


async def _send(api: httpx.AsyncClient, cid: str, account: Account, **body: Any) -> dict[str, Any]:
    response = await api.post(f"/api/conversations/{cid}/messages", json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_page_shows_each_message_as_it_is_now(api: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    carol, outsider = await signup(api), await signup(api)
    cid = (await open_conversation(api, alice, bob, carol, kind="group", title="history shapes"))["id"]
    other = (await open_conversation(api, alice, outsider))["id"]
    photo = (await upload(api, alice, PNG)).json()
    plain = await _send(api, cid, alice, body="first")
    pictured = await _send(api, cid, alice, body="", kind="image", attachment_ids=[photo["id"]])
    reply = await _send(api, cid, bob, body="answer", reply_to=plain["id"])
    edited = await _send(api, cid, alice, body="typo")
    gone = await _send(api, cid, carol, body="oops")
    elsewhere = await _send(api, other, alice, body="not here")
    for who, message, emoji in ((bob, plain, "👍"), (carol, plain, "🎉"), (carol, plain, "👍"), (bob, edited, "👀"), (bob, gone, "👍")):
        reacted = await api.post(f"/api/messages/{message['id']}/reactions", json={"emoji": emoji}, headers=who.headers)
        assert reacted.status_code == 200, reacted.text
    edited = (await api.patch(f"/api/messages/{edited['id']}", json={"body": "fixed"}, headers=alice.headers)).json()
    gone = (await api.delete(f"/api/messages/{gone['id']}", headers=carol.headers)).json()
    for who, up_to in ((bob, reply), (carol, edited)):
        read = await api.post(f"/api/conversations/{cid}/read", json={"message_id": up_to["id"]}, headers=who.headers)
        assert read.status_code == 200, read.text

    assert edited["body"] == "fixed" and edited["edited_at"] and gone["deleted"] and gone["body"] == ""
    expected = [  # oldest first, as each member sees it now
        {**plain, "read_by": sorted([bob.id, carol.id]), "reactions": [
            {"emoji": "👍", "count": 2, "user_ids": [bob.id, carol.id]}, {"emoji": "🎉", "count": 1, "user_ids": [carol.id]}]},
        {**pictured, "read_by": sorted([bob.id, carol.id]), "reactions": []},
        {**reply, "read_by": [carol.id], "reactions": []},  # bob's own message: not in its read_by
        {**edited, "read_by": [carol.id], "reactions": [{"emoji": "👀", "count": 1, "user_ids": [bob.id]}]},
        {**gone, "read_by": [], "reactions": []},  # deleted: no reactions, whoever reacted
    ]  # fmt: skip
    assert pictured["attachments"][0]["id"] == photo["id"] and reply["reply_preview"]["id"] == plain["id"]

    url = f"/api/conversations/{cid}/messages"
    newest_first, before, cursors = [], None, []
    for _ in range(3):  # 2 + 2 + 1
        page = (await api.get(url, params={"limit": 2} | ({"before": before} if before else {}), headers=alice.headers)).json()
        newest_first += page["items"]
        before = page["next_before"]
        cursors.append(before)
    assert newest_first == expected[::-1]
    assert cursors == [edited["id"], pictured["id"], None], "next_before: the page's last message, null on the last page"
    caught_up = (await api.get(url, params={"after_seq": plain["seq"], "limit": 3}, headers=carol.headers)).json()
    assert caught_up == {"items": expected[1:4]}, "after_seq: oldest first, no next_before"
    assert (await api.get(url, params={"after_seq": gone["seq"]}, headers=bob.headers)).json() == {"items": []}

    # what a page refuses, and to whom
    assert (await api.get(url, headers=outsider.headers)).status_code == 404
    assert (await api.get(url, params={"after_seq": 0}, headers=outsider.headers)).status_code == 404
    assert (await api.get("/api/conversations/not-an-id/messages", headers=alice.headers)).status_code == 404
    foreign_cursor = await api.get(url, params={"before": elsewhere["id"]}, headers=alice.headers)
    assert foreign_cursor.status_code == 400, "a cursor of another conversation"


async def test_messages_stored_before_reactions_were_flagged_still_show_theirs(
    system: System, api: httpx.AsyncClient, alice: Account, bob: Account
) -> None:  # fmt: skip
    """A page looks up the reactions of the messages flagged as reacted to, and of those stored before the flag
    existed (no `reacted` field), never skipping them as unreacted."""
    cid = (await open_conversation(api, alice, bob))["id"]
    older, newer, plain = [await _send(api, cid, alice, body=body) for body in ("older", "newer", "plain")]
    for message in (older, newer):
        reacted = await api.post(f"/api/messages/{message['id']}/reactions", json={"emoji": "👍"}, headers=bob.headers)
        assert reacted.status_code == 200, reacted.text
    mongo: AsyncMongoClient = AsyncMongoClient(system.store_uri, tz_aware=True)
    try:
        stored = mongo.mqchat.messages
        assert [(await stored.find_one({"_id": ObjectId(m["id"])}))["reacted"] for m in (older, newer, plain)] == [True, True, False]
        await stored.update_one({"_id": ObjectId(older["id"])}, {"$unset": {"reacted": ""}})  # as stored before the flag
    finally:
        await mongo.close()
    edited = await api.patch(f"/api/messages/{older['id']}", json={"body": "older, edited"}, headers=alice.headers)
    assert edited.status_code == 200, edited.text
    thumbs = [{"emoji": "👍", "count": 1, "user_ids": [bob.id]}]
    page = (await api.get(f"/api/conversations/{cid}/messages", headers=alice.headers)).json()["items"]
    assert [(m["body"], m["reactions"]) for m in page] == [("plain", []), ("newer", thumbs), ("older, edited", thumbs)]


async def test_an_edit_never_undoes_a_delete_or_a_first_reaction_made_since_the_message_was_read(
    store: None, api: httpx.AsyncClient, alice: Account, bob: Account
) -> None:  # fmt: skip
    """An edit writes the message whole: over a message deleted or first reacted to since the edit read it, that
    write would bring the body back or hide the reaction from history, so it is not made (the edit reads again)."""
    cid = (await open_conversation(api, alice, bob))["id"]
    message = await _send(api, cid, alice, body="first")
    read_before_reaction = await Message.get(ObjectId(message["id"]))
    assert (await api.post(f"/api/messages/{message['id']}/reactions", json={"emoji": "👍"}, headers=bob.headers)).status_code == 200
    read_before_reaction.body = "stale"
    assert not await _replace_as_read(read_before_reaction)
    read_after_reaction = await Message.get(ObjectId(message["id"]))
    read_after_reaction.body = "second"
    assert await _replace_as_read(read_after_reaction)
    [shown] = (await api.get(f"/api/conversations/{cid}/messages", headers=alice.headers)).json()["items"]
    assert (shown["body"], shown["reactions"]) == ("second", [{"emoji": "👍", "count": 1, "user_ids": [bob.id]}])

    read_before_delete = await Message.get(ObjectId(message["id"]))
    assert (await api.delete(f"/api/messages/{message['id']}", headers=alice.headers)).status_code == 200
    read_before_delete.body = "back from the dead"
    assert not await _replace_as_read(read_before_delete)
    [shown] = (await api.get(f"/api/conversations/{cid}/messages", headers=alice.headers)).json()["items"]
    assert (shown["body"], shown["deleted"]) == ("", True)
