"""Publishing planned deliveries on an MQTT connection, after the broker's rights are in step."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import aiomqtt

from core.broker_rights import BrokerRights
from core.events import Delivery


async def publish(client: aiomqtt.Client, deliveries: Iterable[Delivery], rights: BrokerRights) -> None:
    """Apply membership changes to the broker's rights, then publish every delivery.

    QoS 1 deliveries are awaited until the broker acknowledged them.
    """
    batch = list(deliveries)
    await rights.apply(batch)
    await asyncio.gather(*(client.publish(d.topic, d.payload, qos=d.qos, retain=d.retain) for d in batch))
