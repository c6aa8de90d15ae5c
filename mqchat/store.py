"""The embedded store: nx-27017 (MongoDB wire protocol over SQLite) as a child process.

`mqchat up` (or `mqchat store`) owns it and records its address in
`<data dir>/store.json`, so one-off commands (`mqchat user create`, `mqchat token`)
and split components find it; without a running one, a one-off command starts a
private store on a free port for the duration of the command.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from pymongo import AsyncMongoClient

from core.settings import Settings
from mqchat.children import die_with_parent
from mqchat.lock import AlreadyRunning, DataDirLock

log = logging.getLogger("mqchat.store")

STORE_FILE = "store.json"
START_TIMEOUT = 30.0
_LAUNCH = "import sys; from nx_27017.nx_27017 import main; sys.exit(main())"


class StoreError(RuntimeError):
    """The embedded store could not be started or found."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _answers(uri: str) -> bool:
    client: AsyncMongoClient = AsyncMongoClient(uri, serverSelectionTimeoutMS=500)
    try:
        await client.admin.command("ping")
        return True
    except Exception:  # noqa: BLE001 - whatever the cause, nothing usable answers there
        return False
    finally:
        await client.close()


class EmbeddedStore:
    """One nx-27017 process serving the databases under `<data dir>/store`."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.port = port
        self._process: asyncio.subprocess.Process | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    async def start(self) -> None:
        """Launch nx-27017 and wait until it answers a ping."""
        store_dir = self.data_dir / "store"
        store_dir.mkdir(parents=True, exist_ok=True)
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _LAUNCH,
            "--data-dir", str(store_dir), "--host", "127.0.0.1", "--port", str(self.port),
            "--log-file", str(self.data_dir / "store.log"), "--pid-file", str(self.data_dir / "store.pid"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, preexec_fn=die_with_parent,
        )  # fmt: skip
        deadline = asyncio.get_running_loop().time() + START_TIMEOUT
        while not await _answers(self.uri):
            if self._process.returncode is not None:
                raise StoreError(f"nx-27017 exited with {self._process.returncode}; see {self.data_dir / 'store.log'}")
            if asyncio.get_running_loop().time() > deadline:
                await self.stop()
                raise StoreError(f"nx-27017 did not answer on port {self.port} within {START_TIMEOUT:.0f}s")
            await asyncio.sleep(0.1)
        log.info("store.started", extra={"port": self.port, "pid": self._process.pid})

    async def stop(self) -> None:
        """Terminate the process and wait for it (killing it after 10 s)."""
        if self._process is None or self._process.returncode is not None:
            return
        self._process.terminate()
        try:
            await asyncio.wait_for(self._process.wait(), 10)
        except TimeoutError:
            self._process.kill()
            await self._process.wait()
        log.info("store.stopped", extra={"port": self.port})

    def publish_address(self) -> None:
        """Record this store in `<data dir>/store.json` for other commands."""
        (self.data_dir / STORE_FILE).write_text(json.dumps({"port": self.port, "pid": self.pid}))

    def withdraw_address(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.data_dir / STORE_FILE).unlink()


async def running_store_uri(data_dir: Path) -> str | None:
    """The URI of the embedded store recorded in the data dir, if its process is alive and answers."""
    try:
        record = json.loads((data_dir / STORE_FILE).read_text())
        os.kill(int(record["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    uri = f"mongodb://127.0.0.1:{int(record['port'])}"
    return uri if await _answers(uri) else None


@contextlib.asynccontextmanager
async def store_uri(settings: Settings, *, start_if_missing: bool) -> AsyncIterator[str]:
    """Yield the store to use: `MONGODB_URI`, else the running embedded store, else (if allowed) a private one."""
    if settings.mongodb_uri:
        yield settings.mongodb_uri
        return
    running = await running_store_uri(settings.data_dir)
    if running:
        yield running
        return
    if not start_if_missing:
        raise StoreError("no store: set MONGODB_URI, or start the embedded one with `mqchat up` or `mqchat store`")
    lock = DataDirLock(settings.data_dir)
    try:
        lock.acquire()  # no `mqchat up` may start on these files while a private store serves them
    except AlreadyRunning:
        yield await _starting_store_uri(settings.data_dir)  # the owner is starting: use its store
        return
    try:
        store = EmbeddedStore(settings.data_dir, free_port())
        await store.start()
        try:
            yield store.uri
        finally:
            await store.stop()
    finally:
        lock.release()


async def _starting_store_uri(data_dir: Path) -> str:
    """The store of the process that holds the data dir's lock, once it answers (it may be starting)."""
    deadline = asyncio.get_running_loop().time() + START_TIMEOUT
    while (uri := await running_store_uri(data_dir)) is None:
        if asyncio.get_running_loop().time() > deadline:
            raise StoreError("another mqchat holds this data directory but its store does not answer")
        await asyncio.sleep(0.2)
    return uri
