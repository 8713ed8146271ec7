"""What the gevent backends add to, or must keep from, core's conformance suite."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from chaussette_testing.client import UnixHTTPConnection, connect, raw_exchange, read_response, read_responses, request
from chaussette_testing.process import ServerProcess, start_server

TESTS = str(Path(__file__).parent)
APP = "chaussette_testing.apps.app"


def serve(*args: str, backend: str = "gevent", app: str = APP, **kwargs: Any) -> ServerProcess:
    return start_server("--backend", backend, "--python-path", TESTS, *args, app, **kwargs)


def tcp(*args: str, **kwargs: Any) -> ServerProcess:
    return serve("--host", "127.0.0.1", "--port", "0", *args, **kwargs)


# -- Nagle and keep-alive ------------------------------------------------------------------


def test_accepted_connections_have_tcp_nodelay() -> None:
    with tcp(app="gevent_apps.nodelay") as server:
        assert request(server.tcp_address)[2] == b"1"


def test_connections_on_an_inherited_fd_have_tcp_nodelay() -> None:
    with socket.socket() as sock:  # Nagle left on, as a process manager may hand it over
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        with serve("--fd", str(sock.fileno()), app="gevent_apps.nodelay", pass_fds=[sock.fileno()]):
            assert request(sock.getsockname())[2] == b"1"


def test_many_keep_alive_requests_on_one_connection() -> None:
    with tcp() as server:
        conn = http.client.HTTPConnection(*server.tcp_address, timeout=10)
        try:
            ports = set()
            for number in range(200):
                conn.request("POST", "/echo", body=b"%d" % number)
                response = conn.getresponse()
                info = json.loads(response.read())
                assert info["body"] == str(number)
                ports.add(info["remote_port"])
        finally:
            conn.close()
    assert len(ports) == 1


def test_idle_keep_alive_connection_closed_after_keep_alive_seconds() -> None:
    with tcp("--keep-alive", "1") as server, connect(server.tcp_address) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        stream = sock.makefile("rb")
        assert read_response(stream).body == b"hello world"
        sock.settimeout(15)
        assert stream.read() == b"", "the server should close the idle connection"


def test_keep_alive_zero_closes_after_each_response() -> None:
    with tcp("--keep-alive", "0") as server:
        data = raw_exchange(server.tcp_address, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"\r\nConnection: close\r\n" in data and data.endswith(b"hello world")


def test_head_of_a_streamed_response_has_no_body() -> None:
    with tcp() as server, connect(server.tcp_address) as sock:
        sock.sendall(b"HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        head, get = read_responses(sock, ["HEAD", "GET"])
        assert head.status == 200 and head.body == b""
        assert "transfer-encoding" not in head.headers
        assert get.body == b"hello world"


# -- logs ----------------------------------------------------------------------------------


def test_no_access_log_by_default() -> None:
    with tcp() as server:
        assert request(server.tcp_address, path="/echo?marker")[0] == 200
        assert server.stop() == 0
        assert "marker" not in server.output and "marker" not in server.stdout


def test_access_log_option() -> None:
    with tcp("--access-log", "-") as server:
        assert request(server.tcp_address, path="/echo?marker")[0] == 200
        assert server.stop() == 0
        assert '"GET /echo?marker HTTP/1.1" 200' in server.stdout


def test_fastgevent_says_what_it_maps_to() -> None:
    with tcp(backend="fastgevent") as server:
        assert "Backend 'fastgevent' maps to 'gevent' (gevent.pywsgi)" in server.output
        assert request(server.tcp_address)[0] == 200


# -- unix sockets --------------------------------------------------------------------------


def test_unix_socket_remote_addr(tmp_path: Path) -> None:
    from chaussette.http import UNIX_REMOTE_ADDR

    path = str(tmp_path / "web.sock")
    with serve("--host", f"unix:{path}"):
        conn = UnixHTTPConnection(path)
        conn.request("GET", "/echo")
        info = json.loads(conn.getresponse().read())
        conn.close()
    assert (info["remote_addr"], info["remote_port"]) == (UNIX_REMOTE_ADDR, "")


# -- --spawn -------------------------------------------------------------------------------


@pytest.mark.parametrize("spawn", [None, "1"])
def test_spawn_bounds_concurrent_connections(spawn: str | None, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    with tcp(*(["--spawn", spawn] if spawn else [])) as server:
        held = http.client.HTTPConnection(*server.tcp_address, timeout=30)
        held.request("GET", f"/stream?gate={gate}", headers={"Connection": "close"})
        streamed = held.getresponse()
        assert streamed.readline() == b"first\n"  # this connection's greenlet is busy now
        with connect(server.tcp_address) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            sock.settimeout(1.5 if spawn else 10)
            try:
                early = sock.recv(65536)
            except TimeoutError:
                early = b""
            gate.touch()
            assert streamed.read().endswith(b"last\n")
            held.close()
            sock.settimeout(10)
            data = early + b"".join(iter(lambda: sock.recv(65536), b""))
        assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"hello world")
        if spawn:
            assert early == b"", "--spawn 1: a second connection must wait for the first"
        else:
            assert early.startswith(b"HTTP/1.1 200"), "without --spawn both are served at once"


# -- request heads: core's limits and strict framing ----------------------------------------


@pytest.mark.parametrize("args, head, status", [
    (("--limit-request-line", "100"), b"GET /" + b"a" * 200 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (("--limit-request-fields", "3"), b"GET / HTTP/1.1\r\nHost: x\r\n" + b"A: b\r\n" * 5 + b"\r\n", 431),
    (("--limit-request-field-size", "50"), b"GET / HTTP/1.1\r\nHost: x\r\nA: " + b"b" * 100 + b"\r\n\r\n",
     431),
    ((), b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc", 400),
    ((), b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"0\r\n\r\n", 400),
    ((), b"GET / HTTP/1.1\r\nHost: x\r\n folded: header\r\n\r\n", 400),
    ((), b"GET / HTTP/1.1\r\n\r\n", 400),
])
def test_refused_heads(args: tuple[str, ...], head: bytes, status: int) -> None:
    with tcp(*args) as server:
        data = raw_exchange(server.tcp_address, head)
        assert data.startswith(b"HTTP/1.1 %d " % status), data
        assert b"\r\nConnection: close\r\n" in data
        assert request(server.tcp_address)[0] == 200


def test_limits_above_pywsgi_and_http_client_defaults() -> None:
    """pywsgi refuses request lines of 8192 bytes and http.client more than 100 header
    fields; larger core limits must win."""
    headers = "".join(f"X-{number}: {number}\r\n" for number in range(150))
    head = f"GET /echo?{'q' * 10000} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n"
    with tcp("--limit-request-line", "20000", "--limit-request-fields", "200") as server:
        data = raw_exchange(server.tcp_address, head.encode())
    assert data.startswith(b"HTTP/1.1 200 "), data[:200]
    info = json.loads(data.partition(b"\r\n\r\n")[2])
    assert len(info["query"]) == 10000 and info["headers"]["HTTP_X_149"] == "149"


# -- stopping ------------------------------------------------------------------------------


def test_stop_closes_idle_keep_alive_connections_at_once() -> None:
    with tcp("--keep-alive", "120", "--graceful-timeout", "120") as server:
        conn = http.client.HTTPConnection(*server.tcp_address, timeout=10)
        conn.request("GET", "/")
        assert conn.getresponse().read() == b"hello world"
        server.signal(signal.SIGTERM)
        assert server.wait(20) == 0  # an idle connection is not an in-flight request
        assert "graceful timeout" not in server.output
        conn.close()


def test_response_in_flight_at_stop_says_connection_close() -> None:
    with tcp("--graceful-timeout", "30") as server:
        result: dict = {}

        def call() -> None:
            conn = http.client.HTTPConnection(*server.tcp_address, timeout=30)
            conn.request("GET", "/slow?seconds=1")
            response = conn.getresponse()
            result["connection"] = response.getheader("Connection")
            result["body"] = response.read()
            conn.close()

        thread = threading.Thread(target=call, daemon=True)
        thread.start()
        server.wait_for("slow request started", timeout=15)
        server.signal(signal.SIGTERM)
        thread.join(30)
        assert server.wait(30) == 0
    assert result == {"connection": "close", "body": b"done\n"}


def test_no_monkey_still_serves() -> None:
    with tcp("--no-monkey") as server:
        assert request(server.tcp_address)[0] == 200
        assert server.stop() == 0


def test_pywsgi_sees_nonblocking_listener_even_if_inherited_blocking() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        sock.setblocking(True)
        with serve("--fd", str(sock.fileno()), pass_fds=[sock.fileno()]) as server:
            for _ in range(3):  # accepting must not hang the hub after the first one
                assert request(sock.getsockname())[0] == 200
            assert server.stop() == 0
