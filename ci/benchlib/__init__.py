"""The benchmark harness behind ``ci/bench`` (``hatch run bench:run``).

Modules, in the order a run uses them:

- ``prepare``: installs what the run needs (wrk, the backend packages that exist) and
  finds which chaussette backends are installed.
- ``servers``: every server configuration measured (chaussette, raw, gunicorn).
- ``procs``: starts a server pinned to one CPU, waits for its first response, reads its
  CPU time and peak RSS from /proc, and always stops it.
- ``load``: runs wrk pinned to the other CPU and reads its results.
- ``targets``: the goals, as ratios between servers measured in the same run.
- ``report``: JSON, Markdown table and PNG chart in ``bench/results/``.

docs/benchmarks.md says what is measured and what limits each number.
"""
