"""Where a bench run's report goes: `<out>/<name>-<UTC time>.json` and `.md`, the Markdown also printed."""

from __future__ import annotations

import json
import time
from pathlib import Path


def report_stem(out: Path, name: str) -> Path:
    """A new report's path without suffix, in `out` (created)."""
    out.mkdir(parents=True, exist_ok=True)
    return out / f"{name}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}"


def write_report(stem: Path, report: dict, markdown: str) -> None:
    """Write the report as JSON and Markdown beside each other and print the Markdown."""
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2))
    stem.with_suffix(".md").write_text(markdown)
    print(markdown)
    print(f"written: {stem}.json, {stem}.md")
