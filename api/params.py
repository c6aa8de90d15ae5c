"""Query parameters several endpoints share, with their bounds declared once (the OpenAPI schema shows them)."""

from __future__ import annotations

from typing import Annotated

from litestar.params import QueryParameter

# The store's integers are 64-bit: pymongo cannot even send a larger number (OverflowError, a 500 before).
INT64_MAX = 2**63 - 1

PageLimit = Annotated[int | None, QueryParameter(ge=1, le=INT64_MAX, description="page size; larger values are clamped to 100")]
AfterSeq = Annotated[int | None, QueryParameter(ge=0, le=INT64_MAX, description="messages after this `seq`, oldest first")]
TicketBefore = Annotated[int | None, QueryParameter(ge=1, le=INT64_MAX, description="the previous page's `next_before`")]
MessageCursor = Annotated[
    str | None, QueryParameter(pattern=r"^[0-9a-f]{24}$", description="the previous page's `next_before` message id")
]
