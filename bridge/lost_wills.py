"""Lost Wills on a NATS cluster: the lead worker marks offline the devices that no node holds any more.

A client's Will lives in the memory of the node that holds its connection: when a
node dies (SIGKILL, a machine lost) the Wills of its clients die with it, and a
device that never comes back would stay online in its retained presence for ever.
So every MQCHAT_PRESENCE_AUDIT_MS (3 s) the lead worker asks every node for its
open MQTT connections (`$SYS.REQ.SERVER.PING.CONNZ` through the system account),
and each device its presence tracker holds online or away that no node listed in
two audits running is lost: the tracker takes it offline at once (the stored
presence with it), and what its Will would have said (retained `offline` on its
presence topic) goes out with the user's new aggregate presence. An audit that finds
devices newly missing is followed by the confirming one after CONFIRM_AFTER (1 s),
not a whole interval: a Will fires at once, and presence must converge within 10 s
of a node's death.
Nothing here waits for the lead's own MQTT connection: the audits go through the
system account, the stored presence changes without any broker, and the Wills go
out on a connection of their own (`mqchat-bridge-<lead>-wills`, kept open, failing
over between the nodes like any service), not behind the thousands of events the
lead may have queued while a node's death held up its PUBACKs (a Will waited 8 s
there, measured), nor waiting for the lead's reconnection when its node died. What
a node's death delays is only the Will's publication (until the cluster's streams
have new leaders), retried every RETRY_AFTER (0.5 s) until it went out.
Two audits: a device of the dead node that reconnects to another in between is
spared, and so is one heard from (its `online`, published live) after the audit that
found it missing began; a Will not yet out is dropped once the tracker holds the device
present again or a node lists it, asked right before publishing (its `online` must not be
overwritten). A round that fewer than a majority
of the nodes answer decides nothing (a cluster without quorum, or the system connection
itself reconnecting).

The other way round, a Will that comes late: during a failover nats-server has published
a device's Will about 7 s after the device had reconnected through another node and
announced itself (measured once in the node-death runs), so a connected device showed
offline. A device whose `offline` came within STALE_WILL_WITHIN (30 s) and that a node
lists as connected in two audits running, saying nothing since, gets back the state it
had before: in the tracker, in the stored presence, and retained on its presence topic,
published on the Wills' connection the same way (only while it is still connected and
still so in the tracker). A client says `offline` itself only right before a clean
disconnect (docs/protocol.md), so a device listed twice after its `offline` is not one
that said goodbye.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

import aiomqtt
from nats.errors import Error as NatsError
from pymongo.errors import PyMongoError

from bridge import layout
from bridge.presence import PresenceTracker
from core import nats_auth, topics
from core.events import Delivery
from core.mqtt import service_client
from core.mqtt.endpoints import Endpoints
from core.mqtt.fanout import send_in_order
from core.nats_rights import SystemConnection, ask_every_node, connections_in
from core.settings import Settings
from core.tasks import stop_if_cancelled

log = logging.getLogger("mqchat.bridge.presence")

ANSWER_TIMEOUT = 1.0  # seconds a node may take to list its connections
CONFIRM_AFTER = 1.0  # seconds from an audit that found devices newly missing to the one that confirms it
CONNECT_TIMEOUT = 5.0  # the system connection: a round that cannot make it decides nothing
CONNZ_LIMIT = 1_000_000  # connections one node may list (mqchat's clients only: the chat account)
RECONNECT_DELAY = 0.5  # seconds before the Wills' connection tries the next node
RETRY_AFTER = 0.5  # seconds before Wills the broker did not confirm are published again
STALE_WILL_WITHIN = 30.0  # seconds after a device's `offline` in which a node listing it still connected revives it


class LostWills:
    """Audits the cluster's MQTT connections against the devices the lead's tracker holds present,
    marks the lost ones offline and publishes their Wills on a connection of its own."""

    def __init__(self, settings: Settings, tracker: PresenceTracker) -> None:
        self._settings = settings
        self._tracker = tracker
        self._system = SystemConnection(settings, "mqchat-lost-wills", CONNECT_TIMEOUT)
        self._client: aiomqtt.Client | None = None
        self._missing: set[tuple[str, str]] = set()  # (user id, client id) no node held at the last audit
        self._listed: set[tuple[str, str, str]] = set()  # (user id, client id, status before) gone yet listed last audit
        # (user id, client id) -> the device's state to publish (offline: its Will) and what follows, not gone out yet
        self._unpublished: dict[tuple[str, str], tuple[str, list[Delivery]]] = {}
        self._found_lost = asyncio.Event()

    async def run(self) -> None:
        """Keep the Wills' connection, audit, and publish the Wills, until cancelled: apart, so that neither
        the audits nor the stored presence wait for a publication the cluster holds up (PUBACKs up to 10 s)."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._stay_connected())
            tasks.create_task(self._audit())
            tasks.create_task(self._publish_lost())

    async def _audit(self) -> None:
        """Every interval, or CONFIRM_AFTER an audit that found devices newly missing: mark offline the devices
        missing twice running."""
        while True:
            stop_if_cancelled()
            asked = time.monotonic()
            try:
                connected = await self._connected_clients()
            except (NatsError, OSError) as exc:  # TimeoutError included
                log.warning("presence.audit_failed", extra={"error": repr(exc)})
                connected = None
            to_confirm = False
            if connected is not None:  # else this round decides nothing (the next is compared with the last that did)
                missing = {device for device in self._tracker.present_devices() if device[1] not in connected}
                lost = [device for device in missing & self._missing if not self._tracker.heard_since(device[1], asked)]
                await asyncio.gather(*(self._set(*device, "offline") for device in lost))  # else it came back and said so
                listed = {gone for gone in self._tracker.gone_since(asked - STALE_WILL_WITHIN) if gone[1] in connected}
                stale = [gone for gone in listed & self._listed if not self._tracker.heard_since(gone[1], asked)]
                await asyncio.gather(*(self._set(*gone) for gone in stale))
                to_confirm = bool(missing - self._missing or listed - self._listed)
                self._missing, self._listed = missing - set(lost), listed - set(stale)
            await asyncio.sleep(CONFIRM_AFTER if to_confirm else self._settings.presence_audit_interval)

    async def _set(self, user_id: str, client_id: str, status: str) -> None:
        """The device is `status`: offline as its lost Will would have said, or back to what it had before a late
        Will; stored now, published on its presence topic (retained) with the user's presence."""
        try:
            deliveries = await self._tracker.device_changed(user_id, client_id, status, replayed=True)  # not the device's word
        except PyMongoError as exc:  # the tracker has it; the store catches up at the user's next change
            log.warning("presence.will_unrecorded", extra={"error": str(exc), "client_id": client_id})
            deliveries = []
        state = Delivery(topics.device_presence(user_id, client_id), json.dumps({"status": status}).encode(), retain=True)
        self._unpublished[(user_id, client_id)] = (status, [state, *deliveries])
        self._found_lost.set()
        event = "presence.will_lost" if status == "offline" else "presence.will_stale"
        log.info(event, extra={"user_id": user_id, "client_id": client_id, "status": status})

    async def _publish_lost(self) -> None:
        """Publish the Wills as devices are found lost, and again every RETRY_AFTER until the broker confirmed them."""
        while True:
            await self._found_lost.wait()
            self._found_lost.clear()
            if not await self._publish():
                await asyncio.sleep(RETRY_AFTER)
                self._found_lost.set()

    async def _publish(self) -> bool:
        """The devices' states and their users' presence, in order; only while the tracker still has the device so
        and the nodes agree (offline: no node holds it; else: one does), asked right before (its own word since must
        not be overwritten; during a failover the lead heard the `online` of a device that had come back 16 s after
        finding it lost, and the Will, checked against the lead's tracker alone, had gone out over it). Whether every
        one went out."""
        for device in [device for device, (status, _) in self._unpublished.items() if self._tracker.state(*device) != status]:
            del self._unpublished[device]  # it spoke since (if that was its old state, replayed, the next audits see it)
        if not self._unpublished:
            return True
        if self._client is None:
            return False
        try:
            connected = await self._connected_clients()
        except (NatsError, OSError):
            return False
        if connected is None:
            return False
        for (user_id, client_id), (status, deliveries) in list(self._unpublished.items()):
            if (client_id in connected) == (status != "offline"):
                try:
                    await send_in_order(self._client, deliveries)
                except aiomqtt.MqttError as exc:
                    log.warning("presence.will_unpublished", extra={"error": str(exc), "client_id": client_id})
                    return False
            del self._unpublished[(user_id, client_id)]  # published, or the nodes disagree: the next audits decide
        return True

    async def _stay_connected(self) -> None:
        """The connection the Wills go out on, kept open (a node that dies: the next one)."""
        instance = f"{self._settings.bridge_instance}-wills"
        endpoints = Endpoints(self._settings, instance)
        while True:
            try:
                async with service_client(self._settings, layout.ACCOUNT, instance, address=endpoints.current) as client:
                    self._client = client
                    async for _ in client.messages:  # nothing is subscribed: this waits until the connection ends
                        pass
            except aiomqtt.MqttError as exc:
                log.warning("presence.wills_disconnected", extra={"error": str(exc), "broker": endpoints.current})
            self._client = None
            endpoints.failed()
            await asyncio.sleep(RECONNECT_DELAY)

    async def _connected_clients(self) -> set[str] | None:
        """The MQTT client ids of the chat account's open connections, or None if fewer than a majority of nodes answered."""
        query = {"acc": nats_auth.CHAT_ACCOUNT, "state": 0, "limit": CONNZ_LIMIT}
        answers = await ask_every_node(await self._system.get(), "CONNZ", query, self._settings.nats_nodes, ANSWER_TIMEOUT)
        if 2 * len(answers) <= self._settings.nats_nodes:
            return None
        return {connection["mqtt_client"] for answer in answers for connection in connections_in(answer) if connection.get("mqtt_client")}

    async def close(self) -> None:
        await self._system.close()
