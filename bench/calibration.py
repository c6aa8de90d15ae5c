"""Is a run comparable? The load average before each round and a CPU calibration at both ends of a run.

The calibration is the CPU time of a fixed pure-Python reference workload (dicts,
strings, JSON, sorting: what a Python server does), the median of a few repeats.
Its CPU time, not its wall-clock time, is taken: neighbours on a shared machine
stretch wall-clock figures most, but they also slow the CPU itself (shared caches,
hyper-threads, frequency), and that is what the drift between the two ends shows.
CPU figures divided by the calibration compare across machines and days.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import time

import psutil

MAX_LOAD = 0.7  # 1-minute load average above which a round did not start on a quiet machine
MAX_DRIFT = 0.15  # calibrations at the start and end of a run further apart than this: the machine changed
REFERENCE_MS = 100.0  # a "reference millisecond": 1/100 of the workload's CPU time (~1 ms on the 2026-11 dev machine)
REPEATS = 5


def reference_workload() -> int:
    """A fixed, deterministic pure-Python workload; returns a checksum so nothing is optimised away."""
    checksum = 0
    for n in range(12_500):
        record = {"id": f"{n:024x}", "seq": n, "body": "Is it in stock? " * (n % 7 + 1), "tags": [str(t) for t in range(n % 11)]}
        text = json.dumps(record)
        checksum += len(json.loads(text)["body"]) + sum(len(t) for t in sorted(record["tags"], reverse=True))
        checksum += sum(ord(c) for c in record["id"][-6:]) + len(text.split(" "))
    return checksum


def calibrate(repeats: int = REPEATS) -> float:
    """CPU milliseconds of one reference workload, the median of `repeats` runs in this process."""
    samples = []
    for _ in range(repeats):
        started = time.process_time()
        reference_workload()
        samples.append((time.process_time() - started) * 1000)
    return round(statistics.median(samples), 3)


def load_average() -> float:
    """The 1-minute load average now."""
    return round(psutil.getloadavg()[0], 2)


async def settled_load(max_wait: float) -> float:
    """The 1-minute load average once it is at most MAX_LOAD, waiting up to `max_wait` seconds for it (0: no
    wait). A run's own previous round keeps the average above MAX_LOAD for about a minute after it ends, so
    without waiting a quiet machine's rounds are flagged too (`python -m bench --settle 120`)."""
    deadline = time.monotonic() + max_wait
    while (load := load_average()) > MAX_LOAD and time.monotonic() < deadline:
        await asyncio.sleep(5)
    return load


def round_flags(load_before: float) -> list[str]:
    """Why a round's figures are not comparable (empty: it started on a quiet machine)."""
    return [f"load {load_before} > {MAX_LOAD}"] if load_before > MAX_LOAD else []


def comparable(runs: list[dict]) -> list[dict]:
    """The runs without flags (started on a quiet machine), or all of them when every one is flagged
    (the report then says its median is of all runs)."""
    return [run for run in runs if not run["flags"]] or runs


def summary(points_ms: list[float]) -> dict:
    """A report's calibration: one point before its first run and one after each run.

    Run n (0-based) lies between points n and n + 1; `drifts[n]` is how far they are
    apart, and a run drifted more than MAX_DRIFT is flagged. CPU figures are converted
    with the median of all points.
    """
    drifts = [drift(start, end) for start, end in itertools.pairwise(points_ms)]
    return {
        "points_ms": points_ms, "drifts": drifts, "flagged_runs": [n for n, drift in enumerate(drifts) if drift > MAX_DRIFT],
        "reference_ms_per_cpu_ms": round(REFERENCE_MS / statistics.median(points_ms), 4),
    }  # fmt: skip


def drift(start_ms: float, end_ms: float) -> float:
    """How far the calibration moved during a run, as a fraction of its start."""
    return round(abs(end_ms - start_ms) / max(start_ms, 1e-9), 3)


def drift_flags(start_ms: float, end_ms: float) -> list[str]:
    """Why every round of a run is not comparable when the machine's speed changed during it."""
    moved = drift(start_ms, end_ms)
    return [f"calibration drift {moved:.0%} > {MAX_DRIFT:.0%}"] if moved > MAX_DRIFT else []


def in_reference_ms(cpu_ms: dict[str, float], calibration: dict) -> dict[str, float]:
    """CPU milliseconds as reference milliseconds: what they would be where the workload takes REFERENCE_MS."""
    factor = calibration["reference_ms_per_cpu_ms"]
    return {role: round(value * factor, 3) for role, value in cpu_ms.items()}
