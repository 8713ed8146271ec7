"""The statsd layer in-process: addresses, prefixes, the lines and datagrams sent, and
what a request records whatever its application and server do. A real UDP socket stands
for statsd. The layer on every backend is the shared MetricsSuite's."""

from __future__ import annotations

import logging
import socket
import sys
import threading
from collections import Counter
from typing import Any, Callable, Iterator

import pytest
from conftest import assert_clean_error, run_chaussette

from chaussette import metrics
from chaussette.errors import ChaussetteError
from chaussette.metrics import Metrics, datagrams, metric_prefix, parse_host, render, resolve, status_code
from chaussette.settings import build_config
from chaussette_testing.client import ipv6_loopback

# -- --statsd-host -----------------------------------------------------------------------


@pytest.mark.parametrize(("value", "parsed"), [
    ("localhost:8125", ("localhost", 8125, False)),
    ("127.0.0.1:1", ("127.0.0.1", 1, False)),
    ("statsd.example.com:65535", ("statsd.example.com", 65535, False)),
    ("[::1]:8125", ("::1", 8125, True)),
    ("[fe80::1%eth0]:9125", ("fe80::1%eth0", 9125, True)),
])
def test_host_and_port(value: str, parsed: tuple[str, int, bool]) -> None:
    assert parse_host(value) == parsed


@pytest.mark.parametrize("value", [
    "localhost", "localhost:", ":8125", "host:0", "host:65536", "host:81x", "host:-1",
    "host:\uff18\uff11\uff12\uff15", "[::1]", "[::1]8125", "[::1:8125", "[]:8125", "[::1]:", "",
])
def test_bad_host_and_port(value: str) -> None:
    with pytest.raises(ChaussetteError) as error:
        parse_host(value)
    assert str(error.value) == f"--statsd-host {value!r}: expected HOST:PORT or [IPv6]:PORT, e.g. localhost:8125"


def test_ipv6_needs_brackets() -> None:
    with pytest.raises(ChaussetteError) as error:
        parse_host("::1:8125")
    assert str(error.value) == "--statsd-host '::1:8125': an IPv6 address goes in brackets, e.g. [::1]:8125"


def test_resolved_once_ipv4_first() -> None:
    assert resolve("127.0.0.1", 8125) == (socket.AF_INET, ("127.0.0.1", 8125))
    # /etc/hosts may give localhost both addresses; statsd listens on IPv4 by default.
    assert resolve("localhost", 8125) == (socket.AF_INET, ("127.0.0.1", 8125))
    family, address = resolve("::1", 8125, literal=True)
    assert (family, address[:2]) == (socket.AF_INET6, ("::1", 8125))


def test_unresolvable_host() -> None:
    with pytest.raises(ChaussetteError) as error:
        resolve("statsd.invalid", 8125)
    assert str(error.value).startswith("--statsd-host statsd.invalid:8125: cannot resolve 'statsd.invalid' (")


def test_bracketed_name_is_not_an_ipv6_address() -> None:
    with pytest.raises(ChaussetteError) as error:
        resolve("localhost", 8125, literal=True)
    assert str(error.value).startswith("--statsd-host [localhost]:8125: not an IPv6 address (")


def test_cli_reports_a_bad_statsd_host_in_one_line() -> None:
    result = run_chaussette("--port", "0", "--statsd-host", "localhost")
    assert result.code == 1
    assert assert_clean_error(result) == \
        "--statsd-host 'localhost': expected HOST:PORT or [IPv6]:PORT, e.g. localhost:8125"
    assert "Serving on" not in result.stderr


def test_cli_reports_a_bad_statsd_prefix_in_one_line() -> None:
    result = run_chaussette("--port", "0", "--statsd-host", "127.0.0.1:8125", "--statsd-prefix", "a:b")
    assert result.code == 1
    assert assert_clean_error(result).startswith("--statsd-prefix 'a:b': a statsd name cannot hold ':'")


# -- --statsd-prefix -----------------------------------------------------------------------


@pytest.mark.parametrize(("value", "prefix"), [
    ("", ""), ("test", "test."), ("a", "a."), ("test.", "test."), ("test...", "test."),
    ("service.app", "service.app."), (".", ""), ("web-1_eu", "web-1_eu."),
])
def test_prefix_gets_one_dot(value: str, prefix: str) -> None:
    assert metric_prefix(value) == prefix


@pytest.mark.parametrize(("value", "named"), [
    ("a:b", "':'"), ("a|b", "'|'"), ("a@b", "'@'"), ("a#b", "'#'"), ("a b", "' '"),
    ("a\nb", "'\\n'"), ("caf\u00e9", "'\u00e9'"), ("a:b|c", "':' '|'"),
])
def test_prefix_that_would_break_a_line_is_refused(value: str, named: str) -> None:
    with pytest.raises(ChaussetteError) as error:
        metric_prefix(value)
    assert str(error.value) == (f"--statsd-prefix {value!r}: a statsd name cannot hold {named}; "
                                "use letters, digits, dots, dashes and underscores")


# -- lines and datagrams -------------------------------------------------------------------


@pytest.mark.parametrize(("status", "code"), [
    ("200 OK", "200"), ("404 Not Found", "404"), ("599", "599"), ("20 OK", None), ("abc", None),
    ("", None), (None, None), (b"200 OK", None), ("\u0662\u0660\u0660 OK", None),
])
def test_status_code(status: Any, code: str | None) -> None:
    assert status_code(status) == code


def test_lines_for_a_flush() -> None:
    finished = [("200 OK", 0.0012345), ("404 Not Found", 0.5), ("200 OK", 2.0), ("500 Oops", 0.0), ("bad", 0.25)]
    assert render("test.", finished, 2) == [
        "test.gunicorn.requests:5|c",
        "test.gunicorn.request.status.200:2|c",
        "test.gunicorn.request.status.404:1|c",
        "test.gunicorn.request.status.500:1|c",
        "test.chaussette.request.status_class.2xx:2|c",
        "test.chaussette.request.status_class.4xx:1|c",
        "test.chaussette.request.status_class.5xx:1|c",
        "test.gunicorn.request.duration:1.234|ms",
        "test.gunicorn.request.duration:500.000|ms",
        "test.gunicorn.request.duration:2000.000|ms",
        "test.gunicorn.request.duration:0.000|ms",
        "test.gunicorn.request.duration:250.000|ms",
        "test.chaussette.requests.in_flight:+2|g",
    ]


def test_a_status_that_is_no_string_is_counted_as_a_request_only() -> None:
    assert render("", [(["200 OK"], 0.001), ("200 OK", 0.002)], 0) == [
        "gunicorn.requests:2|c", "gunicorn.request.status.200:1|c", "chaussette.request.status_class.2xx:1|c",
        "gunicorn.request.duration:1.000|ms", "gunicorn.request.duration:2.000|ms"]


def test_only_the_gauge_when_nothing_finished() -> None:
    assert render("", [], -3) == ["chaussette.requests.in_flight:-3|g"]
    assert render("", [], 0) == []


def test_durations_beyond_the_cap_are_sampled_with_their_rate() -> None:
    finished = [("200 OK", n / 1000) for n in range(8)]
    lines = render("", finished, 0, max_timings=3, sample=lambda values, k: list(values[-k:]))
    assert lines[0] == "gunicorn.requests:8|c"  # counters stay exact
    # One in 3 (8 / 3 rounds to 3 kept), at a rate just under 1/3: whole-number readers
    # (statsd_exporter truncates 1/rate) count each as 3 requests, statsd as 3.000000003.
    assert lines[-3:] == ["gunicorn.request.duration:5.000|ms|@0.333333333",
                          "gunicorn.request.duration:6.000|ms|@0.333333333",
                          "gunicorn.request.duration:7.000|ms|@0.333333333"]


@pytest.mark.parametrize("requests", [1001, 1500, 2000, 20_000, 123_457, 1_000_000])
def test_sample_rate_counts_back_to_the_requests(requests: int) -> None:
    durations = [line for line in render("", [("200 OK", 0.001)] * requests, 0) if "duration" in line]
    rate = float(durations[0].rpartition("@")[2])
    assert len(durations) <= metrics.MAX_TIMINGS
    assert abs(len(durations) * int(1 / rate) - requests) <= int(1 / rate) / 2  # statsd_exporter
    assert abs(len(durations) / rate - requests) <= int(1 / rate) / 2 + 1  # statsd


def test_lines_packed_into_datagrams() -> None:
    lines = ["a" * 10, "b" * 10, "c" * 10, "d" * 40, "e" * 5]
    assert datagrams(lines, limit=21) == [b"a" * 10 + b"\n" + b"b" * 10, b"c" * 10, b"d" * 40, b"e" * 5]
    assert datagrams([], limit=21) == []
    sizes = [len(datagram) for datagram in datagrams(render("test.", [("200 OK", 0.001)] * 500, 0))]
    assert max(sizes) <= metrics.MAX_DATAGRAM and len(sizes) > 1


# -- the layer -----------------------------------------------------------------------------


class Statsd:
    """A UDP socket standing for statsd: counters summed, durations kept, gauge applied."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.address = "%s:%d" % self.sock.getsockname()
        self.lines: list[str] = []
        self.counters: Counter[str] = Counter()
        self.durations: list[float] = []
        self.in_flight = 0

    def collect(self, layer: Metrics) -> None:
        """Everything ``layer`` sent, once its last flush is done (it is closed): a
        datagram on loopback is in this socket's buffer when ``send`` returns."""
        layer.close()
        self.sock.settimeout(0.2)
        while True:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return
            for line in data.decode("ascii").split("\n"):
                self.lines.append(line)
                name, _, rest = line.partition(":")
                value, _, kind = rest.partition("|")
                if kind == "c":
                    self.counters[name] += int(value)
                elif kind.startswith("ms"):
                    self.durations.append(float(value))
                else:
                    self.in_flight += int(value)


@pytest.fixture
def statsd() -> Iterator[Statsd]:
    receiver = Statsd()
    yield receiver
    receiver.sock.close()


@pytest.fixture
def layer(statsd: Statsd) -> Iterator[Callable[[Any], Metrics]]:
    """Makes the layer around an app, sending to ``statsd``; closed at the end in any case."""
    made: list[Metrics] = []

    def make(app: Any) -> Metrics:
        made.append(Metrics(app, build_config({"statsd_host": statsd.address})))
        return made[-1]

    yield make
    for each in made:
        each.close()


class Server:
    """What a WSGI server does with a response, step by step."""

    def __init__(self) -> None:
        self.statuses: list[str] = []

    def start_response(self, status: str, headers: list, exc_info: Any = None) -> Any:
        self.statuses.append(status)
        return lambda data: None

    def serve(self, app: Any, environ: dict | None = None, iterate: bool = True) -> list[bytes]:
        result = app(environ or {}, self.start_response)
        try:
            return list(result) if iterate else []
        finally:
            if hasattr(result, "close"):
                result.close()


def hello(environ: dict, start_response: Any) -> list[bytes]:
    start_response("200 OK", [])
    return [b"hello"]


class Routed:
    """One application per path, so one layer serves a test's every case."""

    def __init__(self, **routes: Any) -> None:
        self.routes = routes

    def __call__(self, environ: dict, start_response: Any) -> Any:
        return self.routes[environ["PATH_INFO"]](environ, start_response)


def test_counted_once_the_body_is_done(layer: Any, statsd: Statsd) -> None:
    closed: list[bool] = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"chunk"

        def close(self) -> None:
            closed.append(True)

    def streaming(environ: dict, start_response: Any) -> Body:
        start_response("201 Created", [])
        return Body()

    def not_found(environ: dict, start_response: Any) -> tuple[bytes, ...]:
        start_response("404 Not Found", [])
        return (b"",)

    app = layer(Routed(streaming=streaming, not_found=not_found))
    server = Server()
    assert server.serve(app, {"PATH_INFO": "streaming"}) == [b"chunk"]
    assert closed == [True]
    assert server.serve(app, {"PATH_INFO": "not_found"}) == [b""]
    assert server.statuses == ["201 Created", "404 Not Found"]
    statsd.collect(app)
    assert statsd.counters == {"gunicorn.requests": 2, "gunicorn.request.status.201": 1,
                               "gunicorn.request.status.404": 1, "chaussette.request.status_class.2xx": 1,
                               "chaussette.request.status_class.4xx": 1}
    assert len(statsd.durations) == 2
    assert statsd.in_flight == 0


def test_list_and_file_wrapper_bodies_are_returned_as_they_are(layer: Any) -> None:
    class FileWrapper:
        def __init__(self, *args: Any) -> None:
            self.args = args

    body = FileWrapper("a file")
    listed = [b"hello"]

    def file_app(environ: dict, start_response: Any) -> Any:
        start_response("200 OK", [])
        return body

    def list_app(environ: dict, start_response: Any) -> Any:
        start_response("200 OK", [])
        return listed

    app = layer(Routed(file=file_app, list=list_app))
    environ = {"wsgi.file_wrapper": FileWrapper}
    assert app({**environ, "PATH_INFO": "file"}, Server().start_response) is body
    assert app({**environ, "PATH_INFO": "list"}, Server().start_response) is listed


def test_failures_count_as_what_the_server_answers(layer: Any, statsd: Statsd) -> None:
    def raises(environ: dict, start_response: Any) -> list[bytes]:
        start_response("200 OK", [])  # headers not sent yet: the server answers 500
        raise RuntimeError("boom")

    def fails_before_a_byte(environ: dict, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b""
        raise RuntimeError("boom")

    def fails_midstream(environ: dict, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"partial"
        raise RuntimeError("boom")

    app = layer(Routed(raises=raises, before=fails_before_a_byte, midstream=fails_midstream))
    for path in ("raises", "before", "midstream"):
        with pytest.raises(RuntimeError):
            Server().serve(app, {"PATH_INFO": path})
    statsd.collect(app)
    assert statsd.counters == {"gunicorn.requests": 3, "gunicorn.request.status.500": 2,
                               "gunicorn.request.status.200": 1, "chaussette.request.status_class.5xx": 2,
                               "chaussette.request.status_class.2xx": 1}
    assert statsd.in_flight == 0


def test_an_error_page_replacing_a_body_counts_with_its_status(layer: Any, statsd: Statsd) -> None:
    def replaced(environ: dict, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        try:
            raise RuntimeError("before the first byte")
        except RuntimeError:
            start_response("503 Service Unavailable", [], sys.exc_info())
        yield b"sorry"

    app = layer(replaced)
    server = Server()
    assert server.serve(app) == [b"sorry"]
    assert server.statuses == ["200 OK", "503 Service Unavailable"]
    statsd.collect(app)
    assert statsd.counters == {"gunicorn.requests": 1, "gunicorn.request.status.503": 1,
                               "chaussette.request.status_class.5xx": 1}


def test_closed_without_being_iterated_or_twice(layer: Any, statsd: Statsd) -> None:
    def generator(environ: dict, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"never read"

    app = layer(generator)
    timed = app({}, Server().start_response)
    timed.close()
    timed.close()
    statsd.collect(app)
    assert statsd.counters["gunicorn.requests"] == 1
    assert statsd.in_flight == 0


def test_close_reports_abandoned_requests_and_what_is_left(statsd: Statsd) -> None:
    def stuck(environ: dict, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b""

    app = Metrics(Routed(stuck=stuck, hello=hello), build_config({"statsd_host": statsd.address,
                                                                  "statsd_prefix": "app"}))
    app({"PATH_INFO": "stuck"}, Server().start_response)  # never closed: abandoned at exit
    app.flush()
    Server().serve(app, {"PATH_INFO": "hello"})
    statsd.collect(app)
    app.close()  # once only
    assert statsd.lines[0] == "app.chaussette.requests.in_flight:+1|g"
    assert statsd.lines[1:5] == ["app.gunicorn.requests:1|c", "app.gunicorn.request.status.200:1|c",
                                 "app.chaussette.request.status_class.2xx:1|c", statsd.lines[4]]
    assert statsd.lines[4].startswith("app.gunicorn.request.duration:") and statsd.lines[4].endswith("|ms")
    assert statsd.lines[5:] == ["app.chaussette.requests.in_flight:-1|g"]


def test_repr_is_the_application_s() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        app = Metrics(hello, build_config({"statsd_host": "%s:%d" % sock.getsockname()}))
        app.close()
    assert (app.app, repr(app)) == (hello, repr(hello))


def test_threads_finishing_together_lose_no_request(layer: Any, statsd: Statsd) -> None:
    """wsgiref and waitress run requests in threads: every one is counted, and the
    in-flight count comes back to 0, whatever the interleaving."""
    app = layer(hello)
    server = Server()
    threads = [threading.Thread(target=lambda: [server.serve(app) for _ in range(250)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    statsd.collect(app)
    assert statsd.counters["gunicorn.requests"] == 1000
    assert statsd.counters["gunicorn.request.status.200"] == 1000
    assert len(statsd.durations) == 1000
    assert statsd.in_flight == 0


def test_dead_statsd_is_logged_once(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        address = "%s:%d" % sock.getsockname()
    # Its own handler on the logger, nothing propagated: each record is seen exactly once,
    # whatever an earlier test's logging configuration left behind.
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    log = logging.getLogger("chaussette")
    monkeypatch.setattr(log, "handlers", [handler])
    monkeypatch.setattr(log, "propagate", False)
    monkeypatch.setattr(log, "level", logging.INFO)
    made = Metrics(hello, build_config({"statsd_host": address}))
    try:
        for _ in range(4):
            Server().serve(made)
            made.flush()
    finally:
        made.close()
    refused = [record.getMessage() for record in records if "does not take metrics" in record.getMessage()]
    assert refused == [f"statsd at {address} does not take metrics (Connection refused): they are dropped "
                       "while it does not; this is logged once"]


def test_ipv6_statsd(statsd: Statsd) -> None:
    if not ipv6_loopback():
        pytest.skip("this machine cannot bind ::1 (no IPv6 loopback)")
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        sock.bind(("::1", 0))
        sock.settimeout(5)
        made = Metrics(hello, build_config({"statsd_host": f"[::1]:{sock.getsockname()[1]}"}))
        try:
            Server().serve(made)
            made.flush()
            assert sock.recv(65536).split(b"\n")[0] == b"gunicorn.requests:1|c"
        finally:
            made.close()
