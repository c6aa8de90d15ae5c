"""A history page's exact JSON: every field of every kind of message, paged back with `next_before` and caught up
with `after_seq`, with the members' watermarks (`read_by`) and reactions read beside the page."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support import Account, open_conversation, signup
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
