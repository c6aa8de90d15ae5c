"""`python -m bench`: start mqchat on free ports, load it, and write JSON, Markdown and plots to bench/results/.

    python -m bench                      # embedded broker, 3 runs of every measure
    python -m bench --broker mosquitto   # Mosquitto (mqchat mosquitto + MQCHAT_BROKER=external)
    python -m bench --broker nats        # the 3-node NATS cluster (MQCHAT_BROKER=nats), clients spread over its nodes
    python -m bench --quick              # a few seconds, for the smoke test
    python -m bench --settle 120         # each round waits (up to 120 s) for the machine to be quiet: quotable rounds
    python -m bench --count              # what one chat message costs: store commands, JSON, validation, packets
    python -m bench --profile --rates 200 --duration 20   # py-spy of every server process during E2E rounds
    python -m bench --measure workers --broker mosquitto --workers 1,2 --rates 300,1000 --duration 10
    python -m bench --measure relay --broker mosquitto --rates 4000,7000,10000   # the raw relay alone (bench.relay)
    python -m bench --measure flood --duration 10 --runs 5   # nothing acknowledged lost at the broker's limit
    python -m bench --measure idle --connections 5000 --runs 3   # broker memory per idle connection (bench.idle)
    python -m bench --measure history --history-depth 1000000   # history pages at depth, alone (bench.history)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import httpx
import psutil
from rich.progress import Progress

from bench import calibration, costs, flood, history, idle, profiling, relay, workers
from bench.load import LoadResult
from bench.measures import LONG_TOKENS, fill_history, history_latency, login_throughput, search_indexed
from bench.output import report_stem, write_report
from bench.rounds import calibrated_rounds, components, load_round, make_pairs
from bench.summary import summarize_rounds
from core.db import init_db
from core.settings import Settings
from tests.support import System, open_conversation, signup

RESULTS = Path(__file__).parent / "results"
SLO_P99_MS = 100.0
DEFAULT_RATES = "100,200,300,500,1000,2000,4000"


def _numbers(text: str) -> list[int]:
    """A comma-separated list of whole numbers (`--rates`, `--workers`)."""
    return [int(part) for part in text.split(",")]


def options(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", choices=["amqtt", "mosquitto", "nats"], default="amqtt")
    parser.add_argument("--rates", type=_numbers, default=DEFAULT_RATES, help="offered rates, msg/s (the top ones find the raw relay's peak)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per rate")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=20, help="sender/receiver pairs (one conversation each)")
    parser.add_argument("--history-depth", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=0, help="idle connections to try (default: 5000 embedded, 10000 mosquitto, 2000 nats)")
    parser.add_argument("--quick", action="store_true", help="tiny settings for a smoke run")
    parser.add_argument("--count", type=int, nargs="?", const=100, default=0, metavar="MESSAGES",
                        help="instead of timing: count what one message costs, over MESSAGES sent one at a time (default 100)")
    parser.add_argument("--profile", action="store_true", help="instead of the full report: py-spy each server process during one E2E round per rate")
    parser.add_argument("--measure", choices=["load", "relay", "workers", "flood", "idle", "history"], default="load",
                        help="load: the full report; relay: raw relay rounds only, at --rates (bench.relay); "
                             "workers: E2E rounds per bridge worker count (bench.workers); "
                             "flood: closed-loop floods, every acknowledged message counted (bench.flood); "
                             "idle: idle connections held and broker memory per connection, a fresh system per run (bench.idle); "
                             "history: pages and after_seq at --history-depth, --runs rounds (bench.history)")
    parser.add_argument("--workers", type=_numbers, default="1,2", help="--measure workers: the bridge worker counts to compare")
    parser.add_argument("--kill-worker", action="store_true", help="--measure workers: SIGKILL the last worker halfway through every round")
    parser.add_argument("--paths", default="raw,e2e", help="--measure flood: raw (the broker alone) and/or e2e (through the bridge)")
    parser.add_argument("--window", type=int, default=50, help="--measure flood: unacknowledged PUBLISHes per publisher")
    parser.add_argument("--settle", type=float, default=0.0,
                        help="before each load, relay, flood or history round, wait up to this many seconds for the 1-minute load "
                             "to fall to 0.7 (quotable rounds)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.rates, args.duration, args.runs, args.pairs, args.history_depth = [50], 1.0, 1, 2, 500
        args.connections = args.connections or 20
    args.connections = args.connections or {"mosquitto": 10_000, "nats": 2000}.get(args.broker, 5000)
    return args


def _peak(load: dict[str, dict]) -> dict[str, float]:
    """The highest achieved rate of each path over all offered rates, and E2E's share of the raw relay's."""
    peak = {path: max(row["achieved_rate"] for key, row in load.items() if key.startswith(f"{path}@")) for path in ("e2e", "raw")}
    return {**peak, "ratio": round(peak["e2e"] / max(peak["raw"], 1e-9), 3)}


# The shipped argon2id parameters: test systems hash cheaply, but logins are measured as users get them.
SHIPPED_HASHING = {
    "MQCHAT_ARGON2_MEMORY_KIB": str(Settings().argon2_memory_kib),
    "MQCHAT_ARGON2_TIME_COST": str(Settings().argon2_time_cost),
    "MQCHAT_ARGON2_PARALLELISM": str(Settings().argon2_parallelism),
}


async def bench(args: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="mqchat-bench-"))
    system = System.on_free_ports(workdir / "data", broker=args.broker, **costs.counting_env(workdir), **SHIPPED_HASHING, **LONG_TOKENS)
    system.start()
    report: dict = {"broker": args.broker, "machine": _machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    points = [calibration.calibrate()]  # before the first run, then after each (bench.calibration.summary)
    try:
        async with httpx.AsyncClient(base_url=system.api_url, timeout=60) as api:
            pairs, accounts = await make_pairs(system, api, args.pairs)
            # First, while the broker's memory holds nothing else: after the load rounds it
            # reuses what their queues freed, and the growth per connection reads as zero.
            # Last on the cluster: every subscribed session is a replicated JetStream consumer,
            # and after they close the cluster spends minutes removing them, during which new
            # subscriptions time out; its nodes are measured from a baseline anyway.
            cluster, owner = args.broker == "nats", accounts[-1]
            measure_connections = partial(idle.hold_idle, system, owner, components(system)["broker"], args.connections, 10 if cluster else idle.STEP)
            if not cluster:
                report["connections"] = await measure_connections()
            # Deterministic, so first: what one message costs, counted (bench.costs).
            report["counts"] = await costs.count_costs(system, api, components(system), workdir, 10 if args.quick else 100)
            with Progress() as progress:
                task = progress.add_task("load", total=args.runs * len(args.rates) * 2)

                def shown(run: int, result: LoadResult) -> None:
                    progress.update(task, advance=1, description=f"run {run + 1} {result.path} {result.offered_rate}/s p99 {result.p99_ms} ms")

                load = await calibrated_rounds(system, pairs, args.rates, args.duration, args.runs, (False, True), points, args.settle, shown)
            report["calibration"] = calibration.summary(points)
            report["load"] = {key: summarize_rounds([r.as_dict() for r in runs], report["calibration"]) for key, runs in load.items()}
            report["ratios"] = {
                str(rate): round(report["load"][f"e2e@{rate}"]["achieved_rate"] / max(report["load"][f"raw@{rate}"]["achieved_rate"], 1e-9), 3)
                for rate in args.rates
            }
            report["peak"] = _peak(report["load"])
            sustainable = [r for r in args.rates if report["load"][f"e2e@{r}"]["p99_ms"] < SLO_P99_MS and report["load"][f"e2e@{r}"]["lost"] == 0]
            report["max_sustainable_rate"] = max(sustainable, default=0)
            report["comparable"] = _comparability(report)

            mongo = await init_db(Settings.load({"MQCHAT_DATA_DIR": str(workdir)}, env_file=None), system.store_uri)
            try:
                # A conversation of its own, so its depth is exactly what was filled.
                sender, receiver = await signup(api), await signup(api)
                cid = (await open_conversation(api, sender, receiver))["id"]
                report["history_fill_docs_per_s"] = round(await fill_history(cid, sender.id, args.history_depth))
                report["history_indexed_s"] = round(await search_indexed(), 1)
                history_load = await calibration.settled_load(args.settle)
                report["history"] = await history_latency(api, receiver.headers, cid, args.history_depth, 20 if args.quick else 200)
                report["history"].update(load_before=history_load, flags=calibration.round_flags(history_load))
                report["login"] = await login_throughput(api, accounts[0].email, accounts[0].password, 2 if args.quick else 10)
            finally:
                await mongo.close()
            if cluster:
                report["connections"] = await measure_connections()
    finally:
        system.stop()
    return report


def _comparability(report: dict) -> dict:
    """How many rounds are flagged (loaded machine or drifted calibration): a report with none is quotable."""
    rounds = [run for row in report["load"].values() for run in row["runs"]]
    flagged = sum(1 for run in rounds if run["flags"])
    return {"rounds": len(rounds), "flagged_rounds": flagged, "quiet": flagged == 0}


def _machine() -> dict:
    return {"cpus": psutil.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform(), "load_avg": [round(x, 2) for x in psutil.getloadavg()]}  # fmt: skip


def markdown(report: dict) -> str:
    machine = report["machine"]
    lines = [
        f"# mqchat benchmark ({report['broker']}, {report['started']})", "",
        f"Machine: {machine['cpus']} CPUs, {machine['memory_gb']} GB, load average at start {machine['load_avg']}", "",
        *_comparability_lines(report), "",
        "| path@rate | achieved msg/s | p50 ms | p95 ms | p99 ms | p99 min–max over runs | max ms | lost | load before | flagged runs |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for key, row in report["load"].items():
        spread = [run["p99_ms"] for run in row["runs"]]
        loads = [run["load_before"] for run in row["runs"]]
        flagged = f"{row['flagged_runs']} of {len(row['runs'])}" + (" (median of all)" if row["median_of"] == "all" else "")
        lines.append(
            f"| {key} | {row['achieved_rate']} | {row['p50_ms']} | {row['p95_ms']} | {row['p99_ms']} "
            f"| {min(spread)}–{max(spread)} | {row['max_ms']} | {row['lost']} | {min(loads)}–{max(loads)} | {flagged} |"
        )
    roles = list(next(iter(report["load"].values()))["cpu_ms_per_message"])
    for field, title in (("cpu_ms_per_message", "CPU milliseconds per delivered message, by process (2 cores = 2,000 ms of CPU per second):"),
                         ("cpu_ref_ms_per_message", f"The same in reference milliseconds (x {report['calibration']['reference_ms_per_cpu_ms']}: "
                                                    "comparable across machines, bench/calibration.py):")):  # fmt: skip
        lines += ["", title, "", "| path@rate | " + " | ".join(roles) + " |", "|---|" + "---|" * len(roles)]
        for key, row in report["load"].items():
            lines.append(f"| {key} | " + " | ".join(str(row[field][r]) for r in roles) + " |")
    peak = report["peak"]
    lines += ["", f"Peak achieved throughput: E2E {peak['e2e']} msg/s, raw relay {peak['raw']} msg/s (same generator): ratio {peak['ratio']}",
              f"E2E / raw achieved-throughput ratio per rate: {report['ratios']}",
              f"Max sustainable E2E rate (p99 < {SLO_P99_MS:.0f} ms, nothing lost): {report['max_sustainable_rate']} msg/s",
              f"History at depth {report['history']['depth']}: page {report['history']['page']}, after_seq {report['history']['after_seq']}",
              f"History fill (insert_many): {report['history_fill_docs_per_s']} docs/s",
              f"Logins: {report['login']}", f"Idle connections: {report['connections']}", "",
              "Figures are medians over the unflagged runs (over all runs where every run is flagged); every run is in the JSON.",
              "", *costs.markdown(report["counts"]).replace("# ", "## ", 1).splitlines()]  # fmt: skip
    return "\n".join(lines) + "\n"


def _comparability_lines(report: dict) -> list[str]:
    """The verdict first: may these figures be quoted, and if not, why."""
    comparable, cal = report["comparable"], report["calibration"]
    verdict = "**quiet: every round is comparable**" if comparable["quiet"] else (
        f"**FLAGGED: {comparable['flagged_rounds']} of {comparable['rounds']} rounds** started with load > "
        f"{calibration.MAX_LOAD} or ran while the calibration drifted > {calibration.MAX_DRIFT:.0%}; do not quote them"
    )  # fmt: skip
    drifted = f", runs flagged for drift: {[n + 1 for n in cal['flagged_runs']]}" if cal["flagged_runs"] else ""
    return [verdict, "", f"Calibration (CPU ms of the reference workload, before the first run and after each): "
            f"{cal['points_ms']}, drift per run {cal['drifts']}{drifted}"]  # fmt: skip


def plots(report: dict, stem: Path) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    rates = sorted({int(k.split("@")[1]) for k in report["load"]})
    fig, ax = plt.subplots(figsize=(6, 4))
    for path in ("raw", "e2e"):
        for metric, style in (("p50_ms", "--"), ("p99_ms", "-")):
            ax.plot(rates, [report["load"][f"{path}@{r}"][metric] for r in rates], style, marker="o", label=f"{path} {metric[:3]}")
    ax.set_xlabel("offered rate (msg/s)"), ax.set_ylabel("latency (ms)"), ax.set_yscale("log"), ax.legend(), ax.grid(True, alpha=0.3)
    ax.set_title(f"latency vs offered load ({report['broker']})")
    latency_png = stem.with_name(stem.name + "-latency.png")
    fig.tight_layout(), fig.savefig(latency_png, dpi=100), plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    for path in ("raw", "e2e"):
        ax.plot(rates, [report["load"][f"{path}@{r}"]["achieved_rate"] for r in rates], marker="o", label=path)
    ax.plot(rates, rates, ":", color="grey", label="offered")
    ax.set_xlabel("offered rate (msg/s)"), ax.set_ylabel("achieved (msg/s)"), ax.legend(), ax.grid(True, alpha=0.3)
    ax.set_title(f"E2E vs raw broker relay ({report['broker']})")
    throughput_png = stem.with_name(stem.name + "-throughput.png")
    fig.tight_layout(), fig.savefig(throughput_png, dpi=100), plt.close(fig)
    return [latency_png.name, throughput_png.name]


async def count(args: argparse.Namespace) -> dict:
    """`--count`: a system whose Python children count on SIGUSR1 (bench.counting), and the counts per message."""
    workdir = Path(tempfile.mkdtemp(prefix="mqchat-count-"))
    system = System.on_free_ports(workdir / "data", broker=args.broker, **costs.counting_env(workdir))
    system.start()
    try:
        async with httpx.AsyncClient(base_url=system.api_url, timeout=60) as api:
            return await costs.count_costs(system, api, components(system), workdir, args.count)
    finally:
        system.stop()


async def profile(args: argparse.Namespace) -> dict:
    """`--profile`: one E2E round per rate while py-spy records every server process; their top frames."""
    workdir = Path(tempfile.mkdtemp(prefix="mqchat-profile-"))
    system = System.on_free_ports(workdir / "data", broker=args.broker)
    system.start()
    report: dict = {"broker": args.broker, "machine": _machine(), "rounds": {}}
    try:
        async with httpx.AsyncClient(base_url=system.api_url, timeout=60) as api:
            pairs, _ = await make_pairs(system, api, args.pairs)
            for rate in args.rates:
                stem = report_stem(args.out, f"profile-{args.broker}-{rate}")
                recording = await profiling.record(components(system), args.duration, stem)
                result = await load_round(system, pairs, rate, args.duration, e2e=True)
                files = await recording.finished()
                report["rounds"][str(rate)] = {"load": result.as_dict(), "files": {r: p.name for r, p in files.items()},
                                               "top": {role: profiling.top_frames(path) for role, path in files.items()}}  # fmt: skip
    finally:
        system.stop()
    return report


def main(argv: list[str] | None = None) -> int:
    args = options(argv)
    if args.profile:
        args.out.mkdir(parents=True, exist_ok=True)
        profiled = asyncio.run(profile(args))
        target = report_stem(args.out, f"profile-{args.broker}").with_suffix(".json")
        target.write_text(json.dumps(profiled, indent=2))
        print(json.dumps({rate: {role: top["self"][:8] for role, top in row["top"].items()} for rate, row in profiled["rounds"].items()}, indent=1))
        return 0
    if args.measure != "load":
        return _measure(args)
    if args.count:
        counted = asyncio.run(count(args))
        write_report(report_stem(args.out, f"counts-{args.broker}"), counted, costs.markdown(counted))
        return 0
    report = asyncio.run(bench(args))
    stem = report_stem(args.out, report["broker"])
    report["plots"] = plots(report, stem)
    write_report(stem, report, markdown(report))
    return 0


def _measure(args: argparse.Namespace) -> int:
    """`--measure relay`, `workers`, `flood`, `idle` or `history`: its own systems and report."""
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if args.measure == "idle":
        report = asyncio.run(idle.measure_idle(args.broker, args.connections, args.runs))
        render = idle.markdown
    elif args.measure == "workers":
        report = asyncio.run(workers.measure_workers(args.broker, args.workers, args.rates, args.duration, args.runs, args.pairs, args.kill_worker))
        render = workers.markdown
    elif args.measure == "relay":
        report = asyncio.run(relay.measure_relay(args.broker, args.rates, args.duration, args.runs, args.pairs, args.settle))
        render = relay.markdown
    elif args.measure == "history":
        report = asyncio.run(history.measure_history(args.broker, args.history_depth, args.runs, 20 if args.quick else 200, args.settle))
        render = history.markdown
    else:
        report = asyncio.run(flood.measure_flood(args.broker, args.paths.split(","), args.duration, args.window, args.runs, args.pairs, args.settle))
        render = flood.markdown
    report.update(broker=args.broker, machine=_machine(), started=started)
    write_report(report_stem(args.out, f"{args.measure}-{args.broker}"), report, render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
