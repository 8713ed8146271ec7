"""What the eventlet backend adds to, or maps from, core: real servers, real sockets."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
from pathlib import Path
from typing import Any

import eventlet
import pytest

from chaussette.http import UNIX_REMOTE_ADDR
from chaussette_testing import ServerProcess, UnixHTTPConnection, raw_exchange, request, start_server
from chaussette_testing.client import connect, read_responses, tcp_and_unix_listeners

HERE = str(Path(__file__).parent)
TCP = ("--host", "127.0.0.1", "--port", "0")


def start(*args: str, **kwargs: Any) -> ServerProcess:
    return start_server("--backend", "eventlet", "--python-path", HERE, *args, "eventlet_apps.app", **kwargs)


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def get(address: Any, path: str) -> Any:
    status, _, body = request(address, path=path)
    assert status == 200
    return json.loads(body)


def idle_connection(address: Any) -> socket.socket:
    """A keep-alive connection that served one request and now waits for the next."""
    sock = connect(address)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    (response,) = read_responses(sock, ["GET"])
    assert response.status == 200 and "close" not in response.headers.get("connection", "")
    return sock


def assert_closed_by_server(sock: socket.socket) -> None:
    sock.settimeout(20)
    assert sock.recv(1) == b""


def quietly(call: Any, *args: Any) -> None:
    """Run ``call`` in a client thread whose connection the server may cut."""
    try:
        call(*args)
    except OSError:
        pass


# -- start-up -------------------------------------------------------------------------------

def test_patches_before_importing_the_application() -> None:
    with start(*TCP) as server:
        assert get(server.tcp_address, "/patched") is True
        assert server.stop() == 0
    if hasattr(eventlet, "EventletDeprecationWarning"):  # eventlet >= 0.41 warns on import
        assert "EventletDeprecationWarning" in server.output, "eventlet's own warning must reach the user"


def test_no_monkey_leaves_the_standard_library_alone() -> None:
    with start(*TCP, "--no-monkey") as server:
        assert get(server.tcp_address, "/patched") is False
        assert server.stop() == 0


# -- concurrency ----------------------------------------------------------------------------

def hold_peaks(address: Any, count: int) -> list[int]:
    """Send ``count`` /hold requests at once; each answers the most requests it saw in
    the application together."""
    peaks: list[int] = []

    def one() -> None:
        status, _, body = request(address, path=f"/hold?peers={count}&window=5", timeout=60)
        assert status == 200
        peaks.append(int(body))

    threads = [threading.Thread(target=one, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(peaks) == count
    return peaks


def test_spawn_bounds_concurrent_requests() -> None:
    with start(*TCP, "--spawn", "2") as server:
        assert max(hold_peaks(server.tcp_address, 3)) == 2
        assert server.stop() == 0
    assert server.output.count("hold started") == 3
    assert "hold started, 3 active" not in server.output


def test_without_spawn_the_same_requests_overlap() -> None:
    """The control for the test above: the same requests do meet in the application."""
    with start(*TCP) as server:
        assert max(hold_peaks(server.tcp_address, 3)) == 3


# -- responses ------------------------------------------------------------------------------

def test_error_while_iterating_gives_500_without_details() -> None:
    with start(*TCP) as server:
        data = raw_exchange(server.tcp_address, b"GET /lazy-error HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(data) == 500
        assert b"secret-detail" not in data and b"Traceback" not in data
        server.wait_for("secret-detail-in-lazy-exception", timeout=10)
        assert "error in the application for GET /lazy-error" in server.output
        assert request(server.tcp_address)[0] == 200


@pytest.mark.parametrize("method, path, status", [("GET", "/no-content", 204), ("HEAD", "/generated", 200),
                                                  ("HEAD", "/", 200)])
def test_bodyless_responses_keep_the_connection_in_step(method: str, path: str, status: int) -> None:
    """eventlet.wsgi writes the application's body even where HTTP forbids one; the next
    pipelined response must still parse."""
    with start(*TCP) as server, connect(server.tcp_address) as sock:
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        first, second = read_responses(sock, [method, "GET"])
        assert first.status == status and first.body == b""
        assert (second.status, second.body) == (200, b"hello world")


def test_no_access_log_unless_asked() -> None:
    with start(*TCP) as server:
        assert request(server.tcp_address)[0] == 200
        assert server.stop() == 0
    assert '"GET / HTTP/1.1"' not in server.output + server.stdout


def test_access_log_is_cores() -> None:
    with start(*TCP, "--access-log", "-") as server:
        assert request(server.tcp_address)[0] == 200
        assert server.stop() == 0
    assert '"GET / HTTP/1.1" 200 11' in server.stdout
    assert '"GET / HTTP/1.1"' not in server.output


# -- keep-alive and limits ------------------------------------------------------------------

def test_keep_alive_seconds_become_eventlets_timeout() -> None:
    with start(*TCP, "--keep-alive", "1") as server, connect(server.tcp_address) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
        (response,) = read_responses(sock, ["GET"])
        assert response.headers.get("keep-alive") == "timeout=1"
        assert_closed_by_server(sock)  # eventlet's own default would wait forever


def test_keep_alive_zero_closes_after_each_response() -> None:
    with start(*TCP, "--keep-alive", "0") as server:
        data = raw_exchange(server.tcp_address, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(data) == 200 and b"Connection: close" in data


def request_line(length: int) -> bytes:
    line = b"GET /" + b"a" * (length - len(b"GET / HTTP/1.1")) + b" HTTP/1.1"
    assert len(line) == length
    return line + b"\r\nHost: x\r\nConnection: close\r\n\r\n"


def with_fields(count: int, size: int = 10) -> bytes:
    fields = [b"Host: x", b"Connection: close"]
    fields += [b"X-%d: %s" % (n, b"v" * (size - len(b"X-%d: " % n))) for n in range(count - len(fields))]
    assert all(len(field) == size for field in fields[2:])
    return b"GET / HTTP/1.1\r\n" + b"\r\n".join(fields) + b"\r\n\r\n"


def test_limits() -> None:
    args = ("--limit-request-line", "100", "--limit-request-fields", "5", "--limit-request-field-size", "50")
    with start(*TCP, *args) as server:
        address = server.tcp_address
        assert status_of(raw_exchange(address, request_line(100))) == 200
        assert status_of(raw_exchange(address, request_line(101))) == 414
        assert status_of(raw_exchange(address, with_fields(5))) == 200
        assert status_of(raw_exchange(address, with_fields(6))) == 431
        assert status_of(raw_exchange(address, with_fields(3, size=50))) == 200
        assert status_of(raw_exchange(address, with_fields(3, size=51))) == 431


# -- sockets --------------------------------------------------------------------------------

def test_tcp_environ() -> None:
    with start(*TCP) as server:
        environ = get(server.tcp_address, "/environ")
        assert environ["REMOTE_ADDR"] == "127.0.0.1"
        assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("127.0.0.1", str(server.tcp_address[1]))
        assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
        data = raw_exchange(server.tcp_address, b"GET /environ HTTP/1.0\r\n\r\n")
        assert json.loads(data.partition(b"\r\n\r\n")[2])["SERVER_PROTOCOL"] == "HTTP/1.0"


def unix_get(path: str, target: str) -> Any:
    conn = UnixHTTPConnection(path)
    try:
        conn.request("GET", target)
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def test_unix_environ(tmp_path: Path) -> None:
    path = str(tmp_path / "web.sock")
    with start("--host", f"unix:{path}") as server:
        environ = unix_get(path, "/environ")
        assert server.stop() == 0
    assert environ == {"REMOTE_ADDR": UNIX_REMOTE_ADDR, "REMOTE_PORT": "",
                       "SERVER_NAME": "localhost", "SERVER_PORT": "0", "SERVER_PROTOCOL": "HTTP/1.1"}


def serve_on_inherited_unix_fd(name: str) -> None:
    """Serve on a unix socket bound to ``name`` and handed over with ``--fd``."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(name)
        sock.listen(16)
        with start("--fd", str(sock.fileno()), pass_fds=[sock.fileno()]) as server:
            assert unix_get(name, "/environ")["REMOTE_ADDR"] == UNIX_REMOTE_ADDR
            assert server.stop() == 0


def test_inherited_unix_fd_keeps_its_family(tmp_path: Path) -> None:
    """Core builds the socket from the fd before eventlet patches ``socket``, whose
    ``socket(fileno=fd)`` would take a unix fd for AF_INET."""
    path = str(tmp_path / "inherited.sock")
    serve_on_inherited_unix_fd(path)
    os.unlink(path)


def test_inherited_abstract_unix_fd() -> None:
    """An abstract socket's name is bytes (eventlet.wsgi.server() cannot format it)."""
    serve_on_inherited_unix_fd(f"\0chaussette-eventlet-test-{os.getpid()}")


def test_several_listeners(tmp_path: Path) -> None:
    with tcp_and_unix_listeners(tmp_path) as (tcp, _, path, fds):
        with start("--fd", str(fds[0]), "--fd", str(fds[1]), pass_fds=fds, count=2) as server:
            assert get(tcp.getsockname(), "/environ")["REMOTE_ADDR"] == "127.0.0.1"
            assert unix_get(path, "/environ")["REMOTE_ADDR"] == UNIX_REMOTE_ADDR
            assert server.stop() == 0


# -- stopping -------------------------------------------------------------------------------

@pytest.mark.parametrize("family", ["tcp", "unix"])
def test_stop_closes_idle_keep_alive_connections(family: str, tmp_path: Path) -> None:
    """Idle keep-alive connections must not hold the stop until their keep-alive ends
    (60 s here) or the graceful timeout (10 s) cuts it."""
    path = str(tmp_path / "web.sock")
    where = TCP if family == "tcp" else ("--host", f"unix:{path}")
    with start(*where, "--keep-alive", "60", "--graceful-timeout", "10") as server:
        address = server.tcp_address if family == "tcp" else path
        idle = [idle_connection(address) for _ in range(3)]
        try:
            server.signal(signal.SIGTERM)
            assert server.wait(30) == 0
            assert "graceful timeout" not in server.output
            for sock in idle:
                assert_closed_by_server(sock)
        finally:
            for sock in idle:
                sock.close()


def test_graceful_timeout_exits_even_if_the_application_swallows_it() -> None:
    """The graceful timeout's exit is raised in the green thread the signal interrupted,
    here one that swallows it; the exit must still end the server. (On CPython 3.13.0
    with greenlet 3.5 the exception sometimes skips the green thread's handlers and
    reaches the main greenlet directly; the bound is checked either way.)"""
    with start(*TCP, "--graceful-timeout", "1") as server:
        client = threading.Thread(target=quietly, args=(request, server.tcp_address, "GET", "/stubborn"),
                                  daemon=True)
        client.start()
        server.wait_for("stubborn request started")
        server.signal(signal.SIGTERM)
        assert server.wait(15) == 0  # the application alone would hold it for 30 s more
        assert "graceful timeout" in server.output
        client.join(10)


def test_second_signal_in_an_ending_green_thread_still_exits(tmp_path: Path) -> None:
    """The second signal lands in a green thread that has returned but not yet ended (as
    the stop's own green thread does just after "stopping"), where eventlet cannot name
    the thread its log record asks for: the exit must still happen, at once."""
    trigger = tmp_path / "signal-now"
    with start(*TCP, "--graceful-timeout", "120") as server:
        path = f"/signalling?signal=SIGINT&seconds=60&trigger={trigger}"
        client = threading.Thread(target=quietly, args=(request, server.tcp_address, "GET", path),
                                  daemon=True)
        client.start()
        server.wait_for("signalling request started")
        server.signal(signal.SIGTERM)
        server.wait_for("stopping", timeout=10)
        trigger.touch()
        assert server.wait(20) == 1  # the request in flight would hold it for 60 s
        assert "SIGINT received again: exiting now" in server.output
        assert "Traceback" not in server.output, server.output
        client.join(10)


def test_first_signal_in_an_ending_green_thread_stops_gracefully(tmp_path: Path) -> None:
    trigger = tmp_path / "signal-now"
    trigger.touch()
    with start(*TCP) as server:
        assert request(server.tcp_address, path=f"/signalling?signal=SIGTERM&trigger={trigger}")[0] == 200
        assert server.wait(20) == 0
        assert "SIGTERM received: stopping" in server.output
        assert "Traceback" not in server.output, server.output
