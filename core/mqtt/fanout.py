"""Publishing planned deliveries on an MQTT connection, after the broker's rights are in step.

A batch of deliveries is handed to paho in order and then awaited as a whole.
aiomqtt's own `publish` costs O(pending) per call (it scans every pending call
and counts them for a warning), which made a 1,500-delivery batch quadratic;
here each delivery costs O(1): its completion event goes straight into the
table aiomqtt's PUBACK callback completes (core.mqtt.internals).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from typing import Any

import aiomqtt

from core import metrics
from core.broker_rights import BrokerRights
from core.events import Delivery
from core.mqtt import internals


async def publish(client: aiomqtt.Client, deliveries: Iterable[Delivery], rights: BrokerRights) -> None:
    """Apply membership changes to the broker's rights, then publish every delivery.

    Returns once the broker acknowledged every QoS 1 delivery; raises aiomqtt.MqttError
    when the connection fails first or the broker does not answer within the client's timeout.
    """
    batch = list(deliveries)
    await rights.apply(batch)
    await send_in_order(client, batch)


def send_in_order(client: aiomqtt.Client, batch: list[Delivery]) -> Coroutine[Any, Any, None]:
    """Hand every delivery to the connection now, in order; returns what waits for the broker's PUBACKs.

    Deliveries handed over later go out after these, so a caller may send the next
    batch before this one is confirmed without changing the order subscribers see.
    """
    confirmations: dict[int, asyncio.Event] = {}
    for delivery in batch:
        awaited = internals.publish_now(client, delivery)
        if awaited is not None:
            mid, confirmed = awaited
            confirmations[mid] = confirmed
    metrics.EVENTS_PUBLISHED.inc(len(batch))
    return _confirmed(client, confirmations, len(batch))


async def _confirmed(client: aiomqtt.Client, confirmations: dict[int, asyncio.Event], sent: int) -> None:
    if not confirmations:
        return
    try:
        async with asyncio.timeout(client.timeout):  # not wait_for, which may swallow a cancellation (core.tasks)
            await _all_set(list(confirmations.values()))
    except TimeoutError:
        raise aiomqtt.MqttError(f"the broker acknowledged only part of {sent} deliveries in time") from None
    finally:
        internals.forget_unconfirmed(client, confirmations)  # left over only when the broker did not answer


async def _all_set(events: list[asyncio.Event]) -> None:
    """Until every event is set: awaited in turn, not a task each (a batch has up to thousands)."""
    for event in events:
        await event.wait()
