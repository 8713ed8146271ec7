"""Shared suite: request metrics pushed to statsd, received by a UDP socket the test binds
(as statsd would: counters summed, durations collected, gauge changes applied).

Every backend package runs it (tests/test_production.py).
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections import Counter
from typing import Any, Callable, ClassVar, Iterator

import pytest

from chaussette_testing.client import raw_exchange, request
from chaussette_testing.process import ServerProcess, start_server

APP = "chaussette_testing.apps.app"
PREFIX = "test"
#: How often the server sends (chaussette.metrics.FLUSH_INTERVAL), and a margin for a
#: loaded machine.
FLUSH_INTERVAL = 1.0
RECEIVE_TIMEOUT = 15.0
LINE = re.compile(r"(?P<name>[a-z0-9_.]+):(?P<value>[-+]?[0-9]+(?:\.[0-9]+)?)\|(?P<type>c|ms|g)")
REFUSED_WARNING = "does not take metrics"

#: The requests the test sends after the slow one, with the status each is answered with.
#: A body that fails after its first chunk went out keeps the status it was sent with.
FAST = (("/", 200),) * 5 + (("/stream", 200),) * 2 + (("/nope", 404),) * 3 + (("/error", 500),) * 2 \
    + (("/echo", 200), ("/error-midstream", 200))
SLOW_SECONDS = 2.0


class StatsdListener:
    """The statsd end: a bound UDP socket on loopback, and what arrived, aggregated."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.address = "%s:%d" % self.sock.getsockname()
        self.counters: Counter[str] = Counter()
        self.timers: dict[str, list[float]] = {}
        #: The gauge's value after each change received, from 0.
        self.in_flight: list[int] = []
        self.foreign: list[str] = []

    def receive(self, timeout: float) -> bool:
        """Take one datagram (False when none came within ``timeout``)."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return False
        for line in data.decode("ascii").split("\n"):
            self._take(line)
        return True

    def _take(self, line: str) -> None:
        match = LINE.fullmatch(line)
        if match is None or not match["name"].startswith(PREFIX + "."):
            self.foreign.append(line)
            return
        name, value = match["name"][len(PREFIX) + 1:], match["value"]
        if match["type"] == "c":
            self.counters[name] += int(value)
        elif match["type"] == "ms":
            self.timers.setdefault(name, []).append(float(value))
        elif name == "chaussette.requests.in_flight" and value[0] in "+-":
            self.in_flight.append((self.in_flight[-1] if self.in_flight else 0) + int(value))
        else:
            self.foreign.append(line)

    def receive_until(self, done: Callable[[], bool], timeout: float = RECEIVE_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"statsd got {dict(self.counters)}, gauge {self.in_flight}"
            self.receive(remaining)

    def receive_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            self.receive(remaining)

    def close(self) -> None:
        self.sock.close()


def dead_port() -> int:
    """A UDP port on loopback that nothing listens on (bound, then let go)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MetricsSuite:
    backend: ClassVar[str] = "wsgiref"

    @classmethod
    def start_metrics(cls, statsd: str) -> ServerProcess:
        return start_server("--backend", cls.backend, "--host", "127.0.0.1", "--port", "0",
                            "--statsd-host", statsd, "--statsd-prefix", PREFIX, APP)

    @pytest.fixture(scope="class")
    @classmethod
    def statsd(cls) -> Iterator[StatsdListener]:
        listener = StatsdListener()
        try:
            yield listener
        finally:
            listener.close()

    @pytest.fixture(scope="class")
    @classmethod
    def metrics_server(cls, statsd: StatsdListener) -> Iterator[ServerProcess]:
        with cls.start_metrics(statsd.address) as server:
            yield server

    def _metrics_request(self, server: ServerProcess, path: str) -> int:
        if path == "/error-midstream":  # cut short after its headers: http.client would raise
            return int(raw_exchange(server.tcp_address, b"GET /error-midstream HTTP/1.1\r\nHost: x\r\n\r\n")[9:12])
        if path == "/echo":
            return request(server.tcp_address, "POST", path, body=b"counted")[0]
        return request(server.tcp_address, path=path)[0]

    def test_metrics_requests_statuses_durations_in_flight(self, metrics_server: ServerProcess,
                                                       statsd: StatsdListener) -> None:
        server = metrics_server
        assert f"Sending request metrics to statsd at {statsd.address} every 1s (prefix 'test.')" in server.output
        slow: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: slow.update(
            response=request(server.tcp_address, path=f"/slow?seconds={SLOW_SECONDS}", timeout=30)), daemon=True)
        thread.start()
        server.wait_for("slow request started", timeout=15)
        statuses = [(path, self._metrics_request(server, path)) for path, _ in FAST]
        thread.join(30)
        assert statuses == list(FAST)
        assert slow["response"][0] == 200
        total = len(FAST) + 1
        statsd.receive_until(lambda: statsd.counters["gunicorn.requests"] >= total
                             and bool(statsd.in_flight) and statsd.in_flight[-1] == 0)
        statsd.receive_for(FLUSH_INTERVAL + 0.5)  # nothing more comes: the counts are exact
        assert statsd.foreign == []
        assert dict(statsd.counters) == {
            "gunicorn.requests": total,
            "gunicorn.request.status.200": 10, "gunicorn.request.status.404": 3,
            "gunicorn.request.status.500": 2,
            "chaussette.request.status_class.2xx": 10, "chaussette.request.status_class.4xx": 3,
            "chaussette.request.status_class.5xx": 2,
        }
        durations = statsd.timers["gunicorn.request.duration"]
        assert list(statsd.timers) == ["gunicorn.request.duration"]
        assert len(durations) == total
        assert min(durations) >= 0
        assert max(durations) >= SLOW_SECONDS * 1000 - 50  # a green sleep may wake a tick early
        # A flush while the slow request ran saw it (with at most one other); the gauge
        # is back to 0 once all are done.
        assert 1 <= max(statsd.in_flight) <= 2
        assert min(statsd.in_flight) >= 0
        assert statsd.in_flight[-1] == 0
        assert REFUSED_WARNING not in server.output

    def test_metrics_dead_statsd_costs_nothing(self) -> None:
        port = dead_port()
        with self.start_metrics(f"127.0.0.1:{port}") as server:
            # Two flushes with something to send: the second meets the first's refusal.
            for burst in range(2):
                if burst:
                    time.sleep(FLUSH_INTERVAL + 0.2)
                assert [request(server.tcp_address)[0] for _ in range(5)] == [200] * 5
            server.wait_for(REFUSED_WARNING, timeout=10)
            assert [request(server.tcp_address)[0] for _ in range(5)] == [200] * 5
            assert server.stop() == 0
            warnings = [line for line in server.output.splitlines() if REFUSED_WARNING in line]
            assert len(warnings) == 1, server.output
            assert f"statsd at 127.0.0.1:{port} does not take metrics (Connection refused)" in warnings[0]
            assert "[ERROR]" not in server.output and "Traceback" not in server.output

    def test_metrics_unresolvable_host_is_a_start_up_error(self) -> None:
        server = ServerProcess(["--backend", self.backend, "--host", "127.0.0.1", "--port", "0",
                                "--statsd-host", "statsd.invalid:8125", APP])
        with server:
            assert server.wait(30) == 1
            errors = [line for line in server.output.splitlines() if line.startswith("chaussette: error:")]
            # The resolver's own words follow, and differ with the resolver and the network.
            assert len(errors) == 1 and errors[0].startswith(
                "chaussette: error: --statsd-host statsd.invalid:8125: cannot resolve 'statsd.invalid' ("), \
                server.output
            assert "Traceback" not in server.output and "Serving on" not in server.output
