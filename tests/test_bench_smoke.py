"""Keeps the benchmark runnable: a few seconds of `python -m bench --quick` (no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_bench_quick_run_writes_its_report(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    [report_file] = tmp_path.glob("*.json")
    report = json.loads(report_file.read_text())
    assert set(report["load"]) == {"raw@50", "e2e@50"}
    assert report["load"]["e2e@50"]["lost"] == 0 and report["load"]["raw@50"]["lost"] == 0
    assert report["peak"]["e2e"] == report["load"]["e2e@50"]["achieved_rate"] > 0 and 0 < report["peak"]["ratio"] <= 1.1
    assert report["history"]["page"]["p50_ms"] > 0 and report["login"]["logins_per_s"] > 0
    assert report["connections"]["held"] == report["connections"]["target"]
    cpu = report["load"]["e2e@50"]["cpu_ms_per_message"]
    assert {"broker", "bridge", "api", "store", "load generator"} <= set(cpu) and cpu["bridge"] > 0
    assert report_file.with_suffix(".md").exists()
