"""The directory where `mqchat up`'s children keep their metrics (prometheus-client's multiprocess mode).

Every child gets `PROMETHEUS_MULTIPROC_DIR=<data dir>/metrics`; the API's `/metrics`
adds up the files there (api.metrics). `up` empties it at start (it holds the data
directory's lock, so no other instance writes there) and forgets a child's live
gauges when that child ends, so a dead process's connections and memory are not
counted; its counters and histograms stay, and totals never go backwards.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client.multiprocess import mark_process_dead

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def prepare(data_dir: Path) -> Path:
    """`<data dir>/metrics`, created and emptied of a previous run's files."""
    directory = data_dir / "metrics"
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)
    return directory


def forget(directory: Path, pid: int | None) -> None:
    """Drop the live gauges of an ended child (prometheus-client's `mark_process_dead`)."""
    if pid is not None:
        mark_process_dead(pid, str(directory))
