"""Clients of the example app (``examples/server.py``): one request that records which
worker answered, a steady load of them, and a slow request held in flight.

Failures are recorded as outcomes, not raised: a test under load asserts on all of them
at the end (how many failed, and when)."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Sequence

from chaussette_testing.client import request
from chaussette_testing.procs import wait_until

SERVED_BY = re.compile(rb"served by pid (\d+)")
REQUEST_TIMEOUT = 15.0


@dataclass
class Outcome:
    """One request: when it ran, which pid answered (None: it failed) and why it failed."""

    path: str
    started: float
    ended: float
    pid: int | None
    error: str = ""


def get(address: Any, path: str = "/", timeout: float = REQUEST_TIMEOUT) -> Outcome:
    """One request on a fresh connection to the example app; failures are recorded, not raised."""
    started = time.monotonic()
    try:
        status, _, body = request(address, path=path, timeout=timeout)
    except Exception as exc:  # the outcome is the record of the failure
        return Outcome(path, started, time.monotonic(), None, f"{type(exc).__name__}: {exc}")
    match = SERVED_BY.search(body)
    if status != 200 or not match:
        return Outcome(path, started, time.monotonic(), None, f"status {status}: {body[:200]!r}")
    return Outcome(path, started, time.monotonic(), int(match.group(1)))


class Load:
    """``clients`` threads sending requests back to back, each on a fresh connection.

    Stops when the ``with`` block ends; bounded in time (``max_seconds``) and count
    (``max_requests``) only as a safety net, well beyond what a test waits for: a slow
    machine stretches a test's restarts, and a load that ran out mid-test would fail it.
    Client ``i`` requests ``paths[i % len(paths)]``.
    """

    def __init__(self, address: Any, clients: int = 8, paths: Sequence[str] = ("/",),
                 max_seconds: float = 600.0, max_requests: int = 1_000_000) -> None:
        self.address = address
        self.paths = paths
        self.max_requests = max_requests
        self.deadline = time.monotonic() + max_seconds
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(paths[i % len(paths)],), daemon=True)
                         for i in range(clients)]

    def _client(self, path: str) -> None:
        while not self._stop.is_set() and time.monotonic() < self.deadline:
            outcome = get(self.address, path)
            with self._lock:
                if len(self.outcomes) >= self.max_requests:
                    return
                self.outcomes.append(outcome)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(REQUEST_TIMEOUT + 5)

    def count(self) -> int:
        with self._lock:
            return len(self.outcomes)

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        wait_until(lambda: self.count() >= count, timeout, f"{count} requests under load",
                   lambda: f"{len(self.failures)} failed so far; the load "
                           + ("ran out of time" if time.monotonic() > self.deadline else "is running"))

    @property
    def failures(self) -> list[Outcome]:
        with self._lock:
            return [o for o in self.outcomes if o.pid is None]


class InFlight:
    """A ``/slow`` request running in a thread, to be in flight while the manager stops workers."""

    def __init__(self, address: Any, seconds: float) -> None:
        self.path = f"/slow?seconds={seconds:g}"
        self.outcome: Outcome | None = None
        self._thread = threading.Thread(target=self._run, args=(address,), daemon=True)
        self._thread.start()

    def _run(self, address: Any) -> None:
        self.outcome = get(address, self.path, timeout=REQUEST_TIMEOUT + 60)

    def result(self, timeout: float) -> Outcome:
        self._thread.join(timeout)
        assert self.outcome is not None, f"{self.path} still running after {timeout}s"
        return self.outcome
