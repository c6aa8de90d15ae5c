"""A child's log lines, read by `mqchat up`: passed on in this process's log format, with what they tell.

Children always log JSON lines to a pipe. `mqchat up` re-emits each line on its own
stderr (verbatim in JSON mode, rendered in console mode), and remembers the events a
child reported (the bridge's `bridge.connected` means it is consuming) and why it
failed (`component.failed`'s cause, else its last error line).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from datetime import datetime

from mqchat.causes import address_in_use

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL}
LINE_LIMIT = 1 << 20


class ChildLog:
    """Relays one child process's stderr and keeps the events and failure cause it reported."""

    def __init__(self, stream: asyncio.StreamReader, log_format: str) -> None:
        self.stream = stream
        self.log_format = log_format
        self.events: set[str] = set()
        self.cause: str | None = None
        self.last_error: str | None = None

    @property
    def failure(self) -> str | None:
        """Why the child failed, in plain words, if it said so."""
        return self.cause or self.last_error

    async def relay(self) -> None:
        """Until the child closes its stderr."""
        while True:
            try:
                line = await self.stream.readline()
            except ValueError:  # longer than LINE_LIMIT: pass on what there is
                line = await self.stream.read(LINE_LIMIT)
            if not line:
                return
            self._handle(line.decode(errors="replace").rstrip("\n"))

    def _handle(self, line: str) -> None:
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if not isinstance(entry, dict) or "event" not in entry:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
            return
        self._note(entry)
        if self.log_format == "json":
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
        else:
            logging.getLogger(str(entry.get("logger", "child"))).handle(_record(entry))

    def _note(self, entry: dict[str, object]) -> None:
        event = str(entry["event"])
        self.events.add(event)
        if event == "component.failed" and entry.get("cause"):
            self.cause = str(entry["cause"])
        elif entry.get("level") in ("error", "critical"):
            self.last_error = _plain(event)


def _plain(message: str) -> str:
    """A third-party error line in plain words where it is a known case."""
    return address_in_use(message) or message


def _record(entry: dict[str, object]) -> logging.LogRecord:
    fields = {k: v for k, v in entry.items() if k not in ("ts", "level", "logger", "event")}
    level = _LEVELS.get(str(entry.get("level")), logging.INFO)
    record = logging.makeLogRecord(
        {"name": entry.get("logger", "child"), "levelno": level, "levelname": logging.getLevelName(level), "msg": str(entry["event"]), **fields}
    )
    try:
        record.created = datetime.fromisoformat(str(entry["ts"])).timestamp()
    except (KeyError, ValueError):
        pass
    return record
