"""The one place that reaches into aiomqtt's private parts: its paho client and its PUBACK table.

aiomqtt (2.x) exposes no socket options, no manual acknowledgement and no way to
hand paho a publish without its O(pending) bookkeeping; everything that needs
those goes through here, so an aiomqtt upgrade is checked in one file.
"""

from __future__ import annotations

import asyncio
import socket

import aiomqtt
import paho.mqtt.client as paho

from core.events import Delivery


def set_nodelay(client: aiomqtt.Client) -> None:
    """TCP_NODELAY on the connected client's socket."""
    connection = client._client.socket()  # noqa: SLF001
    if isinstance(connection, socket.socket):
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def set_manual_ack(client: aiomqtt.Client) -> None:
    """Received QoS 1/2 messages are acknowledged only by `ack`; call before connecting."""
    client._client.manual_ack_set(True)  # noqa: SLF001


def ack(client: aiomqtt.Client, message: aiomqtt.Message) -> None:
    """Send the PUBACK (or PUBREC) of one received message."""
    client._client.ack(message.mid, message.qos)  # noqa: SLF001


def publish_now(client: aiomqtt.Client, delivery: Delivery) -> tuple[int, asyncio.Event] | None:
    """Hand one delivery to paho; (mid, the event aiomqtt's PUBACK callback sets), or None if nothing is awaited."""
    info = client._client.publish(delivery.topic, delivery.payload, qos=delivery.qos, retain=delivery.retain)  # noqa: SLF001
    if info.rc != paho.MQTT_ERR_SUCCESS:
        raise aiomqtt.MqttError(f"could not publish: {paho.error_string(info.rc)}")
    if delivery.qos == 0 or info.is_published():
        return None
    confirmed = client._pending_publishes[info.mid] = asyncio.Event()  # noqa: SLF001 - set by on_publish
    return info.mid, confirmed


def forget_unconfirmed(client: aiomqtt.Client, confirmations: dict[int, asyncio.Event]) -> None:
    """Drop from aiomqtt's table the confirmations the broker never sent."""
    pending = client._pending_publishes  # noqa: SLF001
    for mid, confirmed in confirmations.items():
        if pending.get(mid) is confirmed:
            del pending[mid]


def give_up_disconnecting(client: aiomqtt.Client) -> None:
    """Count the client disconnected (its DISCONNECT was never acknowledged) and drop its socket, so it can be discarded."""
    if not client._disconnected.done():  # noqa: SLF001
        client._disconnected.set_result(None)  # noqa: SLF001
    if client._lock.locked():  # noqa: SLF001
        client._lock.release()  # noqa: SLF001
    client._client._sock_close()  # noqa: SLF001
