"""What the waitress backend adds to or fixes in waitress: graceful stop, logging,
unix-socket addresses, proxy headers and HEAD responses."""

from __future__ import annotations

import json
import re
import signal
import threading
from typing import Any

from helpers import ANSWER_TIMEOUT, HERE, closed_by_server, get, start

from chaussette.http import UNIX_REMOTE_ADDR
from chaussette_testing.client import UnixHTTPConnection, connect, raw_exchange, receive_until, request

COMMON_LOG_LINE = re.compile(r'^127\.0\.0\.1 - - \[[^\]]+\] "GET /echo\?x=1 HTTP/1\.1" 200 \d+$')


def test_sigterm_drains_in_flight_requests_and_closes_idle_connections() -> None:
    with start("--graceful-timeout", "30") as server:
        address = server.tcp_address
        idle = connect(address, timeout=ANSWER_TIMEOUT)
        result: dict = {}

        def slow() -> None:
            result["response"] = request(address, path="/slow?seconds=1.5", timeout=30)

        thread = threading.Thread(target=slow, daemon=True)
        try:
            assert get(idle).status == 200  # now an idle keep-alive connection
            thread.start()
            server.wait_for("slow request started", timeout=ANSWER_TIMEOUT)
            server.signal(signal.SIGTERM)
            server.wait_for("stopping", timeout=ANSWER_TIMEOUT)
            assert closed_by_server(idle), "an idle connection must not hold the stop up"
            thread.join(30)
            status, headers, body = result["response"]
            assert (status, body) == (200, b"done\n")
            assert headers["connection"] == "close"
            assert server.wait(30) == 0
        finally:
            idle.close()
        assert "graceful timeout" not in server.output


def test_waitress_prints_no_banner_and_logs_no_requests() -> None:
    with start() as server:
        for _ in range(3):
            assert request(server.tcp_address, path="/echo?marker-in-the-path")[0] == 200
        assert server.stop() == 0
    assert server.stdout == ""
    assert server.output.count("Serving on") == 1  # core's line, not waitress's own
    assert "http://" not in server.output
    assert "marker-in-the-path" not in server.output


def test_access_log_writes_one_common_log_line(tmp_path: Any) -> None:
    log = tmp_path / "access.log"
    with start("--access-log", str(log)) as server:
        assert request(server.tcp_address, path="/echo?x=1")[0] == 200
        assert server.stop() == 0
    lines = log.read_text().splitlines()
    assert len(lines) == 1
    assert COMMON_LOG_LINE.match(lines[0]), lines[0]


def test_unix_socket_remote_addr_matches_core(tmp_path: Any) -> None:
    path = str(tmp_path / "web.sock")
    with start("--host", f"unix:{path}") as server:
        conn = UnixHTTPConnection(path)
        try:
            conn.request("GET", "/echo")
            info = json.loads(conn.getresponse().read())
        finally:
            conn.close()
        assert (info["remote_addr"], info["remote_port"]) == (UNIX_REMOTE_ADDR, "")
        assert server.stop() == 0


def test_tcp_remote_addr_and_port() -> None:
    with start() as server:
        info = json.loads(request(server.tcp_address, path="/echo")[2])
    assert info["remote_addr"] == "127.0.0.1"
    assert info["remote_port"].isdigit()


def test_proxy_headers_reach_the_application() -> None:
    headers = {"X-Forwarded-For": "192.0.2.1", "X-Forwarded-Proto": "https", "Forwarded": "for=192.0.2.1"}
    with start() as server:
        info = json.loads(request(server.tcp_address, path="/echo", headers=headers)[2])
    assert info["headers"]["HTTP_X_FORWARDED_FOR"] == "192.0.2.1"
    assert info["headers"]["HTTP_X_FORWARDED_PROTO"] == "https"
    assert info["headers"]["HTTP_FORWARDED"] == "for=192.0.2.1"


def test_head_of_a_streamed_response_has_no_body() -> None:
    with start() as server:
        data = raw_exchange(server.tcp_address, b"HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert body == b""


def test_head_of_a_file_wrapper_response_has_no_body() -> None:
    with open(f"{HERE}/waitress_apps.py", "rb") as source:
        content = source.read()
    with start() as server:
        with connect(server.tcp_address, timeout=ANSWER_TIMEOUT) as sock:
            head = get(sock, "/file")
            sock.sendall(b"HEAD /file HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
            rest = receive_until(sock, b"hello world")
    assert head.body == content
    head_response, _, after = rest.partition(b"\r\n\r\n")
    assert f"Content-Length: {len(content)}".encode() in head_response
    assert after.startswith(b"HTTP/1.1 200"), "the HEAD response must have no body"


def _sends(sock: Any) -> int:
    return int(get(sock, "/sends").body)


def test_a_small_response_is_one_send() -> None:
    """waitress sends each write at once: its head, then its body, two sends for a small
    response. The head now goes with the first part of the body."""
    with start() as server, connect(server.tcp_address, timeout=ANSWER_TIMEOUT) as sock:
        before = _sends(sock)
        assert get(sock, "/").body == b"hello world"
        assert _sends(sock) - before == 2  # the first /sends response, and the hello


def test_head_and_body_joined_or_not_arrive_whole() -> None:
    """Joined up to HEAD_WITH_BODY_MAX, written apart above it, and HEAD (no body)."""
    with start() as server, connect(server.tcp_address, timeout=ANSWER_TIMEOUT) as sock:
        for size in (1, 65536, 65537, 300000):
            assert get(sock, f"/big?size={size}").body == b"b" * size
    with start() as server, connect(server.tcp_address, timeout=ANSWER_TIMEOUT) as sock:
        sock.sendall(b"HEAD /big?size=10 HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        rest = receive_until(sock, b"hello world")
    head_response, _, after = rest.partition(b"\r\n\r\n")
    assert b"Content-Length: 10" in head_response
    assert after.startswith(b"HTTP/1.1 200"), "the HEAD response must have no body"
