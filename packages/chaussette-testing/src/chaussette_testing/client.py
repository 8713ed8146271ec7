"""Minimal real clients: raw bytes over a socket, and http.client over TCP or unix."""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

TIMEOUT = 10.0


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = TIMEOUT) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def connect(address: Any, timeout: float = TIMEOUT) -> socket.socket:
    """``address``: (host, port) or a unix socket path."""
    if isinstance(address, str):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    else:
        sock = socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(address)
    return sock


def ipv6_loopback() -> bool:
    """Whether ``::1`` can be bound here. ``socket.has_ipv6`` only says how Python was
    built: a container without an IPv6 loopback address has it true all the same."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def raw_exchange(address: Any, data: bytes, timeout: float = TIMEOUT, until_close: bool = True) -> bytes:
    """Send raw bytes and return everything received until the server closes (or
    until ``timeout`` with ``until_close=False``: for connections kept alive)."""
    with connect(address, timeout) as sock:
        sock.sendall(data)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                if until_close:
                    raise
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if not until_close:
                sock.settimeout(0.5)
        return b"".join(chunks)


def request(address: Any, method: str = "GET", path: str = "/", body: Any = None,
            headers: dict | None = None, timeout: float = TIMEOUT) -> tuple[int, dict, bytes]:
    """One request on a fresh connection: (status, lower-cased headers, body)."""
    if isinstance(address, str):
        conn: http.client.HTTPConnection = UnixHTTPConnection(address, timeout)
    else:
        conn = http.client.HTTPConnection(address[0], address[1], timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


class Response:
    def __init__(self, status: int, headers: dict, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body


def read_response(stream: Any, method: str = "GET") -> Response:
    """Parse one response from a buffered reader, leaving the next one in place: what
    http.client cannot do for pipelined responses. Headers are lower-cased."""
    status_line = stream.readline()
    if not status_line:
        raise ConnectionError("connection closed before a response")
    status = int(status_line.split()[1])
    headers: dict = {}
    for line in iter(stream.readline, b"\r\n"):
        if not line:
            raise ConnectionError("connection closed inside the header section")
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return Response(status, headers, b"")
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks: list[bytes] = []
        while True:
            size = int(stream.readline().split(b";")[0], 16)
            if size == 0:
                for line in iter(stream.readline, b"\r\n"):
                    if not line:
                        break
                return Response(status, headers, b"".join(chunks))
            chunks.append(stream.read(size))
            stream.readline()
    if "content-length" in headers:
        return Response(status, headers, stream.read(int(headers["content-length"])))
    return Response(status, headers, stream.read())


def read_responses(sock: socket.socket, methods: list) -> list:
    """Read one response per entry of ``methods`` from a connection, in order."""
    stream = sock.makefile("rb")
    try:
        return [read_response(stream, method) for method in methods]
    finally:
        stream.close()


@contextlib.contextmanager
def tcp_and_unix_listeners(directory: Path) -> Iterator[tuple[socket.socket, socket.socket, str, list[int]]]:
    """A TCP listener on 127.0.0.1 and a unix one in ``directory``, as a process manager
    would hand them to a server: yields both sockets, the unix path and both fds (for
    ``--fd`` and ``pass_fds``). Both are closed, and the socket file removed, afterwards."""
    path = str(directory / "second.sock")
    with socket.socket() as tcp, socket.socket(socket.AF_UNIX) as unix:
        tcp.bind(("127.0.0.1", 0))
        tcp.listen(16)
        unix.bind(path)
        unix.listen(16)
        try:
            yield tcp, unix, path, [tcp.fileno(), unix.fileno()]
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


class Concurrently:
    """``count`` calls of ``call`` in threads at once; ``outcomes()`` gives what each
    returned, or the exception it raised, once all have ended."""

    def __init__(self, count: int, call: Callable[[], Any]) -> None:
        self.results: list[Any] = []
        self._lock = threading.Lock()
        self._call = call
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(count)]
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        try:
            outcome = self._call()
        except Exception as exc:  # recorded for the caller's assertion
            outcome = exc
        with self._lock:
            self.results.append(outcome)

    def outcomes(self, timeout: float = 40) -> list[Any]:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            return list(self.results)


def receive_until(sock: socket.socket, suffix: bytes) -> bytes:
    """Everything ``sock`` sends up to and including ``suffix`` at the end of what was read:
    the responses a test sent several requests for, up to the last one's known body."""
    data = b""
    while not data.endswith(suffix):
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before {suffix!r}: {data[-300:]!r}"
        data += chunk
    return data
