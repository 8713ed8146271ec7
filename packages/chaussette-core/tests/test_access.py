"""The access log's formats, its escaping and its layer, request ids, and log files that
reopen: in process, with hypothesis trying any text a client could put in a header.
The same features on real servers of every backend: chaussette_testing.access."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from chaussette import access, logs, requestid
from chaussette.access import COMMON_FORMAT, Exchange, common_line, compile_format, escape, json_line
from chaussette.errors import ChaussetteError
from chaussette.settings import build_config

PID = os.getpid()
ENVIRON = {
    "REQUEST_METHOD": "GET", "PATH_INFO": "/page", "QUERY_STRING": "x=1", "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "192.0.2.7", "HTTP_REFERER": "http://ref.example/", "HTTP_USER_AGENT": "agent/1.0",
    "HTTP_X_TEST": "test-value", "CONTENT_TYPE": "text/plain", "wsgi.url_scheme": "https",
    "HTTP_AUTHORIZATION": "Basic YWxpY2U6c2VjcmV0",  # alice:secret
    "chaussette.request_id": "rid-1", "chaussette.peer": ("10.0.0.1", "5000"),
}
CLF_TIME = r"\[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\]"


@pytest.fixture(autouse=True)
def loggers_left_as_found() -> Iterator[None]:
    """These tests set up chaussette's loggers as a server does; later tests must find
    them as they were (pytest attaches its capture to loggers that do not propagate)."""
    saved = {name: (logger.handlers[:], logger.propagate, logger.level)
             for name in ("chaussette", logs.ACCESS_LOGGER) for logger in [logging.getLogger(name)]}
    yield
    for name, (handlers, propagate, level) in saved.items():
        logger = logging.getLogger(name)
        for handler in logger.handlers:
            if handler not in handlers:
                handler.close()
        logger.handlers[:], logger.propagate, logger.level = handlers, propagate, level


def exchange(environ: dict | None = None, status: str = "200 OK", headers: list | None = None,
             sent: int = 11, seconds: float = 1.234567) -> Exchange:
    done = Exchange(dict(ENVIRON) if environ is None else environ, lambda *args: None, 0.0)
    done.status, done.headers, done.sent, done.seconds = status, headers or [], sent, seconds
    return done


def unescape(text: str) -> str:
    """The reverse of ``escape``."""
    return re.sub(r'\\(x[0-9A-F]{2}|u[0-9A-F]{4}|U[0-9A-F]{8}|["\\])',
                  lambda match: match[1] if len(match[1]) == 1 else chr(int(match[1][1:], 16)), text)


# -- the format compiler ---------------------------------------------------------------------

@pytest.mark.parametrize(("atom", "value"), [
    ("h", "192.0.2.7"), ("l", "-"), ("u", "alice"), ("r", "GET /page?x=1 HTTP/1.1"), ("m", "GET"),
    ("U", "/page"), ("q", "x=1"), ("H", "HTTP/1.1"), ("s", "200"), ("B", "11"), ("b", "11"),
    ("f", "http://ref.example/"), ("a", "agent/1.0"), ("T", "1"), ("M", "1234"), ("D", "1234567"),
    ("L", "1.234567"), ("p", "<PID>"), ("request_id", "rid-1"),
    ("{x-test}i", "test-value"), ("{X-TEST}i", "test-value"), ("{content-type}i", "text/plain"),
    ("{absent}i", "-"), ("{x-out}o", "second"), ("{absent}o", "-"),
    ("{wsgi.url_scheme}e", "https"), ("{remote_addr}e", "192.0.2.7"), ("{absent}e", "-"),
    ("{chaussette.peer}e", "('10.0.0.1', '5000')"),
])
def test_each_atom(atom: str, value: str) -> None:
    """``<PID>`` stands for the pid in the parameters: test ids must be the same in every
    pytest-xdist worker (``hatch test --parallel``), whose pids differ."""
    headers = [("X-Out", "first"), ("x-out", "second")]  # the last one wins, as in gunicorn
    assert compile_format(f"%({atom})s")(exchange(headers=headers)) == value.replace("<PID>", f"<{PID}>")


def test_time_atom_is_the_common_log_format_date() -> None:
    line = compile_format("%(t)s")(exchange())
    assert re.fullmatch(CLF_TIME, line), line
    stamp = datetime.strptime(line, "[%d/%b/%Y:%H:%M:%S %z]")
    assert abs(stamp.timestamp() - datetime.now().timestamp()) < 5


def test_gunicorn_default_format() -> None:
    line = compile_format('%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"')(exchange())
    assert re.fullmatch(re.escape("192.0.2.7 - alice ") + CLF_TIME
                        + re.escape(' "GET /page?x=1 HTTP/1.1" 200 11 "http://ref.example/" "agent/1.0"'), line), line


def test_absent_values() -> None:
    bare = exchange({}, status="-", sent=0, seconds=0.0)
    assert compile_format("%(h)s|%(u)s|%(r)s|%(m)s|%(U)s|%(q)s|%(H)s|%(s)s|%(B)s|%(b)s|%(f)s|%(a)s|%(request_id)s")(
        bare) == "-|-|-  -|-|-||-|-|0|-|-|-|-"


def test_user_from_remote_user_first_and_broken_basic_credentials() -> None:
    assert compile_format("%(u)s")(exchange(dict(ENVIRON, REMOTE_USER="bob"))) == "bob"
    assert compile_format("%(u)s")(exchange({"HTTP_AUTHORIZATION": "Basic !!notbase64"})) == "-"
    assert compile_format("%(u)s")(exchange({"HTTP_AUTHORIZATION": "Bearer abc"})) == "-"


def test_conversions_other_than_s() -> None:
    assert compile_format("%(B)05d %(D)x %(h)r %%")(exchange()) == "00011 12d687 '192.0.2.7' %"


@pytest.mark.parametrize(("fmt", "error"), [
    ("%(nope)s", "unknown atom %(nope)s"),
    ("%({bad name}i)s", "unknown atom %({bad name}i)s"),
    ("%({}i)s", "unknown atom %({}i)s"),
    ("%s", "every directive names an atom"),
    ("%(h)s %d", "every directive names an atom"),
    ("%(h", "incomplete format key"),
    ("100%", "write %% for a percent sign"),
    ("%(h)d", "a real number is required"),
    ("%(h)y", "unsupported format character"),
])
def test_bad_formats_are_one_line_errors(fmt: str, error: str) -> None:
    with pytest.raises(ChaussetteError) as raised:
        compile_format(fmt)
    assert error in str(raised.value) and "\n" not in str(raised.value), raised.value


def test_format_and_json_exclude_each_other(tmp_path: Path) -> None:
    config = build_config({"access_log": str(tmp_path / "a.log"), "access_log_json": True,
                           "access_log_format": "%(h)s"})
    with pytest.raises(ChaussetteError, match="exclude each other"):
        access.access_log(lambda environ, start_response: [], config)
    assert not (tmp_path / "a.log").exists()


def test_bad_format_refused_before_the_file_is_opened(tmp_path: Path) -> None:
    config = build_config({"access_log": str(tmp_path / "a.log"), "access_log_format": "%(zz)s"})
    with pytest.raises(ChaussetteError, match="unknown atom"):
        access.access_log(lambda environ, start_response: [], config)
    assert not (tmp_path / "a.log").exists()


# -- escaping --------------------------------------------------------------------------------

#: What a WSGI environ holds: one character per byte (PEP 3333).
latin1 = st.text(st.characters(max_codepoint=0xFF))


def test_escape_is_nginx_like() -> None:
    assert escape('a"b\\c\nd\te\x7f\xe9') == 'a\\"b\\\\c\\x0Ad\\x09e\\x7F\\xE9'
    assert escape("plain text, no escape") == "plain text, no escape"
    assert escape("\u20ac\U0001f600") == "\\u20AC\\U0001F600"  # a server that decoded text itself


@given(st.text())
@example('"')
@example("\\x41")
def test_escape_is_one_printable_line_and_reversible(value: str) -> None:
    escaped = escape(value)
    assert escaped.isascii() and escaped.isprintable()
    assert re.fullmatch(r'(?:[^"\\]|\\.)*', escaped), escaped
    assert unescape(escaped) == value


@given(latin1, latin1, latin1, latin1, st.booleans())
@example('/a"b', "q=\\", 'ref"', "agent\n", True)
def test_common_line_is_the_compiled_common_format(path: str, query: str, referer: str, agent: str,
                                                   with_id: bool) -> None:
    """The hand-written default line and the compiled COMMON_FORMAT agree on any input."""
    environ = dict(ENVIRON, PATH_INFO=path, QUERY_STRING=query, REMOTE_USER=agent, REMOTE_ADDR=referer)
    environ["chaussette.request_id"] = agent
    done = exchange(environ)
    compiled = compile_format(COMMON_FORMAT + (" %(request_id)s" if with_id else ""))
    fast = common_line(with_id)(done)
    assert fast == compiled(done)
    assert fast.isascii() and fast.isprintable()


def test_common_line_is_todays_line() -> None:
    line = common_line(False)(exchange(dict(ENVIRON, HTTP_AUTHORIZATION=""), sent=0))
    assert re.fullmatch(re.escape("192.0.2.7 - - ") + CLF_TIME + re.escape(' "GET /page?x=1 HTTP/1.1" 200 -'), line)
    with_id = common_line(True)(exchange())
    assert with_id.startswith("192.0.2.7 - alice [") and with_id.endswith('"GET /page?x=1 HTTP/1.1" 200 11 rid-1')


@given(latin1, latin1, latin1)
def test_text_line_values_cannot_forge_a_line_or_a_field(referer: str, agent: str, header: str) -> None:
    line = compile_format('"%(f)s" "%(a)s" "%({x-test}i)s"')(
        exchange(dict(ENVIRON, HTTP_REFERER=referer, HTTP_USER_AGENT=agent, HTTP_X_TEST=header)))
    assert line.isascii() and line.isprintable()
    fields = re.fullmatch(r'"((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"', line)
    assert fields, line
    assert [unescape(field) for field in fields.groups()] == [referer or "-", agent or "-", header or "-"]


# -- JSON lines ------------------------------------------------------------------------------

TEXT_KEYS = {"remote_addr": "REMOTE_ADDR", "user": "REMOTE_USER", "request_id": "chaussette.request_id",
             "method": "REQUEST_METHOD", "path": "PATH_INFO", "query": "QUERY_STRING",
             "protocol": "SERVER_PROTOCOL", "referer": "HTTP_REFERER", "user_agent": "HTTP_USER_AGENT"}


def test_json_fields() -> None:
    entry = json.loads(json_line(exchange()))
    stamp = datetime.fromisoformat(entry.pop("time"))
    assert abs(stamp.timestamp() - datetime.now().timestamp()) < 5 and stamp.utcoffset() is not None
    assert entry == {"remote_addr": "192.0.2.7", "peer": "10.0.0.1", "user": "alice", "request_id": "rid-1",
                     "method": "GET", "path": "/page", "query": "x=1", "protocol": "HTTP/1.1",
                     "referer": "http://ref.example/", "user_agent": "agent/1.0", "status": 200, "bytes": 11,
                     "duration_us": 1234567, "pid": PID}


def test_json_absent_values_are_null() -> None:
    entry = json.loads(json_line(exchange({}, status="-", sent=0, seconds=0.0)))
    del entry["time"]
    assert entry == {"remote_addr": None, "peer": None, "user": None, "request_id": None, "method": None,
                     "path": None, "query": "", "protocol": None, "referer": None, "user_agent": None,
                     "status": None, "bytes": 0, "duration_us": 0, "pid": PID}


def test_json_matches_json_dumps() -> None:
    """The hand-made template writes what the json module would."""
    line = json_line(exchange())
    assert line == json.dumps(json.loads(line), separators=(",", ":"))


@given(st.fixed_dictionaries({key: latin1 for key in TEXT_KEYS.values()}))
@example({key: '","forged":"1' for key in TEXT_KEYS.values()})
@example({key: "\\u0041\n\x00\xff\xc3\xa9" for key in TEXT_KEYS.values()})
def test_json_line_parses_and_gives_back_the_bytes(values: dict) -> None:
    line = json_line(exchange(values))
    assert line.isascii() and line.isprintable()
    entry = json.loads(line)
    assert set(entry) == {"time", *TEXT_KEYS, "peer", "status", "bytes", "duration_us", "pid"}
    for field, key in TEXT_KEYS.items():
        sent = values[key].encode("latin-1")
        if field == "user" and not sent:
            continue  # an empty REMOTE_USER falls back to Authorization, absent here: null
        assert entry[field].encode("utf-8", "surrogateescape") == sent, field
        if sent.isascii():
            assert entry[field] == values[key]


def test_json_valid_utf8_is_text() -> None:
    entry = json.loads(json_line(exchange(dict(ENVIRON, PATH_INFO="/caf\xc3\xa9", HTTP_USER_AGENT="\xff"))))
    assert (entry["path"], entry["user_agent"]) == ("/caf\u00e9", "\udcff")


@given(st.text())
def test_json_text_from_a_server_that_decoded_it(value: str) -> None:
    """Characters beyond one byte (not WSGI, but seen): kept as they are."""
    entry = json.loads(json_line(exchange(dict(ENVIRON, HTTP_USER_AGENT=value))))
    try:
        expected = value.encode("latin-1").decode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        expected = value
    assert entry["user_agent"] == expected


# -- the layer ---------------------------------------------------------------------------------

class Recorder:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.started: list[tuple[str, list]] = []

    def start_response(self, status: str, headers: list, exc_info: Any = None) -> None:
        self.started.append((status, headers))


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """perf_counter as the access module reads it: the test moves it."""
    now = [100.0]
    monkeypatch.setattr(access.time, "perf_counter", lambda: now[0])
    return now


def layer(app: Any, recorder: Recorder) -> access.AccessLog:
    return access.AccessLog(app, compile_format("%(s)s %(B)s %(D)s"), recorder.lines.append)


def test_list_body_is_logged_at_once_and_returned_as_is(clock: list[float]) -> None:
    body = [b"hello ", b"world"]

    def app(environ: dict, start_response: Any) -> list[bytes]:
        start_response("201 Created", [("Content-Length", "11")])
        clock[0] += 0.25
        return body

    recorder = Recorder()
    assert layer(app, recorder)(dict(ENVIRON), recorder.start_response) is body
    assert recorder.lines == ["201 11 250000"]
    assert recorder.started == [("201 Created", [("Content-Length", "11")])]


def test_streamed_body_is_logged_when_closed(clock: list[float]) -> None:
    closed = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"abc"
            clock[0] += 1.5
            yield b"de"

        def close(self) -> None:
            closed.append(True)
            clock[0] += 0.5

    def app(environ: dict, start_response: Any) -> Body:
        start_response("200 OK", [])
        return Body()

    recorder = Recorder()
    result = layer(app, recorder)(dict(ENVIRON), recorder.start_response)
    assert recorder.lines == []
    assert list(result) == [b"abc", b"de"]  # the end of the body closes the application's
    assert (closed, recorder.lines) == ([True], ["200 5 2000000"])
    result.close()  # type: ignore[attr-defined]  # the server's: nothing more to do
    assert (closed, recorder.lines) == ([True], ["200 5 2000000"])


def test_body_closed_early_logs_what_was_sent(clock: list[float]) -> None:
    def app(environ: dict, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"abc"
        yield b"never sent"

    recorder = Recorder()
    result = iter(layer(app, recorder)(dict(ENVIRON), recorder.start_response))
    assert next(result) == b"abc"
    result.close()  # type: ignore[attr-defined]
    assert recorder.lines == ["200 3 0"]


def test_application_error_is_logged_as_the_500_the_server_sends(clock: list[float]) -> None:
    def app(environ: dict, start_response: Any) -> list[bytes]:
        raise RuntimeError("boom")

    recorder = Recorder()
    with pytest.raises(RuntimeError):
        layer(app, recorder)(dict(ENVIRON), recorder.start_response)
    assert recorder.lines == ["500 0 0"]


def test_error_in_the_body_before_and_after_the_first_byte(clock: list[float]) -> None:
    def app(environ: dict, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        if environ["PATH_INFO"] == "/late":
            yield b"partial"
        raise RuntimeError("boom")

    recorder = Recorder()
    for path in ("/early", "/late"):
        with pytest.raises(RuntimeError):
            list(layer(app, recorder)(dict(ENVIRON, PATH_INFO=path), recorder.start_response))
    assert recorder.lines == ["500 0 0", "200 7 0"]


def test_a_line_that_cannot_be_made_costs_the_response_nothing() -> None:
    def broken(done: Exchange) -> str:
        raise ValueError("bug")

    class Errors(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            recorder.lines.append(f"logged: {record.getMessage()}")

    recorder = Recorder()
    errors = Errors()
    logging.getLogger("chaussette").addHandler(errors)
    try:
        app = access.AccessLog(lambda environ, start_response: [b"ok"], broken, recorder.lines.append)
        assert app(dict(ENVIRON), recorder.start_response) == [b"ok"]
    finally:
        logging.getLogger("chaussette").removeHandler(errors)
    assert recorder.lines == ["logged: could not format the access log line"]


def test_layer_from_the_settings_writes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    app = access.access_log(lambda environ, start_response: [b"ok"],
                            build_config({"access_log": str(path), "access_log_json": True}))
    assert repr(app) == repr(app.app)
    app(dict(ENVIRON), Recorder().start_response)
    assert json.loads(path.read_text())["bytes"] == 2


# -- request ids -------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "sane"), [
    ("a", True), ("x" * 200, True), ("!~\"\\'", True), ("x" * 201, False), ("", False), ("a b", False),
    ("a\tb", False), ("caf\xc3\xa9", False), ("\x7f", False), ("\x00", False),
])
def test_sane_ids(value: str, sane: bool) -> None:
    assert requestid.sane(value) is sane


def test_new_ids_are_hex_and_unique() -> None:
    ids = {requestid.new_id() for _ in range(10000)}
    assert len(ids) == 10000 and all(re.fullmatch(r"[0-9a-f]{32}", rid) for rid in ids)


def request_id_layer(app: Any, header: str = "X-Request-ID") -> requestid.RequestId:
    return requestid.RequestId(app, build_config({"request_id_header": header}))


def test_request_id_layer() -> None:
    seen: list[dict] = []
    app_headers = [("Content-Type", "text/plain"), ("x-request-id", "the app's")]

    def app(environ: dict, start_response: Any) -> list[bytes]:
        seen.append(dict(environ))
        start_response("200 OK", app_headers)
        return [b"ok"]

    wrapped = request_id_layer(app, "X-Request-Id")
    for sent, kept in (("from-the-proxy", True), ("bad id", False), (None, False)):
        recorder = Recorder()
        environ = {} if sent is None else {"HTTP_X_REQUEST_ID": sent}
        wrapped(environ, recorder.start_response)
        rid = seen[-1]["chaussette.request_id"]
        assert (rid == sent) is kept and (kept or re.fullmatch(r"[0-9a-f]{32}", rid))
        assert seen[-1]["HTTP_X_REQUEST_ID"] == rid
        # The application's own header of that name is replaced, its list left alone.
        assert recorder.started == [("200 OK", [("Content-Type", "text/plain"), ("X-Request-Id", rid)])]
    assert app_headers == [("Content-Type", "text/plain"), ("x-request-id", "the app's")]
    assert repr(wrapped) == repr(app)


@pytest.mark.parametrize("header", ["", "X Request", "X-Req:uest", "Content-Length", "transfer-encoding", "Host"])
def test_request_id_header_name_refused(header: str) -> None:
    with pytest.raises(ChaussetteError, match="cannot carry a request id"):
        request_id_layer(lambda environ, start_response: [], header)


def test_request_id_in_the_default_access_line(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    config = build_config({"access_log": str(path), "request_id_header": "X-Request-ID"})
    app = request_id_layer(access.access_log(lambda environ, start_response: [b"ok"], config))
    app(dict(ENVIRON, HTTP_X_REQUEST_ID="abc-1"), Recorder().start_response)
    assert path.read_text().endswith('"GET /page?x=1 HTTP/1.1" - 2 abc-1\n')


def test_request_id_layer_touches_only_its_keys() -> None:
    wrapped = request_id_layer(lambda environ, start_response: [b""])
    environ = {"HTTP_X_REQUEST_ID": "abc"}
    wrapped(environ, Recorder().start_response)
    assert environ == {"HTTP_X_REQUEST_ID": "abc", "chaussette.request_id": "abc"}


# -- log files that reopen ---------------------------------------------------------------------

def test_access_file_reopens_after_a_rename(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    handler = logs.access_log_file(str(path))
    handler.write_line("one")
    path.rename(tmp_path / "access.log.1")
    handler.write_line("two")  # not asked to reopen yet: still the renamed file
    logs.reopen_files()
    handler.write_line("three")
    assert (tmp_path / "access.log.1").read_text() == "one\ntwo\n"
    assert path.read_text() == "three\n"


def test_log_output_reopens_and_a_nested_line_stays_whole(tmp_path: Path) -> None:
    """A signal handler that asks for a reopen and logs while this thread was inside a
    line (simulated by the formatter) writes to the file being written; the reopen waits
    for the next line."""
    path = tmp_path / "server.log"
    log = logs.configure("info", str(path))
    handler = log.handlers[0]
    assert isinstance(handler, logs.ReopeningFileHandler)

    class Interrupting(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            if record.getMessage() == "interrupted":
                logs.reopen_files()
                log.info("signal handler line")
            return record.getMessage()

    handler.setFormatter(Interrupting())
    log.info("before")
    path.rename(tmp_path / "server.log.1")
    log.info("interrupted")
    log.info("after")
    assert (tmp_path / "server.log.1").read_text() == "before\nsignal handler line\ninterrupted\n"
    assert path.read_text() == "after\n"


def test_a_signal_handler_logging_inside_a_blocked_write_loses_no_line(tmp_path: Path) -> None:
    """The handler of a signal that lands while a line is being written (a write blocked
    on a full pipe to the manager, or any line under gevent, where handlers run in the
    current greenlet) logs too: both lines arrive whole. Through the stream's buffer the
    nested line died with "reentrant call inside <_io.BufferedWriter>"."""
    read_end, write_end = os.pipe()
    stream = open(write_end, "w", encoding="utf-8")
    handler = logs.LineHandler(stream)
    log = logs._only_handler("chaussette.test-blocked-write", handler)
    log.setLevel("INFO")
    errors: list[str] = []
    handler.handleError = lambda record: errors.append(record.getMessage())  # type: ignore[method-assign]
    main = threading.get_native_id()
    entered = threading.Event()
    received = bytearray()

    def writing() -> None:
        deadline = time.monotonic() + 10
        wchan = Path(f"/proc/self/task/{main}/wchan")
        while "pipe_write" not in wchan.read_text() and time.monotonic() < deadline:
            time.sleep(0.001)

    def handler_logs(signum: int, frame: Any) -> None:
        entered.set()
        log.info("signal handler line")

    def reader() -> None:
        # Signal the main thread once it sleeps in write(2) on the full pipe, and make
        # room only when the handler's own line waits there too (or never will).
        writing()
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGUSR2)
        entered.wait(10)
        writing()
        while chunk := os.read(read_end, 65536):
            received.extend(chunk)

    previous = signal.signal(signal.SIGUSR2, handler_logs)
    os.set_blocking(write_end, False)
    for size in (4096, 1):  # fill the pipe to the last byte
        try:
            while True:
                os.write(write_end, b"." * size)
        except BlockingIOError:
            pass
    os.set_blocking(write_end, True)
    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        log.info("outer line")
    finally:
        signal.signal(signal.SIGUSR2, previous)
        log.handlers[:] = []
        stream.close()
        thread.join(10)
        os.close(read_end)
    assert errors == []
    lines = bytes(received).lstrip(b".").decode().splitlines()
    assert lines == ["signal handler line", "outer line"]
