"""Medians over a path@rate's rounds: latency, rate, losses and CPU per message by process."""

from __future__ import annotations

import statistics

from bench import calibration


def summarize_rounds(runs: list[dict], run_calibration: dict) -> dict:
    """Medians over the comparable runs of one path@rate, CPU per message also in reference milliseconds."""
    chosen = calibration.comparable(runs)
    cpu = cpu_per_message(chosen)
    return {
        "runs": runs, **{m: _median(chosen, m) for m in ("achieved_rate", "p50_ms", "p95_ms", "p99_ms", "max_ms", "lost")},
        "flagged_runs": sum(1 for run in runs if run["flags"]), "median_of": "unflagged" if chosen is not runs else "all",
        "cpu_ms_per_message": cpu, "cpu_ref_ms_per_message": calibration.in_reference_ms(cpu, run_calibration),
    }  # fmt: skip


def cpu_per_message(results: list[dict]) -> dict[str, float]:
    """Median CPU milliseconds each process spent per delivered message: who does the work."""
    roles = results[0]["cpu_seconds"]
    return {role: round(statistics.median(r["cpu_seconds"][role] * 1000 / max(r["received"], 1) for r in results), 3) for role in roles}


def _median(results: list[dict], key: str) -> float:
    return round(statistics.median(r[key] for r in results), 2)
