"""Manual acknowledgement: a consumer PUBACKs a delivery only once it has handled it."""

from __future__ import annotations

from collections.abc import Iterable

import aiomqtt

from core.mqtt import internals


def manual_acks(client: aiomqtt.Client) -> aiomqtt.Client:
    """Turn off paho's automatic acknowledgements (before connecting: queued deliveries arrive at once)."""
    internals.set_manual_ack(client)
    return client


def acknowledge(client: aiomqtt.Client, messages: Iterable[aiomqtt.Message]) -> None:
    """PUBACK every QoS 1 message, in order."""
    for message in messages:
        if message.qos > 0:
            internals.ack(client, message)
