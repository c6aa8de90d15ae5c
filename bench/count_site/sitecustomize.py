"""Loaded by every Python process started with this folder on PYTHONPATH (`python -m bench --count`).

With MQCHAT_BENCH_COUNT_DIR set, the process counts what it does between two SIGUSR1 (bench.counting).
"""

import os
import sys
from pathlib import Path

if os.environ.get("MQCHAT_BENCH_COUNT_DIR"):
    sys.path.append(str(Path(__file__).resolve().parents[2]))  # the checkout, for `bench`
    from bench.counting import listen_for_signals

    listen_for_signals(Path(os.environ["MQCHAT_BENCH_COUNT_DIR"]))
