"""The history's cursor positions without servers: remembered pages stay within the bound."""

from __future__ import annotations

from core.services.messages import CursorPositions


async def test_cursor_positions_stay_within_their_bound() -> None:
    positions = CursorPositions(size=100)
    for page in range(100):
        positions.remember([{"_id": f"{page:012x}{n:012x}", "conversation_id": "c", "seq": page * 50 + n} for n in range(50)])
    assert len(positions._known) == 100
    newest = f"{99:012x}{49:012x}"
    assert await positions.find(newest) == ("c", 99 * 50 + 49)  # remembered: no store needed
