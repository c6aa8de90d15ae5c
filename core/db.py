"""The one place where the MongoDB client is created and Beanie is initialised."""

from __future__ import annotations

from beanie import init_beanie
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import OperationFailure

from core.documents import DOCUMENT_MODELS, MESSAGE_SEARCH_INDEX, MessageWords
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
    await ensure_search_index(MessageWords.get_pymongo_collection())
    return client


async def ensure_search_index(words: AsyncCollection) -> None:
    """Create message search's text index unless it exists.

    nx-27017 does not list its text indexes, and creating one again over a collection
    that has documents fails with "constraint failed" while the existing index stays
    whole and keeps indexing (measured; docs/store.md). MongoDB creates an existing
    index again without error.
    """
    try:
        await words.create_indexes([MESSAGE_SEARCH_INDEX])
    except OperationFailure as exc:
        if (exc.details or {}).get("errmsg") != "constraint failed":
            raise


async def ping(client: AsyncMongoClient) -> None:
    """Raise if the store does not answer a ping."""
    await client.admin.command("ping")
