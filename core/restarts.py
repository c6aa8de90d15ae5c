"""How often `mqchat up` restarted each component, kept in the data dir so `/api/health` can say so.

The supervisor empties the record when it starts and adds one per restart; the API
reads it. One small JSON file, replaced atomically.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

FILE = "restarts.json"


def reset(data_dir: Path) -> None:
    """Forget earlier runs' restarts."""
    (data_dir / FILE).unlink(missing_ok=True)


def record(data_dir: Path, component: str) -> None:
    """Count one restart of `component`."""
    counts = read(data_dir)
    counts[component] = counts.get(component, 0) + 1
    tmp = data_dir / f".{FILE}.{os.getpid()}"
    tmp.write_text(json.dumps(counts))
    tmp.replace(data_dir / FILE)


def read(data_dir: Path) -> dict[str, int]:
    """Restarts per component since `mqchat up` started (empty when none, or when not run by `mqchat up`)."""
    try:
        counts = json.loads((data_dir / FILE).read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in counts.items() if isinstance(k, str) and isinstance(v, int)} if isinstance(counts, dict) else {}
