"""Lost Wills on a NATS cluster: the lead worker marks offline the devices that no node holds any more.

A client's Will lives in the memory of the node that holds its connection: when a
node dies (SIGKILL, a machine lost) the Wills of its clients die with it, and a
device that never comes back would stay online in its retained presence for ever.
So every MQCHAT_PRESENCE_AUDIT_MS (3 s) the lead worker asks every node for its
open MQTT connections (`$SYS.REQ.SERVER.PING.CONNZ` through the system account)
and publishes, for each device the presence tracker holds online or away that no
node listed in two audits running, what its Will would have said (retained
`offline` on its presence topic); the lead hears it like any Will and aggregates.
The audits do not depend on the lead's MQTT connection: when the lead was on the
node that died, they go on while it reconnects.
Two audits: a device of the dead node that reconnects to another within one is
spared, and so is one heard from (its `online`) after the audit that found it
missing began. A round that fewer than a majority of the nodes answer decides nothing (a
cluster without quorum, or the system connection itself reconnecting).
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiomqtt
from nats.errors import Error as NatsError

from bridge.presence import PresenceTracker
from core import nats_auth, topics
from core.nats_rights import SystemConnection, ask_every_node, connections_in
from core.settings import Settings
from core.tasks import stop_if_cancelled

log = logging.getLogger("mqchat.bridge.presence")

ANSWER_TIMEOUT = 1.0  # seconds a node may take to list its connections
CONNECT_TIMEOUT = 5.0  # the system connection: a round that cannot make it decides nothing
CONNZ_LIMIT = 1_000_000  # connections one node may list (mqchat's clients only: the chat account)
WILL = b'{"status": "offline"}'


class LostWills:
    """Audits the cluster's MQTT connections against the devices the lead's tracker holds present.

    The audits go on while the lead itself reconnects (its own node may be the one that died); the Wills are
    published on the lead's current MQTT connection (`attach`), as soon as it has one.
    """

    def __init__(self, settings: Settings, tracker: PresenceTracker) -> None:
        self._settings = settings
        self._tracker = tracker
        self._system = SystemConnection(settings, "mqchat-lost-wills", CONNECT_TIMEOUT)
        self._client: aiomqtt.Client | None = None
        self._missing: set[tuple[str, str]] = set()  # (user id, client id) no node held at the last audit
        self._lost: set[tuple[str, str]] = set()  # missing twice running, Will not published yet

    def attach(self, client: aiomqtt.Client | None) -> None:
        """The lead's MQTT connection to publish on (None while it has none)."""
        self._client = client

    async def run(self) -> None:
        """Audit every interval and publish the Wills of the devices missing twice running, until cancelled."""
        while True:
            stop_if_cancelled()
            asked = time.monotonic()
            try:
                connected = await self._connected_clients()
            except (NatsError, OSError) as exc:  # TimeoutError included
                log.warning("presence.audit_failed", extra={"error": repr(exc)})
                connected = None
            if connected is not None:  # else this round decides nothing (the next is compared with the last that did)
                missing = {device for device in self._tracker.present_devices() if device[1] not in connected}
                self._lost = (self._lost | self._missing) & missing  # missing twice running (the lead may have had no connection)
                self._missing = missing
                await self._publish(asked)
            await asyncio.sleep(self._settings.presence_audit_interval)

    async def _publish(self, asked: float) -> None:
        """What each lost device's Will would have said; the lead hears it and aggregates it like any Will.
        Not for a device heard from since the nodes were `asked`: it reconnected meanwhile and said so."""
        for user_id, client_id in sorted(self._lost):
            if self._tracker.heard_since(client_id, asked):
                self._lost.discard((user_id, client_id))
                continue
            if self._client is None:
                return
            try:
                await self._client.publish(topics.device_presence(user_id, client_id), WILL, qos=1, retain=True)
            except aiomqtt.MqttError:
                return  # the lead reconnects; published on its next connection
            log.info("presence.will_lost", extra={"user_id": user_id, "client_id": client_id})
            self._lost.discard((user_id, client_id))

    async def _connected_clients(self) -> set[str] | None:
        """The MQTT client ids of the chat account's open connections, or None if fewer than a majority of nodes answered."""
        query = {"acc": nats_auth.CHAT_ACCOUNT, "state": 0, "limit": CONNZ_LIMIT}
        answers = await ask_every_node(await self._system.get(), "CONNZ", query, self._settings.nats_nodes, ANSWER_TIMEOUT)
        if 2 * len(answers) <= self._settings.nats_nodes:
            return None
        return {connection["mqtt_client"] for answer in answers for connection in connections_in(answer) if connection.get("mqtt_client")}

    async def close(self) -> None:
        await self._system.close()
