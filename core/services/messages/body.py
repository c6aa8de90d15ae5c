"""What a message body may be."""

from __future__ import annotations

from core.errors import InvalidInput, PayloadTooLarge
from core.payloads import MAX_BODY_LENGTH


def validate_body(body: str, has_attachments: bool) -> None:
    """Bodies are at most MAX_BODY_LENGTH characters and not empty unless files are attached."""
    if len(body) > MAX_BODY_LENGTH:
        raise PayloadTooLarge(f"body is longer than {MAX_BODY_LENGTH} characters")
    if not body.strip() and not has_attachments:
        raise InvalidInput("body is empty")
