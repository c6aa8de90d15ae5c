"""Counting what one chat message costs, by process: store commands, JSON, validation, MQTT packets.

Counts are deterministic (unlike timings), so they can be taken on a busy machine.
A counting window is opened and closed in each process: in this one by `start` and
`stop`, in `mqchat up`'s children by SIGUSR1 (`listen_for_signals`, installed
through bench/count_site/sitecustomize.py when MQCHAT_BENCH_COUNT_DIR is set): the
first signal opens the window, the second closes it and writes the counts to
`<dir>/<pid>.json`. While the window is open every Python and C call of the process
goes through a profile hook (slow: only `python -m bench --count` uses it).

What is counted:
- store commands, by name (pymongo command monitoring);
- JSON encodes and decodes (msgspec, the json module, pydantic's to_json/validate_json);
- validation passes: pydantic validations (model construction, model_validate,
  TypeAdapter) and msgspec decodes into a typed shape;
- pydantic dumps (model_dump: Beanie's encoder and our stored_form);
- MQTT packets sent and received by paho clients (the bridge, the API, the bench's
  own clients), by type: every packet goes between a client and the broker, so the
  sum over the clients is what the broker handles;
- ACL decisions of the embedded broker, by action, and how many the policy evaluated
  (the rest were remembered); asyncio tasks created and timers set.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

import uvloop
from pymongo import monitoring

VARIABLE = "MQCHAT_BENCH_COUNT_DIR"
PACKET_TYPES = {
    0x10: "CONNECT", 0x20: "CONNACK", 0x30: "PUBLISH", 0x40: "PUBACK", 0x50: "PUBREC", 0x60: "PUBREL", 0x70: "PUBCOMP",
    0x80: "SUBSCRIBE", 0x90: "SUBACK", 0xA0: "UNSUBSCRIBE", 0xB0: "UNSUBACK", 0xC0: "PINGREQ", 0xD0: "PINGRESP",
    0xE0: "DISCONNECT",
}  # fmt: skip
_ENCODES = {"Encoder.encode", "json_encode", "SchemaSerializer.to_json", "to_json"}
_DECODES = {"Decoder.decode", "json_decode", "SchemaValidator.validate_json", "from_json"}
_VALIDATIONS = {"SchemaValidator.validate_python", "SchemaValidator.validate_json", "SchemaValidator.validate_strings",
                "SchemaValidator.validate_assignment"}  # fmt: skip
_DUMPS = {"SchemaSerializer.to_python"}

counts: Counter[str] = Counter()
_active = False


class _StoreCommands(monitoring.CommandListener):
    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if _active:
            collection = event.command.get(event.command_name)
            counts[f"store.{event.command_name}" + (f".{collection}" if isinstance(collection, str) else "")] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


monitoring.register(_StoreCommands())  # applies to every client created from now on


def _c_call(function: Any) -> None:
    name = getattr(function, "__qualname__", "")
    if name in _ENCODES:
        counts["json.encode"] += 1
    if name in _DECODES:
        counts["json.decode"] += 1
        if name == "Decoder.decode" and getattr(function.__self__, "type", Any) is not Any:
            counts["validation.msgspec"] += 1
    if name in _VALIDATIONS:
        counts["validation.pydantic"] += 1
    if name in _DUMPS:
        counts["pydantic.dump"] += 1


def _py_call(frame: FrameType) -> None:
    code = frame.f_code
    name, filename = code.co_name, code.co_filename
    if name in ("dumps", "loads") and filename.endswith(f"json{os.sep}__init__.py"):
        counts["json.encode" if name == "dumps" else "json.decode"] += 1
    elif name == "_packet_queue" and "paho" in filename:
        counts[f"mqtt.sent.{PACKET_TYPES.get(frame.f_locals['command'] & 0xF0, 'other')}"] += 1
    elif name == "_packet_handle" and "paho" in filename:
        command = frame.f_locals["self"]._in_packet["command"] & 0xF0
        counts[f"mqtt.received.{PACKET_TYPES.get(command, 'other')}"] += 1
    elif name == "topic_filtering" and filename.endswith(f"broker{os.sep}plugins.py"):
        counts[f"acl.{getattr(frame.f_locals.get('action'), 'name', 'other').lower()}"] += 1
    elif name == "allows" and filename.endswith(f"core{os.sep}acl.py"):
        counts["acl.evaluated"] += 1  # decided by the policy, not remembered
    elif name == "create_task" and filename.endswith(f"asyncio{os.sep}base_events.py"):
        counts["asyncio.tasks"] += 1
    elif name == "call_at" and filename.endswith(f"asyncio{os.sep}base_events.py"):
        counts["asyncio.timers"] += 1


def _profile(frame: FrameType, event: str, arg: Any) -> None:
    if event == "c_call":
        _c_call(arg)
    elif event == "call":
        _py_call(frame)


# uvloop's loop (mqchat's processes, mqchat.runtime) is compiled: the profile hook never sees its methods called, so
# while the window is open these are wrapped on its class (calls from Python code are counted, the loop's own are not)
_UVLOOP_COUNTED = {"create_task": "asyncio.tasks", "call_at": "asyncio.timers", "call_later": "asyncio.timers"}


def _count_uvloop_calls(on: bool) -> None:
    for name, key in _UVLOOP_COUNTED.items():
        if on:
            setattr(uvloop.Loop, name, _counted(getattr(uvloop.Loop, name), key))
        elif name in vars(uvloop.Loop):
            delattr(uvloop.Loop, name)  # the compiled method shows through again


def _counted(method: Any, key: str) -> Any:
    def counted(self: uvloop.Loop, *args: Any, **kwargs: Any) -> Any:
        counts[key] += 1
        return method(self, *args, **kwargs)

    return counted


def start() -> None:
    """Open the counting window in this thread (and threads started later); counts start from zero."""
    global _active
    counts.clear()
    _active = True
    _count_uvloop_calls(on=True)
    threading.setprofile(_profile)
    sys.setprofile(_profile)


def stop() -> dict[str, int]:
    """Close the window; what was counted in it."""
    global _active
    sys.setprofile(None)
    threading.setprofile(None)  # type: ignore[arg-type]
    _count_uvloop_calls(on=False)
    _active = False
    return dict(sorted(counts.items()))


def listen_for_signals(directory: Path) -> None:
    """SIGUSR1 opens the counting window, the next one closes it and writes `<directory>/<pid>.json`."""

    def toggle(signum: int, frame: FrameType | None) -> None:
        if not _active:
            start()
            return
        counted = stop()
        target = directory / f"{os.getpid()}.json"
        target.with_suffix(".tmp").write_text(json.dumps(counted))
        target.with_suffix(".tmp").rename(target)

    signal.signal(signal.SIGUSR1, toggle)
