"""Beanie documents: what mqchat stores, with its indexes declared next to the data.

Store-compatibility rules (see docs/store.md): references to other documents are
24-hex strings, never ObjectIds or `Link`s; documents are written whole
(insert/replace) unless an update shape is pinned by tests/test_store_conformance.py.
"""

from __future__ import annotations

from datetime import datetime

from beanie import Document
from pydantic import Field
from pymongo import ASCENDING, IndexModel

from core.clock import utcnow
from core.roles import Role


class User(Document):
    """A person who chats: customer, merchant, designer, support agent or admin."""

    email: str
    username: str
    role: Role
    password_hash: str
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    last_seen: datetime | None = None

    class Settings:
        name = "users"
        indexes = [
            IndexModel([("email", ASCENDING)], name="users_email_unique", unique=True),
            IndexModel([("username", ASCENDING)], name="users_username"),
            IndexModel([("role", ASCENDING)], name="users_role"),
        ]


DOCUMENT_MODELS: list[type[Document]] = [User]
