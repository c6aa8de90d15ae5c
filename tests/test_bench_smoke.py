"""Keeps the benchmark runnable: a few seconds of `python -m bench --quick` (no timing assertions, but the
counts of what one message costs, which are deterministic)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from bench import calibration, compare, relay
from bench.lean_mqtt import Received
from bench.load import _Arrivals
from bench.rounds import components, load_round, make_pairs, spread
from bench.workers import out_of_order
from tests.support import System


def _check_counts(counts: dict) -> None:
    """Counts are deterministic: at one message per batch, one insert and one conversation update per message,
    no other store command on the message's path, no timer per packet in the embedded broker."""
    per = counts["per_message"]
    assert per["bridge"]["store.insert.messages"] == 1 and per["bridge"]["store.update.conversations"] == 1
    assert per["load generator"]["mqtt.sent.PUBLISH"] == 1 and per["load generator"]["mqtt.received.PUBLISH"] == 1
    assert per["bridge"]["mqtt.received.PUBLISH"] == 1 and per["bridge"]["mqtt.sent.PUBLISH"] == 3  # both inboxes, the conversation
    assert "store.find.blocks" not in per["bridge"], "who may write is kept beside the cached conversation"
    assert per["broker"]["acl.receive"] == 2
    assert per["broker"]["acl.evaluated"] == per["broker"]["acl.publish"]  # every RECEIVE answer remembered
    assert per["broker"].get("asyncio.timers", 0) < 2, "no timer per packet (there were 12 per message: keep-alive)"
    assert counts["history"]["before: next_before"]["store.find.messages"] == 1  # the cursor's position is known: no lookup


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
    assert report["login"]["hash"] == "argon2id m=65536,t=3,p=4", "logins measured with the shipped hashing, not the suite's"
    assert report["connections"]["held"] == report["connections"]["target"]
    cpu = report["load"]["e2e@50"]["cpu_ms_per_message"]
    assert {"broker", "bridge", "api", "store", "load generator"} <= set(cpu) and cpu["bridge"] > 0
    assert set(cpu) == set(report["load"]["e2e@50"]["cpu_ref_ms_per_message"])
    # Comparable runs: the load before every round, a calibration before and after the run, flags that follow them.
    cal = report["calibration"]
    assert len(cal["points_ms"]) == 2 and all(point > 0 for point in cal["points_ms"]) and len(cal["drifts"]) == 1
    for row in report["load"].values():
        for run in row["runs"]:
            expected = calibration.round_flags(run["load_before"]) + calibration.drift_flags(*cal["points_ms"])
            assert run["load_before"] >= 0 and run["flags"] == expected
    assert report["comparable"]["quiet"] == (report["comparable"]["flagged_rounds"] == 0)
    markdown = report_file.with_suffix(".md").read_text()
    assert ("FLAGGED" in markdown) == (not report["comparable"]["quiet"]) and "reference milliseconds" in markdown
    _check_counts(report["counts"])
    assert "Cost of one persisted chat message" in markdown

    # Two reports side by side (python -m bench.compare): roles summed, both plots written.
    assert compare.main([str(report_file), str(report_file), "--out", str(tmp_path / "compare")]) == 0
    compared = next((tmp_path / "compare").glob("*.md")).read_text()
    assert f"| {compare.label(report)}@50 |" in compared and len(list((tmp_path / "compare").glob("*.png"))) == 2


async def test_a_round_on_the_cluster_crosses_its_nodes_and_counts_every_process(nats_system: System) -> None:
    """`python -m bench --broker nats`: every node, bridge worker and API process has its CPU column, and
    senders and receivers sit on different nodes, so every message crosses a route."""
    processes = components(nats_system)
    assert {"broker", "broker 2", "broker 3", "bridge", "bridge 2", "api", "api 2", "store"} <= set(processes)
    assert {spread(nats_system, n).mqtt_port - nats_system.mqtt_port for n in range(3)} == {0, 1, 2}
    async with httpx.AsyncClient(base_url=nats_system.api_url, timeout=30) as api:
        pairs, _ = await make_pairs(nats_system, api, 3)
    result = await load_round(nats_system, pairs, 30, 1.0, e2e=True)
    assert result.lost == 0 and result.received == result.sent > 0
    assert compare.cpu_by_role({"cpu_ms_per_message": {"broker": 1.0, "broker 2": 0.5, "bridge": 2.0}}) == {"broker": 1.5, "bridge": 2.0}


async def test_the_relay_measure_offers_each_rate_and_counts_the_generator(amqtt_system: System) -> None:
    """`bench --measure relay`: raw rounds only, a row per offered rate with the broker's and the generator's CPU."""
    report = await relay.relay_rounds(amqtt_system, [40, 80], 1.0, 1, 2)
    assert list(report["relay"]) == ["40", "80"]
    assert all(row["lost"] == 0 and row["achieved_rate"] > 0 and row["runs"][0]["path"] == "raw" for row in report["relay"].values())
    shown = relay.markdown({**report, "broker": "amqtt", "started": "now"})
    assert shown.count("\n| 40 |") == 1 and shown.count("\n| 80 |") == 1
    assert report["relay"]["80"]["cpu_ms_per_message"]["load generator"] > 0


def test_rounds_on_a_loaded_or_drifting_machine_are_flagged() -> None:
    assert calibration.round_flags(0.7) == [] and calibration.round_flags(0.71) == ["load 0.71 > 0.7"]
    assert calibration.drift_flags(100.0, 114.0) == [] and calibration.drift_flags(100.0, 116.0) == ["calibration drift 16% > 15%"]
    summary = calibration.summary([100.0, 90.0, 120.0])
    assert summary["drifts"] == [0.1, 0.333] and summary["flagged_runs"] == [1]
    assert calibration.in_reference_ms({"bridge": 2.0}, summary) == {"bridge": 2.0}  # median point 100 ms = REFERENCE_MS


def test_the_workers_measure_counts_what_came_after_a_higher_one() -> None:
    """`bench --measure workers` judges numbering and delivery order by this count (0: in order)."""
    assert out_of_order([1, 2, 3]) == 0 and out_of_order([]) == 0
    assert out_of_order([2, 1, 3, 2]) == 2 and out_of_order([(1.0, 5), (2.0, 0), (1.0, 6)]) == 1


def test_a_message_delivered_twice_counts_as_one_arrival() -> None:
    """A repeat reaches `on_arrival` (the workers measure counts it as delivered twice) but is no second arrival:
    one message lost and another delivered twice must not add up to nothing lost."""
    seen: list[str] = []
    arrivals = _Arrivals(2, e2e=False, on_arrival=lambda event: seen.append(event["body"]), round_id="r1")

    def arrive(number: int, round_id: str = "r1") -> None:
        arrivals.record(Received("chat/users/u/inbox", json.dumps({"type": "bench", "body": f"0.0|{number}|{round_id}"}).encode()))

    arrive(0)
    arrive(0)
    arrive(1, round_id="r0")  # a late arrival of an earlier round
    assert (len(arrivals.latencies), len(seen), arrivals.complete.is_set()) == (1, 2, False)
    arrive(1)
    assert (len(arrivals.latencies), arrivals.complete.is_set()) == (2, True)
