"""What the meinheld backend adds to (or refuses of) core's contract, on real servers."""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
from typing import Any

import pytest
from helpers import Gate, run_chaussette, start
from meinheld_apps import UNSAFE_RESPONSES

from chaussette_testing.client import (
    UnixHTTPConnection,
    connect,
    ipv6_loopback,
    raw_exchange,
    read_responses,
    request,
    tcp_and_unix_listeners,
)


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
    with start(*args, app="chaussette_testing.apps.app") as server:
        address = server.tcp_address
        assert _status(raw_exchange(address, _get(_target(100)))) == 200
        assert _status(raw_exchange(address, _get(_target(101)))) == 414
        assert _status(raw_exchange(address, _get(fields=5))) == 200
        assert _status(raw_exchange(address, _get(fields=6))) == 431
        assert _status(raw_exchange(address, _get(fields=3, value_size=50))) == 200
        assert _status(raw_exchange(address, _get(fields=3, value_size=51))) == 431


def test_core_limit_defaults() -> None:
    """Core's defaults (8190 bytes, 100 fields), not meinheld's own (8192, 128)."""
    with start(app="chaussette_testing.apps.app") as server:
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
    with start("--meinheld-max-content-length", "1000", app="chaussette_testing.apps.app") as server:
        assert request(server.tcp_address, "POST", "/echo", body=b"x" * 1000)[0] == 200
        # Only the head: meinheld answers 413 without reading the body and closes, and a
        # body still unread at that moment makes the close a reset that can eat the 413.
        data = raw_exchange(server.tcp_address, b"POST /echo HTTP/1.1\r\nHost: x\r\n"
                                                b"Content-Length: 1001\r\n\r\n")
        assert data.startswith(b"HTTP/1.0 413 ")


def test_bodies_over_the_buffer_size_are_spooled_intact() -> None:
    payload = os.urandom(300_000)
    with start("--meinheld-client-body-buffer-size", "1024", app="chaussette_testing.apps.app") as server:
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


def test_a_wildcard_listener_gives_each_connection_its_own_local_address() -> None:
    """Bound to 0.0.0.0, the listener has no one address: each connection is asked its
    own, once, and keeps it for its kept-alive requests."""
    with start("--host", "0.0.0.0", "--port", "0") as server:
        port = server.tcp_address[1]
        for ip in ("127.0.0.1", "127.0.0.2"):
            with connect((ip, port)) as sock:
                for _ in range(2):
                    sock.sendall(b"GET /info HTTP/1.1\r\nHost: x\r\n\r\n")
                    info = json.loads(read_responses(sock, ["GET"])[0].body)
                    assert (info["SERVER_NAME"], info["SERVER_PORT"]) == (ip, str(port))


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
    if not ipv6_loopback():
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
            assert (info["REMOTE_ADDR"], info["REMOTE_PORT"]) == ("127.0.0.1", "")
            assert (info["SERVER_NAME"], info["SERVER_PORT"]) == ("localhost", "0")
            tcp_info = _info(tcp.getsockname())
            assert (tcp_info["SERVER_NAME"], tcp_info["SERVER_PORT"]) == ("127.0.0.1", str(tcp.getsockname()[1]))
            assert server.stop() == 0
        # Both listeners still belong to this process: meinheld served on duplicates.
        assert tcp.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        assert unix.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1


# -- monkey-patching ----------------------------------------------------------------------

def test_socket_and_sleep_are_patched_before_the_app_is_imported() -> None:
    with start() as server:
        info = _info(server.tcp_address)
        assert (info["socket_module"], info["sleep_module"]) == ("meinheld.msocket", "chaussette_meinheld.sleep")
    with start("--no-monkey") as server:
        info = _info(server.tcp_address)
        assert (info["socket_module"], info["sleep_module"]) == ("socket", "time")


def test_a_sleeping_request_lets_others_be_served(tmp_path: Any) -> None:
    """The patched ``time.sleep`` waits on meinheld's loop (build fix 19): a request that
    sleeps until the test says so does not stop the server from answering another one."""
    flag = tmp_path / "wake"
    with start() as server, connect(server.tcp_address) as sleeper:
        sleeper.sendall(b"GET /nap?flag=%s HTTP/1.1\r\nHost: x\r\n\r\n" % str(flag).encode())
        server.wait_for("napping")
        assert _info(server.tcp_address)["sleep_module"] == "chaussette_meinheld.sleep"
        assert _greenlet(server.tcp_address)["leaked"] == "unset"
        flag.touch()
        assert read_responses(sleeper, ["GET"])[0].body == b"woke"


def test_sleep_off_the_loop_blocks_and_bad_lengths_are_time_sleeps_errors() -> None:
    with start() as server:
        assert request(server.tcp_address, path="/nap-in-thread")[2] == b"slept in a thread"
        assert request(server.tcp_address, path="/nap?flag=/&step=-1")[0] == 500
        server.wait_for("sleep length must be non-negative")


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


def test_head_of_a_lazy_generator_gets_its_headers_and_no_body(server: Any) -> None:
    head, after = _two_on_one_connection(server, b"HEAD /lazy-hello HTTP/1.1\r\nHost: x\r\n\r\n", "HEAD")
    assert head.status == 200 and head.headers["content-type"] == "text/plain"
    assert "content-length" not in head.headers and "transfer-encoding" not in head.headers
    assert after.body == b"hello world"


@pytest.mark.parametrize("status", [204, 304])
def test_bodyless_status_gets_no_body(server: Any, status: int) -> None:
    # HEAD-style reading: such a response has no body whatever its headers say.
    empty, after = _two_on_one_connection(server, b"GET /no-body?status=%d HTTP/1.1\r\nHost: x\r\n\r\n"
                                          % status, "HEAD")
    assert (empty.status, empty.headers["x-body"]) == (status, "dropped")
    assert "content-length" not in empty.headers
    assert after.body == b"hello world"


def test_informational_status_gets_no_body(server: Any) -> None:
    data = raw_exchange(server.tcp_address, b"GET /no-body?status=100 HTTP/1.1\r\nHost: x\r\n"
                                            b"Connection: close\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 100 Whatever\r\n") and data.endswith(b"\r\n\r\n")
    assert b"must not be sent" not in data


@pytest.mark.parametrize("path", ["/redirect", "/lazy-empty"])
def test_empty_body_gets_content_length_zero(server: Any, path: str) -> None:
    empty, after = _two_on_one_connection(server, b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    assert empty.headers["content-length"] == "0" and empty.body == b""
    assert after.body == b"hello world"


def test_empty_chunks_do_not_end_the_body(server: Any) -> None:
    """The generator's first chunk is empty, and so is one in the middle: each would have
    been chunked encoding's last-chunk marker. Raw bytes, to see every chunk."""
    data = raw_exchange(server.tcp_address, b"GET /empty-first HTTP/1.1\r\nHost: x\r\n"
                                            b"Connection: close\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert body == b"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n"
    chunked, after = _two_on_one_connection(server, b"GET /empty-first HTTP/1.1\r\nHost: x\r\n\r\n")
    assert chunked.body == b"abcdef" and after.body == b"hello world"


def test_written_data_comes_before_the_iterable(server: Any) -> None:
    written, after = _two_on_one_connection(server, b"GET /write HTTP/1.1\r\nHost: x\r\n\r\n")
    assert written.body == b"written, then returned"
    assert after.body == b"hello world"


def test_write_once_the_response_started_is_refused(server: Any) -> None:
    data = raw_exchange(server.tcp_address, b"GET /write-late HTTP/1.1\r\nHost: x\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200") and b"started" in data and b"too late" not in data
    server.wait_for(re.escape("write() called after the response started"), timeout=10)


def test_http10_keep_alive_body_of_unknown_length_closes_the_connection(server: Any) -> None:
    """HTTP/1.0 has no chunked encoding: closing is the only end such a body can have, so
    the connection is closed after it (like gunicorn and waitress), whatever the client
    asked. The request pipelined behind it is not answered: its response would be read as
    part of the body."""
    data = raw_exchange(server.tcp_address, b"GET /empty-first HTTP/1.0\r\nHost: x\r\n"
                                            b"Connection: keep-alive\r\n\r\n"
                                            b"GET / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    fields = head.split(b"\r\n")
    assert fields[0] == b"HTTP/1.0 200 OK" and b"Connection: close" in fields
    assert b"Content-Length" not in head and b"Transfer-Encoding" not in head
    assert body == b"abcdef"


def test_http10_keep_alive_with_a_length_stays_open(server: Any) -> None:
    with connect(server.tcp_address) as sock:
        sock.sendall(b"GET /redirect HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                     b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        empty, after = read_responses(sock, ["GET", "GET"])
    assert (empty.status, empty.headers["content-length"]) == (302, "0")
    assert after.body == b"hello world"


def test_exc_info_replaces_the_response_not_yet_sent(server: Any) -> None:
    replaced, after = _two_on_one_connection(server, b"GET /exc-info HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (replaced.status, replaced.body) == (503, b"replaced")
    assert "x-first" not in replaced.headers
    assert after.body == b"hello world"


def test_exc_info_once_sent_reraises_and_closes(server: Any) -> None:
    data = raw_exchange(server.tcp_address, b"GET /exc-info-late HTTP/1.1\r\nHost: x\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200") and b"partial" in data
    assert b"never sent" not in data and b"HTTP/1.0 500" not in data
    server.wait_for("late-error-reraised", timeout=10)


@pytest.mark.parametrize(("path", "logged"), [
    ("/twice", "start_response called a second time without exc_info"),
    ("/no-start-response", "the application returned without calling start_response"),
])
def test_start_response_misuse_is_a_500(server: Any, path: str, logged: str) -> None:
    data = raw_exchange(server.tcp_address, b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    assert data.startswith(b"HTTP/1.0 500") and b"never sent" not in data
    server.wait_for(re.escape(logged), timeout=10)


@pytest.mark.parametrize("kind", sorted(UNSAFE_RESPONSES))
def test_unsafe_status_or_header_is_a_500_not_a_split_response(server: Any, kind: str) -> None:
    data = raw_exchange(server.tcp_address, b"GET /bad-response?kind=%s HTTP/1.1\r\nHost: x\r\n\r\n"
                        % kind.encode())
    assert data.startswith(b"HTTP/1.0 500") and b"Injected" not in data and b"never sent" not in data
    assert request(server.tcp_address)[0] == 200, "the server must keep serving"


def test_unsafe_header_is_logged(server: Any) -> None:
    raw_exchange(server.tcp_address, b"GET /bad-response?kind=nul HTTP/1.1\r\nHost: x\r\n\r\n")
    server.wait_for(re.escape("invalid response header 'X-Split': 'a\\x00Injected: yes'"), timeout=10)


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


# -- request greenlets, kept for the next request (build fix 18) --------------------------

def _greenlet(address: Any) -> dict:
    status, _, body = request(address, path="/greenlet")
    assert status == 200
    return json.loads(body)


def test_one_greenlet_serves_request_after_request_each_in_a_fresh_context() -> None:
    """A greenlet per request cost an mmap and a munmap each (its frame stack): the build
    keeps them, and gives each request the empty context a new greenlet would have."""
    with start() as server:
        seen = [_greenlet(server.tcp_address) for _ in range(4)]
        assert [info["served"] for info in seen] == [1, 2, 3, 4]
        assert {info["leaked"] for info in seen} == {"unset"}
        assert server.stop() == 0
        assert "Traceback" not in server.output and "GreenletExit" not in server.output


def test_greenlets_that_waited_go_back_to_whoever_resumed_them() -> None:
    """Pipelined requests run one inside another's greenlet; the second waits (a patched
    socket) after the first's greenlet has gone back to the pool and served someone else.
    Resumed by the loop, it must come back to the loop, not to that greenlet."""
    with Gate() as first, Gate() as second, start() as server, connect(server.tcp_address) as sock:
        sock.sendall(b"GET /gate?port=%d HTTP/1.1\r\nHost: x\r\n\r\n" % first.port
                     + b"GET /gate?port=%d HTTP/1.1\r\nHost: x\r\n\r\n" % second.port
                     + b"GET /greenlet HTTP/1.1\r\nHost: x\r\n\r\n")
        first.wait_for(1)
        first.release()
        second.wait_for(1)
        meanwhile = [_greenlet(server.tcp_address) for _ in range(3)]
        assert [info["leaked"] for info in meanwhile] == ["unset"] * 3
        second.release()
        responses = read_responses(sock, ["GET", "GET", "GET"])
        assert [response.body for response in responses[:2]] == [b"released", b"released"]
        assert json.loads(responses[2].body)["leaked"] == "unset"
        assert _greenlet(server.tcp_address)["leaked"] == "unset"
        assert server.stop() == 0
        assert "Traceback" not in server.output and "GreenletExit" not in server.output
