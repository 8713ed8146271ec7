"""Import cost of chaussette-core's own modules, from ``python -X importtime``.

``-X importtime`` prints, per module imported, its own ("self") time and its time
including what it imported. Core's own cost is the sum of the self times of the
``chaussette`` package and its submodules: the standard library modules they pull in
are counted apart (``stdlib_ms``), since core cannot make those cheaper by itself.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

from benchlib.procs import pinned


def parse(stderr: str) -> tuple[float, float, list[tuple[str, float]]]:
    """(core ms, everything else ms, core modules by self time) of one importtime run."""
    core: list[tuple[str, float]] = []
    other = 0.0
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        fields = line[len("import time:"):].split("|")
        self_us, name = int(fields[0]), fields[2].strip()
        if name == "chaussette" or name.startswith("chaussette."):
            core.append((name, self_us / 1000))
        else:
            other += self_us / 1000
    return sum(ms for _, ms in core), other, sorted(core, key=lambda item: -item[1])


def measure(root: Path, cpu: int | None, runs: int) -> dict:
    """The fastest of ``runs`` runs, plus the median (the first run, which warms the file
    cache and writes .pyc files, is dropped). The fastest is the cost itself: on a shared
    CPU other processes can only add to it."""
    command = pinned([sys.executable, "-X", "importtime", "-m", "chaussette", "--help"], cpu)
    samples = []
    for _ in range(runs + 1):
        proc = subprocess.run(command, cwd=root, capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"bench: chaussette --help failed: {proc.stderr.strip()[-300:]}")
        samples.append(parse(proc.stderr))
    samples = samples[1:]
    fastest = min(samples, key=lambda sample: sample[0])
    return {
        "command": "python -X importtime -m chaussette --help",
        "runs": runs,
        "core_ms": min(sample[0] for sample in samples),
        "core_ms_median": statistics.median(sample[0] for sample in samples),
        "core_ms_max": max(sample[0] for sample in samples),
        "stdlib_ms": fastest[1],
        "slowest_core_modules": [[name, round(ms, 2)] for name, ms in fastest[2][:5]],
    }
