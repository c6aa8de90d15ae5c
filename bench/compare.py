"""`python -m bench.compare REPORT.json ...`: several brokers' reports (`python -m bench`) side by side.

    python -m bench.compare bench/results/mosquitto-*.json bench/results/nats-*.json

Writes `compare-<UTC time>.md` (peak, sustainable rate, CPU per message by role at every
rate the reports share, or at `--rates`) and two plots: p99 latency against offered load,
raw relay and E2E side by side, one line per report (a broker's earlier reports dashed);
and E2E CPU per message by role as stacked bars. Roles with several processes (NATS nodes, bridge workers, API processes) are
summed into one role. Reports are named by broker and day, so a broker's before and after
(two reports of one broker) can be drawn together; the legend says which were flagged.
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
    return sorted(set.intersection(*(set(offered_rates(report)) for report in reports)))


def offered_rates(report: dict) -> list[int]:
    """The offered rates a report measured."""
    return sorted({int(key.split("@")[1]) for key in report["load"]})


def label(report: dict) -> str:
    """A report's name in tables and plots: its broker and the day it started."""
    return f"{report['broker']} {report['started'][:10]}"


def quietness(report: dict) -> str:
    """Whether a report may be quoted (reports before bench.calibration do not say)."""
    comparable = report.get("comparable")
    if comparable is None:
        return "load not recorded"
    return "yes" if comparable["quiet"] else f"{comparable['flagged_rounds']}/{comparable['rounds']} flagged"


def e2e_at(report: dict, rate: int) -> dict | None:
    """A report's E2E row at an offered rate, if it measured that rate."""
    return report["load"].get(f"e2e@{rate}")


def markdown(reports: list[dict], names: list[str], rates: list[int]) -> str:
    lines = [f"# Brokers compared: {', '.join(label(r) for r in reports)}", "",
             "| broker, day | report | quiet? | peak E2E msg/s | peak raw msg/s | max sustainable E2E msg/s |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for report, name in zip(reports, names, strict=True):
        peak = report["peak"]
        lines.append(f"| {label(report)} | {name} | {quietness(report)} | {peak['e2e']} | {peak['raw']} | {report['max_sustainable_rate']} |")
    if not rates:
        return "\n".join([*lines, "", "The reports share no offered rate (run them with the same --rates, or pass --rates)."]) + "\n"
    lines += ["", "E2E p99 ms at each offered rate (– not measured):", "",
              "| report | " + " | ".join(f"{r}/s" for r in rates) + " |", "|---|" + "---|" * len(rates)]  # fmt: skip
    for report in reports:
        lines.append(f"| {label(report)} | " + " | ".join(str(row["p99_ms"]) if (row := e2e_at(report, r)) else "–" for r in rates) + " |")
    lines += ["", "E2E CPU ms per delivered message by role (every process of a role summed):", "",
              "| report@rate | " + " | ".join(ROLE_ORDER) + " | server total |", "|---|" + "---|" * (len(ROLE_ORDER) + 1)]  # fmt: skip
    for report, rate, cpu in cpu_bars(reports, rates):
        server = round(sum(ms for role, ms in cpu.items() if role != "load generator"), 2)
        lines.append(f"| {label(report)}@{rate} | " + " | ".join(str(cpu.get(role, 0.0)) for role in ROLE_ORDER) + f" | {server} |")
    return "\n".join(lines) + "\n"


def cpu_bars(reports: list[dict], rates: list[int]) -> list[tuple[dict, int, dict[str, float]]]:
    """(report, rate, CPU ms per message by role) for every report at every one of `rates` it measured."""
    return [(report, rate, cpu_by_role(row)) for report in reports for rate in rates if (row := e2e_at(report, rate))]


def plots(reports: list[dict], stem: Path, rates: list[int]) -> list[str]:
    """p99 latency against offered load, raw relay and E2E side by side, a line per report; E2E CPU per
    message by role as stacked bars at `rates`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    brokers = list(dict.fromkeys(report["broker"] for report in reports))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for ax, path, title in zip(axes, ("raw", "e2e"), ("raw relay (broker only)", "E2E (bridge + store + broker)"), strict=True):
        for n, report in enumerate(reports):
            offered, later = offered_rates(report), any(other["broker"] == report["broker"] for other in reports[n + 1 :])
            flagged = "" if quietness(report) == "yes" else f" ({quietness(report)})"
            ax.plot(offered, [report["load"][f"{path}@{r}"]["p99_ms"] for r in offered], "--" if later else "-", marker="o",
                    color=f"C{brokers.index(report['broker'])}", label=label(report) + flagged)  # fmt: skip
        ax.set_xlabel("offered rate (msg/s)"), ax.set_xscale("log"), ax.set_yscale("log"), ax.grid(True, which="both", alpha=0.3)
        ax.axhline(100, color="grey", linewidth=0.8), ax.set_title(f"p99 latency, {title}")
    axes[0].set_ylabel("p99 latency (ms)"), axes[1].legend(fontsize=7)
    latency = stem.with_name(stem.name + "-latency.png")
    fig.tight_layout(), fig.savefig(latency, dpi=100), plt.close(fig)

    bars = cpu_bars(reports, rates)
    fig, ax = plt.subplots(figsize=(max(6, len(bars) * 0.9), 4.5))
    bottoms = [0.0] * len(bars)
    for role in ROLE_ORDER[:-1]:  # server processes only
        heights = [cpu.get(role, 0.0) for _, _, cpu in bars]
        ax.bar(range(len(bars)), heights, bottom=bottoms, label=role)
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    ax.set_xticks(range(len(bars)), [f"{label(report)}\n{rate}/s".replace(" ", "\n", 1) for report, rate, _ in bars], fontsize=7)
    ax.set_ylabel("server CPU ms per message"), ax.legend(fontsize=8), ax.grid(True, axis="y", alpha=0.3)
    ax.set_title("E2E CPU per persisted message, by role")
    cpu_png = stem.with_name(stem.name + "-cpu.png")
    fig.tight_layout(), fig.savefig(cpu_png, dpi=100), plt.close(fig)
    return [latency.name, cpu_png.name]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reports", nargs="+", type=Path, help="JSON reports of `python -m bench` (its full load report)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--rates", help="offered rates of the CPU table and bars, e.g. 200,1000 (default: those all reports share)")
    args = parser.parse_args(argv)
    reports = [json.loads(path.read_text()) for path in args.reports]
    rates = [int(rate) for rate in args.rates.split(",")] if args.rates else shared_rates(reports)
    stem = report_stem(args.out, "compare")
    comparison = {"reports": [path.name for path in args.reports], "rates": rates, "plots": plots(reports, stem, rates)}
    write_report(stem, comparison, markdown(reports, comparison["reports"], rates) + "\nPlots: " + ", ".join(comparison["plots"]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
