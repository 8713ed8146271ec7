"""Stop signals delivered at awkward moments (in a subprocess: it owns its signal handlers);
the drain delay, and the layers that read or ask for a stop (health path, recycling)."""

from __future__ import annotations

import logging
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import assert_clean_error, run_chaussette, stop_cleanly, write_module

from chaussette.errors import ChaussetteError
from chaussette.health import HealthPath
from chaussette.recycling import MaxRequests
from chaussette.settings import build_config
from chaussette_testing import request, start_server
from chaussette_testing.client import Concurrently

SECOND_SIGNAL_WHILE_LOGGING = """
import logging
import re
import os
import signal
import sys

from chaussette.lifecycle import ForcedExit, Lifecycle


class SecondSignalDuringTheFirstLog(logging.Handler):
    sent = False

    def emit(self, record):
        if not self.sent:  # the first handler is logging "stopping": a second Ctrl-C lands now
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # the pending handler runs at one of these bytecodes
                pass


log = logging.getLogger("lifecycle-test")
log.addHandler(SecondSignalDuringTheFirstLog())
log.setLevel(logging.INFO)
lifecycle = Lifecycle(60, log)
lifecycle.install(lambda: None)
try:
    os.kill(os.getpid(), signal.SIGTERM)
    for _ in range(1000):
        pass
except ForcedExit as exc:
    print(f"forced exit {exc.code}")
    sys.exit(0)
print("the second signal was taken for a first one")
sys.exit(3)
"""


def test_second_signal_during_the_first_handler_forces_the_exit(tmp_path: Path) -> None:
    """Python may run a handler inside another one: the second signal must still count
    as the second, or Ctrl-C twice would wait for the whole graceful timeout."""
    script = write_module(tmp_path, "second_signal", SECOND_SIGNAL_WHILE_LOGGING)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=30)
    assert (proc.returncode, proc.stdout.strip()) == (0, "forced exit 1"), proc.stderr


SECOND_SIGNAL_HOOK = """
import logging
import re
import os
import signal


class SecondSignalDuringTheFirstLog(logging.Handler):
    def emit(self, record):
        if "received: stopping" in record.getMessage():
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):
                pass


def install(config):
    logging.getLogger("chaussette").addHandler(SecondSignalDuringTheFirstLog())
"""


def test_forced_exit_from_the_first_handler_does_not_wait_for_requests(tmp_path: Path) -> None:
    """The same race on a real server with a request in flight: the forced exit must not
    turn into a drain of that request (no graceful timer is armed yet to bound it)."""
    write_module(tmp_path, "second_signal_hook", SECOND_SIGNAL_HOOK)
    with start_server("--host", "127.0.0.1", "--port", "0", "--graceful-timeout", "120",
                      "--python-path", str(tmp_path), "--pre-hook", "second_signal_hook.install",
                      "chaussette_testing.apps.app") as server:
        thread = threading.Thread(target=_ignore_errors, args=(server.tcp_address,), daemon=True)
        thread.start()
        server.wait_for("slow request started", timeout=15)
        server.signal(signal.SIGTERM)
        assert server.wait(20) == 1, server.output
        thread.join(15)
    assert "SIGINT received again: exiting now" in server.output


def _ignore_errors(address: tuple[str, int]) -> None:
    try:
        request(address, path="/slow?seconds=60", timeout=30)
    except OSError:  # the forced exit drops the connection: expected
        pass


SIGNAL_TO_ANOTHER_THREAD_HOOK = """
import signal
import threading


def install(config):
    # The kernel may hand a process-directed signal to any thread that does not block it.
    # Make that deterministic: a bystander thread (created first, so it inherits the
    # unblocked mask) is the only one that can receive the stop signals and the alarm.
    threading.Thread(target=threading.Event().wait, daemon=True).start()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGALRM})
"""


def test_sigterm_received_by_another_thread_still_stops_the_server(tmp_path: Path) -> None:
    """The main thread sleeps in select(); a signal taken by another thread must wake it,
    or the stop waits for the next connection (forever, under a process manager)."""
    write_module(tmp_path, "bystander_hook", SIGNAL_TO_ANOTHER_THREAD_HOOK)
    with start_server("--host", "127.0.0.1", "--port", "0", "--python-path", str(tmp_path),
                      "--pre-hook", "bystander_hook.install") as server:
        assert request(server.tcp_address)[0] == 200
        stop_cleanly(server, timeout=20)
    assert "SIGTERM received: stopping" in server.output


def test_graceful_timeout_alarm_received_by_another_thread_still_fires(tmp_path: Path) -> None:
    """The same with a request in flight: the SIGALRM of --graceful-timeout, taken by
    another thread, must end the drain instead of waiting for the request."""
    write_module(tmp_path, "bystander_hook", SIGNAL_TO_ANOTHER_THREAD_HOOK)
    with start_server("--host", "127.0.0.1", "--port", "0", "--graceful-timeout", "1",
                      "--python-path", str(tmp_path), "--pre-hook", "bystander_hook.install",
                      "chaussette_testing.apps.app") as server:
        thread = threading.Thread(target=_ignore_errors, args=(server.tcp_address,), daemon=True)
        thread.start()
        server.wait_for("slow request started", timeout=15)
        stop_cleanly(server, timeout=20)
        thread.join(15)
    assert "graceful timeout of 1s reached" in server.output


REQUESTED_STOP = """
import logging
import re
import os
import signal
import sys
import threading
import time

from chaussette.lifecycle import ForcedExit, Lifecycle, request_stop

logging.basicConfig(stream=sys.stdout, format="%(message)s", level=logging.INFO)
stops = []
print(f"nothing serving: {request_stop('nobody serves')}")
lifecycle = Lifecycle(60, logging.getLogger("lifecycle-test"))
asker = threading.Thread(target=request_stop, args=("asked from a request thread",), name="request")
asker.start()
asker.join()  # before install: a C loop's first request can come that early
print(f"stops before install: {stops}")
lifecycle.install(lambda: stops.append(threading.current_thread().name))
deadline = time.monotonic() + 10
while not stops and time.monotonic() < deadline:
    time.sleep(0.01)  # the handler runs in the main thread, between these sleeps
print(f"stops: {stops}")
print(f"asked again: {request_stop('again')}")
os.kill(os.getpid(), signal.SIGTERM)  # the manager's own SIGTERM: still graceful
time.sleep(0.1)
print(f"stops after the manager's SIGTERM: {len(stops)}")
try:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(1)
except ForcedExit as exc:
    print(f"forced exit {exc.code}")
lifecycle.stopped()
signal.setitimer(signal.ITIMER_REAL, 0)
"""


def test_a_stop_requested_from_inside_is_graceful_and_signals_still_count(tmp_path: Path) -> None:
    """``request_stop`` from any thread, even before the backend installed its stop, runs
    that stop once, where signals run (the main thread here); the manager's SIGTERM that often follows keeps the stop
    graceful, and only a second signal from outside exits at once."""
    script = write_module(tmp_path, "requested_stop", REQUESTED_STOP)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "nothing serving: False",
        "stops before install: []",
        "asked from a request thread: stopping, in-flight requests have 60s to finish",
        "stops: ['MainThread']",
        "asked again: True",
        "SIGTERM received: already stopping; a second one exits at once",
        "stops after the manager's SIGTERM: 1",
        "SIGINT received again: exiting now",
        "forced exit 1",
    ]


DRAIN = """
import logging
import re
import os
import signal
import sys
import time

from chaussette.lifecycle import ForcedExit, Lifecycle

logging.basicConfig(stream=sys.stdout, format="%(message)s", level=logging.INFO)
log = logging.getLogger("lifecycle-test")
stops = []


def wait_for(condition, seconds):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)  # handlers run in the main thread, between these sleeps


lifecycle = Lifecycle(0.4, log, drain_delay=0.3)
lifecycle.install(lambda: stops.append(lifecycle.draining))
started = time.monotonic()
os.kill(os.getpid(), signal.SIGTERM)
wait_for(lambda: lifecycle.draining, 5)
print(f"draining: {lifecycle.draining}, stops: {stops}")
wait_for(lambda: stops, 5)
print(f"stops: {stops}, after the delay: {time.monotonic() - started >= 0.29}")
try:
    time.sleep(5)  # the graceful timeout, re-armed when the drain ended
except ForcedExit as exc:
    print(f"forced exit {exc.code} after the drain and the timeout: {time.monotonic() - started >= 0.69}")

lifecycle = Lifecycle(60, log, drain_delay=60)
lifecycle.install(lambda: stops.append("recycled"))
lifecycle.request_stop("served 5 requests: recycling", drain=False)
wait_for(lambda: len(stops) == 2, 5)
print(f"stops: {stops[1:]}, draining: {lifecycle.draining}")
lifecycle.stopped()

lifecycle = Lifecycle(60, log, drain_delay=60)
lifecycle.install(lambda: stops.append("never"))
os.kill(os.getpid(), signal.SIGTERM)
wait_for(lambda: lifecycle.draining, 5)
try:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(1)
except ForcedExit as exc:
    print(f"forced exit {exc.code}, stops: {stops[2:]}")
signal.setitimer(signal.ITIMER_REAL, 0)
"""


def test_drain_delay_then_stop_then_graceful_timeout(tmp_path: Path) -> None:
    """One timer, no thread: the drain's alarm begins the stop and re-arms itself for the
    graceful timeout. A stop asked for without draining (recycling) does not wait, and a
    second signal during the drain exits at once without ever stopping gracefully."""
    script = write_module(tmp_path, "drain", DRAIN)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "SIGTERM received: draining for 0.3s: still serving, not ready on the health path",
        "draining: True, stops: []",
        "drain delay of 0.3s over",
        "SIGTERM received: stopping, in-flight requests have 0.4s to finish",
        "stops: [True], after the delay: True",
        "graceful timeout of 0.4s reached: exiting with requests still running",
        "forced exit 0 after the drain and the timeout: True",
        "served 5 requests: recycling: stopping, in-flight requests have 60s to finish",
        "stops: ['recycled'], draining: False",
        "SIGTERM received: draining for 60s: still serving, not ready on the health path",
        "SIGINT received again: exiting now",
        "forced exit 1, stops: []",
    ]


class FakeLifecycle:
    """What the layers read and call on a lifecycle, recorded."""

    def __init__(self) -> None:
        self.log = logging.getLogger("test_lifecycle")
        self.draining = False
        self.requested: list[tuple[str, bool]] = []

    def request_stop(self, reason: str, drain: bool = True) -> bool:
        self.requested.append((reason, drain))
        return True


def hello(environ: dict, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Length", "5")])
    return [b"hello"]


def call(app: Any, method: str = "GET", path: str = "/") -> tuple[str, dict, bytes]:
    got: list[Any] = []
    body = b"".join(app({"REQUEST_METHOD": method, "PATH_INFO": path},
                        lambda status, headers: got.extend((status, dict(headers)))))
    return got[0], got[1], body


def test_health_path_answers_from_the_lifecycle_and_never_calls_the_app() -> None:
    lifecycle = FakeLifecycle()
    called: list[str] = []

    def app(environ: dict, start_response: Any) -> list[bytes]:
        called.append(environ["PATH_INFO"])
        return hello(environ, start_response)

    health = HealthPath(app, build_config({"health_path": "/healthz"}), lifecycle)
    assert call(health, path="/healthz") == ("200 OK", {
        "Content-Type": "text/plain; charset=utf-8", "Content-Length": "3", "Cache-Control": "no-store"}, b"ok\n")
    status, headers, _ = call(health, "DELETE", "/healthz")
    assert (status, headers["Allow"]) == ("405 Method Not Allowed", "GET, HEAD")
    lifecycle.draining = True
    assert call(health, "HEAD", "/healthz")[::2] == ("503 Service Unavailable", b"draining\n")
    assert call(health, path="/healthz/")[::2] == ("200 OK", b"hello")
    assert called == ["/healthz/"]
    assert repr(health) == repr(app)


@pytest.mark.parametrize("path", ["healthz", "/healthz?full=1", "/a#b", "/health z", " "])
def test_health_path_must_be_a_path(path: str) -> None:
    """Refused when the settings are read, before any socket opens: a path that never
    matches would answer the balancer with the application's 404."""
    refusal = f"invalid value {path!r} for health-path: {path!r} is not a path"
    with pytest.raises(ChaussetteError, match=re.escape(refusal)):
        build_config({"health_path": path})
    result = run_chaussette("--health-path", path, "--port", "0")
    assert_clean_error(result, "argument --health-path", "is not a path: give one starting with /")


def test_max_requests_asks_for_one_stop_without_drain_from_any_thread() -> None:
    lifecycle = FakeLifecycle()
    recycling = MaxRequests(hello, build_config({"max_requests": "50"}), lifecycle)
    assert recycling.limit == 50
    results = Concurrently(8, lambda: [call(recycling)[2] for _ in range(20)]).outcomes(30)
    assert results == [[b"hello"] * 20] * 8, "every request is answered, the limit's and later ones too"
    assert lifecycle.requested == [("served 50 requests: recycling", False)]
    assert repr(recycling) == repr(hello)


def test_max_requests_jitter_stays_within_the_range() -> None:
    config = build_config({"max_requests": "10", "max_requests_jitter": "3"})
    limits = {MaxRequests(hello, config, FakeLifecycle()).limit for _ in range(200)}
    assert limits == {10, 11, 12, 13}
