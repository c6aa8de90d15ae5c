"""Plain-words causes of start-up failures: what an operator reads on the last line of a failed start."""

from __future__ import annotations

import errno
import re

_BIND = re.compile(r"bind(?:ing)? on address \(?'?([^',)]*)'?, (\d+)\)?")


def redact_uri(uri: str) -> str:
    """A MongoDB URI without its credentials or options (it may be logged and printed)."""
    without_credentials = re.sub(r"//[^@/]*@", "//", uri)
    return without_credentials.split("?", 1)[0]


def port_in_use(port: int) -> str:
    return f"port {port} is already in use"


def address_in_use(text: str) -> str | None:
    """`port N is already in use` when `text` is a failed bind's message."""
    if "address already in use" not in text.lower():
        return None
    found = _BIND.search(text)
    return port_in_use(int(found.group(2))) if found else "an address is already in use"


def describe(exc: BaseException) -> str:
    """One short sentence for an exception that ended a component."""
    from pymongo.errors import ConfigurationError, OperationFailure, ServerSelectionTimeoutError

    text = str(exc)
    if isinstance(exc, RuntimeError) and type(exc).__module__.startswith(("mqchat.", "core.")) and text:
        return text  # mqchat's own errors are already written for operators
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return address_in_use(text) or "an address is already in use"
    if in_use := address_in_use(text):
        return in_use
    if isinstance(exc, ServerSelectionTimeoutError):
        return mongo_reason(text)
    if isinstance(exc, OperationFailure) and exc.code in (13, 18):
        return "authentication failed"
    if isinstance(exc, ConfigurationError):
        return f"invalid MongoDB configuration: {text}"
    if isinstance(exc, PermissionError):
        return f"permission denied: {exc.filename or text}"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def mongo_reason(text: str) -> str:
    """Why pymongo could not select a server, from its error text."""
    lowered = text.lower()
    if "connection refused" in lowered or "connect call failed" in lowered:
        return "connection refused"
    if "name or service not known" in lowered or "nodename nor servname" in lowered or "name resolution" in lowered:
        return "unknown host"
    if "timed out" in lowered:
        return "no answer (timed out)"
    if "authentication failed" in lowered:
        return "authentication failed"
    return text.split(", Timeout:")[0].split(" (configured timeouts")[0]
