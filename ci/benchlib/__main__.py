"""``python -m benchlib`` (what ``ci/bench`` and ``hatch run bench:run`` run).

Rounds are interleaved: round 1 measures every server once, then round 2 does it again in
a rotated order, and so on, so a burst of load from elsewhere on the machine spreads over
all servers instead of hitting one. Each measurement starts the server afresh (timing its
first answer), warms it up, runs wrk, reads the server's CPU time and peak RSS, and stops it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from benchlib import imports, load, prepare, procs, report, targets
from benchlib.prepare import say
from benchlib.report import ms
from benchlib.servers import SCENARIOS, Scenario, Server, select

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = ("chaussette-core", "chaussette-waitress", "chaussette-gevent", "chaussette-eventlet",
            "chaussette-meinheld", "waitress", "gevent", "greenlet", "eventlet", "meinheld", "gunicorn")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ci/bench", description=(
        "Benchmark chaussette's backends against the same servers started raw and against "
        "gunicorn; write JSON, Markdown and a PNG chart; check the targets."))
    parser.add_argument("--quick", action="store_true",
                        help="1 round x 2 s per server (checks the harness, numbers are rough); "
                             "writes to a temporary directory unless --out is given")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="only this server or family (e.g. gevent, chaussette-gevent, gunicorn); "
                             "repeatable, or comma-separated")
    parser.add_argument("--scenario", action="append", choices=[s.name for s in SCENARIOS],
                        help="only this scenario (repeatable)")
    parser.add_argument("--rounds", type=int, help="rounds per server (default 5, quick 1)")
    parser.add_argument("--duration", type=int, help="seconds per measurement (default 3, quick 2)")
    parser.add_argument("--warmup", type=int, help="seconds of warm-up load after each start (default 1)")
    parser.add_argument("--out", type=Path, help="results directory (default bench/results)")
    parser.add_argument("--wheels", type=Path, default=ROOT / ".wheels",
                        help="where wheels PyPI cannot provide are built and found (default .wheels)")
    parser.add_argument("--no-install", action="store_true",
                        help="do not install the backend packages that are not workspace members")
    parser.add_argument("--render", type=Path, metavar="JSON",
                        help="measure nothing: rebuild the summary, targets, table and chart from "
                             "the samples of an earlier benchmark.json (into --out, default its directory)")
    args = parser.parse_args(argv)
    args.only = [name for value in args.only or [] for name in value.split(",") if name]
    # Five short rounds rather than three long ones, in the same time: on a shared machine
    # a burst of load spoils a round or two, and a median of five outvotes them.
    args.rounds = args.rounds or (1 if args.quick else 5)
    args.duration = args.duration or (2 if args.quick else 3)
    args.warmup = 1 if args.warmup is None else args.warmup
    if args.out is None and not args.render:
        args.out = Path(tempfile.mkdtemp(prefix="bench-quick-")) if args.quick else ROOT / "bench" / "results"
    return args


def availability(servers: list[Server], backends: dict[str, str], packages: dict[str, str]) -> dict[str, str]:
    """{server: why it cannot run} for the servers that cannot."""
    skipped = {}
    for server in servers:
        if server.backend and server.backend not in backends:
            package = f"chaussette-{server.backend}"
            skipped[server.name] = (f"backend {server.backend!r} not installed"
                                    + (f" ({package}: {packages[package]})" if package in packages else ""))
            continue
        missing = prepare.missing_modules(server.modules)
        if missing:
            skipped[server.name] = f"cannot import {', '.join(missing)}"
    return skipped


class Run:
    """One benchmark run: its settings, its scratch directory, what it measured."""

    def __init__(self, args: argparse.Namespace, scratch: Path) -> None:
        self.args = args
        self.scratch = scratch
        self.script = load.write_script(scratch)
        self.server_cpu, self.load_cpu = procs.cpus()
        self.env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        self.samples: list[dict[str, Any]] = []
        self.failed: dict[str, str] = {}

    def measure(self, server: Server, scenario: Scenario, index: int) -> dict[str, Any]:
        args = self.args
        log = self.scratch / f"{server.name}.{scenario.name}.{index}.log"
        running = procs.start(lambda port: server.command(sys.executable, scenario.app, procs.HOST, port),
                              self.server_cpu, ROOT, log, self.env)
        try:
            procs.wait_ready(running, server.forks_worker)
            if args.warmup:
                load.run(running.port, scenario.connections, args.warmup, self.load_cpu, self.script,
                         scenario.headers)
                procs.settle(running)
            pid = running.proc.pid
            cpu_before, ticks_before, started = procs.cpu_seconds(pid), procs.cpu_ticks(), time.monotonic()
            result = load.run(running.port, scenario.connections, args.duration, self.load_cpu, self.script,
                              scenario.headers)
            wall = time.monotonic() - started
            cpu_after, ticks_after = procs.cpu_seconds(pid), procs.cpu_ticks()
            if running.proc.poll() is not None:
                raise procs.StartError(f"died during the run: {running.tail()}")
            rss = procs.peak_rss_mb(running.serving_pid)
        finally:
            procs.stop(running)
        return {
            "scenario": scenario.name, "server": server.name, "kind": server.kind, "round": index,
            "rps": result.rps, "requests": result.requests, "errors": result.errors,
            "p50_ms": result.p50_ms, "p99_ms": result.p99_ms,
            "server_cpu_pct": 100 * (sum(cpu_after) - sum(cpu_before)) / wall,
            "server_sys_pct": 100 * (cpu_after[1] - cpu_before[1]) / wall,
            "server_cpu_busy_pct": procs.busy_pct(ticks_before, ticks_after, self.server_cpu),
            "wrk_cpu_pct": result.wrk_cpu_pct,
            "load_cpu_busy_pct": procs.busy_pct(ticks_before, ticks_after, self.load_cpu),
            "peak_rss_mb": rss, "start_ms": running.ready_after * 1000,
            "load1": os.getloadavg()[0],
        }

    def scenario(self, scenario: Scenario, servers: list[Server]) -> None:
        for index in range(1, self.args.rounds + 1):
            shift = (index - 1) % max(1, len(servers))
            for server in servers[shift:] + servers[:shift]:  # rotated: interleaved rounds
                if server.name in self.failed:
                    continue
                label = f"[{scenario.name} {index}/{self.args.rounds}] {server.name:<24}"
                try:
                    sample = self.measure(server, scenario, index)
                except (procs.StartError, load.LoadError) as exc:
                    self.failed[server.name] = str(exc)
                    say(f"{label} FAILED, skipped from now on: {exc}")
                    continue
                self.samples.append(sample)
                errors = sum(sample["errors"].values())
                say(f"{label} {sample['rps']:>9,.0f} req/s  p50 {ms(sample['p50_ms']):>6} ms  "
                    f"p99 {ms(sample['p99_ms']):>7} ms  cpu {sample['server_cpu_pct']:3.0f}%  "
                    f"wrk {sample['wrk_cpu_pct']:3.0f}%  rss {sample['peak_rss_mb'] or 0:5.1f} MB  "
                    f"start {sample['start_ms']:5.0f} ms" + (f"  errors {errors}" if errors else ""))


def loadavg() -> str:
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def uptime() -> str:
    proc = subprocess.run(["uptime"], capture_output=True, text=True)
    return proc.stdout.strip() or loadavg()


def git_commit() -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True)
    return (head.stdout.strip() or "unknown") + ("+uncommitted changes" if dirty.stdout.strip() else "")


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def versions() -> dict[str, str]:
    found = {}
    for name in VERSIONS:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def publish(out: Path, measured: dict[str, Any]) -> None:
    """Summary, targets, then benchmark.json, .md and .png in ``out``; prints the table
    and one line per target."""
    samples = measured["samples"]
    summary = report.summarise(samples)
    starts: dict[str, list[float]] = {}
    for sample in samples:
        starts.setdefault(sample["server"], []).append(sample["start_ms"])
    document = {
        "meta": measured["meta"], "summary": summary,
        "targets": targets.evaluate(summary, samples, measured["skipped"], measured["imports"]),
        "start_ms": {name: statistics.median(values) for name, values in starts.items()},
        "imports": measured["imports"], "skipped": measured["skipped"], "samples": samples,
    }
    out.mkdir(parents=True, exist_ok=True)
    report.write_json(out / "benchmark.json", document)
    text = report.markdown(document)
    (out / "benchmark.md").write_text(text)
    if samples:
        report.chart(out / "benchmark.png", document)
    print()
    print(text)
    for row in document["targets"]:
        say(f"{row['result']:<4} {targets.format_measured(row):>9}  ({row['goal']})  {row['target']}"
            + ("  [noisy]" if row.get("noisy") else ""))
    say(f"results in {out}/benchmark.{{json,md,png}}")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    os.chdir(ROOT)
    if args.render:
        measured = json.loads(args.render.read_text())
        publish(args.out or args.render.parent, measured)
        return 0
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    prepare.ensure_tool("wrk", "wrk")
    packages = {} if args.no_install else prepare.install_backend_packages(ROOT, args.wheels)
    for package, why in packages.items():
        say(f"{package}: skipped ({why})")
    backends = prepare.installed_backends()
    say("backends installed: " + ", ".join(f"{name} ({dist})" for name, dist in backends.items()))
    servers = select(args.only)
    skipped = availability(servers, backends, packages)
    for name, why in skipped.items():
        say(f"{name}: skipped ({why})")
    scenarios = [s for s in SCENARIOS if not args.scenario or s.name in args.scenario]
    plan = {s.name: [v for v in servers if s.name in v.scenarios and v.name not in skipped] for s in scenarios}
    count = sum(len(v) for v in plan.values()) * args.rounds
    say(f"{count} measurements of {args.duration} s (+{args.warmup} s warm-up): about "
        f"{count * (args.duration + args.warmup + 1.3) / 60:.1f} min; load average {loadavg()}")
    meta: dict[str, Any] = {
        "mode": "quick" if args.quick else "full", "command": shlex.join(["ci/bench", *argv]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(), "cpus": os.cpu_count(), "cpu_model": cpu_model(),
        "kernel": platform.release(), "python": platform.python_version(), "wrk": load.version(),
        "versions": versions(), "rounds": args.rounds, "duration_s": args.duration,
        "warmup_s": args.warmup, "load_before": loadavg(), "uptime_before": uptime(),
    }
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        run = Run(args, Path(scratch))
        meta.update(server_cpu=run.server_cpu, load_cpu=run.load_cpu)
        try:
            import_cost = imports.measure(ROOT, run.server_cpu, runs=5 if args.quick else 15)
            say(f"import time of core's own modules: {import_cost['core_ms']:.1f} ms (fastest run), "
                f"median {import_cost['core_ms_median']:.1f} ms")
            for scenario in scenarios:
                run.scenario(scenario, plan[scenario.name])
        except KeyboardInterrupt:
            say("interrupted: stopping the servers")
            return 130
        finally:
            procs.stop_all()
    skipped.update(run.failed)
    meta.update(load_after=loadavg(), uptime_after=uptime())
    publish(args.out, {"meta": meta, "imports": import_cost, "skipped": skipped, "samples": run.samples})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
