"""The ticket queue's sweeper: requeues abandoned tickets and assigns the backlog, oldest first; escalates.

Sweeps in the bridge every MQCHAT_ASSIGN_INTERVAL_MS, and at once when someone's
presence changes (an agent coming online or going away). Every assignment is a
compare-and-swap, so several bridges sweeping at once stay correct. Every
MQCHAT_ESCALATION_INTERVAL_MS it escalates tickets waiting too long (core.services.escalation)
and counts ticket changes and ratings the desk counters missed (core.services.rollups: a process
stopped between a change and its roll-up).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiomqtt
from pymongo.errors import PyMongoError

from core.broker_rights import BrokerRights
from core.mqtt.fanout import publish
from core.services import escalation, rollups, tickets
from core.services.tickets import Limits
from core.tasks import stop_if_cancelled

log = logging.getLogger("mqchat.bridge.tickets")


class TicketDispatcher:
    """Sweeps the queue periodically or when woken."""

    def __init__(self, limits: Limits, interval: float, escalation_interval: float = 30.0) -> None:
        self._limits = limits
        self._interval = interval
        self._escalation_interval = escalation_interval
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Sweep as soon as possible (presence changed)."""
        self._wake.set()

    async def run(self, client: aiomqtt.Client, rights: BrokerRights) -> None:
        """Sweep and escalate until cancelled; store errors are logged and retried on the next round."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._sweep(client, rights))
            tasks.create_task(self._escalate(client, rights))

    async def _escalate(self, client: aiomqtt.Client, rights: BrokerRights) -> None:
        while True:
            stop_if_cancelled()  # publishing may swallow a cancellation
            await asyncio.sleep(self._escalation_interval)
            try:
                deliveries = await escalation.escalate_overdue(self._limits.escalate_after_seconds)
                await rollups.sync_due()
            except PyMongoError as exc:
                log.warning("tickets.escalation_failed", extra={"error": str(exc)})
                continue
            await publish(client, deliveries, rights)

    async def _sweep(self, client: aiomqtt.Client, rights: BrokerRights) -> None:
        while True:
            stop_if_cancelled()  # publishing may swallow a cancellation
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):  # unlike wait_for, never swallows a cancellation
                    await self._wake.wait()
            self._wake.clear()
            try:
                deliveries = await tickets.requeue_abandoned(self._limits)
                deliveries += await tickets.assign_backlog(self._limits)
            except PyMongoError as exc:
                log.warning("tickets.sweep_failed", extra={"error": str(exc)})
                continue
            await publish(client, deliveries, rights)
