"""Shared suite: request ids, access log formats, log files reopened after logrotate.

Every backend package runs it (tests/test_production.py). Two servers per class, each
started once and asked many questions (``chaussette_testing.access_apps`` serves):

- ``access_text``: a gunicorn format string using every atom, request ids, and
  ``--log-output`` to a file: the exact text lines, SIGHUP, and a real logrotate run.
- ``access_json``: JSON lines, request ids, and 127.0.0.1 trusted as a proxy, so the
  lines show a forwarded client and the connection's own peer.

Each request carries (or is given) its own request id, and a test finds its line by
that id, in the log file or the one logrotate renamed it to.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator

import pytest

from chaussette_testing import access_apps
from chaussette_testing.client import connect, read_responses, request
from chaussette_testing.process import ServerProcess, free_port, start_server
from chaussette_testing.procs import wait_until

APP = "chaussette_testing.access_apps.app"
ID_HEADER = access_apps.REQUEST_ID_HEADER
#: gunicorn's documented example (its default, the combined log format) ...
GUNICORN_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'
#: ... then every other atom, those that depend on time last.
FORMAT = (GUNICORN_FORMAT + ' %(m)s %(U)s %(q)s %(H)s %(B)s %(p)s "%({x-test}i)s" "%({X-Out}o)s"'
          ' %({remote_addr}e)s %({chaussette.request_id}e)s %(request_id)s %(T)s %(M)s %(D)s %(L)s')
TIMES = r" (\d+) (\d+) (\d+) (\d+)\.(\d{6})"
CLF_TIME = r"\[(\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\]"
JSON_FIELDS = {"time", "remote_addr", "peer", "user", "request_id", "method", "path", "query", "protocol",
               "referer", "user_agent", "status", "bytes", "duration_us", "pid"}
GENERATED_ID = re.compile(r"[0-9a-f]{32}")
#: A request a client could send to forge lines or fields, and what each format makes of
#: it: a percent-encoded newline, quote, backslash and tab in the path, raw ones in the
#: query, a quote-laden referer, non-ASCII bytes (valid and invalid UTF-8) in a header.
HOSTILE_PATH = "/hostile%0A%22x%22:1,%5C%09%C3%A9%FF"
HOSTILE_QUERY = 'q=%22"\\'
HOSTILE_REFERER = 'http://x/","forged":"1'
HOSTILE_AGENT = b'agent "quoted" \\back\\ \ttab caf\xc3\xa9 \xff\xfe'
BASIC_ALICE = "Basic " + base64.b64encode(b"alice:secret").decode()


def new_id(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex}"


@dataclass
class Logged:
    """A server of this suite and its files."""

    server: ServerProcess
    access: Path
    directory: Path
    errors: Path | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self.server.tcp_address

    def lines(self, path: Path | None = None) -> list[str]:
        """The lines of ``path`` (the access log by default), the file logrotate renamed
        it to first."""
        path = path or self.access
        return [line for part in (Path(f"{path}.1"), path) if part.exists()
                for line in part.read_text("utf-8").splitlines()]

    def line_with(self, marker: str) -> str:
        """The one access log line holding ``marker``, once it is written."""
        found = wait_until(lambda: [line for line in self.lines() if marker in line], 10,
                           f"an access log line with {marker!r}", self.context)
        assert len(found) == 1, found
        return found[0]

    def json_with(self, request_id: str) -> dict:
        found = wait_until(lambda: [entry for entry in map(json.loads, self.lines())
                                    if entry["request_id"] == request_id], 10,
                           f"a JSON line with request id {request_id!r}", self.context)
        assert len(found) == 1, found
        return found[0]

    def context(self) -> str:
        text = "access log:\n" + "\n".join(self.lines()) + "\nserver log:\n"
        if self.errors is None:
            return text + self.server.output
        # What the logging module itself reports (a line it failed to write) goes to stderr.
        return text + "\n".join(self.lines(self.errors)) + "\nserver stderr:\n" + self.server.output


def raw_request(address: Any, target: str, *headers: tuple[str, str | bytes]) -> Any:
    """One ``GET`` with exactly these header lines (bytes go out as they are)."""
    head = b"GET " + target.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    for name, value in headers:
        head += name.encode() + b": " + (value if isinstance(value, bytes) else value.encode("latin-1")) + b"\r\n"
    with connect(address) as sock:
        sock.sendall(head + b"\r\n")
        response, = read_responses(sock, ["GET"])
    return response


def near_now(stamp: datetime) -> None:
    assert abs(stamp.timestamp() - time.time()) < 60, stamp


class AccessLogSuite:
    backend: ClassVar[str] = "wsgiref"

    @classmethod
    def _arguments(cls, port: int, *args: str) -> list[str]:
        return ["--backend", cls.backend, "--host", "127.0.0.1", "--port", str(port),
                "--request-id-header", ID_HEADER, *args, APP]

    @pytest.fixture(scope="class")
    @classmethod
    def access_text(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Logged]:
        directory = tmp_path_factory.mktemp("access-text")
        access, errors = directory / "access.log", directory / "server.log"
        # --log-output takes the start-up lines off stderr: the server is found by its port.
        port = free_port()
        with ServerProcess(cls._arguments(port, "--access-log", str(access), "--access-log-format", FORMAT,
                                          "--log-output", str(errors))) as server:
            server.addresses = [f"127.0.0.1:{port}"]
            logged = Logged(server, access, directory, errors)
            wait_until(lambda: "as a backend" in "\n".join(logged.lines(errors)), 30,
                       "the server to start", logged.context)
            yield logged
            assert server.stop() == 0, logged.context()

    @pytest.fixture(scope="class")
    @classmethod
    def access_json(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Logged]:
        directory = tmp_path_factory.mktemp("access-json")
        access = directory / "access.log"
        with start_server(*cls._arguments(0, "--access-log", str(access), "--access-log-json",
                                          "--forwarded-allow-ips", "127.0.0.1")) as server:
            yield Logged(server, access, directory)
            assert server.stop() == 0, server.output

    # -- request ids -------------------------------------------------------------------------

    def test_request_id_taken_from_the_request(self, access_json: Logged) -> None:
        sent = new_id("taken")
        status, headers, body = request(access_json.address, headers={ID_HEADER: sent})
        assert (status, headers["x-request-id"]) == (200, sent)
        assert json.loads(body) == {"request_id": sent, "header": sent}
        assert access_json.json_with(sent)["request_id"] == sent

    def test_request_id_generated_when_absent(self, access_json: Logged) -> None:
        status, headers, body = request(access_json.address)
        generated = headers["x-request-id"]
        assert status == 200 and GENERATED_ID.fullmatch(generated), generated
        assert json.loads(body) == {"request_id": generated, "header": generated}
        assert access_json.json_with(generated)["request_id"] == generated

    def test_request_id_insane_values_are_replaced(self, access_json: Logged) -> None:
        kept = "k" * 199 + "!"  # 200 visible characters: the longest kept
        assert raw_request(access_json.address, "/", (ID_HEADER, kept)).headers["x-request-id"] == kept
        for insane in ("x" * 201, "with space", "tab\there", b"caf\xc3\xa9", b"\xff", ""):
            response = raw_request(access_json.address, "/", (ID_HEADER, insane))
            generated = response.headers["x-request-id"]
            assert response.status == 200 and GENERATED_ID.fullmatch(generated), (insane, generated)
            # The application reads the replacement under the header's own name too.
            assert json.loads(response.body) == {"request_id": generated, "header": generated}
            assert access_json.json_with(generated)["request_id"] == generated

    def test_request_id_set_by_the_app_is_replaced(self, access_json: Logged) -> None:
        sent = new_id("app")
        with connect(access_json.address) as sock:  # every header line, not the last one only
            sock.sendall(f"GET /app-id HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                         f"{ID_HEADER}: {sent}\r\n\r\n".encode())
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.lower().split(b"\r\n")
        assert [line for line in lines if line.startswith(b"x-request-id:")] == [f"x-request-id: {sent}".encode()]
        assert json.loads(body) == {"request_id": sent, "header": sent}
        assert access_json.json_with(sent)["request_id"] == sent

    # -- text lines --------------------------------------------------------------------------

    def test_access_gunicorn_format_line(self, access_text: Logged) -> None:
        rid = new_id("format")
        status, _, body = request(access_text.address, path="/page?x=1&y=2", headers={
            ID_HEADER: rid, "Referer": "http://ref.example/", "User-Agent": "suite-agent/1.0",
            "X-Test": "test-value", "Authorization": BASIC_ALICE})
        assert status == 200
        line = access_text.line_with(rid)
        pid = access_text.server.pid
        before = '127.0.0.1 - alice '
        after = (f' "GET /page?x=1&y=2 HTTP/1.1" 200 {len(body)} "http://ref.example/" "suite-agent/1.0"'
                 f' GET /page x=1&y=2 HTTP/1.1 {len(body)} <{pid}> "test-value" "{access_apps.OUT_HEADER[1]}"'
                 f' 127.0.0.1 {rid} {rid}')
        match = re.fullmatch(re.escape(before) + CLF_TIME + re.escape(after) + TIMES, line)
        assert match, (line, before + "[...]" + after)
        near_now(datetime.strptime(match[1], "%d/%b/%Y:%H:%M:%S %z"))
        seconds, milliseconds, microseconds, whole, fraction = map(int, match.groups()[1:])
        assert (seconds, milliseconds, whole, fraction) == (
            microseconds // 1_000_000, microseconds // 1000, microseconds // 1_000_000, microseconds % 1_000_000)

    def test_access_text_line_escapes_hostile_values(self, access_text: Logged) -> None:
        rid = new_id("hostile-text")
        response = raw_request(access_text.address, f"{HOSTILE_PATH}?{HOSTILE_QUERY}", (ID_HEADER, rid),
                               ("Referer", HOSTILE_REFERER), ("User-Agent", HOSTILE_AGENT))
        assert response.status == 200
        line = access_text.line_with(rid)
        path = r'/hostile\x0A\"x\":1,\\\x09\xC3\xA9\xFF'
        query = r'q=%22\"\\'
        after = (f' "GET {path}?{query} HTTP/1.1" 200 {len(response.body)} "http://x/\\",\\"forged\\":\\"1"'
                 r' "agent \"quoted\" \\back\\ \x09tab caf\xC3\xA9 \xFF\xFE"'
                 f' GET {path} {query} HTTP/1.1 {len(response.body)} <{access_text.server.pid}> "-"'
                 f' "{access_apps.OUT_HEADER[1]}" 127.0.0.1 {rid} {rid}')
        assert re.fullmatch(re.escape("127.0.0.1 - - ") + CLF_TIME + re.escape(after) + TIMES, line), \
            (line, after)

    # -- JSON lines --------------------------------------------------------------------------

    def test_access_json_fields(self, access_json: Logged) -> None:
        rid = new_id("json")
        status, _, body = request(access_json.address, path="/slow?x=1", headers={
            ID_HEADER: rid, "Referer": "http://ref.example/", "User-Agent": "suite-agent/1.0",
            "Authorization": BASIC_ALICE, "X-Forwarded-For": "203.0.113.9"})
        assert status == 200
        entry = access_json.json_with(rid)
        assert set(entry) == JSON_FIELDS
        near_now(datetime.fromisoformat(entry.pop("time")))
        duration = entry.pop("duration_us")
        assert isinstance(duration, int) and access_apps.SLOW_PAUSE * 1e6 <= duration < 30e6, duration
        assert entry == {"remote_addr": "203.0.113.9", "peer": "127.0.0.1", "user": "alice", "request_id": rid,
                         "method": "GET", "path": "/slow", "query": "x=1", "protocol": "HTTP/1.1",
                         "referer": "http://ref.example/", "user_agent": "suite-agent/1.0", "status": 200,
                         "bytes": len(body), "pid": access_json.server.pid}

    def test_access_json_hostile_values(self, access_json: Logged) -> None:
        rid = new_id("hostile-json")
        response = raw_request(access_json.address, f"{HOSTILE_PATH}?{HOSTILE_QUERY}", (ID_HEADER, rid),
                               ("Referer", HOSTILE_REFERER), ("User-Agent", HOSTILE_AGENT))
        assert response.status == 200
        entry = access_json.json_with(rid)
        assert set(entry) == JSON_FIELDS
        assert (entry["path"], entry["query"], entry["referer"], entry["user_agent"]) == (
            '/hostile\n"x":1,\\\t\u00e9\udcff', HOSTILE_QUERY, HOSTILE_REFERER,
            'agent "quoted" \\back\\ \ttab caf\u00e9 \udcff\udcfe')
        # The bytes sent, back from the field.
        assert entry["user_agent"].encode("utf-8", "surrogateescape") == HOSTILE_AGENT
        assert (entry["remote_addr"], entry["peer"], entry["status"]) == ("127.0.0.1", "127.0.0.1", 200)
        for line in access_json.lines():  # every line is one whole object
            assert line.isascii() and set(json.loads(line)) == JSON_FIELDS, line

    def test_access_json_duration_runs_to_the_end_of_a_streamed_body(self, access_json: Logged) -> None:
        rid = new_id("stream")
        status, _, body = request(access_json.address, path="/stream", headers={ID_HEADER: rid})
        assert (status, body) == (200, b"".join(access_apps.STREAM_CHUNKS))
        entry = access_json.json_with(rid)
        assert entry["bytes"] == len(body)
        assert access_apps.STREAM_PAUSE * 1e6 <= entry["duration_us"] < 30e6, entry

    # -- signals and logrotate ---------------------------------------------------------------

    def test_access_sighup_keeps_serving(self, access_text: Logged) -> None:
        assert request(access_text.address)[0] == 200
        access_text.server.signal(signal.SIGHUP)
        assert access_text.errors is not None
        wait_until(lambda: "SIGHUP received: reopening the log files" in "\n".join(
            access_text.lines(access_text.errors)), 10, "the SIGHUP to be handled", access_text.context)
        rid = new_id("after-hup")
        assert request(access_text.address, headers={ID_HEADER: rid})[0] == 200
        assert rid in access_text.line_with(rid)
        assert access_text.server.proc.poll() is None

    def test_access_logrotate_loses_no_line(self, access_text: Logged) -> None:
        """logrotate renames both files (no copytruncate) then sends SIGUSR1, while a
        client sends 200 requests, each logged once in each file: every request's line
        must be in exactly one of the two files, old or new."""
        logrotate = shutil.which("logrotate") or shutil.which("/usr/sbin/logrotate")
        if logrotate is None:
            pytest.skip("logrotate is absent (Debian: apt-get install logrotate)")
        assert access_text.errors is not None
        config = access_text.directory / "logrotate.conf"
        config.write_text(f'"{access_text.access}" "{access_text.errors}" {{\n  rotate 1\n  nocompress\n'
                          f"  nocopytruncate\n  sharedscripts\n  postrotate\n"
                          f"    kill -USR1 {access_text.server.pid}\n  endscript\n}}\n")
        tag = uuid.uuid4().hex
        ids = [f"rotate-{tag}-{number}" for number in range(200)]
        flowing, rotated = threading.Event(), threading.Event()
        failures: list[Any] = []

        def client() -> None:
            try:
                for number, rid in enumerate(ids):
                    if number == 50:
                        flowing.set()
                    if number == 150:  # some requests surely after the rotation
                        rotated.wait(30)
                    status = request(access_text.address, path="/logged", headers={ID_HEADER: rid})[0]
                    assert status == 200, (rid, status)
            except BaseException as exc:  # reported by the test below
                failures.append(exc)
            finally:
                flowing.set()

        sender = threading.Thread(target=client, daemon=True)
        sender.start()
        try:
            assert flowing.wait(60)
            result = subprocess.run([logrotate, "-f", "-s", str(access_text.directory / "logrotate.state"),
                                     str(config)], capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, result.stdout + result.stderr
        finally:
            rotated.set()
            sender.join(60)
        assert not sender.is_alive() and not failures, failures

        def every_line(path: Path, line_of: Callable[[str], str]) -> None:
            markers = {rid: line_of(rid) for rid in ids}

            def counts() -> dict[str, tuple[int, int]]:
                old, new = Path(f"{path}.1").read_text("utf-8"), path.read_text("utf-8")
                return {rid: (old.count(marker), new.count(marker)) for rid, marker in markers.items()}

            def complete() -> dict[str, tuple[int, int]] | None:
                seen = counts()
                return seen if all(sum(count) for count in seen.values()) else None

            found = wait_until(complete, 15, f"every request's line in {path.name} or {path.name}.1",
                               access_text.context)
            assert {rid: count for rid, count in found.items() if sum(count) != 1} == {}
            # The rotation happened while requests flowed: the first ones are in the old
            # file, the last ones (sent once logrotate had returned) in the new one.
            assert (found[ids[0]], found[ids[-1]]) == ((1, 0), (0, 1))

        every_line(access_text.access, lambda rid: f" {rid} {rid} ")
        every_line(access_text.errors, lambda rid: access_apps.LOGGED % rid + "\n")
        # The handler's own line goes to the new file, or to the old one when the signal
        # interrupted a line being written there (the reopen then waits for that line).
        both = Path(f"{access_text.errors}.1").read_text("utf-8") + access_text.errors.read_text("utf-8")
        assert both.count("SIGUSR1 received: reopening the log files") == 1, access_text.context()
