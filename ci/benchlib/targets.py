"""The goals, checked by the benchmark (never by timed unit tests).

Each throughput goal is a ratio of two medians measured side by side in the same run, so
machine speed cancels out; only machine *noise* does not (see docs/benchmarks.md).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from benchlib.servers import PRODUCTION_BACKENDS

IMPORT_BUDGET_MS = 30.0
#: Per-round ratios further apart than this (max/min - 1) make the verdict unreliable.
NOISY_SPREAD = 0.30
OVERHEAD_BACKENDS = ("wsgiref", "waitress", "gevent", "eventlet", "meinheld", "bjoern")
EVENT_LOOP_BACKENDS = ("gevent", "eventlet", "meinheld")


@dataclass(frozen=True)
class Ratio:
    label: str
    scenario: str
    numerator: str
    denominator: str
    goal: float | None  # None: shown for information, not a goal


RATIOS = (
    *(Ratio(f"{b} through chaussette vs raw {b}, same settings", "hello",
            f"chaussette-{b}", f"raw-{b}", 0.97) for b in OVERHEAD_BACKENDS),
    Ratio("gevent vs raw pywsgi defaults (Nagle stall)", "hello",
          "chaussette-gevent", "raw-gevent-defaults", 10.0),
    Ratio("meinheld vs raw meinheld defaults (keep-alive off)", "hello",
          "chaussette-meinheld", "raw-meinheld-defaults", 2.5),
    Ratio("chaussette gevent vs gunicorn -k gevent", "hello",
          "chaussette-gevent", "gunicorn-gevent", 1.3),
    Ratio("chaussette waitress vs gunicorn gthread (4 threads)", "hello",
          "chaussette-waitress", "gunicorn-gthread", 1.5),
    *(Ratio(f"{b} in production (JSON access log, forwarded headers, request ids, max-requests, "
            f"statsd) vs {b} bare", "proxied", f"production-{b}", f"chaussette-{b}", 0.90)
      for b in PRODUCTION_BACKENDS),
    Ratio("chaussette gevent in production vs gunicorn -k gevent with its access log, "
          "--forwarded-allow-ips and --max-requests", "proxied", "production-gevent",
          "gunicorn-gevent-production", 1.5),
    # "wsgiref" here is the stdlib's server, one request at a time (chaussette 1.3's wsgiref
    # backend). No server can reach 20x chaussette's own wsgiref, which waits in a thread
    # per connection: 200 connections waiting 10 ms each cap every server at 20,000 req/s.
    *(Ratio(f"10 ms I/O wait: {b} vs wsgiref (stdlib simple_server, one request at a time)", "io",
            f"chaussette-{b}", "raw-stdlib-wsgiref", 20.0) for b in EVENT_LOOP_BACKENDS),
    *(Ratio(f"10 ms I/O wait: {b} vs chaussette's wsgiref (a thread per connection)", "io",
            f"chaussette-{b}", "chaussette-wsgiref", None) for b in EVENT_LOOP_BACKENDS),
)


def evaluate(summary: dict[str, dict[str, Any]], samples: list[dict[str, Any]], skipped: dict[str, str],
             imports: dict | None) -> list[dict[str, Any]]:
    """One row per goal: PASS, MISS, SKIP (a side could not run) or INFO; goals about
    servers left out by --only/--scenario are left out too.

    A ratio is the median of its per-round ratios: the two servers of a pair run one
    after the other in each round, so they share that moment's load from the rest of the
    machine, which a ratio of the two overall medians would not ensure.
    """
    rounds: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    for sample in samples:
        rounds.setdefault((sample["scenario"], sample["server"]), {})[sample["round"]] = sample
    rows = []
    for ratio in RATIOS:
        row: dict[str, Any] = {"target": ratio.label, "scenario": ratio.scenario,
                               "numerator": ratio.numerator, "denominator": ratio.denominator,
                               "goal": f">= {ratio.goal:g}x" if ratio.goal else "-"}
        sides = summary.get(ratio.scenario, {})
        absent = [name for name in (ratio.numerator, ratio.denominator) if name not in sides]
        if any(name not in skipped for name in absent):
            continue  # not selected (--only, --scenario): nothing to say
        if absent:
            why = "; ".join(f"{name}: {skipped[name]}" for name in absent)
            row.update(result="SKIP", measured=None, note=why)
            rows.append(row)
            continue
        top = rounds[(ratio.scenario, ratio.numerator)]
        bottom = rounds[(ratio.scenario, ratio.denominator)]
        paired = sorted(set(top) & set(bottom))
        per_round = [_ratio(top[r]["rps"], bottom[r]["rps"]) for r in paired]
        per_cpu = [_ratio(per_cpu_second(top[r]), per_cpu_second(bottom[r])) for r in paired]
        value = statistics.median(per_round)
        spread = max(per_round) / min(per_round) - 1 if min(per_round) else float("inf")
        verdict = "INFO" if ratio.goal is None else ("PASS" if value >= ratio.goal else "MISS")
        row.update(result=verdict, measured=round(value, 3), per_round=[round(v, 3) for v in per_round],
                   per_cpu=round(statistics.median(per_cpu), 3), noisy=spread > NOISY_SPREAD,
                   note=f"rounds: {', '.join(f'{v:.2f}x' for v in per_round)}; per server CPU-second: "
                        f"{statistics.median(per_cpu):.2f}x; medians {sides[ratio.numerator]['rps']['median']:,.0f}"
                        f" / {sides[ratio.denominator]['rps']['median']:,.0f} req/s"
                        + (f"; NOISY (rounds {spread:.0%} apart)" if spread > NOISY_SPREAD else ""))
        rows.append(row)
    if imports is not None:
        value = imports["core_ms"]
        rows.append({"target": "import time of core's own modules (-X importtime -m chaussette --help)",
                     "scenario": "-", "numerator": "-", "denominator": "-",
                     "goal": f"<= {IMPORT_BUDGET_MS:g} ms", "measured": round(value, 2),
                     "result": "PASS" if value <= IMPORT_BUDGET_MS else "MISS",
                     "note": f"fastest of {imports['runs']} runs (median {imports['core_ms_median']:.1f} ms, "
                             f"slowest {imports['core_ms_max']:.1f} ms); the other modules it imports "
                             f"(stdlib): {imports['stdlib_ms']:.1f} ms"})
    return rows


def _ratio(top: float, bottom: float) -> float:
    return top / bottom if bottom else float("inf")


def per_cpu_second(sample: dict[str, Any]) -> float:
    """Requests per second of server CPU time in one measurement."""
    return sample["rps"] / max(sample["server_cpu_pct"], 1e-9) * 100


def format_measured(row: dict[str, Any]) -> str:
    if row["measured"] is None:
        return "-"
    if "ms" in row["goal"]:
        return f"{row['measured']:.1f} ms"
    return f"{row['measured']:.2f}x"
