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

from chaussette.testing.client import (UnixHTTPConnection, connect, read_responses, receive_until, request,
                                      tcp_and_unix_listeners)
from chaussette.testing.process import ServerProcess, start_server

HERE = Path(__file__).resolve().parent


def start(*args: str, app: str = "bjoern_apps.app", **kwargs: Any) -> ServerProcess:
    """A bjoern server of ``bjoern_apps`` (or ``app``), on a free port unless told."""
    where = () if any(arg in ("--host", "--fd") for arg in args) else ("--host", "127.0.0.1", "--port", "0")
    return start_server("--backend", "bjoern", "--python-path", str(HERE), *where, *args, app, **kwargs)


def run_chaussette(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chaussette", "--backend", "bjoern", *args],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)


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
    assert "serves a single socket and was given 2" in line


# -- environ ------------------------------------------------------------------------------

def test_environ_describes_the_tcp_listener() -> None:
    with start() as server:
        info = _info(server.tcp_address)
    assert info["REMOTE_ADDR"] == "127.0.0.1"
    assert (info["SERVER_NAME"], info["SERVER_PORT"]) == ("127.0.0.1", str(server.tcp_address[1]))


def test_ipv6_listener_address() -> None:
    if not socket.has_ipv6:
        pytest.skip("this machine has no IPv6 loopback")
    with start("--host", "::1", "--port", "0") as server:
        info = _info(server.tcp_address)
    assert (info["SERVER_NAME"], info["SERVER_PORT"]) == ("::1", str(server.tcp_address[1]))


@pytest.mark.xfail(strict=True, reason="bjoern reads client addresses as IPv4: an IPv6 client's "
                   "REMOTE_ADDR is 0.0.0.0")
def test_ipv6_client_address() -> None:
    if not socket.has_ipv6:
        pytest.skip("this machine has no IPv6 loopback")
    with start("--host", "::1", "--port", "0") as server:
        assert _info(server.tcp_address)["REMOTE_ADDR"] == "::1"


def test_unix_socket_clients_get_sane_addresses(tmp_path: Path) -> None:
    path = str(tmp_path / "web.sock")
    with start("--host", f"unix:{path}") as server:
        conn = UnixHTTPConnection(path)
        conn.request("GET", "/info")
        info = json.loads(conn.getresponse().read())
        conn.close()
        assert server.stop() == 0
    assert (info["REMOTE_ADDR"], info["SERVER_NAME"], info["SERVER_PORT"]) == ("127.0.0.1", "localhost", "0")


# -- responses ----------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "length"), [("/", "11"), ("/generated", "7")])
def test_head_gets_the_get_length_and_no_body(path: str, length: str) -> None:
    """bjoern sends a HEAD response's body (and, without a Content-Length, a chunked
    last-chunk marker); the next response on the connection is only found if none was sent."""
    with start() as server, connect(server.tcp_address) as sock:
        sock.sendall(b"HEAD %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
        head, = read_responses(sock, ["HEAD"])
        assert head.status == 200 and head.headers["content-length"] == length
        assert "transfer-encoding" not in head.headers
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_responses(sock, ["GET"])[0].body == b"hello world"


# -- logs ---------------------------------------------------------------------------------

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
    with start(app="chaussette.testing.apps.app") as server:
        assert request(server.tcp_address, path="/error")[0] == 500
        server.wait_for(r"\[ERROR\] error while serving a request", timeout=10)
        server.wait_for("secret-detail-in-exception", timeout=10)


def test_system_exit_in_the_application_is_a_500() -> None:
    with start() as server:
        assert request(server.tcp_address, path="/exit")[0] == 500
        assert request(server.tcp_address)[2] == b"hello world"
        server.wait_for(r"the application raised SystemExit\(3\)", timeout=10)
        assert server.stop() == 0


# -- stopping -----------------------------------------------------------------------------

def _closing_response(sock: socket.socket) -> bytes:
    """A request on a kept-alive connection after the stop: the response tells the client
    to close, before the ``Connection: Keep-Alive`` bjoern adds anyway."""
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    data = receive_until(sock, b"hello world")
    head = data.split(b"\r\n\r\n")[0].split(b"\r\n")
    connection = [line for line in head if line.lower().startswith(b"connection:")]
    assert connection == [b"Connection: close", b"Connection: Keep-Alive"], head
    return data


def test_sigint_stops_gracefully_too() -> None:
    with start() as server:
        with connect(server.tcp_address) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            first, = read_responses(sock, ["GET"])
            assert first.headers["connection"].lower() == "keep-alive"
            server.signal(signal.SIGINT)
            server.wait_for("SIGINT received: stopping", timeout=10)
            server.wait_for("bjoern stopped accepting", timeout=10)
            _closing_response(sock)
        assert server.wait(30) == 0
        assert "Stopped" in server.output
        assert "exiting now" not in server.output, "bjoern's simulated SIGINT counted as a second one"


def test_idle_keep_alive_connection_holds_the_stop_until_it_closes() -> None:
    """bjoern's shutdown waits for every connection; a kept-alive client is told to close
    on its next request, and the process ends once it has."""
    with start("--graceful-timeout", "30") as server:
        with connect(server.tcp_address) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            read_responses(sock, ["GET"])
            server.signal(signal.SIGTERM)
            server.wait_for("bjoern stopped accepting", timeout=10)
            with pytest.raises(subprocess.TimeoutExpired):
                server.wait(1)
            _closing_response(sock)
        assert server.wait(30) == 0
        assert "graceful timeout" not in server.output


def test_no_new_connection_is_served_after_the_stop() -> None:
    with start("--graceful-timeout", "30") as server, connect(server.tcp_address) as held:
        held.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        read_responses(held, ["GET"])
        server.signal(signal.SIGTERM)
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
