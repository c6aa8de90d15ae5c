"""Small network checks used while starting child processes."""

from __future__ import annotations

import asyncio


async def port_open(host: str, port: int) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True
