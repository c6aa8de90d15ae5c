"""Reports of messages and users: the admins' queue, resolving with a note, evidence kept after a delete."""

from __future__ import annotations

import httpx

from tests.support import Account, open_conversation, signup


async def test_reported_message_is_kept_for_admins_after_its_author_deletes_it(
    api: httpx.AsyncClient, alice: Account, bob: Account, admin: Account
) -> None:
    carol = await signup(api)  # an outsider
    cid = (await open_conversation(api, alice, bob))["id"]
    sent = await api.post(f"/api/conversations/{cid}/messages", json={"body": "send me your password"}, headers=bob.headers)
    mid = sent.json()["id"]

    filed = await api.post("/api/reports", json={"message_id": mid, "reason": " phishing "}, headers=alice.headers)
    assert filed.status_code == 201, filed.text
    report = filed.json()
    assert (report["reporter_id"], report["user_id"], report["message_id"], report["conversation_id"]) == (alice.id, bob.id, mid, cid)
    assert report["reason"] == "phishing" and report["status"] == "open" and report["message"]["body"] == "send me your password"
    again = await api.post("/api/reports", json={"message_id": mid, "reason": "still phishing"}, headers=alice.headers)
    assert again.status_code == 200 and again.json()["id"] == report["id"], "one open report per reporter and thing"
    assert (await api.delete(f"/api/messages/{mid}", headers=bob.headers)).status_code == 200
    by_user = await api.post("/api/reports", json={"user_id": bob.id, "reason": "spammer"}, headers=carol.headers)
    assert by_user.status_code == 201 and by_user.json()["message"] is None and by_user.json()["user_id"] == bob.id

    mine = (await api.get(f"/api/admin/reports?status=open&user_id={bob.id}", headers=admin.headers)).json()["items"]
    assert [r["id"] for r in mine] == [report["id"], by_user.json()["id"]], "oldest first"
    assert mine[0]["message"]["body"] == "send me your password", "the evidence survives the author's delete"

    resolved = await api.post(f"/api/admin/reports/{report['id']}/resolve", json={"note": "user warned"}, headers=admin.headers)
    assert resolved.status_code == 200
    body = resolved.json()
    assert (body["status"], body["resolution_note"], body["resolved_by"]) == ("resolved", "user warned", admin.id) and body["resolved_at"]
    twice = await api.post(f"/api/admin/reports/{report['id']}/resolve", json={"note": "again"}, headers=admin.headers)
    assert twice.status_code == 409
    still_open = (await api.get(f"/api/admin/reports?status=open&user_id={bob.id}", headers=admin.headers)).json()["items"]
    assert [r["id"] for r in still_open] == [by_user.json()["id"]]
    done = (await api.get(f"/api/admin/reports?status=resolved&user_id={bob.id}", headers=admin.headers)).json()["items"]
    assert [r["id"] for r in done] == [report["id"]]


async def test_reports_refuse_bad_input_and_outsiders_and_store_nothing(
    api: httpx.AsyncClient, alice: Account, bob: Account, admin: Account
) -> None:
    carol = await signup(api)
    cid = (await open_conversation(api, alice, bob))["id"]
    mid = (await api.post(f"/api/conversations/{cid}/messages", json={"body": "hello"}, headers=bob.headers)).json()["id"]
    own = (await api.post(f"/api/conversations/{cid}/messages", json={"body": "mine"}, headers=alice.headers)).json()["id"]
    cases = [
        (carol, {"message_id": mid, "reason": "x"}, 404),  # not a member: learns nothing
        (alice, {"message_id": "0" * 24, "reason": "x"}, 404),
        (alice, {"user_id": "0" * 24, "reason": "x"}, 404),
        (alice, {"message_id": own, "reason": "x"}, 400),
        (alice, {"user_id": alice.id, "reason": "x"}, 400),
        (alice, {"message_id": mid, "user_id": bob.id, "reason": "x"}, 400),
        (alice, {"reason": "x"}, 400),
        (alice, {"message_id": mid, "reason": "   "}, 400),
        (alice, {"message_id": mid, "reason": "x" * 1001}, 400),
        (alice, {"message_id": {"$ne": ""}, "reason": "x"}, 400),
        (alice, {"message_id": mid, "reason": {"$gt": ""}}, 400),
        (alice, {"message_id": mid, "reason": "x", "status": "resolved"}, 400),
    ]
    for who, body, status in cases:
        response = await api.post("/api/reports", json=body, headers=who.headers)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]["code"] == {400: "invalid_input", 404: "not_found"}[status]
    assert (await api.post("/api/reports", json={"user_id": bob.id, "reason": "x"})).status_code == 401
    for about in (alice, bob):
        stored = await api.get(f"/api/admin/reports?user_id={about.id}", headers=admin.headers)
        assert stored.status_code == 200 and stored.json()["items"] == [], "nothing stored"

    assert (await api.get("/api/admin/reports", headers=alice.headers)).status_code == 403
    assert (await api.post(f"/api/admin/reports/{'0' * 24}/resolve", json={}, headers=alice.headers)).status_code == 403
    assert (await api.post(f"/api/admin/reports/{'0' * 24}/resolve", json={}, headers=admin.headers)).status_code == 404
    assert (await api.post("/api/admin/reports/nope/resolve", json={}, headers=admin.headers)).status_code == 404
    assert (await api.get("/api/admin/reports?status=$ne", headers=admin.headers)).status_code == 400
    assert (await api.get("/api/admin/reports?user_id=$ne", headers=admin.headers)).status_code == 400
