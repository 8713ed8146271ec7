"""Results: per-round samples summarised, then JSON, a Markdown table and a PNG chart."""

from __future__ import annotations

import json
import shlex
import statistics
from pathlib import Path
from typing import Any

from benchlib.procs import HOST
from benchlib.servers import BY_NAME, IO_WAIT_S, SCENARIOS, SERVERS, Scenario
from benchlib.targets import format_measured, per_cpu_second

#: A process using this much of its CPU was limited by it.
SATURATED = 80.0
#: A CPU this busy in total had no time to spare.
CPU_FULL = 90.0
KIND_COLOURS = {"chaussette": "#2b6cb0", "raw": "#90cdf4", "raw-defaults": "#e53e3e",
                "gunicorn": "#a0aec0"}
KIND_LABELS = {"chaussette": "through chaussette", "raw": "raw library, same settings",
               "raw-defaults": "raw library, its defaults", "gunicorn": "gunicorn, 1 worker"}


def summarise(samples: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{scenario: {server: summary}}, in SERVERS order."""
    order = {server.name: index for index, server in enumerate(SERVERS)}
    summary: dict[str, dict[str, Any]] = {}
    for scenario in SCENARIOS:
        runs: dict[str, list[dict[str, Any]]] = {}
        for sample in samples:
            if sample["scenario"] == scenario.name:
                runs.setdefault(sample["server"], []).append(sample)
        summary[scenario.name] = {name: _one(runs[name], scenario)
                                  for name in sorted(runs, key=order.__getitem__)}
    return summary


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [run[key] for run in runs if run[key] is not None]
    return statistics.median(values) if values else None


def ms(value: float | None) -> str:
    """A latency for the tables: '-' when no request got an answer."""
    return "-" if value is None else f"{value:.2f}"


def _one(runs: list[dict[str, Any]], scenario: Scenario) -> dict[str, Any]:
    rps = [run["rps"] for run in runs]
    errors: dict[str, int] = {}
    for run in runs:
        for name, count in run["errors"].items():
            errors[name] = errors.get(name, 0) + count
    result = {
        "kind": runs[0]["kind"],
        "rounds": len(runs),
        "rps": {"median": statistics.median(rps), "min": min(rps), "max": max(rps)},
        "p50_ms": _median(runs, "p50_ms"),
        "p99_ms": _median(runs, "p99_ms"),
        "errors": {name: count for name, count in errors.items() if count},
        "server_cpu_pct": _median(runs, "server_cpu_pct"),
        "server_sys_pct": _median(runs, "server_sys_pct"),
        # Requests per second of server CPU: steadier than req/s when other processes
        # take turns on the server's CPU, and meaningful when the server is CPU-bound.
        "rps_per_cpu_s": statistics.median(per_cpu_second(run) for run in runs),
        "server_cpu_busy_pct": _median(runs, "server_cpu_busy_pct"),
        "wrk_cpu_pct": _median(runs, "wrk_cpu_pct"),
        "load_cpu_busy_pct": _median(runs, "load_cpu_busy_pct"),
        "peak_rss_mb": max((run["peak_rss_mb"] or 0) for run in runs),
        "start_ms": _median(runs, "start_ms"),
        # Run pinned with taskset to the server CPU (meta.server_cpu), PORT a free port.
        "command": shlex.join(BY_NAME[runs[0]["server"]].command("python", scenario.app, HOST, "PORT")),
    }
    result["limit"] = limit(result, runs[0]["server"], scenario.name)
    return result


def limit(result: dict[str, Any], server: str, scenario: str) -> str:
    """What held this number back, read from the CPU counters of the run.

    A process near 100% of its CPU was limited by it. A server that serves a fixed
    number of requests at a time in the io scenario is limited by that number. Otherwise,
    if the server's CPU was busy anyway, other processes took the rest of it, and the
    counters cannot tell whether the server would have used it (it may have been waiting);
    if not, the server was waiting (on timers, stalls or its own limits).
    """
    if result["wrk_cpu_pct"] >= SATURATED:
        return "load generator CPU"
    if result["server_cpu_pct"] >= SATURATED:
        return "server CPU"
    concurrency = BY_NAME[server].io_concurrency if scenario == "io" else None
    if concurrency and result["rps"]["median"] >= 0.6 * concurrency / IO_WAIT_S:
        return f"{concurrency} request(s) at a time x 10 ms = {concurrency / IO_WAIT_S:,.0f} req/s at most"
    if result["server_cpu_busy_pct"] >= CPU_FULL:
        others = max(0.0, result["server_cpu_busy_pct"] - result["server_cpu_pct"])
        return f"server CPU shared: other processes took {others:.0f}% of it"
    return "waiting: neither CPU busy"


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(_rounded(document), indent=1) + "\n")


def _rounded(value: Any) -> Any:
    """Floats to 3 decimals: the measurements are not more precise, and the file stays small."""
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    return value


def markdown(document: dict[str, Any]) -> str:
    meta = document["meta"]
    lines = [
        f"# Benchmark results ({meta['mode']} run)",
        "",
        f"`{meta['command']}` on {meta['date']}, commit {meta['commit']}.",
        "",
        f"Machine: {meta['cpus']} CPU(s), {meta['cpu_model']}; Python {meta['python']}; {meta['wrk']}. "
        f"Server pinned to CPU {meta['server_cpu']}, wrk to CPU {meta['load_cpu']}. "
        f"{meta['rounds']} round(s) x {meta['duration_s']:g} s per server after a "
        f"{meta['warmup_s']:g} s warm-up, servers interleaved within each round.",
        "",
        f"Load average (1/5/15 min) before: {meta['load_before']}, after: {meta['load_after']}"
        f" (`uptime`: {meta['uptime_before']}).",
        "",
    ]
    for scenario in SCENARIOS:
        rows = document["summary"].get(scenario.name)
        if not rows:
            continue
        lines += [f"## {scenario.name}: {scenario.summary}", "",
                  "| server | req/s (median) | min–max | p50 ms | p99 ms | errors | server CPU (sys) | "
                  "req per CPU-s | wrk CPU | peak RSS MB | start ms | limited by |",
                  "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|"]
        for name, row in rows.items():
            errors = ", ".join(f"{k} {v}" for k, v in row["errors"].items()) or "0"
            rps = row["rps"]
            lines.append(
                f"| {name} | {rps['median']:,.0f} | {rps['min']:,.0f}–{rps['max']:,.0f} "
                f"| {ms(row['p50_ms'])} | {ms(row['p99_ms'])} | {errors} "
                f"| {row['server_cpu_pct']:.0f}% ({row['server_sys_pct']:.0f}% sys) "
                f"| {row['rps_per_cpu_s']:,.0f} | {row['wrk_cpu_pct']:.0f}% | {row['peak_rss_mb']:.1f} "
                f"| {row['start_ms']:.0f} | {row['limit']} |")
        lines.append("")
    lines += ["## Targets", "", "| result | target | measured | goal | detail |", "|---|---|---:|---|---|"]
    for row in document["targets"]:
        lines.append(f"| {row['result']} | {row['target']} | {format_measured(row)} | {row['goal']} "
                     f"| {row['note']} |")
    lines.append("")
    starts = document.get("start_ms", {})
    if starts:
        lines += ["## Start to first served request (median over starts, ms)", "",
                  "| server | ms |", "|---|---:|"]
        lines += [f"| {name} | {ms:.0f} |" for name, ms in starts.items()]
        lines.append("")
    if document["skipped"]:
        lines += ["## Skipped", ""]
        lines += [f"- {name}: {why}" for name, why in document["skipped"].items()]
        lines.append("")
    return "\n".join(lines)


def chart(path: Path, document: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    scenarios = [s for s in SCENARIOS if document["summary"].get(s.name)]
    heights = [len(document["summary"][s.name]) for s in scenarios]
    figure, axes = plt.subplots(len(scenarios), 1, figsize=(10, 1.2 + 0.34 * sum(heights) + 1.0 * len(scenarios)),
                                gridspec_kw={"height_ratios": heights}, squeeze=False)
    for axis, scenario in zip(axes[:, 0], scenarios, strict=True):
        rows = document["summary"][scenario.name]
        names = list(rows)
        medians = [rows[n]["rps"]["median"] for n in names]
        low = [rows[n]["rps"]["median"] - rows[n]["rps"]["min"] for n in names]
        high = [rows[n]["rps"]["max"] - rows[n]["rps"]["median"] for n in names]
        colours = [KIND_COLOURS[rows[n]["kind"]] for n in names]
        positions = range(len(names))
        axis.barh(positions, medians, xerr=[low, high], color=colours, capsize=3, ecolor="#4a5568")
        axis.set_yticks(list(positions), names)
        axis.invert_yaxis()
        axis.set_title(f"{scenario.name}: {scenario.summary}", fontsize=10, loc="left")
        axis.set_xlabel("requests/s (median; whiskers: min–max over rounds)", fontsize=9)
        axis.grid(axis="x", alpha=0.3)
        tops = [rows[n]["rps"]["max"] for n in names]
        right = max(tops + [1]) * 1.15
        axis.set_xlim(0, right)
        for position, value, top in zip(positions, medians, tops, strict=True):
            axis.text(top + right * 0.01, position, f"{value:,.0f}", va="center", fontsize=8)
    meta = document["meta"]
    figure.suptitle(f"Chaussette benchmark ({meta['mode']}): one server process on 1 CPU, wrk on another; "
                    f"{meta['date'][:10]}, load average {meta['load_before'].split(' / ')[0]} before, "
                    f"{meta['load_after'].split(' / ')[0]} after", fontsize=10)
    figure.legend(handles=[Patch(color=c, label=KIND_LABELS[k]) for k, c in KIND_COLOURS.items()],
                  loc="lower center", ncol=4, fontsize=8, frameon=False)
    figure.tight_layout(rect=(0, 0.04, 1, 0.97))
    figure.savefig(path, dpi=90)
    plt.close(figure)
