"""`python -m bench.compare REPORT.json ...`: several brokers' reports (`python -m bench`) side by side.

    python -m bench.compare bench/results/mosquitto-*.json bench/results/nats-*.json

Writes `compare-<UTC time>.md` (peak, sustainable rate, CPU per message by role at every
rate the reports share) and two plots: p50/p99 latency against offered load, raw and E2E,
one line per broker; and E2E CPU per message by role as stacked bars. Roles with several
processes (NATS nodes, bridge workers, API processes) are summed into one role.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.output import report_stem, write_report

RESULTS = Path(__file__).parent / "results"
ROLE_ORDER = ("broker", "bridge", "store", "api", "load generator")


def cpu_by_role(row: dict) -> dict[str, float]:
    """A load row's CPU ms per message summed over the processes of each role (`broker 2` counts as `broker`)."""
    summed: dict[str, float] = {}
    for process, ms in row["cpu_ms_per_message"].items():
        role = process.rstrip(" 0123456789")
        summed[role] = round(summed.get(role, 0.0) + ms, 3)
    return summed


def shared_rates(reports: list[dict]) -> list[int]:
    """The offered rates every report measured."""
    per_report = [{int(key.split("@")[1]) for key in report["load"]} for report in reports]
    return sorted(set.intersection(*per_report))


def markdown(reports: list[dict], names: list[str]) -> str:
    rates = shared_rates(reports)
    lines = [f"# Brokers compared: {', '.join(r['broker'] for r in reports)}", "",
             "| broker | report | quiet | peak E2E msg/s | peak raw msg/s | max sustainable E2E msg/s |", "|---|---|---|---|---|---|"]  # fmt: skip
    for report, name in zip(reports, names, strict=True):
        peak, flagged = report["peak"], report.get("comparable")  # reports before bench.calibration do not say
        quiet = "not recorded" if flagged is None else "yes" if flagged["quiet"] else f"{flagged['flagged_rounds']}/{flagged['rounds']} flagged"
        lines.append(f"| {report['broker']} | {name} | {quiet} | {peak['e2e']} | {peak['raw']} | {report['max_sustainable_rate']} |")
    if not rates:
        return "\n".join([*lines, "", "The reports share no offered rate (run them with the same --rates)."]) + "\n"
    lines += ["", "E2E p99 ms at each offered rate:", "", "| broker | " + " | ".join(f"{r}/s" for r in rates) + " |", "|---|" + "---|" * len(rates)]
    for report in reports:
        lines.append(f"| {report['broker']} | " + " | ".join(str(report["load"][f"e2e@{r}"]["p99_ms"]) for r in rates) + " |")
    lines += ["", "E2E CPU ms per delivered message by role (every process of a role summed):", "",
              "| broker@rate | " + " | ".join(ROLE_ORDER) + " | server total |", "|---|" + "---|" * (len(ROLE_ORDER) + 1)]  # fmt: skip
    for report in reports:
        for rate in rates:
            cpu = cpu_by_role(report["load"][f"e2e@{rate}"])
            server = round(sum(ms for role, ms in cpu.items() if role != "load generator"), 2)
            lines.append(f"| {report['broker']}@{rate} | " + " | ".join(str(cpu.get(role, 0.0)) for role in ROLE_ORDER) + f" | {server} |")
    return "\n".join(lines) + "\n"


def plots(reports: list[dict], stem: Path) -> list[str]:
    """Latency against offered load for every broker and path; E2E CPU per message by role, stacked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for report in reports:
        rates = sorted({int(key.split("@")[1]) for key in report["load"]})
        for path, style in (("raw", ":"), ("e2e", "-")):
            ax.plot(rates, [report["load"][f"{path}@{r}"]["p99_ms"] for r in rates], style, marker="o", label=f"{report['broker']} {path} p99")
    ax.set_xlabel("offered rate (msg/s)"), ax.set_ylabel("p99 latency (ms)"), ax.set_yscale("log"), ax.grid(True, alpha=0.3)
    ax.axhline(100, color="grey", linewidth=0.8), ax.legend(fontsize=8), ax.set_title("p99 latency vs offered load")
    latency = stem.with_name(stem.name + "-latency.png")
    fig.tight_layout(), fig.savefig(latency, dpi=100), plt.close(fig)

    rates = shared_rates(reports)
    bars = [(f"{report['broker']}\n{rate}/s", cpu_by_role(report["load"][f"e2e@{rate}"])) for report in reports for rate in rates]
    fig, ax = plt.subplots(figsize=(max(6, len(bars) * 0.9), 4.5))
    bottoms = [0.0] * len(bars)
    for role in ROLE_ORDER[:-1]:  # server processes only
        heights = [cpu.get(role, 0.0) for _, cpu in bars]
        ax.bar(range(len(bars)), heights, bottom=bottoms, label=role)
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    ax.set_xticks(range(len(bars)), [label for label, _ in bars], fontsize=8)
    ax.set_ylabel("server CPU ms per message"), ax.legend(fontsize=8), ax.grid(True, axis="y", alpha=0.3)
    ax.set_title("E2E CPU per persisted message, by role")
    cpu_png = stem.with_name(stem.name + "-cpu.png")
    fig.tight_layout(), fig.savefig(cpu_png, dpi=100), plt.close(fig)
    return [latency.name, cpu_png.name]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reports", nargs="+", type=Path, help="JSON reports of `python -m bench` (its full load report)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    reports = [json.loads(path.read_text()) for path in args.reports]
    stem = report_stem(args.out, "compare")
    comparison = {"reports": [path.name for path in args.reports], "plots": plots(reports, stem)}
    write_report(stem, comparison, markdown(reports, comparison["reports"]) + "\nPlots: " + ", ".join(comparison["plots"]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
