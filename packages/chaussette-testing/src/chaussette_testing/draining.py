"""Shared suite: health path, drain delay, recycling after --max-requests.

Every backend package runs it (tests/test_production.py). One server per class answers
the health checks; the stops (a drain, a second signal during it, a recycle) each end
their own server. The recycling under real managers with load running is in the
process-manager suite (``chaussette_testing.managers``).
"""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from typing import Any, ClassVar, Iterator

import pytest

from chaussette_testing.client import connect, request
from chaussette_testing.drain_apps import SEEN_PATH
from chaussette_testing.process import ServerProcess, start_server

DRAIN_APP = "chaussette_testing.drain_apps.app"
HEALTH = "/healthz"
HELLO = (200, b"hello world")


def answer(address: Any, method: str = "GET", path: str = "/") -> tuple[int, bytes]:
    status, _, body = request(address, method, path)
    return status, body


def seen(server: ServerProcess) -> list[str]:
    """Every request the application was called with so far ("GET /path")."""
    status, _, body = request(server.tcp_address, path=SEEN_PATH)
    assert status == 200, body
    calls: list[str] = json.loads(body)
    return calls


class DrainSuite:
    backend: ClassVar[str] = "wsgiref"

    @classmethod
    def start_draining(cls, *args: str) -> ServerProcess:
        return start_server("--backend", cls.backend, "--host", "127.0.0.1", "--port", "0", *args, DRAIN_APP)

    @pytest.fixture(scope="class")
    @classmethod
    def health_server(cls) -> Iterator[ServerProcess]:
        with cls.start_draining("--health-path", HEALTH, "--max-requests", "1000",
                                "--max-requests-jitter", "50") as server:
            yield server

    # -- the health path while serving -----------------------------------------------------

    def test_health_path_answers_without_calling_the_app(self, health_server: ServerProcess) -> None:
        address = health_server.tcp_address
        before = seen(health_server)
        status, headers, body = request(address, path=HEALTH)
        assert (status, body) == (200, b"ok\n")
        assert (headers["content-type"], headers["content-length"], headers["cache-control"]) == \
            ("text/plain; charset=utf-8", "3", "no-store")
        status, headers, body = request(address, "HEAD", HEALTH)
        assert (status, headers["content-length"], body) == (200, "3", b"")
        assert answer(address, path=f"{HEALTH}?from=haproxy") == (200, b"ok\n")  # the path, not the query
        status, headers, _ = request(address, "POST", HEALTH, body=b"x")
        assert (status, headers["allow"], headers["cache-control"]) == (405, "GET, HEAD", "no-store")
        # Exactly that path: anything else, however close, is the application's.
        assert request(address, path=f"{HEALTH}/deeper")[0] == 404
        assert answer(address) == HELLO
        assert seen(health_server)[len(before):] == [f"GET {HEALTH}/deeper", "GET /"]

    def test_recycling_limit_is_drawn_within_the_jitter(self, health_server: ServerProcess) -> None:
        match = health_server.wait_for(r"Recycling after (\d+) requests \(--max-requests 1000, jitter 0\.\.50\)")
        assert 1000 <= int(match.group(1)) <= 1050, match.group(0)

    # -- a stop with --drain-delay ---------------------------------------------------------

    def test_drain_delay_keeps_serving_while_the_health_path_says_503(self) -> None:
        with self.start_draining("--health-path", HEALTH, "--drain-delay", "2",
                                 "--graceful-timeout", "10") as server:
            address = server.tcp_address
            assert answer(address, path=HEALTH) == (200, b"ok\n")
            signalled = time.monotonic()
            server.signal(signal.SIGTERM)
            server.wait_for("SIGTERM received: draining for 2s: still serving, not ready on the health path")
            assert answer(address, path=HEALTH) == (503, b"draining\n")
            assert request(address, "HEAD", HEALTH)[0] == 503
            assert answer(address) == HELLO, "an ordinary request is served during the delay"
            # In flight when the delay ends: answered by the stop proper, which begins from
            # the alarm's handler instead of the signal's.
            slow = _Background(address, "/slow?seconds=2.5")
            server.wait_for("slow request started")
            stopping = server.wait_for(r"SIGTERM received: stopping, in-flight requests have 10s to finish")
            assert time.monotonic() - signalled >= 1.9, "the stop began before the drain delay was over"
            assert "drain delay of 2s over" in server.output.split(stopping.group(0))[0]
            assert slow.result() == (200, b"done\n")
            assert server.wait(20) == 0
            with pytest.raises(OSError):
                connect(address, timeout=2).close()

    def test_second_signal_during_the_drain_exits_at_once(self) -> None:
        with self.start_draining("--health-path", HEALTH, "--drain-delay", "60") as server:
            assert request(server.tcp_address, path=HEALTH)[0] == 200  # serving: the handlers are in
            server.signal(signal.SIGTERM)
            server.wait_for("SIGTERM received: draining for 60s")
            assert request(server.tcp_address, path=HEALTH)[0] == 503
            server.signal(signal.SIGINT)
            assert server.wait(15) == 1
            assert "SIGINT received again: exiting now" in server.output

    # -- recycling -------------------------------------------------------------------------

    def test_max_requests_answers_the_last_request_then_exits_0(self) -> None:
        """Health checks are not requests of the application's and do not count; the
        recycle does not wait for --drain-delay (the host stays in the pool)."""
        with self.start_draining("--max-requests", "5", "--health-path", HEALTH, "--drain-delay", "60") as server:
            address = server.tcp_address
            server.wait_for(r"Recycling after 5 requests \(--max-requests 5, jitter 0\.\.0\)")
            for number in range(5):
                assert answer(address, path=HEALTH) == (200, b"ok\n"), number
                assert answer(address) == HELLO, number
            server.wait_for("served 5 requests: recycling: stopping, in-flight requests have 30s to finish")
            assert server.wait(20) == 0
        assert not re.search(r"draining|received", server.output), server.output


class _Background:
    """One request in a thread: (status, body), or the exception it raised."""

    def __init__(self, address: Any, path: str) -> None:
        self.outcome: Any = None
        self._thread = threading.Thread(target=self._run, args=(address, path), daemon=True)
        self._thread.start()

    def _run(self, address: Any, path: str) -> None:
        try:
            status, _, body = request(address, path=path, timeout=30)
            self.outcome = (status, body)
        except Exception as exc:  # the test asserts on it
            self.outcome = exc

    def result(self, timeout: float = 30) -> Any:
        self._thread.join(timeout)
        return self.outcome
