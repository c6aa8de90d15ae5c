"""Finding a stored document by an id a client sent."""

from __future__ import annotations

from typing import TypeVar

from beanie import Document, PydanticObjectId

from core import topics

D = TypeVar("D", bound=Document)


async def get_by_id(document: type[D], document_id: str) -> D | None:
    """The `document` with this id, or None (also for ids that are no ObjectId)."""
    if not topics.is_object_id(document_id):
        return None
    return await document.get(PydanticObjectId(document_id))
