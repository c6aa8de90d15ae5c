"""The raw relay alone (`python -m bench --measure relay`): how fast the broker relays, and what the generator costs.

The same open-loop rounds as the full report's `raw@rate` rows (bench.load: QoS 1 straight to
the receivers' inboxes with a service account, latency from each message's scheduled send
time), without the E2E rounds, history, logins and idle connections around them, so rates
up to 10,000 msg/s (issue 26, item 4) can be offered in minutes. Per rate: the medians of
the comparable runs (bench.summary), CPU per message of the broker and of this generator.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import httpx

from bench import calibration
from bench.rounds import calibrated_rounds, make_pairs
from bench.summary import summarize_rounds
from tests.support import System


async def measure_relay(broker: str, rates: list[int], duration: float, runs: int, pairs: int, settle: float) -> dict:
    """A system of its own on `broker`, and its relay_rounds."""
    workdir = Path(tempfile.mkdtemp(prefix="mqchat-bench-relay-"))
    system = System.on_free_ports(workdir / "data", broker=broker)
    system.start()
    try:
        return await relay_rounds(system, rates, duration, runs, pairs, settle)
    finally:
        system.stop()


async def relay_rounds(system: System, rates: list[int], duration: float, runs: int, pairs: int, settle: float = 0.0) -> dict:
    """`runs` passes over every rate (raw relay only), a calibration after each pass."""
    points = [calibration.calibrate()]
    async with httpx.AsyncClient(base_url=system.api_url, timeout=60) as api:
        made, _ = await make_pairs(system, api, pairs)
        load = await calibrated_rounds(system, made, rates, duration, runs, (False,), points, settle)
    summary = calibration.summary(points)
    return {
        "rates": rates, "duration_s": duration, "pairs": pairs, "calibration": summary,
        "relay": {key.removeprefix("raw@"): summarize_rounds([r.as_dict() for r in results], summary) for key, results in load.items()},
    }  # fmt: skip


def markdown(report: dict) -> str:
    """One row per offered rate: achieved, latency, losses, broker and generator CPU per message."""
    lines = [
        f"# Raw relay ({report['broker']}, {report['started']})", "",
        f"{report['pairs']} sender/receiver pairs, {report['duration_s']} s per round; medians of the unflagged runs; "
        f"calibration {report['calibration']['points_ms']} (drifts {report['calibration']['drifts']})", "",
        "| offered msg/s | achieved | p50 ms | p99 ms | lost | broker CPU ms/msg | generator CPU ms/msg | flagged runs |",
        "|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for rate, row in report["relay"].items():
        cpu = row["cpu_ms_per_message"]
        broker = sum(ms for role, ms in cpu.items() if role.startswith("broker"))
        lines.append(
            f"| {rate} | {row['achieved_rate']} | {row['p50_ms']} | {row['p99_ms']} | {row['lost']} | {round(broker, 3)} "
            f"| {cpu['load generator']} | {row['flagged_runs']} of {len(row['runs'])} |"
        )
    return "\n".join(lines) + "\n"
