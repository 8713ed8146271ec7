"""What the bjoern backend adds to (or refuses of) core's contract, on real servers."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chaussette_testing.client import (
    UnixHTTPConnection,
    connect,
    ipv6_loopback,
    raw_exchange,
    read_responses,
    receive_until,
    request,
    tcp_and_unix_listeners,
)
from chaussette_testing.process import ServerProcess, start_server

HERE = Path(__file__).resolve().parent
ECHO = "chaussette_testing.apps.app"
#: The same applications on the marked build's C code alone, and through the Python adapter
#: the backend keeps for any other bjoern (``bjoern_adapter_apps`` hides the mark).
DIRECT, ADAPTED = "bjoern_apps.app", "bjoern_adapter_apps.app"


def start(*args: str, app: str = "bjoern_apps.app", **kwargs: Any) -> ServerProcess:
    """A bjoern server of ``bjoern_apps`` (or ``app``), on a free port unless told."""
    where = () if any(arg in ("--host", "--fd") for arg in args) else ("--host", "127.0.0.1", "--port", "0")
    return start_server("--backend", "bjoern", "--python-path", str(HERE), *where, *args, app, **kwargs)


def run_chaussette(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chaussette", "--backend", "bjoern", *args],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)


@pytest.fixture(params=[DIRECT, ADAPTED], ids=["direct", "adapter"])
def app(request: pytest.FixtureRequest) -> str:
    """Run the test on both paths: neither may regress unseen."""
    return request.param


def _info(address: Any) -> dict:
    status, _, body = request(address, path="/info")
    assert status == 200
    return json.loads(body)


# -- options ------------------------------------------------------------------------------

@pytest.mark.parametrize("option", ["--keep-alive", "--limit-request-line", "--limit-request-fields",
                                    "--limit-request-field-size"])
def test_options_bjoern_cannot_honour_are_refused(option: str) -> None:
    done = run_chaussette(option, "100", "--port", "0")
    assert done.returncode == 1
    line, = done.stderr.strip().splitlines()
    assert f"cannot honour {option}" in line


def test_spawn_is_refused() -> None:
    done = run_chaussette("--spawn", "10", "--port", "0")
    assert done.returncode == 1 and "--spawn" in done.stderr


def test_several_sockets_are_refused_in_one_line(tmp_path: Path) -> None:
    with tcp_and_unix_listeners(tmp_path) as (_, _, _, fds):
        done = subprocess.run([sys.executable, "-m", "chaussette", "--backend", "bjoern",
                               "--fd", str(fds[0]), "--fd", str(fds[1])], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=60, pass_fds=fds)
    assert done.returncode == 1
    line, = done.stderr.strip().splitlines()
    assert "serves at most 1 socket(s) and was given 2" in line


# -- environ ------------------------------------------------------------------------------

def test_the_marked_build_gets_the_application_as_it_is(app: str) -> None:
    """No Python between bjoern and the application on the marked build (what the adapter
    cost is the point of fixes 9-13); the adapter where the mark is missing."""
    import _bjoern

    assert _bjoern.CHAUSSETTE_WSGI == 1
    with start(app=app) as server:
        status, _, body = request(server.tcp_address, path="/caller")
    assert (status, body) == (200, b"server_run" if app == DIRECT else b"__call__")


def test_environ_describes_the_tcp_listener(app: str) -> None:
    with start(app=app) as server:
        info = _info(server.tcp_address)
    assert info["REMOTE_ADDR"] == "127.0.0.1"
    assert (info["SERVER_NAME"], info["SERVER_PORT"]) == ("127.0.0.1", str(server.tcp_address[1]))


def test_ipv6_listener_address(app: str) -> None:
    """Stock bjoern gave an IPv6 listener (a 4-tuple address) empty ones."""
    if not ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback")
    with start("--host", "::1", "--port", "0", app=app) as server:
        info = _info(server.tcp_address)
    assert (info["SERVER_NAME"], info["SERVER_PORT"]) == ("::1", str(server.tcp_address[1]))


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_client_address_and_port(host: str) -> None:
    """Stock bjoern read every peer as IPv4 (an IPv6 client got garbage) and gave no port."""
    if ":" in host and not ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback")
    with start("--host", host, "--port", "0") as server, connect(server.tcp_address) as sock:
        sock.sendall(b"GET /info HTTP/1.1\r\nHost: x\r\n\r\n")
        info = json.loads(read_responses(sock, ["GET"])[0].body)
        assert (info["REMOTE_ADDR"], info["REMOTE_PORT"]) == (host, str(sock.getsockname()[1]))


def test_unix_socket_clients_get_sane_addresses(tmp_path: Path, app: str) -> None:
    path = str(tmp_path / "web.sock")
    with start("--host", f"unix:{path}", app=app) as server:
        conn = UnixHTTPConnection(path)
        conn.request("GET", "/info")
        info = json.loads(conn.getresponse().read())
        conn.close()
        assert server.stop() == 0
    assert (info["REMOTE_ADDR"], info["REMOTE_PORT"], info["SERVER_NAME"], info["SERVER_PORT"]) == \
        ("127.0.0.1", "", "localhost", "0")


# -- pipelining -----------------------------------------------------------------------------

def _echoed(responses: list) -> list[tuple[int, str, str]]:
    return [(r.status, json.loads(r.body)["query"], json.loads(r.body)["body"]) for r in responses]


def test_pipelined_requests_in_one_send_are_answered_in_order() -> None:
    """Stock bjoern answered only the last request of a read (each replaced the previous)."""
    with start(app=ECHO) as server, connect(server.tcp_address) as sock:
        sock.sendall(b"".join(b"GET /echo?n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % n for n in (1, 2, 3)))
        assert _echoed(read_responses(sock, ["GET"] * 3)) == [(200, "n=1", ""), (200, "n=2", ""),
                                                               (200, "n=3", "")]


def test_pipelined_post_bodies() -> None:
    """A body, then a chunked body, then a request without: each request's bytes are its own."""
    with start(app=ECHO) as server, connect(server.tcp_address) as sock:
        sock.sendall(b"POST /echo?n=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                     b"POST /echo?n=2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"3\r\nabc\r\n0\r\n\r\n"
                     b"GET /echo?n=3 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _echoed(read_responses(sock, ["POST", "POST", "GET"])) == [
            (200, "n=1", "hello"), (200, "n=2", "abc"), (200, "n=3", "")]


def test_a_pipelined_request_may_end_in_a_later_read() -> None:
    """The bytes kept after a request hold only part of the next: the rest is read then."""
    with start(app=ECHO) as server, connect(server.tcp_address) as sock:
        sock.sendall(b"GET /echo?n=1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo?n=2 HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: 6\r\n\r\nabc")
        first, = read_responses(sock, ["GET"])
        sock.sendall(b"def")
        assert _echoed([first, *read_responses(sock, ["POST"])]) == [(200, "n=1", ""), (200, "n=2", "abcdef")]


def test_a_bad_request_behind_a_good_one_closes_after_the_good_one() -> None:
    with start(app=ECHO) as server:
        data = raw_exchange(server.tcp_address, b"GET /echo?n=1 HTTP/1.1\r\nHost: x\r\n\r\n"
                            b"GET /echo?n=2 HTTP/1.1\nHost: x\n\nGET /echo?n=3 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert data.count(b"HTTP/1.1 ") == 2 and b"n=1" in data and b"400 Bad Request" in data
    assert b"n=2" not in data and b"n=3" not in data


def test_trailer_fields_are_discarded() -> None:
    with start(app=ECHO) as server, connect(server.tcp_address) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"2\r\nhi\r\n0\r\nX-Trailer: 1\r\n\r\n")
        response, = read_responses(sock, ["POST"])
    assert json.loads(response.body)["body"] == "hi"
    assert "HTTP_X_TRAILER" not in json.loads(response.body)["headers"]


# -- responses ----------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "length"), [("/", "11"), ("/generated", "7")])
def test_head_gets_the_get_length_and_no_body(path: str, length: str, app: str) -> None:
    """bjoern sends a HEAD response's body (and, without a Content-Length, a chunked
    last-chunk marker); the next response on the connection is only found if none was sent."""
    with start(app=app) as server, connect(server.tcp_address) as sock:
        sock.sendall(b"HEAD %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
        head, = read_responses(sock, ["HEAD"])
        assert head.status == 200 and head.headers["content-length"] == length
        assert "transfer-encoding" not in head.headers
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_responses(sock, ["GET"])[0].body == b"hello world"


def test_head_response_bytes_end_with_the_head() -> None:
    """On the wire: the head, a single Content-Length (the GET's), and not one byte after."""
    with start() as server, connect(server.tcp_address) as sock:
        sock.sendall(b"HEAD /generated HTTP/1.1\r\nHost: x\r\n\r\n")
        data = receive_until(sock, b"\r\n\r\n")
        sock.settimeout(0.5)
        with pytest.raises(socket.timeout):
            data += sock.recv(1)  # nothing after the head (kept alive, so no EOF either)
    head = data.split(b"\r\n")
    assert head[0] == b"HTTP/1.1 200 OK" and data.endswith(b"\r\n\r\n")
    assert [line for line in head if line.lower().startswith(b"content-length")] == [b"Content-Length: 7"]
    assert not any(line.lower().startswith(b"transfer-encoding") for line in head)


# -- logs ---------------------------------------------------------------------------------

def test_the_fixed_build_is_installed_and_not_warned_about() -> None:
    """The tests run on ci/build-bjoern's wheel (hatch finds it in <repo>/.wheels)."""
    from importlib.metadata import version

    assert "+chaussette." in version("bjoern")
    with start() as server:
        assert request(server.tcp_address)[0] == 200
        assert server.stop() == 0
    assert "not the fixed build" not in server.output


def test_stock_bjoern_gets_one_warning_line() -> None:
    from chaussette_bjoern.library import stock_bjoern_warning

    assert stock_bjoern_warning("3.2.2+chaussette.1") is None
    warning = stock_bjoern_warning("3.2.2")
    assert warning is not None and "\n" not in warning
    assert "pipelined" in warning and "pip install --find-links DIR chaussette-bjoern" in warning
    assert "Python adapter" in warning  # what it costs: the marked build needs none


def test_no_access_log_unless_asked() -> None:
    with start() as server:
        assert request(server.tcp_address)[0] == 200
        assert server.stop() == 0
        assert server.stdout == ""
    with start("--access-log", "-") as server:
        assert request(server.tcp_address)[0] == 200
        assert server.stop() == 0
        assert '"GET / HTTP/1.1" 200 11' in server.stdout


def test_application_errors_go_to_chaussettes_log() -> None:
    with start(app="chaussette_testing.apps.app") as server:
        assert request(server.tcp_address, path="/error")[0] == 500
        server.wait_for(r"\[ERROR\] error while serving a request", timeout=10)
        server.wait_for("secret-detail-in-exception", timeout=10)


def test_system_exit_in_the_application_is_a_500(app: str) -> None:
    with start(app=app) as server:
        assert request(server.tcp_address, path="/exit")[0] == 500
        assert request(server.tcp_address)[2] == b"hello world"
        server.wait_for(r"the application raised SystemExit\(3\)", timeout=10)
        assert server.stop() == 0


def test_system_exit_in_the_body_closes_the_connection_and_serving_goes_on() -> None:
    """Once the response has started, bjoern can only close the connection (fix 12: not
    end the interpreter from its loop)."""
    with start() as server, connect(server.tcp_address) as sock:
        sock.sendall(b"GET /exit-in-body HTTP/1.1\r\nHost: x\r\n\r\n")
        data = receive_until(sock, b"started\r\n")  # chunked
        assert data.startswith(b"HTTP/1.1 200 OK") and _closed_by_server(sock)
        server.wait_for(r"the application raised SystemExit\(4\)", timeout=10)
        assert request(server.tcp_address)[2] == b"hello world"
        assert server.stop() == 0


# -- stopping -----------------------------------------------------------------------------

def _keep_alive_connection(server: ServerProcess) -> socket.socket:
    """A connection that had one response and is kept alive, waiting for its next request."""
    sock = connect(server.tcp_address)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    first, = read_responses(sock, ["GET"])
    assert first.headers["connection"].lower() == "keep-alive"
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closed the connection (EOF, or a reset), within 10 s."""
    sock.settimeout(10)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def _connection_fields(data: bytes) -> list[bytes]:
    head = data.split(b"\r\n\r\n")[0].split(b"\r\n")
    return [line for line in head if line.lower().startswith(b"connection:")]


def test_sigint_stops_gracefully_too() -> None:
    with start() as server, _keep_alive_connection(server) as sock:
        server.signal(signal.SIGINT)
        server.wait_for("SIGINT received: stopping", timeout=10)
        assert _closed_by_server(sock)
        assert server.wait(30) == 0
        assert "Stopped" in server.output
        assert "exiting now" not in server.output, "bjoern's simulated SIGINT counted as a second one"


def test_idle_keep_alive_connection_does_not_hold_the_stop() -> None:
    """Fix 8: the stop closes a kept-alive connection waiting for its next request, instead
    of waiting until the client closes it or --graceful-timeout fires."""
    with start("--graceful-timeout", "30") as server, _keep_alive_connection(server) as sock:
        server.signal(signal.SIGTERM)
        assert _closed_by_server(sock)
        assert server.wait(25) == 0
        assert "graceful timeout" not in server.output


def test_stop_closes_idle_keep_alive_connections_and_answers_fresh_ones(app: str) -> None:
    """A connection accepted before the stop that has not sent its request yet is still
    answered, with ``Connection: close`` (core's contract: no other worker can take it);
    the kept-alive ones next to it are closed at once."""
    with start("--graceful-timeout", "30", app=app) as server:
        with connect(server.tcp_address) as fresh:
            idle = [_keep_alive_connection(server) for _ in range(3)]  # accepted after fresh
            try:
                server.signal(signal.SIGTERM)
                assert all(_closed_by_server(sock) for sock in idle)
            finally:
                for sock in idle:
                    sock.close()
            fresh.settimeout(1)
            with pytest.raises(socket.timeout):
                fresh.recv(1)  # still open, waiting for its request
            fresh.settimeout(10)
            fresh.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = receive_until(fresh, b"hello world")
            assert data.startswith(b"HTTP/1.1 200 ")
            fields = _connection_fields(data)
            # fix 11: once; the adapter adds its own, for a bjoern that then says Keep-Alive
            assert fields == [b"Connection: close"] * (1 if app == DIRECT else 2), data
            assert _closed_by_server(fresh)
        assert server.wait(30) == 0
        assert "graceful timeout" not in server.output


def test_request_being_read_at_the_stop_is_answered_then_closed() -> None:
    """A kept-alive connection with part of its next request read is not idle: the request
    is answered (``Connection: close``), then the connection is closed."""
    with start("--graceful-timeout", "30") as server, _keep_alive_connection(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        server.signal(signal.SIGTERM)
        server.wait_for("bjoern stopped accepting", timeout=10)
        sock.settimeout(1)
        with pytest.raises(socket.timeout):
            sock.recv(1)  # left open, waiting for the rest of the request
        sock.sendall(b"\r\n")
        data = receive_until(sock, b"hello world")
        assert data.startswith(b"HTTP/1.1 200 ")
        assert _connection_fields(data) == [b"Connection: close"], data  # fix 11: once
        assert _closed_by_server(sock)
        assert server.wait(30) == 0
        assert "graceful timeout" not in server.output


def test_no_new_connection_is_served_after_the_stop() -> None:
    with start("--graceful-timeout", "30") as server, connect(server.tcp_address) as held:
        assert request(server.tcp_address)[0] == 200  # accepted in order: held was first
        server.signal(signal.SIGTERM)  # held, accepted and silent, keeps the loop running
        server.wait_for("bjoern stopped accepting", timeout=10)
        with socket.create_connection(server.tcp_address, timeout=10) as late:
            late.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            late.settimeout(1)
            with pytest.raises(socket.timeout):
                late.recv(1)  # queued in the listen backlog, never accepted
            held.close()
            assert server.wait(30) == 0
            late.settimeout(10)
            with pytest.raises(ConnectionResetError):
                late.recv(1)  # the backlog went with the listener
