"""The load generator: wrk, pinned, with a Lua ``done`` hook that prints its numbers as
JSON (exact percentiles and error counts instead of wrk's rounded text)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from benchlib.procs import HOST, pinned

REPORT_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH-JSON {"duration_us":%d,"requests":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""
TIMEOUT = "2s"  # wrk's default, named: a request slower than this counts as a timeout


@dataclass
class LoadResult:
    rps: float
    requests: int
    errors: dict[str, int]
    p50_ms: float | None  # None: no response at all
    p99_ms: float | None
    wrk_cpu_pct: float  # of one CPU: near 100 means the load generator was the limit

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


class LoadError(Exception):
    pass


def write_script(directory: Path) -> Path:
    path = directory / "report.lua"
    path.write_text(REPORT_LUA)
    return path


def run(port: int, connections: int, seconds: float, cpu: int | None, script: Path,
        headers: tuple[str, ...] = ()) -> LoadResult:
    command = pinned(["wrk", "--threads", "1", "--connections", str(connections),
                      "--duration", f"{max(1, round(seconds))}s", "--timeout", TIMEOUT,
                      *(arg for header in headers for arg in ("--header", header)),
                      "--script", str(script), f"http://{HOST}:{port}/"], cpu)
    started = time.monotonic()
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        output = proc.stdout.read() if proc.stdout else ""
        _, status, usage = os.wait4(proc.pid, 0)  # wait4: wrk's own CPU time
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.wait()
    wall = time.monotonic() - started
    line = next((ln for ln in output.splitlines() if ln.startswith("BENCH-JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise LoadError(f"wrk exited with {proc.returncode}: {output.strip()[-300:]}")
    data = json.loads(line[len("BENCH-JSON "):])
    duration = data["duration_us"] / 1e6
    latency = data["latency_us"]
    return LoadResult(
        rps=data["requests"] / duration if duration else 0.0,
        requests=data["requests"],
        errors=data["errors"],
        p50_ms=latency["p50"] / 1000 if data["requests"] else None,
        p99_ms=latency["p99"] / 1000 if data["requests"] else None,
        wrk_cpu_pct=100 * (usage.ru_utime + usage.ru_stime) / wall,
    )


def version() -> str:
    proc = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    text = (proc.stdout + proc.stderr).strip().splitlines()
    return text[0] if text else "wrk"
