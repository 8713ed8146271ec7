"""What the meinheld backend adds to (or refuses of) core's contract, on real servers."""

from __future__ import annotations

import http.client
import json
import os
import socket
from typing import Any

import pytest

from chaussette.testing.client import (UnixHTTPConnection, connect, raw_exchange, read_responses, request,
                                      tcp_and_unix_listeners)
from helpers import run_chaussette, start


def _info(address: Any) -> dict:
    status, _, body = request(address, path="/info")
    assert status == 200
    return json.loads(body)


# -- options ------------------------------------------------------------------------------

def _status(data: bytes) -> int:
    return int(data.split(b" ", 2)[1])


def _get(target: str = "/", fields: int = 1, value_size: int = 1) -> bytes:
    """A GET with ``fields`` header fields (Host among them), each value ``value_size`` long."""
    lines = [b"Host: " + b"h" * value_size] + [b"X-F%d: " % n + b"v" * value_size
                                                for n in range(1, fields)]
    return b"GET " + target.encode() + b" HTTP/1.1\r\n" + b"\r\n".join(lines) + b"\r\n\r\n"


def _target(size: int) -> str:
    """A request target of ``size`` bytes the test application answers 200."""
    return "/?q=" + "a" * (size - 4)


def test_core_limits() -> None:
    """Our build takes core's limits (recipe fix 12): the request line's bounds the target."""
    args = ("--limit-request-line", "100", "--limit-request-fields", "5", "--limit-request-field-size", "50")
    with start(*args, app="chaussette.testing.apps.app") as server:
        address = server.tcp_address
        assert _status(raw_exchange(address, _get(_target(100)))) == 200
        assert _status(raw_exchange(address, _get(_target(101)))) == 414
        assert _status(raw_exchange(address, _get(fields=5))) == 200
        assert _status(raw_exchange(address, _get(fields=6))) == 431
        assert _status(raw_exchange(address, _get(fields=3, value_size=50))) == 200
        assert _status(raw_exchange(address, _get(fields=3, value_size=51))) == 431


def test_core_limit_defaults() -> None:
    """Core's defaults (8190 bytes, 100 fields), not meinheld's own (8192, 128)."""
    with start(app="chaussette.testing.apps.app") as server:
        address = server.tcp_address
        assert _status(raw_exchange(address, _get(_target(8190)))) == 200
        assert _status(raw_exchange(address, _get(_target(8191)))) == 414
        assert _status(raw_exchange(address, _get(fields=100))) == 200
        assert _status(raw_exchange(address, _get(fields=101))) == 431
        assert _status(raw_exchange(address, _get(value_size=8190))) == 200
        assert _status(raw_exchange(address, _get(value_size=8191))) == 431


def test_keep_alive_beyond_meinheld_timers_is_refused() -> None:
    done = run_chaussette("--backend", "meinheld", "--keep-alive", "300", "--port", "0")
    assert done.returncode == 1
    assert "at most 127" in done.stderr


def test_spawn_is_refused() -> None:
    done = run_chaussette("--backend", "meinheld", "--spawn", "10", "--port", "0")
    assert done.returncode == 1
    assert "--spawn" in done.stderr


def test_max_content_length() -> None:
    with start("--meinheld-max-content-length", "1000", app="chaussette.testing.apps.app") as server:
        assert request(server.tcp_address, "POST", "/echo", body=b"x" * 1000)[0] == 200
        # Only the head: meinheld answers 413 without reading the body and closes, and a
        # body still unread at that moment makes the close a reset that can eat the 413.
        data = raw_exchange(server.tcp_address, b"POST /echo HTTP/1.1\r\nHost: x\r\n"
                                                b"Content-Length: 1001\r\n\r\n")
        assert data.startswith(b"HTTP/1.0 413 ")


def test_bodies_over_the_buffer_size_are_spooled_intact() -> None:
    payload = os.urandom(300_000)
    with start("--meinheld-client-body-buffer-size", "1024", app="chaussette.testing.apps.app") as server:
        status, _, body = request(server.tcp_address, "POST", "/echo", body=payload)
    assert status == 200
    assert json.loads(body)["body"].encode("latin-1") == payload


def test_fd_table_bounds_the_open_files_limit() -> None:
    with start("--meinheld-max-fd", "512") as server:
        assert _info(server.tcp_address)["open_files_soft_limit"] == 512
        assert "Open-files limit lowered" in server.output


# -- keep-alive and logs ------------------------------------------------------------------

def test_keep_alive_is_on_by_default_and_times_out() -> None:
    with start("--keep-alive", "1") as server:
        with connect(server.tcp_address) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            first, = read_responses(sock, ["GET"])
            assert first.headers["connection"].lower() == "keep-alive"
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # same connection
            assert read_responses(sock, ["GET"])[0].body == b"hello world"
            sock.settimeout(10)
            assert sock.recv(1) == b"", "the idle connection must be closed after --keep-alive"


def test_keep_alive_zero_turns_it_off() -> None:
    with start("--keep-alive", "0") as server:
        data = raw_exchange(server.tcp_address, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # until close
    assert data.startswith(b"HTTP/1.1 200") and b"Connection: close\r\n" in data


def test_no_access_log_unless_asked() -> None:
    with start() as server:
        assert request(server.tcp_address)[0] == 200
        assert server.stop() == 0
        assert server.stdout == ""
        assert "GET / " not in server.output
    with start("--access-log", "-") as server:
        conn = http.client.HTTPConnection(*server.tcp_address, timeout=10)
        conn.request("GET", "/", headers={"User-Agent": "probe"})
        assert conn.getresponse().read() == b"hello world"
        conn.close()
        assert server.stop() == 0
        assert '"GET / HTTP/1.1" 200 11' in server.stdout


# -- where it listens, and what the environ says about it ---------------------------------

def test_environ_describes_the_tcp_connection() -> None:
    with start() as server, connect(server.tcp_address) as sock:
        sock.sendall(b"GET /info HTTP/1.1\r\nHost: x\r\n\r\n")
        info = json.loads(read_responses(sock, ["GET"])[0].body)
        assert (info["REMOTE_ADDR"], info["REMOTE_PORT"]) == ("127.0.0.1", str(sock.getsockname()[1]))
        assert (info["SERVER_NAME"], info["SERVER_PORT"]) == ("127.0.0.1", str(server.tcp_address[1]))


def test_each_client_keeps_its_own_address() -> None:
    """Stock meinheld formatted client addresses in inet_ntoa()'s one static buffer: every
    kept-alive client then had the address of the last one accepted (the recipe's fix 9)."""
    with start() as server:
        clients = {ip: socket.create_connection(server.tcp_address, timeout=10, source_address=(ip, 0))
                   for ip in ("127.0.0.2", "127.0.0.3")}
        try:
            for ip in ("127.0.0.2", "127.0.0.3", "127.0.0.2"):
                clients[ip].sendall(b"GET /info HTTP/1.1\r\nHost: x\r\n\r\n")
                info = json.loads(read_responses(clients[ip], ["GET"])[0].body)
                assert (info["REMOTE_ADDR"], info["REMOTE_PORT"]) == (ip, str(clients[ip].getsockname()[1]))
        finally:
            for sock in clients.values():
                sock.close()


def test_ipv6_environ() -> None:
    if not socket.has_ipv6:
        pytest.skip("this machine has no IPv6 loopback")
    with start("--host", "::1", "--port", "0") as server:
        info = _info(server.tcp_address)
    assert (info["REMOTE_ADDR"], info["SERVER_NAME"]) == ("::1", "::1")
    assert info["SERVER_PORT"] == str(server.tcp_address[1])


def test_several_listeners_tcp_and_unix(tmp_path: Any) -> None:
    with tcp_and_unix_listeners(tmp_path) as (tcp, unix, path, fds):
        with start("--fd", str(fds[0]), "--fd", str(fds[1]), pass_fds=fds, count=2) as server:
            assert _info(tcp.getsockname())["REMOTE_ADDR"] == "127.0.0.1"
            # meinheld set TCP_DEFER_ACCEPT on the shared socket; the backend took it off.
            assert tcp.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT) == 0
            conn = UnixHTTPConnection(path)
            conn.request("GET", "/info")
            info = json.loads(conn.getresponse().read())
            conn.close()
            assert (info["REMOTE_ADDR"], info["SERVER_PORT"]) == ("127.0.0.1", "0")
            assert server.stop() == 0
        # Both listeners still belong to this process: meinheld served on duplicates.
        assert tcp.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        assert unix.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1


# -- monkey-patching ----------------------------------------------------------------------

def test_socket_is_patched_before_the_app_is_imported() -> None:
    with start() as server:
        assert _info(server.tcp_address)["socket_module"] == "meinheld.msocket"
    with start("--no-monkey") as server:
        assert _info(server.tcp_address)["socket_module"] == "socket"


# -- responses meinheld alone would frame wrongly on a kept-alive connection --------------

def _two_on_one_connection(server: Any, first: bytes, method: str = "GET") -> tuple[Any, Any]:
    """``first`` then a plain GET on the same connection: the second response is only
    found if the first was framed right."""
    with connect(server.tcp_address) as sock:
        sock.sendall(first + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        return tuple(read_responses(sock, [method, "GET"]))


@pytest.fixture(scope="module")
def server() -> Any:
    with start() as server:
        yield server


def test_head_gets_no_body(server: Any) -> None:
    head, after = _two_on_one_connection(server, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", "HEAD")
    assert head.status == 200 and head.headers["content-length"] == "11"
    assert after.body == b"hello world"


def test_204_gets_no_body(server: Any) -> None:
    # HEAD-style reading: a 204 has no body whatever its headers say.
    empty, after = _two_on_one_connection(server, b"GET /no-content HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (empty.status, empty.headers["x-body"]) == (204, "dropped")
    assert after.body == b"hello world"


@pytest.mark.parametrize("path", ["/redirect", "/lazy-empty"])
def test_empty_body_gets_content_length_zero(server: Any, path: str) -> None:
    empty, after = _two_on_one_connection(server, b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    assert empty.headers["content-length"] == "0" and empty.body == b""
    assert after.body == b"hello world"


def test_empty_chunks_do_not_end_the_body(server: Any) -> None:
    chunked, after = _two_on_one_connection(server, b"GET /empty-first HTTP/1.1\r\nHost: x\r\n\r\n")
    assert chunked.headers["transfer-encoding"] == "chunked" and chunked.body == b"abcdef"
    assert after.body == b"hello world"


def test_write_callable(server: Any) -> None:
    assert request(server.tcp_address, path="/write")[2] == b"written, then returned"


def test_http10_keep_alive_gets_a_content_length(server: Any) -> None:
    first, after = _two_on_one_connection(
        server, b"GET /empty-first HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
    assert first.headers["content-length"] == "6" and first.body == b"abcdef"
    assert after.body == b"hello world"


#: picoev (in meinheld) adds fds to epoll with EPOLLEXCLUSIVE and, deleting lazily, re-adds
#: them with EPOLL_CTL_MOD, which the kernel refuses for such fds: after a wait to write, a
#: connection kept watching for writability only. Fixed by the build recipe (its fix 8).
BIG = 8 << 20


def _slow_reader(server: Any) -> socket.socket:
    """A client whose tiny receive buffer makes the server wait to write a big response."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(server.tcp_address)
    return sock


def test_next_request_after_a_response_that_waited_to_be_written(server: Any) -> None:
    with _slow_reader(server) as sock:
        sock.sendall(b"GET /big?size=%d HTTP/1.1\r\nHost: x\r\n\r\n" % BIG)
        big, = read_responses(sock, ["GET"])
        assert len(big.body) == BIG
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_responses(sock, ["GET"])[0].body == b"hello world"


def test_upload_in_several_reads_then_a_response_that_waits(server: Any) -> None:
    body = b"x" * (4 << 20)
    with _slow_reader(server) as sock:
        sock.sendall(b"POST /big?size=%d HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                     % (BIG, len(body)) + body)
        assert len(read_responses(sock, ["POST"])[0].body) == BIG


def test_header_with_cr_is_a_500_not_a_split_response(server: Any) -> None:
    data = raw_exchange(server.tcp_address, b"GET /bad-header HTTP/1.1\r\nHost: x\r\n\r\n")
    assert data.startswith(b"HTTP/1.0 500") and b"Injected" not in data
    server.wait_for("invalid response header", timeout=10)
