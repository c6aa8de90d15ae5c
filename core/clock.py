"""Time helpers: timezone-aware UTC now and the contract's ISO-8601 format."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Current time in UTC, truncated to milliseconds (what the store keeps)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def iso(value: datetime | None) -> str | None:
    """Format as `2026-11-21T12:00:00.123Z`; naive datetimes are taken as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_ms(value: datetime) -> int:
    """Epoch milliseconds of a datetime (naive taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def iso_from_ms(value: int | None) -> str | None:
    """Format epoch milliseconds like `iso`."""
    return None if value is None else iso(datetime.fromtimestamp(value / 1000, UTC))
