"""Publishing planned deliveries on an MQTT connection."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import aiomqtt

from core.events import Delivery


async def publish(client: aiomqtt.Client, deliveries: Iterable[Delivery]) -> None:
    """Publish every delivery; QoS 1 ones are awaited until the broker acknowledged them."""
    await asyncio.gather(
        *(client.publish(d.topic, d.payload, qos=d.qos, retain=d.retain) for d in deliveries)
    )
