"""Structured logging on stderr, one line per event: JSON lines, or readable coloured lines on a terminal.

Log calls name the event and pass fields through `extra`, for example
`log.info("user.login", extra={"user_id": uid})`. Never pass secrets or tokens.
`MQCHAT_LOG_FORMAT` chooses: `json`, `console` (Rich), or `auto` (console when
stderr is a terminal, JSON otherwise).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_STANDARD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
# uvicorn duplicates its message with ANSI colours; never worth a field.
_DROPPED = frozenset({"color_message"})


def fields(record: logging.LogRecord) -> dict[str, object]:
    """The record's `extra` fields."""
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS and k not in _DROPPED}


class JsonFormatter(logging.Formatter):
    """Formats a record as a single JSON line: ts, level, logger, event and the extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        entry.update(fields(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class ConsoleFormatter(logging.Formatter):
    """`component  event  key=value ...` for RichHandler, which adds time, level and colours."""

    def format(self, record: logging.LogRecord) -> str:
        component = record.name.removeprefix("mqchat.").split(".")[0]
        extra = " ".join(f"{key}={value}" for key, value in fields(record).items() if key != "exc")
        line = f"{component:<9} {record.getMessage()}" + (f"  {extra}" if extra else "")
        exc = record.__dict__.get("exc")
        if record.exc_info:
            exc = self.formatException(record.exc_info)
        return f"{line}\n{exc}" if exc else line


def resolve_format(log_format: str = "auto") -> str:
    """`console` or `json`: `auto` is console when stderr is a terminal."""
    if log_format in ("console", "json"):
        return log_format
    return "console" if sys.stderr.isatty() else "json"


def _console_handler() -> logging.Handler:
    from rich.console import Console
    from rich.logging import RichHandler

    handler = RichHandler(
        console=Console(stderr=True), show_path=False, markup=False, rich_tracebacks=False, log_time_format="%H:%M:%S"
    )
    handler.setFormatter(ConsoleFormatter())
    return handler


def configure_logging(level: str = "INFO", log_format: str = "json") -> str:
    """Send every log record of this process to stderr in `log_format` (console, json or auto); the format used."""
    resolved = resolve_format(log_format)
    if resolved == "console":
        handler = _console_handler()
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Third-party loggers that are chatty at INFO, or log client identifiers/credentials at DEBUG.
    for noisy in ("amqtt", "transitions", "websockets", "pymongo", "uvicorn.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    return resolved
