"""`python -m bench --profile`: py-spy flame data of every server process during a load round, and its top frames.

py-spy (`pip install py-spy`) samples each process from outside (`record --native
--format raw`: collapsed stacks, one line per stack with its sample count), so the
code under test runs unchanged. The summary gives, per process, the functions
with the most samples on-CPU at the top of the stack (self) and anywhere in it
(inclusive), as shares of the process's samples: ratios hold on a busy machine
where absolute times do not.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.rounds import NATIVE_BROKERS

RATE = 100  # samples per second
_IDLE_LEAVES = ("epoll_wait", "select ", "poll ", "nanosleep", "clock_nanosleep")
_IDLE_FRAMES = ("PyThread_acquire_lock_timed", "_queue_SimpleQueue_get")
_FRAME = re.compile(r"^(?P<function>[^(]+?) \((?P<file>[^:)]+)(?::\d+)?\)$")


def available() -> bool:
    return shutil.which("py-spy") is not None


@dataclass
class Recording:
    """py-spy runs in progress, one per process; `finished` waits for them."""

    files: dict[str, Path]
    runs: list[asyncio.subprocess.Process]

    async def finished(self) -> dict[str, Path]:
        """Wait for every recording; the files that were written, by role."""
        for run in self.runs:
            await run.wait()
        return {role: path for role, path in self.files.items() if path.exists()}


async def record(processes: dict[str, psutil.Process], seconds: float, stem: Path) -> Recording:
    """Start py-spy on every Python server process (not Mosquitto, not this one) for `seconds`."""
    recording = Recording({}, [])
    for role, process in processes.items():
        if process.name() in NATIVE_BROKERS or role == "load generator":
            continue
        recording.files[role] = stem.with_name(f"{stem.name}-{role}.txt")
        recording.runs.append(
            await asyncio.create_subprocess_exec(
                "py-spy", "record", "--native", "--format", "raw", "--rate", str(RATE), "--duration", str(round(seconds)),
                "--pid", str(process.pid), "--output", str(recording.files[role]),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )
        )  # fmt: skip
    return recording


def _frame_name(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        path = "/".join(Path(path).parts[-2:])
    return f"{match['function']} ({path})"


def _is_idle(frames: list[str]) -> bool:
    """Waiting, not working: the event loop's poll, or a thread blocked on a lock or queue."""
    return frames[-1].startswith(_IDLE_LEAVES) or any(f.startswith(_IDLE_FRAMES) for f in frames)


def top_frames(raw: Path, count: int = 12) -> dict:
    """The functions with the most busy samples: on top of the stack (self) and anywhere in it (inclusive).

    Shares are of the busy samples (idle ones are counted apart); frames found in
    nearly every busy stack (the runner: click, asyncio's loop) are left out of `inclusive`.
    """
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    busy = idle = 0
    for line in raw.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        n = int(samples)
        frames = [_frame_name(f) for f in stack.split(";") if f.strip()]
        frames = [f for f in frames if not f.startswith(("process ", "thread "))] or frames
        if _is_idle(frames):
            idle += n
            continue
        busy += n
        own[frames[-1]] += n
        for name in set(frames):
            anywhere[name] += n
    share = lambda c: [[name, round(n / max(busy, 1), 3)] for name, n in c.most_common(count)]  # noqa: E731
    informative = Counter({name: n for name, n in anywhere.items() if n < 0.9 * busy})
    return {"busy_samples": busy, "idle_samples": idle, "self": share(own), "inclusive": share(informative)}
