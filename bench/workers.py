"""Bridge workers that scale (`python -m bench --measure workers`): the same E2E rounds with 1 and with N workers.

For each worker count a system of its own (`MQCHAT_BRIDGE_WORKERS`; on Mosquitto each worker handles
the conversations that hash to it, bridge.affinity), the same pairs and rates, and per round:

- `seq` collisions: inserts refused because the number was taken (another worker, a record
  behind the store): `mqchat_message_seq_collisions_total` scraped before and after, per
  10,000 stored; and the requests resent after a kill (answered as duplicates);
- in the store, per conversation: `seq` 1..n without gap or repeat, every message sent
  stored once, and how many of a sender's messages were numbered out of the order sent;
- at the receivers: messages delivered twice, and deliveries arriving after a higher `seq`;
- with `kill`: the last bridge worker is SIGKILLed halfway through each round (`mqchat up`
  restarts it), and the same checks say whether anything was lost or stored twice;
- CPU seconds of every process (each bridge worker apart) and how busy the whole machine
  was (neighbours included): where the machine, not the bridge, is the limit.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import psutil

from bench import calibration
from bench.load import STALL
from bench.rounds import components, load_round, make_pairs
from core.db import init_db
from core.documents import Message
from core.settings import Settings
from tests.metrics_support import scrape, value
from tests.support import Account, System, create_staff

KILLED_STALL = 30.0  # seconds without an arrival before a round with a killed worker counts the rest as lost


async def measure_workers(
    broker: str, worker_counts: list[int], rates: list[int], duration: float, runs: int, pairs: int, kill: bool = False
) -> dict:
    """Every worker count's rounds; runs pass over every rate in turn, with a calibration after each run."""
    report: dict = {"worker_counts": worker_counts, "rates": rates, "duration_s": duration, "pairs": pairs, "kill": kill, "systems": {}}
    points = [calibration.calibrate()]
    for workers in worker_counts:
        workdir = Path(tempfile.mkdtemp(prefix=f"mqchat-bench-workers{workers}-"))
        system = System.on_free_ports(workdir / "data", broker=broker, MQCHAT_BRIDGE_WORKERS=str(workers))
        system.start()
        rounds: list[dict] = []
        try:
            async with httpx.AsyncClient(base_url=system.api_url, timeout=60) as api:
                admin = await create_staff(system, api, "admin")
                made, _ = await make_pairs(system, api, pairs)
                mongo = await init_db(Settings.load({"MQCHAT_DATA_DIR": str(workdir)}, env_file=None), system.store_uri)
                try:
                    for run in range(runs):
                        started = len(rounds)
                        for rate in rates:
                            rounds.append({**await _round(system, api, admin, made, rate, duration, kill), "run": run})
                        points.append(calibration.calibrate())
                        for row in rounds[started:]:
                            row["flags"] += calibration.drift_flags(points[-2], points[-1])
                finally:
                    await mongo.close()
        finally:
            system.stop()
        report["systems"][str(workers)] = rounds
    report["calibration"] = calibration.summary(points)
    return report


async def _round(system: System, api: httpx.AsyncClient, admin: Account, pairs: list, rate: int, duration: float, kill: bool) -> dict:
    arrivals: dict[str, list[int]] = defaultdict(list)  # conversation id -> seq in arrival order
    bodies: Counter = Counter()

    def arrived(event: dict) -> None:
        message = event["message"]
        arrivals[message["conversation_id"]].append(message["seq"])
        bodies[message["body"]] += 1

    _, before = await scrape(api, admin)
    checked_before = await _check_store([cid for _, cid, _ in pairs])
    psutil.cpu_percent()  # starts the machine-wide measurement
    killer = asyncio.create_task(_kill_last_worker(system, duration / 2)) if kill else None
    # A killed worker is restarted after a back-off (1 s, then 2 s, 4 s, ...) and must reconnect: wait for it.
    result = await load_round(system, pairs, rate, duration, e2e=True, on_arrival=arrived, stall=KILLED_STALL if kill else STALL)
    killed = await killer if killer else None
    machine_busy = psutil.cpu_percent() / 100
    _, after = await scrape(api, admin)

    def grown(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    collisions = grown("mqchat_message_seq_collisions_total")
    resent = grown("mqchat_outbox_requests_total", action="send", outcome="duplicate")
    checked = await _check_store([cid for _, cid, _ in pairs])
    stored = {key: checked[key] - checked_before[key] for key in checked}  # this round's share of each count
    stored["stored"] = stored.pop("stored_total")
    stored["lost_in_store"] = result.sent - stored["stored"]
    elapsed = result.received / max(result.achieved_rate, 1e-9)
    return {
        **result.as_dict(), **stored, "killed": killed, "collisions": int(collisions), "resent": int(resent),
        "collisions_per_10k": round(collisions * 10_000 / max(stored["stored"], 1), 1),
        "delivered_twice": sum(count - 1 for count in bodies.values()),
        "arrived_after_higher_seq": sum(out_of_order(seqs) for seqs in arrivals.values()),
        "cores_used": {role: round(seconds / elapsed, 2) for role, seconds in result.cpu_seconds.items()},
        "machine_busy": round(machine_busy, 2),
    }  # fmt: skip


async def _kill_last_worker(system: System, after: float) -> str:
    """SIGKILL the last bridge worker `after` seconds from now; its role name."""
    await asyncio.sleep(after)
    role, victim = [(role, p) for role, p in components(system).items() if role.startswith("bridge")][-1]
    victim.kill()
    return role


async def _check_store(conversation_ids: list[str]) -> dict:
    """The pairs' conversations in `seq` order: gaps, repeats, requests stored twice, numbering against the order sent.

    Cumulative over the system's rounds (the bench's client_msg_id `b<n>-<round start>` orders what was sent).
    """
    by_conversation: dict[str, list[tuple[int, tuple[float, int]]]] = defaultdict(list)
    requests: Counter = Counter()
    async for doc in Message.get_pymongo_collection().find(
        {"conversation_id": {"$in": conversation_ids}}, projection={"conversation_id": 1, "seq": 1, "client_msg_id": 1}
    ):
        number, _, round_start = doc["client_msg_id"][1:].partition("-")
        by_conversation[doc["conversation_id"]].append((doc["seq"], (float(round_start), int(number))))
        requests[doc["client_msg_id"]] += 1
    gaps = repeats = reordered = 0
    for rows in by_conversation.values():
        rows.sort()
        seqs = [seq for seq, _ in rows]
        repeats += len(seqs) - len(set(seqs))
        gaps += seqs[-1] - len(set(seqs))
        reordered += out_of_order([sent for _, sent in rows])
    return {"stored_total": sum(requests.values()), "stored_twice": sum(n - 1 for n in requests.values()),
            "seq_gaps": gaps, "seq_repeats": repeats, "numbered_out_of_send_order": reordered}  # fmt: skip


def out_of_order(values: list) -> int:
    """How many values come after a higher one (0 for an increasing list)."""
    late = 0
    for top, item in zip(itertools.accumulate(values, max), values[1:], strict=False):
        late += item < top
    return late


def markdown(report: dict) -> str:
    """One row per round and worker count: throughput, ordering checks, collisions, where the CPU went."""
    lines = [
        f"# Bridge workers ({report['broker']}, {report['started']})", "",
        f"{report['pairs']} pairs, {report['duration_s']} s per rate; calibration {report['calibration']['points_ms']} "
        f"(drifts {report['calibration']['drifts']})" + ("; the last worker SIGKILLed halfway through every round" if report["kill"] else ""), "",
        "| workers | run | rate | load before | flags | achieved msg/s | p50 ms | p99 ms | lost: delivered / stored | stored | collisions (per 10k) "
        "| seq gaps / repeats | stored twice | delivered twice | numbered out of send order | arrived after higher seq "
        "| cores used by process | machine busy |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for workers, rounds in report["systems"].items():
        for row in rounds:
            cores = ", ".join(f"{role} {used}" for role, used in row["cores_used"].items())
            lines.append(
                f"| {workers} | {row['run'] + 1} | {row['offered_rate']} | {row['load_before']} | {'; '.join(row['flags']) or '-'} "
                f"| {row['achieved_rate']} | {row['p50_ms']} | {row['p99_ms']} | {row['lost']} / {row['lost_in_store']} | {row['stored']} "
                f"| {row['collisions']} ({row['collisions_per_10k']}) | {row['seq_gaps']} / {row['seq_repeats']} | {row['stored_twice']} "
                f"| {row['delivered_twice']} | {row['numbered_out_of_send_order']} | {row['arrived_after_higher_seq']} | {cores} "
                f"| {row['machine_busy']:.0%} |"
            )
    return "\n".join(lines) + "\n"
