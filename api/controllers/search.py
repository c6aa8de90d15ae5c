"""`/api/search/messages`: finding words in the caller's conversations."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from api.limits import RequestLimits
from api.params import MessageCursor, PageLimit
from core.documents import User
from core.payloads import SearchPage
from core.services.search import messages as message_search

MAX_QUERY_LENGTH = 200

SearchText = Annotated[str, QueryParameter(min_length=1, max_length=MAX_QUERY_LENGTH, description="the words to find")]
ConversationFilter = Annotated[
    str | None, QueryParameter(pattern=r"^[0-9a-f]{24}$", description="search only this conversation (members only)")
]


class SearchController(Controller):
    path = "/api/search"
    tags = ["search"]

    @get("/messages")
    async def search_messages(
        self, q: SearchText, current_user: NamedDependency[User], limits: NamedDependency[RequestLimits],
        conversation_id: ConversationFilter = None, before: MessageCursor = None, limit: PageLimit = None,
    ) -> SearchPage:  # fmt: skip
        """Messages of the caller's conversations having every word of `q` (case- and accent-insensitive,
        a word's beginning is enough), best match first, then newest; rate limited per user."""
        await limits.check(limits.message_search, str(current_user.id), "message searches")
        hits, next_before = await message_search.search(str(current_user.id), q, conversation_id, before, limit)
        return SearchPage(items=hits, next_before=next_before)
