"""Message search (`GET /api/search/messages`): words of any language in the caller's conversations only."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from bson import ObjectId
from pymongo import AsyncMongoClient

from core.services.search.indexer import BUSY_BATCH, CHUNK, SearchIndexer
from tests.support import Account, System, open_conversation, signup


async def send(api: httpx.AsyncClient, sender: Account, cid: str, body: str) -> dict[str, Any]:
    response = await api.post(f"/api/conversations/{cid}/messages", json={"body": body}, headers=sender.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def search(api: httpx.AsyncClient, account: Account, q: str, **params: Any) -> dict[str, Any]:
    response = await api.get("/api/search/messages", params={"q": q, **params}, headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def bodies(api: httpx.AsyncClient, account: Account, q: str, **params: Any) -> list[str]:
    return [hit["message"]["body"] for hit in (await search(api, account, q, **params))["items"]]


async def indexed(system: System, *conversation_ids: str) -> None:
    """Wait until the search indexer has done every message of these conversations (REST sends are found by its
    poll, every 2 s): read from the store, so that waiting spends none of the searcher's rate limit."""
    mongo: AsyncMongoClient = AsyncMongoClient(system.store_uri)
    try:
        for _ in range(60):
            pending = [await mongo.mqchat.messages.find_one({"conversation_id": cid, "search_indexed": 0}, {"_id": 1}) for cid in conversation_ids]
            if not any(pending):
                return
            await asyncio.sleep(0.25)
    finally:
        await mongo.close()
    raise AssertionError(f"messages of {conversation_ids} never indexed")


def marked(hit: dict[str, Any]) -> list[str]:
    return [part["text"] for part in hit["snippet"] if part["hit"]]


async def test_search_finds_words_in_my_conversations_ranked_and_paged(system: System, api: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    carol = await signup(api)
    shop = (await open_conversation(api, alice, bob))["id"]
    group = (await open_conversation(api, alice, bob, carol, kind="group", title="team"))["id"]
    elsewhere = (await open_conversation(api, bob, carol))["id"]
    await send(api, alice, shop, "Is the Café open on Sunday? I want a refund")
    await send(api, bob, shop, "Привет! КОФЕ is ready, the cafe opens at nine")
    await send(api, alice, shop, "東京で会いましょう")
    gone = await send(api, bob, shop, "cafe secret, deleted later")
    await send(api, carol, group, "team cafe meeting")
    await send(api, bob, elsewhere, "cafe gossip alice must never find")
    assert (await api.delete(f"/api/messages/{gone['id']}", headers=bob.headers)).status_code == 200

    # case and accents do not matter, nor does a word's ending; only the caller's conversations, never deleted messages
    await indexed(system, shop, group, elsewhere)
    result = await search(api, alice, "café")
    assert {hit["message"]["body"] for hit in result["items"]} == {
        "Is the Café open on Sunday? I want a refund", "Привет! КОФЕ is ready, the cafe opens at nine", "team cafe meeting",
    } and result["next_before"] is None  # fmt: skip
    first = result["items"][0]
    assert first["message"]["body"] == "Is the Café open on Sunday? I want a refund", "as typed, accent included, ranks first"
    assert [hit["message"]["body"] for hit in (await search(api, alice, "CAFE"))["items"]][-1] == first["message"]["body"]
    assert marked(first) == ["Café"] and "".join(part["text"] for part in first["snippet"]) == first["message"]["body"]
    # both have the words together (a phrase), neither as whole words: newest first
    assert await bodies(api, alice, "caf open") == ["Привет! КОФЕ is ready, the cafe opens at nine", "Is the Café open on Sunday? I want a refund"]
    assert marked((await search(api, alice, "caf open"))["items"][1]) == ["Caf", "open"]
    assert await bodies(api, alice, "sunday cafe") == await bodies(api, alice, "sunday"), "the words in any order"
    assert await bodies(api, alice, "кофе") == ["Привет! КОФЕ is ready, the cafe opens at nine"]
    assert marked((await search(api, alice, "会い"))["items"][0]) == ["会い"]
    assert await bodies(api, alice, "sunday refund", conversation_id=shop) == ["Is the Café open on Sunday? I want a refund"]
    assert await bodies(api, alice, "cafe", conversation_id=group) == ["team cafe meeting"]
    assert await bodies(api, alice, "secret") == [] and await bodies(api, alice, "gossip") == []
    assert await bodies(api, carol, "sunday") == [], "a member of another conversation of alice's sees nothing of this one"

    # pages continue after the last hit of the previous one, in the same order
    pages, before = [], None
    while True:
        page = await search(api, alice, "café", limit=1, **({"before": before} if before else {}))
        pages += [hit["message"]["id"] for hit in page["items"]]
        if (before := page["next_before"]) is None:
            break
    assert pages == [hit["message"]["id"] for hit in result["items"]]

    # an edit is found by its new words only
    edited = await send(api, alice, shop, "pickup at the warehouse")
    await indexed(system, shop)
    assert (await api.patch(f"/api/messages/{edited['id']}", json={"body": "pickup at the depot"}, headers=alice.headers)).status_code == 200
    await indexed(system, shop)
    assert await bodies(api, alice, "warehouse") == [] and await bodies(api, alice, "depot") == ["pickup at the depot"]


async def test_search_refuses_bad_input_and_outsiders(system: System, api: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    mallory = await signup(api)
    cid = (await open_conversation(api, alice, bob))["id"]
    message = await send(api, alice, cid, "invoice 4711 attached")
    theirs = (await open_conversation(api, mallory, bob))["id"]
    other = await send(api, mallory, theirs, "invoice of mallory")
    await indexed(system, cid, theirs)
    url = "/api/search/messages"
    cases = [
        ({}, 400), ({"q": ""}, 400), ({"q": "?!…"}, 400), ({"q": "x" * 201}, 400),
        ({"q": "invoice", "conversation_id": "not-an-id"}, 400), ({"q": "invoice", "conversation_id": '{"$ne": null}'}, 400),
        ({"q": "invoice", "before": "$gt"}, 400), ({"q": "invoice", "limit": 0}, 400),
        ({"q": "invoice", "conversation_id": "0" * 24}, 404),
        ({"q": "invoice", "before": "0" * 24}, 400), ({"q": "invoice", "before": other["id"]}, 400),
    ]  # fmt: skip
    for params, status in cases:
        response = await api.get(url, params=params, headers=alice.headers)
        assert response.status_code == status, (params, response.text)
        assert response.json()["error"]["code"] == ("not_found" if status == 404 else "invalid_input") and response.json()["error"]["message"]
    assert (await search(api, alice, '{"$regex": ".*"}'))["items"] == [], "operators are words like any other"
    assert [h["message"]["id"] for h in (await search(api, alice, "invoice.*"))["items"]] == [message["id"]]
    assert (await search(api, alice, "invoice", limit=10**6))["items"][0]["message"]["id"] == message["id"]

    # the outsider: no results from others' conversations, 404 for one of them, 401 without a token
    assert [h["message"]["id"] for h in (await search(api, mallory, "invoice"))["items"]] == [other["id"]]
    response = await api.get(url, params={"q": "invoice", "conversation_id": cid}, headers=mallory.headers)
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert (await api.get(url, params={"q": "invoice"})).status_code == 401


async def test_search_is_rate_limited_per_user(api: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    answers = await asyncio.gather(*(api.get("/api/search/messages", params={"q": "x"}, headers=alice.headers) for _ in range(31)))
    limited = [answer for answer in answers if answer.status_code == 429]
    assert limited and all(answer.status_code == 200 for answer in answers if answer not in limited)
    assert limited[0].json()["error"]["code"] == "rate_limited" and int(limited[0].headers["retry-after"]) >= 1
    assert (await api.get("/api/search/messages", params={"q": "x"}, headers=bob.headers)).status_code == 200, "per user"


async def test_messages_stored_before_search_are_indexed_by_the_command(system: System, api: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    cid = (await open_conversation(api, alice, bob))["id"]
    await send(api, alice, cid, "first")  # seq 1
    mongo: AsyncMongoClient = AsyncMongoClient(system.store_uri, tz_aware=True)
    try:  # what an older mqchat stored: no search_text; more than one write command's worth (indexer.CHUNK)
        first = await mongo.mqchat.messages.find_one({"conversation_id": cid})
        old = {key: value for key, value in first.items() if key != "search_indexed"}
        await mongo.mqchat.messages.insert_one({**old, "_id": ObjectId(), "seq": 2, "client_msg_id": "old-1", "body": "Ancient Bücher"})
        await mongo.mqchat.messages.insert_many([
            {**old, "_id": ObjectId(), "seq": 3 + n, "client_msg_id": f"older-{n}", "body": f"older {n}"} for n in range(2 * CHUNK)
        ])  # fmt: skip
        await mongo.mqchat.messages.replace_one({"_id": old["_id"]}, old)
        assert await bodies(api, alice, "bucher") == []
        assert system.cli("search-index").stdout.strip().startswith("indexed ")
        assert await bodies(api, alice, "bucher") == ["Ancient Bücher"] and await bodies(api, alice, "first") == ["first"]
        assert await mongo.mqchat.messages.count_documents({"conversation_id": cid, "search_indexed": 1}) == 2 + 2 * CHUNK
        assert await mongo.mqchat.message_words.count_documents({"conversation_id": cid}) == 2 + 2 * CHUNK
        assert system.cli("search-index").stdout.strip().startswith("indexed "), "a second run (and its start over documents) works"
    finally:
        await mongo.close()


async def test_the_indexer_runs_when_woken_and_leaves_a_backlog_to_the_bridge() -> None:
    """Without a store: `index` only records its passes. A wake-up brings a pass long before the poll; while
    the bridge's batches are large (a backlog) no pass comes, and one comes once they stop."""
    passes: asyncio.Queue[None] = asyncio.Queue()

    async def index() -> int:
        passes.put_nowait(None)
        return 0

    woken = SearchIndexer(index, pause=0.5, poll=600.0, max_lag=600.0)
    polling = SearchIndexer(index, pause=0.5, poll=0.05)
    running = asyncio.create_task(woken.run())
    try:
        woken.wake(1)
        await asyncio.wait_for(passes.get(), 10)
        for _ in range(20):  # the bridge works through a backlog for twice the pause between passes: large batches
            woken.wake(BUSY_BATCH)
            await asyncio.sleep(0.05)
        assert passes.empty(), "no pass while the bridge is busy"
        await asyncio.wait_for(passes.get(), 10)
        running.cancel()
        running = asyncio.create_task(polling.run())
        await asyncio.wait_for(passes.get(), 10)  # never woken: the poll finds what other processes wrote
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
