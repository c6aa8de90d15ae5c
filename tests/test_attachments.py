"""Attachments: uploads into GridFS with sniffed types and limits, and who may download them."""

from __future__ import annotations

import json

import httpx
import pytest

from core import topics
from tests.conftest import EVERY_BROKER
from tests.support import Account, System, device, open_conversation, signup

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89" + bytes(200)
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n" + b"%" * 300


async def upload(api: httpx.AsyncClient, account: Account, content: bytes, name: str = "photo.png", declared: str = "image/png") -> httpx.Response:
    return await api.post("/api/attachments", files={"file": (name, content, declared)}, headers=account.headers)


async def test_upload_and_download_by_the_uploader(api: httpx.AsyncClient, alice: Account) -> None:
    response = await upload(api, alice, PNG, name="../../etc/cat photo.png")
    assert response.status_code == 201, response.text
    meta = response.json()
    assert meta["content_type"] == "image/png" and meta["size"] == len(PNG) and meta["kind"] == "image"
    assert meta["filename"] == "cat photo.png" and meta["url"] == f"/api/attachments/{meta['id']}"
    download = await api.get(meta["url"], headers=alice.headers)
    assert download.status_code == 200 and download.content == PNG
    assert download.headers["content-type"] == "image/png"
    assert download.headers["content-disposition"].startswith("inline;")
    assert download.headers["x-content-type-options"] == "nosniff"

    pdf = (await upload(api, alice, PDF, name="invoice.pdf", declared="application/pdf")).json()
    assert pdf["content_type"] == "application/pdf" and pdf["kind"] == "file"
    assert (await api.get(pdf["url"], headers=alice.headers)).headers["content-disposition"].startswith("attachment;")


@pytest.mark.parametrize(
    ("content", "declared"),
    [
        (b"just some text pretending to be an image" * 10, "image/png"),
        (b"MZ\x90\x00\x03\x00\x00\x00" + bytes(300), "image/jpeg"),  # a Windows executable
        (b"PK\x03\x04" + bytes(300), "application/pdf"),  # a zip archive
        (b"", "image/png"),
    ],
)
async def test_type_is_sniffed_not_declared(api: httpx.AsyncClient, alice: Account, content: bytes, declared: str) -> None:
    response = await upload(api, alice, content, declared=declared)
    assert response.status_code == 415 and response.json()["error"]["code"] == "unsupported_media_type"


async def test_size_limit(api: httpx.AsyncClient, alice: Account) -> None:
    too_big = PNG + bytes(10 * 1024 * 1024)
    response = await upload(api, alice, too_big)
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"


async def test_malformed_uploads(api: httpx.AsyncClient, alice: Account) -> None:
    wrong_field = await api.post("/api/attachments", files={"picture": ("a.png", PNG, "image/png")}, headers=alice.headers)
    assert wrong_field.status_code == 400
    not_multipart = await api.post("/api/attachments", content=PNG, headers={**alice.headers, "content-type": "image/png"})
    assert not_multipart.status_code == 400
    garbage = await api.post(
        "/api/attachments", content=b"--x\r\nnonsense", headers={**alice.headers, "content-type": "multipart/form-data; boundary=x"}
    )
    assert garbage.status_code == 400
    assert (await api.post("/api/attachments", files={"file": ("a.png", PNG, "image/png")})).status_code == 401


@EVERY_BROKER
async def test_attachments_in_messages_and_who_may_download(system: System, api: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    mallory = await signup(api)
    cid = (await open_conversation(api, alice, bob))["id"]
    photo = (await upload(api, alice, PNG)).json()
    assert (await api.get(photo["url"], headers=bob.headers)).status_code == 404, "not shown to bob yet"

    mallorys = (await upload(api, mallory, PNG)).json()
    stolen = await api.post(f"/api/conversations/{cid}/messages", json={"body": "", "attachment_ids": [mallorys["id"]]}, headers=alice.headers)
    assert stolen.status_code == 400, "only one's own uploads"

    async with device(system.node(1), bob) as bob_web, device(system.node(2), alice) as alice_web:
        request = {"conversation_id": cid, "client_msg_id": "pic-1", "body": "", "kind": "image", "attachment_ids": [photo["id"]]}
        await alice_web.client.publish(topics.user_outbox(alice.id, "send"), json.dumps(request), qos=1)
        [event] = await bob_web.wait_for(1, "message.created")
        await alice_web.client.publish(
            topics.user_outbox(alice.id, "send"),
            json.dumps({"conversation_id": cid, "client_msg_id": "pic-2", "body": "x", "attachment_ids": [mallorys["id"]]}),
            qos=1,
        )
        [refused] = await alice_web.wait_for(1, "error")
    assert refused["client_msg_id"] == "pic-2" and refused["error"]["code"] == "invalid_input"
    [shown] = event["message"]["attachments"]
    assert shown == {**photo, "kind": "image"} and event["message"]["kind"] == "image"
    history = (await api.get(f"/api/conversations/{cid}/messages", headers=bob.headers)).json()["items"]
    assert history[0]["attachments"] == [shown]

    assert (await api.get(photo["url"], headers=bob.headers)).content == PNG
    assert (await api.get(photo["url"], headers=mallory.headers)).status_code == 404
    assert (await api.get("/api/attachments/0123456789abcdef01234567", headers=alice.headers)).status_code == 404
    assert (await api.get("/api/attachments/not-an-id", headers=alice.headers)).status_code == 404

    # deleting the message hides the file from the other members again
    await api.delete(f"/api/messages/{history[0]['id']}", headers=alice.headers)
    assert (await api.get(photo["url"], headers=bob.headers)).status_code == 404
    assert (await api.get(photo["url"], headers=alice.headers)).status_code == 200


async def test_refused_upload_leaves_nothing(system: System, api: httpx.AsyncClient, alice: Account) -> None:
    from gridfs import AsyncGridFSBucket
    from pymongo import AsyncMongoClient

    mongo: AsyncMongoClient = AsyncMongoClient(system.store_uri)
    bucket = AsyncGridFSBucket(mongo.mqchat, bucket_name="attachments")  # through GridFS, as mqchat stores them
    try:
        before = len(await bucket.find({}).to_list())
        assert (await upload(api, alice, PNG + bytes(10 * 1024 * 1024))).status_code == 413
        assert len(await bucket.find({}).to_list()) == before
        assert (await upload(api, alice, PNG)).status_code == 201
        assert len(await bucket.find({}).to_list()) == before + 1, "the check can see a stored file"
    finally:
        await mongo.close()
