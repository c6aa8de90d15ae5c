"""The dynamic-security client of an external broker (Mosquitto 2.0): commands to `$CONTROL/dynamic-security/v1`.

What to provision is decided by core.broker_rights; this module only delivers the
commands as `mqchat-admin` and reads the responses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import aiomqtt

from core.security import BROKER_ADMIN, broker_password
from core.settings import Settings

log = logging.getLogger("mqchat.broker_rights")

CONTROL = "$CONTROL/dynamic-security/v1"
RESPONSE = f"{CONTROL}/response"
RESPONSE_TIMEOUT = 10.0
_IGNORED = ("already exists", "not found")


class DynsecClient:
    """Sends dynamic-security commands as `mqchat-admin`; concurrent callers share one command message."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = asyncio.Lock()
        self._pending: list[tuple[list[dict[str, Any]], asyncio.Future[list[dict[str, Any]]]]] = []
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: aiomqtt.Client | None = None

    async def run(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send `commands`; their responses in order. Errors other than "already exists"/"not found" are logged."""
        future: asyncio.Future[list[dict[str, Any]]] = asyncio.get_running_loop().create_future()
        self._pending.append((commands, future))
        async with self._lock:
            if not future.done():
                batch, self._pending = self._pending, []
                try:
                    responses = await self._send([c for cmds, _ in batch for c in cmds])
                except Exception as exc:  # noqa: BLE001 - handed to every waiting caller, none is lost
                    await self.close()
                    for _, waiting in batch:
                        waiting.set_exception(exc)
                else:
                    offset = 0
                    for cmds, waiting in batch:
                        waiting.set_result(responses[offset : offset + len(cmds)])
                        offset += len(cmds)
        responses = await future
        for command, response in zip(commands, responses, strict=False):
            error = response.get("error")
            if error and not any(text in error.lower() for text in _IGNORED):
                log.warning("dynsec.command_failed", extra={"command": command.get("command"), "error": error})
        return responses

    async def _connected(self) -> aiomqtt.Client:
        if self._client is None:
            host, port = self._settings.broker_address
            stack = contextlib.AsyncExitStack()
            client = aiomqtt.Client(
                host, port, username=BROKER_ADMIN, password=broker_password(self._settings.jwt_secret, BROKER_ADMIN),
                identifier=f"{BROKER_ADMIN}-{id(self):x}", protocol=aiomqtt.ProtocolVersion.V311, timeout=RESPONSE_TIMEOUT,
            )  # fmt: skip
            await stack.enter_async_context(client)
            await client.subscribe(RESPONSE, qos=1)
            self._stack, self._client = stack, client
        return self._client

    async def _send(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        client = await self._connected()
        await client.publish(CONTROL, json.dumps({"commands": commands}), qos=1)
        async with asyncio.timeout(RESPONSE_TIMEOUT):
            async for message in client.messages:
                return list(json.loads(bytes(message.payload))["responses"])  # type: ignore[arg-type]
        raise aiomqtt.MqttError("no response from dynamic-security")

    async def close(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            with contextlib.suppress(Exception):
                await stack.aclose()
