"""The waitress knobs and the core options mapped onto them, each shown to act for real."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
from typing import Any

import pytest
from helpers import ANSWER_TIMEOUT, closed_by_server, get, start, wait_count

from chaussette_testing.client import connect, raw_exchange, request

#: How long a client held back (by the connection limit, or by the only worker thread being
#: busy) is watched for an answer. While held back no answer can come however long we
#: wait, so this bounds the test without making it timing-dependent.
HELD_BACK = 2.0
KNOBS = ("--waitress-threads", "--waitress-connection-limit", "--waitress-channel-timeout",
         "--waitress-max-request-header-size", "--waitress-max-request-body-size")


def chaussette(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chaussette", "--backend", "waitress", *args],
                          capture_output=True, text=True, timeout=60)


def test_help_lists_the_waitress_options() -> None:
    result = chaussette("--help")
    assert result.returncode == 0
    assert "waitress backend options" in result.stdout
    for flag in KNOBS:
        assert flag in result.stdout


def test_contradictory_thread_counts_are_refused() -> None:
    result = chaussette("--host", "127.0.0.1", "--port", "0", "--spawn", "2", "--waitress-threads", "3")
    assert result.returncode != 0
    assert "only one of them" in result.stderr
    assert "Serving on" not in result.stderr


def test_core_request_limits_apply() -> None:
    """--limit-request-* act on waitress through core's strict head parser (protocol.py)."""
    args = ("--limit-request-line", "100", "--limit-request-fields", "10", "--limit-request-field-size", "100")
    with start(*args) as server:
        address = server.tcp_address
        assert request(address, path="/?" + "a" * 80, headers={f"X-F{n}": "v" for n in range(8)})[0] == 200
        assert request(address, path="/?" + "a" * 120)[0] == 414
        assert request(address, headers={f"X-F{n}": "v" for n in range(12)})[0] == 431
        assert request(address, headers={"X-Big": "a" * 120})[0] == 431


def _keep_alive_connections(address: Any, count: int) -> list[socket.socket]:
    """``count`` connections that each got an answer (so waitress accepted them) and now
    sit idle, kept alive."""
    sockets = []
    try:
        for _ in range(count):
            sock = connect(address, timeout=ANSWER_TIMEOUT)
            sockets.append(sock)
            assert get(sock).status == 200
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def test_connection_limit_holds_new_clients_back_until_a_connection_closes() -> None:
    with start("--waitress-connection-limit", "5") as server:
        address = server.tcp_address
        idle = _keep_alive_connections(address, 4)
        try:
            assert request(address, timeout=ANSWER_TIMEOUT)[0] == 200  # 4 idle + this one: within 5
            idle += _keep_alive_connections(address, 1)
            with connect(address, timeout=HELD_BACK) as late:
                late.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                with pytest.raises(socket.timeout):
                    late.recv(1)  # 5 idle connections: waitress does not even accept this one
                # logged once for the request above, once for the fifth idle connection
                wait_count(server, "reached the connection limit", 2)
                idle.pop().close()
                late.settimeout(ANSWER_TIMEOUT)
                assert late.recv(12) == b"HTTP/1.1 200"  # a slot freed: it is served
        finally:
            for sock in idle:
                sock.close()


def test_a_higher_connection_limit_serves_past_the_idle_connections() -> None:
    with start("--waitress-connection-limit", "6") as server:
        idle = _keep_alive_connections(server.tcp_address, 5)
        try:
            assert request(server.tcp_address, timeout=ANSWER_TIMEOUT)[0] == 200
        finally:
            for sock in idle:
                sock.close()


def _blocked_stream(server: Any, gate: Any) -> http.client.HTTPConnection:
    """A request whose application holds a worker thread until ``gate`` exists."""
    conn = http.client.HTTPConnection(*server.tcp_address, timeout=ANSWER_TIMEOUT)
    conn.request("GET", f"/stream?gate={gate}")
    response = conn.getresponse()
    assert response.readline() == b"first\n"
    return conn


@pytest.mark.parametrize("option", ["--waitress-threads", "--spawn"])
def test_one_thread_serves_one_request_at_a_time(option: str, tmp_path: Any) -> None:
    gate = tmp_path / "gate"
    with start(option, "1") as server:
        blocked = _blocked_stream(server, gate)
        try:
            with connect(server.tcp_address, timeout=ANSWER_TIMEOUT) as second:
                second.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                # waitress's warning, in core's log format
                server.wait_for(r"\[WARNING\] Task queue depth is 1", timeout=ANSWER_TIMEOUT)
                second.settimeout(HELD_BACK)
                with pytest.raises(socket.timeout):
                    second.recv(1)  # the only worker is held by the first request
                gate.touch()
                second.settimeout(ANSWER_TIMEOUT)
                assert second.recv(12) == b"HTTP/1.1 200"
        finally:
            blocked.close()


def test_two_threads_serve_a_second_request_while_the_first_runs(tmp_path: Any) -> None:
    gate = tmp_path / "gate"
    with start("--waitress-threads", "2") as server:
        blocked = _blocked_stream(server, gate)
        try:
            assert request(server.tcp_address, timeout=ANSWER_TIMEOUT)[0] == 200
            assert not gate.exists()
        finally:
            gate.touch()
            blocked.close()


def test_request_header_size_limit() -> None:
    with start("--waitress-max-request-header-size", "2048") as server:
        assert request(server.tcp_address, headers={"X-Small": "a" * 1000})[0] == 200
        assert request(server.tcp_address, headers={"X-Big": "a" * 4000})[0] == 431


def test_request_body_size_limit() -> None:
    with start("--waitress-max-request-body-size", "1000") as server:
        assert request(server.tcp_address, "POST", "/echo", body=b"x" * 500)[0] == 200
        assert request(server.tcp_address, "POST", "/echo", body=b"x" * 5000)[0] == 413


@pytest.mark.parametrize("option", ["--waitress-channel-timeout", "--keep-alive"])
def test_idle_connections_are_closed_after_the_channel_timeout(option: str) -> None:
    with start(option, "1") as server:
        with connect(server.tcp_address, timeout=ANSWER_TIMEOUT) as sock:
            assert get(sock).status == 200
            assert closed_by_server(sock)


def test_keep_alive_zero_closes_after_each_response() -> None:
    with start("--keep-alive", "0") as server:
        data = raw_exchange(server.tcp_address, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert data.startswith(b"HTTP/1.1 200")
        assert b"\r\nConnection: close\r\n" in data
        assert data.count(b"Connection:") == 1


def test_keep_alive_by_default() -> None:
    with start() as server:
        with connect(server.tcp_address, timeout=ANSWER_TIMEOUT) as sock:
            first = get(sock)
            assert "connection" not in first.headers
            assert get(sock).status == 200  # the same connection serves a second request
