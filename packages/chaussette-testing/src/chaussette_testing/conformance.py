"""The behaviour every backend must show, run by each backend package against itself.

Subclass ``ConformanceSuite`` in a backend's tests with ``backend = "name"``; pytest
collects the inherited tests. Everything runs a real ``chaussette`` process on real
sockets and talks to it with real clients.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import socket
import threading
from typing import Any, ClassVar, Sequence

import pytest

from chaussette_testing.apps import STOP_REASON
from chaussette_testing.client import UnixHTTPConnection, connect, ipv6_loopback, raw_exchange, read_responses, request
from chaussette_testing.process import ServerProcess, start_server

APP = "chaussette_testing.apps.app"


class ConformanceSuite:
    backend: ClassVar[str] = "wsgiref"
    #: Extra arguments every server of this suite gets (backend options).
    server_args: ClassVar[Sequence[str]] = ()

    @classmethod
    def start(cls, *args: str, app: str = APP, **kwargs: Any) -> ServerProcess:
        return start_server("--backend", cls.backend, *cls.server_args, *args, app, **kwargs)

    @pytest.fixture(scope="class")
    @classmethod
    def server(cls) -> Any:
        with cls.start("--host", "127.0.0.1", "--port", "0") as server:
            yield server

    # -- requests and responses ------------------------------------------------------------

    def test_hello_world(self, server: ServerProcess) -> None:
        status, headers, body = request(server.tcp_address)
        assert (status, body) == (200, b"hello world")
        assert f"Using '{self.backend}' as a backend" in server.output

    def test_content_length_body(self, server: ServerProcess) -> None:
        payload = os.urandom(256 * 1024)
        status, _, body = request(server.tcp_address, "POST", "/echo", body=payload,
                                  headers={"Content-Type": "application/octet-stream"})
        info = json.loads(body)
        assert status == 200
        assert info["body_length"] == len(payload)
        assert hashlib.sha256(info["body"].encode("latin-1")).digest() == hashlib.sha256(payload).digest()

    def test_chunked_body(self, server: ServerProcess) -> None:
        conn = http.client.HTTPConnection(*server.tcp_address, timeout=10)
        try:
            conn.request("POST", "/echo", body=iter([b"hello ", b"chunked ", b"world"]),
                         encode_chunked=True, headers={"Transfer-Encoding": "chunked"})
            response = conn.getresponse()
            info = json.loads(response.read())
        finally:
            conn.close()
        assert response.status == 200
        assert info["body"] == "hello chunked world"

    def test_streaming_response(self, server: ServerProcess, tmp_path: Any) -> None:
        gate = tmp_path / "gate"
        conn = http.client.HTTPConnection(*server.tcp_address, timeout=10)
        try:
            conn.request("GET", f"/stream?gate={gate}")
            response = conn.getresponse()
            assert response.status == 200
            # The first chunk must arrive while the app is still blocked on the gate.
            assert response.readline() == b"first\n"
            gate.touch()
            assert response.read() == b"chunk 0\nchunk 1\nchunk 2\nlast\n"
        finally:
            conn.close()

    def test_head_has_no_body(self, server: ServerProcess) -> None:
        with connect(server.tcp_address) as sock:
            sock.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
            head, get = read_responses(sock, ["HEAD", "GET"])
        assert head.status == 200 and head.body == b""
        assert get.body == b"hello world"

    def test_keep_alive(self, server: ServerProcess) -> None:
        conn = http.client.HTTPConnection(*server.tcp_address, timeout=10)
        try:
            ports = set()
            for number in range(5):
                conn.request("POST", "/echo", body=b"x" * number)
                response = conn.getresponse()
                info = json.loads(response.read())
                assert info["body_length"] == number
                ports.add(info["remote_port"])
                assert not response.will_close
        finally:
            conn.close()
        assert len(ports) == 1, "every request should reuse the one connection"

    def test_pipelining(self, server: ServerProcess) -> None:
        requests = b"".join(b"GET /echo?n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % n for n in range(4))
        with connect(server.tcp_address) as sock:
            sock.sendall(requests)
            responses = read_responses(sock, ["GET"] * 4)
        assert [json.loads(r.body)["query"] for r in responses] == [f"n={n}" for n in range(4)]

    def test_app_exception_gives_500_and_server_lives(self, server: ServerProcess) -> None:
        status, _, body = request(server.tcp_address, path="/error")
        assert status == 500
        assert b"secret-detail" not in body and b"Traceback" not in body
        assert request(server.tcp_address)[0] == 200
        server.wait_for("secret-detail-in-exception", timeout=10)  # logged, not shown

    def test_exception_after_start_closes_connection(self, server: ServerProcess) -> None:
        data = raw_exchange(server.tcp_address, b"GET /error-midstream HTTP/1.1\r\nHost: x\r\n\r\n")
        assert data.startswith(b"HTTP/1.1 200") and b"partial" in data
        assert b"secret-detail" not in data
        assert request(server.tcp_address)[0] == 200

    # -- where it listens ------------------------------------------------------------------

    def test_ipv6(self) -> None:
        if not ipv6_loopback():
            pytest.skip("this machine cannot bind ::1 (no IPv6 loopback)")
        with self.start("--host", "::1", "--port", "0") as server:
            assert server.tcp_address[0] == "::1"
            assert request(server.tcp_address)[0] == 200

    def test_unix_socket(self, tmp_path: Any) -> None:
        path = str(tmp_path / "web.sock")
        with self.start("--host", f"unix:{path}") as server:
            conn = UnixHTTPConnection(path)
            conn.request("POST", "/echo", body=b"over unix")
            info = json.loads(conn.getresponse().read())
            conn.close()
            assert info["body"] == "over unix"
            assert info["remote_addr"] == "127.0.0.1", "REMOTE_ADDR on unix sockets is the loopback's"
            assert server.stop() == 0
        assert not os.path.exists(path), "the socket file must be removed at exit"

    def test_inherited_tcp_fd(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen(128)
            fd = sock.fileno()
            with self.start("--fd", str(fd), pass_fds=[fd]) as server:
                assert f"Serving on fd://{fd}" in server.output
                assert request(sock.getsockname())[1]["content-length"] == "11"
                assert server.stop() == 0

    def test_inherited_unix_fd(self, tmp_path: Any) -> None:
        path = str(tmp_path / "inherited.sock")
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(path)
            sock.listen(128)
            fd = sock.fileno()
            with self.start("--fd", str(fd), pass_fds=[fd]) as server:
                conn = UnixHTTPConnection(path)
                conn.request("GET", "/")
                assert conn.getresponse().read() == b"hello world"
                conn.close()
                assert server.stop() == 0
            assert os.path.exists(path), "an inherited socket's file belongs to the parent"
        os.unlink(path)

    # -- stopping --------------------------------------------------------------------------

    def _in_flight(self, server: ServerProcess, seconds: float) -> tuple[threading.Thread, dict]:
        result: dict = {}

        def call() -> None:
            try:
                result["response"] = request(server.tcp_address, path=f"/slow?seconds={seconds}", timeout=60)
            except Exception as exc:  # recorded for the assertion in the test
                result["error"] = exc

        thread = threading.Thread(target=call, daemon=True)
        thread.start()
        server.wait_for(r"slow request started", timeout=15)
        return thread, result

    def test_sigterm_finishes_in_flight_requests(self) -> None:
        with self.start("--host", "127.0.0.1", "--port", "0", "--graceful-timeout", "20") as server:
            address = server.tcp_address
            thread, result = self._in_flight(server, 1.5)
            server.signal(signal.SIGTERM)
            server.wait_for("stopping", timeout=10)
            thread.join(30)
            assert result.get("response", (None,))[0] == 200, result
            assert server.wait(30) == 0
            with pytest.raises(OSError):
                connect(address, timeout=2).close()

    def test_stop_answers_a_connection_accepted_before_it(self) -> None:
        """Under a process manager no other worker can take a connection this one accepted."""
        with self.start("--host", "127.0.0.1", "--port", "0", "--graceful-timeout", "20") as server:
            with connect(server.tcp_address) as sock:
                assert request(server.tcp_address)[0] == 200  # accepted in order: sock was first
                server.signal(signal.SIGTERM)
                server.wait_for("stopping", timeout=10)
                sock.settimeout(1)
                with pytest.raises(socket.timeout):
                    sock.recv(1)  # still open, waiting for its request
                sock.settimeout(10)
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                data = sock.recv(65536)
            assert data.startswith(b"HTTP/1.1 200") and b"Connection: close" in data
            assert server.wait(30) == 0

    def test_stop_requested_by_the_app_finishes_in_flight_requests(self) -> None:
        """A stop asked for from inside (a request thread or greenlet) takes the path of a
        manager's SIGTERM: the asking request and the others in flight are answered."""
        with self.start("--host", "127.0.0.1", "--port", "0", "--graceful-timeout", "20") as server:
            thread, result = self._in_flight(server, 1.5)
            status, _, body = request(server.tcp_address, path="/stop-me")
            assert (status, body) == (200, b"stop requested\n")
            server.wait_for(f"{STOP_REASON}: stopping", timeout=10)
            thread.join(30)
            assert result.get("response", (None,))[0] == 200, result
            assert server.wait(30) == 0

    def test_graceful_timeout_bounds_the_stop(self) -> None:
        with self.start("--host", "127.0.0.1", "--port", "0", "--graceful-timeout", "1") as server:
            thread, result = self._in_flight(server, 60)
            server.signal(signal.SIGTERM)
            assert server.wait(20) == 0
            assert "graceful timeout" in server.output
            thread.join(10)
            assert list(result) == ["error"], "the request in flight ends with the process, unanswered"

    def test_second_signal_exits_at_once(self) -> None:
        with self.start("--host", "127.0.0.1", "--port", "0", "--graceful-timeout", "120") as server:
            thread, _ = self._in_flight(server, 60)
            server.signal(signal.SIGTERM)
            server.wait_for("stopping", timeout=10)
            server.signal(signal.SIGINT)
            assert server.wait(20) == 1
            assert "exiting now" in server.output
            thread.join(10)
