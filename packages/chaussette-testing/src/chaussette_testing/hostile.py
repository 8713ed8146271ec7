"""Hostile input every backend must answer the same safe way (raw-socket tests).

Subclass ``HostileInputSuite`` with ``backend = "name"``. Each ambiguous request is sent
with a second, smuggled request behind it: the answer must be one 4xx, the connection
closed, and the smuggled request never served.
"""

from __future__ import annotations

import re
import signal
import socket
import time
from typing import Any, ClassVar, Sequence

import pytest

from chaussette_testing.client import Concurrently, connect, raw_exchange, request
from chaussette_testing.process import ServerProcess, start_server

APP = "chaussette_testing.apps.app"
SMUGGLED = b"GET /echo?smuggled=1 HTTP/1.1\r\nHost: x\r\n\r\n"


def _post(headers: bytes, body: bytes) -> bytes:
    return b"POST /echo HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n" + body


#: name -> raw request (a smuggled request follows each one)
AMBIGUOUS_FRAMING = {
    "te_and_cl": _post(b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"),
    "cl_and_te": _post(b"Transfer-Encoding: chunked\r\nContent-Length: 30\r\n", b"0\r\n\r\n"),
    "two_different_cl": _post(b"Content-Length: 4\r\nContent-Length: 5\r\n", b"abcd"),
    "cl_list_disagrees": _post(b"Content-Length: 4, 5\r\n", b"abcd"),
    "cl_plus_sign": _post(b"Content-Length: +4\r\n", b"abcd"),
    "cl_underscore": _post(b"Content-Length: 0_4\r\n", b"abcd"),
    "cl_hex": _post(b"Content-Length: 0x4\r\n", b"abcd"),
    "cl_negative": _post(b"Content-Length: -4\r\n", b"abcd"),
    "te_not_chunked_last": _post(b"Transfer-Encoding: chunked, identity\r\n", b"0\r\n\r\n"),
    "te_unknown": _post(b"Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n"),
    "te_twice": _post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"),
    "te_space_before_colon": _post(b"Transfer-Encoding : chunked\r\n", b"0\r\n\r\n"),
    "te_vertical_tab": _post(b"Transfer-Encoding:\x0bchunked\r\n", b"0\r\n\r\n"),
    "te_in_http10": b"POST /echo HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "chunk_size_hex_prefix": _post(b"Transfer-Encoding: chunked\r\n", b"0x4\r\nabcd\r\n0\r\n\r\n"),
    "chunk_size_negative": _post(b"Transfer-Encoding: chunked\r\n", b"-4\r\nabcd\r\n0\r\n\r\n"),
    "chunk_size_empty": _post(b"Transfer-Encoding: chunked\r\n", b"\r\nabcd\r\n0\r\n\r\n"),
    "chunk_data_too_long": _post(b"Transfer-Encoding: chunked\r\n", b"4\r\nabcdef\r\n0\r\n\r\n"),
    "chunk_bare_lf": _post(b"Transfer-Encoding: chunked\r\n", b"4\nabcd\n0\n\n"),
    "chunk_ext_nul": _post(b"Transfer-Encoding: chunked\r\n", b"4;a\x00b\r\nabcd\r\n0\r\n\r\n"),
    "trailer_bad_name": _post(b"Transfer-Encoding: chunked\r\n", b"4\r\nabcd\r\n0\r\nX T: 1\r\n\r\n"),
    "trailer_obs_fold": _post(b"Transfer-Encoding: chunked\r\n", b"4\r\nabcd\r\n0\r\nX-T: 1\r\n 2\r\n\r\n"),
}

MALFORMED_HEAD = {
    "nul_in_header": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "bare_cr_in_header": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rX-B: b\r\n\r\n",
    "bare_lf_line_end": b"GET / HTTP/1.1\nHost: x\n\n",
    "bare_cr_in_request_line": b"GET /\r HTTP/1.1\r\nHost: x\r\n\r\n",
    "nul_in_request_line": b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    "obs_fold": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
    "space_in_header_name": b"GET / HTTP/1.1\r\nHost: x\r\nX A: a\r\n\r\n",
    "no_colon": b"GET / HTTP/1.1\r\nHost: x\r\nX-A\r\n\r\n",
}


def _statuses(data: bytes) -> list[int]:
    """Status codes of every response in ``data`` (our test bodies never contain one)."""
    return [int(code) for code in re.findall(rb"HTTP/1\.[01] (\d{3}) ", data)]


class HostileInputSuite:
    backend: ClassVar[str] = "wsgiref"
    server_args: ClassVar[Sequence[str]] = ()
    #: Extra arguments a backend needs to hold 300 slow connections (threaded backends).
    slowloris_args: ClassVar[Sequence[str]] = ()
    slowloris_connections: ClassVar[int] = 300
    #: Framing cases (names in AMBIGUOUS_FRAMING and MALFORMED_HEAD) the backend's own
    #: parser accepts and the backend cannot refuse, with why: they run as strict xfails,
    #: so a library that starts refusing one fails its test until the entry goes.
    accepted: ClassVar[dict[str, str]] = {}

    @classmethod
    def start(cls, *args: str, **kwargs: Any) -> ServerProcess:
        return start_server("--backend", cls.backend, *cls.server_args, "--host", "127.0.0.1",
                            "--port", "0", *args, APP, **kwargs)

    @pytest.fixture(scope="class")
    @classmethod
    def server(cls) -> Any:
        with cls.start() as server:
            yield server

    def assert_refused(self, server: ServerProcess, raw: bytes, expected: Sequence[int] = (400,)) -> None:
        data = raw_exchange(server.tcp_address, raw + SMUGGLED, timeout=10)  # raises if left open
        statuses = _statuses(data)
        assert statuses and statuses[0] in expected, data[:300]
        assert len(statuses) == 1, f"more than one response: {data[:600]!r}"
        assert b"smuggled" not in data
        assert request(server.tcp_address)[0] == 200, "the server must keep serving"

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """The cases of the two framing tables, those in ``accepted`` as strict xfails."""
        table = {"test_ambiguous_framing_is_refused": AMBIGUOUS_FRAMING,
                 "test_malformed_head_is_refused": MALFORMED_HEAD}.get(metafunc.function.__name__)
        if table is not None:
            metafunc.parametrize("case", [
                pytest.param(case, marks=pytest.mark.xfail(strict=True, reason=self.accepted[case]))
                if case in self.accepted else case for case in sorted(table)])

    def test_ambiguous_framing_is_refused(self, server: ServerProcess, case: str) -> None:
        self.assert_refused(server, AMBIGUOUS_FRAMING[case])

    def test_malformed_head_is_refused(self, server: ServerProcess, case: str) -> None:
        self.assert_refused(server, MALFORMED_HEAD[case])

    def test_request_line_too_long(self, server: ServerProcess) -> None:
        raw = b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        self.assert_refused(server, raw, expected=(414, 400))

    def test_header_field_too_large(self, server: ServerProcess) -> None:
        raw = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n"
        self.assert_refused(server, raw, expected=(431, 400))

    def test_too_many_header_fields(self, server: ServerProcess) -> None:
        fields = b"".join(b"X-F%d: v\r\n" % n for n in range(500))
        self.assert_refused(server, b"GET / HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n", expected=(431, 400))

    def test_valid_chunked_with_trailer_is_answered(self, server: ServerProcess) -> None:
        raw = _post(b"Transfer-Encoding: chunked\r\n", b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n")
        data = raw_exchange(server.tcp_address, raw + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _statuses(data) == [200, 200]
        assert b'"body": "hello"' in data

    def test_slowloris_does_not_starve_normal_requests(self) -> None:
        with self.start(*self.slowloris_args) as server:
            slow: list[socket.socket] = []
            try:
                for _ in range(self.slowloris_connections):
                    sock = connect(server.tcp_address)
                    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
                    slow.append(sock)
                for sock in slow[::10]:
                    sock.sendall(b"X-Trickle: 1\r\n")
                for _ in range(5):
                    assert request(server.tcp_address, timeout=10)[0] == 200
            finally:
                for sock in slow:
                    sock.close()

    def test_sigterm_under_load_loses_nothing(self) -> None:
        with self.start("--graceful-timeout", "30") as server:
            calls = Concurrently(50, lambda: request(server.tcp_address, path="/slow?seconds=1", timeout=30)[0])
            deadline = time.monotonic() + 20
            while server.output.count("slow request started") < 50 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert server.output.count("slow request started") == 50, "not all 50 requests reached the app"
            server.signal(signal.SIGTERM)
            outcomes = calls.outcomes(40)
            assert server.wait(40) == 0
            assert outcomes == [200] * 50
