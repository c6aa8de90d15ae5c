"""Archive and mute, per member: the main list, the archived list, coming back on a new message, the badge."""

from __future__ import annotations

import httpx

from tests.conftest import EVERY_BROKER
from tests.support import Account, System, device, open_conversation, signup


async def listed(api: httpx.AsyncClient, viewer: Account, archived: bool = False) -> list[str]:
    response = await api.get(f"/api/conversations?archived={'true' if archived else 'false'}", headers=viewer.headers)
    assert response.status_code == 200
    return [c["id"] for c in response.json()["items"]]


async def settings(api: httpx.AsyncClient, viewer: Account, cid: str, **change: object) -> httpx.Response:
    return await api.patch(f"/api/conversations/{cid}/settings", json=change, headers=viewer.headers)


async def send(api: httpx.AsyncClient, author: Account, cid: str, body: str = "hi") -> None:
    assert (await api.post(f"/api/conversations/{cid}/messages", json={"body": body}, headers=author.headers)).status_code == 201


@EVERY_BROKER
async def test_archive_and_mute_are_per_member(system: System, api: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    carol = await signup(api)
    plain = (await open_conversation(api, alice, bob))["id"]
    quiet = (await open_conversation(api, alice, carol))["id"]
    for cid, author in ((plain, bob), (quiet, carol)):
        await send(api, author, cid)

    async with device(system.node(1), alice, "phone") as phone:
        archived = await settings(api, alice, plain, archived=True)
        assert archived.status_code == 200 and (archived.json()["archived"], archived.json()["muted"]) == (True, False)
        [event] = await phone.wait_for(1, "conversation.settings")
        assert event == {"type": "conversation.settings", "conversation_id": plain, "archived": True, "muted": False}
    assert plain not in await listed(api, alice) and await listed(api, alice, archived=True) == [plain]
    assert plain in await listed(api, bob), "bob's list is his own"
    assert (await api.get(f"/api/conversations/{plain}", headers=bob.headers)).json()["archived"] is False

    # a new message brings an archived conversation back...
    await send(api, bob, plain, "are you there?")
    assert plain in await listed(api, alice) and await listed(api, alice, archived=True) == []
    # ...unless it is muted as well
    both = await settings(api, alice, quiet, archived=True, muted=True)
    assert (both.json()["archived"], both.json()["muted"]) == (True, True)
    await send(api, carol, quiet, "sale today!")
    assert quiet not in await listed(api, alice) and await listed(api, alice, archived=True) == [quiet]
    unread = (await api.get("/api/unread", headers=alice.headers)).json()
    assert unread["by_conversation"] == {plain: 2, quiet: 2} and unread["total"] == 2, "muted ones leave the badge"
    assert (await api.get("/api/unread", headers=carol.headers)).json()["total"] == 0

    unarchived = await settings(api, alice, quiet, archived=False)
    assert (unarchived.json()["archived"], unarchived.json()["muted"]) == (False, True)
    assert quiet in await listed(api, alice)
    assert (await settings(api, alice, quiet, muted=False)).json()["muted"] is False
    assert (await api.get("/api/unread", headers=alice.headers)).json()["total"] == 4


async def test_settings_refuse_bad_input_and_outsiders(api: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    carol = await signup(api)
    cid = (await open_conversation(api, alice, bob))["id"]
    assert (await settings(api, carol, cid, archived=True)).status_code == 404, "outsiders learn nothing"
    for cid_, body, status in [
        ("0" * 24, {"archived": True}, 404), ("not-an-id", {"archived": True}, 404),
        (cid, {"archived": "yes"}, 400), (cid, {"muted": 1}, 400), (cid, {"muted": {"$set": True}}, 400),
        (cid, {"archived": True, "user_id": bob.id}, 400),
    ]:  # fmt: skip
        response = await settings(api, alice, cid_, **body)
        assert response.status_code == status, (body, response.text)
    assert (await api.patch(f"/api/conversations/{cid}/settings", json={"archived": True})).status_code == 401
    view = (await api.get(f"/api/conversations/{cid}", headers=alice.headers)).json()
    assert (view["archived"], view["muted"]) == (False, False), "nothing stored"
    assert cid in await listed(api, alice)
