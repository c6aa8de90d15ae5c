"""The one place where the MongoDB client is created and Beanie is initialised."""

from __future__ import annotations

from beanie import init_beanie
from pymongo import AsyncMongoClient

from core.documents import DOCUMENT_MODELS
from core.metrics import StoreCommands
from core.settings import Settings


async def init_db(settings: Settings, uri: str | None = None) -> AsyncMongoClient:
    """Connect to the store named by `uri` (default: the settings') and initialise Beanie.

    Returns the client; the caller closes it with `await client.close()`.
    """
    client: AsyncMongoClient = AsyncMongoClient(
        uri or settings.mongodb_uri or settings.embedded_store_uri,
        tz_aware=True,
        uuidRepresentation="standard",
        serverSelectionTimeoutMS=5000,
        appname="mqchat",
        event_listeners=[StoreCommands()],  # latency and failures of every command (core.metrics)
    )
    await init_beanie(database=client[settings.db_name], document_models=DOCUMENT_MODELS)
    return client


async def ping(client: AsyncMongoClient) -> None:
    """Raise if the store does not answer a ping."""
    await client.admin.command("ping")
