"""The ``--timeout`` watchdog, checked by hand with a fake clock: requests in flight, the
report, the decision to replace the process on a one-loop backend; and its thread, its
exit code and its logging for real. The behaviour of every backend is in the shared
``StuckRequestSuite`` (tests/test_production_wsgiref.py here)."""

from __future__ import annotations

import _thread
import io
import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from chaussette import layers, watchdog
from chaussette.backends import Backend, Capabilities
from chaussette.settings import build_config
from chaussette.watchdog import EXIT_CODE, EXIT_MARGIN, Watchdog

ENVIRON = {"REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/stuck", "QUERY_STRING": "n=1",
           "SERVER_PROTOCOL": "HTTP/1.1"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Lifecycle:
    """What the layer uses of core's: its log, and the stop it may ask for."""

    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self.stops: list[tuple[str, bool, int]] = []

    def request_stop(self, reason: str, drain: bool = True, exit_code: int = 0) -> bool:
        self.stops.append((reason, drain, exit_code))
        return True


class OneLoopBackend(Backend):
    name = "oneloop"
    capabilities = Capabilities(one_loop=True)


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    """The log of a ``Lifecycle``, in a file: written by the watchdog through its fd."""
    path = tmp_path / "watchdog.log"
    log = logging.getLogger(f"test-watchdog-{tmp_path.name}")
    log.propagate = False
    log.setLevel(logging.INFO)
    with path.open("w") as stream:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        log.addHandler(handler)
        yield path
        log.removeHandler(handler)


def make(log_file: Path, app: Callable[..., Any], clock: Clock, backend: str = "wsgiref",
         **settings: str) -> tuple[Watchdog, Lifecycle]:
    lifecycle = Lifecycle(logging.getLogger(f"test-watchdog-{log_file.parent.name}"))
    config = build_config({"timeout": "1", "graceful_timeout": "2", "backend": backend, **settings})
    return Watchdog(app, config, lifecycle, clock=clock, start=False), lifecycle


def waiting_for_the_gate(gate: threading.Event) -> None:
    gate.wait(30)


def gated_app(gate: threading.Event) -> Callable[..., Any]:
    def app(environ: dict, start_response: Any) -> list[bytes]:
        waiting_for_the_gate(gate)
        start_response("200 OK", [])
        return [b"done"]
    return app


class Served:
    """A request through ``app`` in a thread of its own, as a threaded server runs it."""

    def __init__(self, app: Callable[..., Any], environ: dict = ENVIRON) -> None:
        self.body: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, args=(app, dict(environ)), daemon=True)
        self.thread.start()

    def _serve(self, app: Callable[..., Any], environ: dict) -> None:
        result = app(environ, lambda status, headers, exc_info=None: None)
        try:
            self.body.extend(result)
        finally:
            getattr(result, "close", lambda: None)()


def in_flight(dog: Watchdog, count: int = 1) -> None:
    deadline = time.monotonic() + 10
    while len(dog.requests) != count:
        assert time.monotonic() < deadline, f"{len(dog.requests)} requests in flight, not {count}"
        time.sleep(0.01)


# -- requests in flight ----------------------------------------------------------------------

def test_a_request_is_in_flight_until_the_server_closes_its_body(log_file: Path) -> None:
    closed = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"a"
            yield b"b"

        def close(self) -> None:
            closed.append(True)

    dog, _ = make(log_file, lambda environ, start_response: Body(), Clock())
    body = dog(dict(ENVIRON), None)
    assert [request.request_line() for request in dog.requests] == ["GET /stuck?n=1 HTTP/1.1"]
    assert list(body) == [b"a", b"b"]
    assert len(dog.requests) == 1, "iterated but not closed: the server may still be sending"
    body.close()
    assert (dog.requests, closed) == (set(), [True])


def test_a_list_body_is_done_when_returned_and_an_exception_ends_the_request(log_file: Path) -> None:
    body = [b"ready"]
    dog, _ = make(log_file, lambda environ, start_response: body, Clock())
    assert dog(dict(ENVIRON), None) is body, "returned as is: servers keep their Content-Length"
    assert dog.requests == set()

    def failing(environ: dict, start_response: Any) -> list[bytes]:
        raise RuntimeError("app failed")

    dog, _ = make(log_file, failing, Clock())
    with pytest.raises(RuntimeError, match="app failed"):
        dog(dict(ENVIRON), None)
    assert dog.requests == set()


def test_layer_is_innermost_and_only_there_with_a_timeout() -> None:
    def app(environ: dict, start_response: Any) -> list[bytes]:
        return []

    lifecycle = Lifecycle(logging.getLogger("test-watchdog-layers"))
    assert layers.wrap(app, build_config({"timeout": "0"}), lifecycle) is app
    wrapped = layers.wrap(app, build_config({"timeout": "5", "max_requests": "10"}), lifecycle)
    assert isinstance(wrapped.app, Watchdog) and wrapped.app.app is app
    assert repr(wrapped) == repr(app)


# -- the report ------------------------------------------------------------------------------

def test_stuck_request_reported_once_with_its_line_age_and_stack(log_file: Path) -> None:
    clock, gate = Clock(), threading.Event()
    dog, lifecycle = make(log_file, gated_app(gate), clock)
    served = Served(dog, {**ENVIRON, "PATH_INFO": "/stuck\nFORGED [ERROR] line"})
    in_flight(dog)
    clock.now += 0.9
    dog.check()
    assert log_file.read_text() == ""
    clock.now += 0.35
    dog.check()
    clock.now += 5
    dog.check()
    text = log_file.read_text()
    assert text.startswith(f'WARNING stuck request: "GET /stuck\\nFORGED [ERROR] line?n=1 HTTP/1.1" running '
                           f"for 1.2s (--timeout 1) in thread {served.thread.ident:#x}\nStack (most recent "
                           "call last):\n"), text
    assert text.count("stuck request") == 1 and "\nFORGED" not in text
    assert ", in waiting_for_the_gate\n    gate.wait(30)\n" in text, text
    assert lifecycle.stops == [], "threads: only reported"
    gate.set()
    served.thread.join(10)
    assert (served.body, dog.requests) == ([b"done"], set())


def test_a_handler_without_a_file_gets_the_record_its_own_way(log_file: Path) -> None:
    clock, gate = Clock(), threading.Event()
    dog, _ = make(log_file, gated_app(gate), clock)
    stream = io.StringIO()
    memory = logging.StreamHandler(stream)
    dog.log.addHandler(memory)
    try:
        served = Served(dog)
        in_flight(dog)
        clock.now += 1
        dog.check()
    finally:
        dog.log.removeHandler(memory)
        gate.set()
    served.thread.join(10)
    assert stream.getvalue().startswith('stuck request: "GET /stuck?n=1 HTTP/1.1" running for 1.0s')
    assert log_file.read_text().startswith('WARNING stuck request: "GET /stuck?n=1 HTTP/1.1"')


def test_a_websocket_is_not_a_stuck_request(log_file: Path) -> None:
    clock, gate = Clock(), threading.Event()
    dog, _ = make(log_file, gated_app(gate), clock)
    try:
        served = Served(dog, {**ENVIRON, "wsgi.websocket": object()})
        in_flight(dog)
        clock.now += 3600
        dog.check()
    finally:
        gate.set()
    served.thread.join(10)
    assert log_file.read_text() == ""


# -- one loop: replacing the process ---------------------------------------------------------

@pytest.fixture
def one_loop(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """``oneloop`` as the backend; what the layer passes to ``os._exit`` recorded instead."""
    calls: list[Any] = []

    def exit_now(code: int) -> None:
        calls.append(("_exit", code))
        raise SystemExit(code)

    monkeypatch.setattr(watchdog.registry, "load", lambda name: OneLoopBackend)
    monkeypatch.setattr(watchdog.os, "_exit", exit_now)
    return calls


@pytest.mark.parametrize("extra", [{}, {"wsgi.websocket": object()}], ids=["request", "websocket"])
def test_a_request_holding_the_only_loop_replaces_the_process(log_file: Path, one_loop: list[Any],
                                                              extra: dict) -> None:
    clock, gate = Clock(), threading.Event()
    dog, lifecycle = make(log_file, gated_app(gate), clock, backend="oneloop")
    try:
        served = Served(dog, {**ENVIRON, **extra})
        in_flight(dog)
        clock.now += 0.25
        dog.check()  # seen holding its thread from here
        clock.now += 0.75
        dog.check()  # stuck: reported, but it has held the loop for 0.75s only
        assert (lifecycle.stops, one_loop) == ([], [])
        clock.now += 0.25
        dog.check()
        assert lifecycle.stops == [("a stuck request holds the loop", False, 70)], "no drain delay, exit 70"
        assert EXIT_CODE == 70
        text = log_file.read_text()
        assert text.count("stuck request") == 2, text
        assert ('ERROR stuck request: "GET /stuck?n=1 HTTP/1.1" has held the oneloop backend\'s only loop '
                "for 1.0s (--timeout 1), every other request waits for it: exiting with code 70 so that "
                "the manager starts a fresh process\n") in text
        clock.now += 2 + EXIT_MARGIN - 0.5
        dog.check()
        assert (len(lifecycle.stops), one_loop) == (1, []), "asked for once"
        clock.now += 0.5  # the graceful timeout and the margin are over: the main thread is stuck too
        with pytest.raises(SystemExit):
            dog.check()
        assert one_loop[-1] == ("_exit", 70)
        assert log_file.read_text().endswith(f"ERROR still running {EXIT_MARGIN:g}s after the graceful "
                                             "timeout: exiting with code 70 now\n")
    finally:
        gate.set()
    served.thread.join(10)


def test_a_request_not_running_on_one_loop_is_only_reported(log_file: Path, one_loop: list[Any]) -> None:
    """bjoern sending a streamed response to a slow client: the application returned, its
    body waits for the server's next call, and the loop serves others meanwhile."""
    def streaming(environ: dict, start_response: Any) -> Iterator[bytes]:
        yield b"first"
        yield b"last"

    clock = Clock()
    dog, lifecycle = make(log_file, streaming, clock, backend="oneloop")
    body = iter(dog(dict(ENVIRON), None))
    assert next(body) == b"first"
    for _ in range(10):
        clock.now += 0.5
        dog.check()
    text = log_file.read_text()
    assert text.startswith('WARNING stuck request: "GET /stuck?n=1 HTTP/1.1" running for 1.0s') and \
        text.count("stuck request") == 1, text
    assert (lifecycle.stops, one_loop) == ([], [])


# -- the thread, the exit code ---------------------------------------------------------------

def test_the_watchdog_thread_reports_with_the_real_clock(log_file: Path) -> None:
    gate = threading.Event()
    lifecycle = Lifecycle(logging.getLogger(f"test-watchdog-{log_file.parent.name}"))
    dog = Watchdog(gated_app(gate), build_config({"timeout": "0.2"}), lifecycle)
    try:
        served = Served(dog)
        deadline = time.monotonic() + 10
        while "stuck request" not in log_file.read_text():
            assert time.monotonic() < deadline, "no report within 10s"
            time.sleep(0.05)
    finally:
        gate.set()
    served.thread.join(10)
    assert ", in waiting_for_the_gate\n" in log_file.read_text()


def test_the_thread_is_an_os_thread_holding_the_signals_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def patched(*args: Any) -> None:
        raise AssertionError("the loaded _thread module was used")

    monkeypatch.setattr(_thread, "start_new_thread", patched)
    seen: list[Any] = []
    done = threading.Event()

    def record() -> None:
        seen.extend([threading.get_native_id(), signal.pthread_sigmask(signal.SIG_BLOCK, [])])
        done.set()

    watchdog._start_thread(record)
    assert done.wait(10)
    native, mask = seen
    assert native != threading.get_native_id()
    assert {signal.SIGTERM, signal.SIGINT, signal.SIGALRM, signal.SIGHUP, signal.SIGUSR1} <= mask
    assert signal.SIGSEGV not in mask
    assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, []), "the caller's mask is back"


