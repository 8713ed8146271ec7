"""The default backend: a threaded HTTP/1.1 WSGI server using only the standard library.

The stdlib's own ``wsgiref.simple_server`` speaks HTTP/1.0 only (no keep-alive, no
chunked request bodies), serves one request at a time and parses headers leniently, so
this backend keeps the name for 1.3 compatibility but brings its own small server:
one thread per connection, strict framing from ``chaussette.framing``, keep-alive,
pipelining, chunked bodies both ways, and a graceful stop that drains in-flight requests.
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import sys
import tempfile
import threading
import time
from email.utils import formatdate
from typing import Any, Callable, Iterable, Sequence
from urllib.parse import unquote_to_bytes
from wsgiref.util import FileWrapper

from chaussette.backends import Backend, Capabilities
from chaussette.framing import HTTPError, Limits, RequestHead, body_framing, check_host, dechunk, read_head
from chaussette.lifecycle import Lifecycle
from chaussette.sockets import Listener

IO_TIMEOUT = 60.0  # per read/write once a request has started
DRAIN_LIMIT = 1 << 16  # unread request body we still read to keep the connection alive
UNIX_REMOTE_ADDR = "127.0.0.1"  # AF_UNIX peers have no address; apps expect an IP here
#: The connection part of the environ of a request on a unix socket, for backends whose
#: library fills it in itself (wrongly): AF_UNIX has no IP address or port to give.
UNIX_ENVIRON = {"REMOTE_ADDR": UNIX_REMOTE_ADDR, "REMOTE_PORT": "", "SERVER_NAME": "localhost",
                "SERVER_PORT": "0"}
BODYLESS_STATUSES = frozenset((204, 304))


class WsgirefBackend(Backend):
    name = "wsgiref"
    summary = "threaded HTTP/1.1 server from the standard library only"
    capabilities = Capabilities(unix_sockets=True, graceful_stop=True)

    def serve(self, app: Callable[..., Any], listeners: Sequence[Listener], lifecycle: Lifecycle) -> None:
        server = ThreadedServer(app, listeners, self)
        lifecycle.install(server.stop)
        server.run()


class ThreadedServer:
    def __init__(self, app: Callable[..., Any], listeners: Sequence[Listener], backend: Backend) -> None:
        config = backend.config
        self.app = app
        self.listeners = listeners
        self.log = backend.log
        self.keep_alive = config.keep_alive
        self.limits = Limits(config.limit_request_line, config.limit_request_fields,
                             config.limit_request_field_size)
        self.stopping = False
        self.lock = threading.Lock()
        self.connections: set[Connection] = set()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    def run(self) -> None:
        selector = selectors.DefaultSelector()
        for listener in self.listeners:
            listener.sock.setblocking(False)
            selector.register(listener.sock, selectors.EVENT_READ, listener)
        selector.register(self._wake_r, selectors.EVENT_READ)
        # The C-level signal handler writes to the pipe as well: a signal received by
        # another thread then still wakes select() here, where Python runs its handler.
        previous_wakeup_fd = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        try:
            try:
                while not self.stopping:
                    for key, _ in selector.select():
                        if key.data is None:
                            self._clear_wakeups()
                        else:
                            self._accept(key.data)
            finally:
                selector.close()
                for listener in self.listeners:
                    listener.close()  # stop accepting now; pending connections are refused
            # Not in the finally: a ForcedExit (second signal) leaving the loop must not
            # then wait for the in-flight requests it is meant to abandon.
            self._drain()
        finally:
            signal.set_wakeup_fd(previous_wakeup_fd)
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _clear_wakeups(self) -> None:
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def _accept(self, listener: Listener) -> None:
        try:
            sock, address = listener.sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        except OSError as exc:  # EMFILE and friends: back off instead of spinning
            self.log.error("accept failed on %s: %s", listener.name, exc.strerror)
            time.sleep(0.1)
            return
        sock.setblocking(True)
        connection = Connection(self, sock, address, listener)
        with self.lock:
            self.connections.add(connection)
        threading.Thread(target=connection.run, name=f"chaussette-{sock.fileno()}", daemon=True).start()

    def stop(self) -> None:
        """Signal handler side: only flips flags and wakes the accept loop."""
        self.stopping = True
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass

    def _drain(self) -> None:
        with self.lock:
            connections = list(self.connections)
        for connection in connections:
            connection.close_if_idle()
        for connection in connections:
            # Timed waits return to Python regularly, so the graceful-timeout alarm or a
            # second signal runs its handler even when another thread received it.
            while not connection.finished.wait(0.5):
                pass

    def forget(self, connection: "Connection") -> None:
        with self.lock:
            self.connections.discard(connection)


class Connection:
    def __init__(self, server: ThreadedServer, sock: socket.socket, address: Any, listener: Listener) -> None:
        self.server = server
        self.sock = sock
        self.listener = listener
        # A new connection is not idle: its client sent (or is sending) a request that we
        # accepted, so a graceful stop still answers it. Only the wait for a *further*
        # keep-alive request is idle, and may be cut short by a stop.
        self.fresh = True
        self.idle = False
        self.finished = threading.Event()
        if listener.is_unix or not isinstance(address, tuple):
            self.remote = (UNIX_REMOTE_ADDR, "")
            self.local = ("localhost", "0")
        else:
            self.remote = (address[0], str(address[1]))
            local = sock.getsockname()
            self.local = (local[0], str(local[1]))
        self.rfile = sock.makefile("rb", buffering=1 << 16)

    def close_if_idle(self) -> None:
        with self.server.lock:
            if self.idle:
                try:
                    self.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def run(self) -> None:
        try:
            while self._one_request():
                pass
        except Exception:  # a server bug must not kill the process; log it
            self.server.log.exception("unexpected error on a connection")
        finally:
            self.rfile.close()
            self.sock.close()
            self.server.forget(self)
            self.finished.set()

    def _one_request(self) -> bool:
        """Serve one request; True to keep the connection for another."""
        server = self.server
        with server.lock:
            if server.stopping and not self.fresh:
                return False
            self.idle = not self.fresh
        self.sock.settimeout(server.keep_alive or IO_TIMEOUT)
        try:
            head = read_head(self.rfile.readline, server.limits)
        except HTTPError as exc:
            self._refuse(exc)
            return False
        except OSError:  # idle timeout, reset, or shut down by a graceful stop
            return False
        with server.lock:
            self.idle = self.fresh = False
        if head is None:
            return False
        self.sock.settimeout(IO_TIMEOUT)
        try:
            return Exchange(self, head).run()
        except HTTPError as exc:
            self._refuse(exc)
            return False
        except OSError:
            return False

    def _refuse(self, error: HTTPError) -> None:
        body = error.reason.encode("ascii") + b"\n"
        head = (f"HTTP/1.1 {error.status} {REASONS.get(error.status, 'Bad Request')}\r\n"
                f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
                f"Date: {http_date()}\r\nConnection: close\r\n\r\n").encode("ascii")
        try:
            self.sock.sendall(head + body)
            self.sock.shutdown(socket.SHUT_WR)
            self.sock.settimeout(1.0)
            self.sock.recv(DRAIN_LIMIT)  # let the peer read our answer before any RST
        except OSError:
            pass


class LengthReader:
    """``wsgi.input`` for a Content-Length body: never reads past the body, and sends
    ``100 Continue`` only when the application actually wants the body."""

    def __init__(self, rfile: Any, length: int, send_continue: Callable[[], None] | None) -> None:
        self.rfile = rfile
        self.remaining = length
        self.send_continue = send_continue

    def _limit(self, size: int | None) -> int:
        if self.send_continue is not None:
            self.send_continue()
            self.send_continue = None
        if size is None or size < 0 or size > self.remaining:
            return self.remaining
        return size

    def read(self, size: int | None = -1) -> bytes:
        data = self.rfile.read(self._limit(size)) if self.remaining else b""
        self.remaining -= len(data)
        return data

    def readline(self, size: int | None = -1) -> bytes:
        data = self.rfile.readline(self._limit(size)) if self.remaining else b""
        self.remaining -= len(data)
        return data

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self) -> Iterable[bytes]:
        return iter(self.readline, b"")


class Exchange:
    """One request and its response."""

    def __init__(self, connection: Connection, head: RequestHead) -> None:
        self.connection = connection
        self.head = head
        self.status: str | None = None
        self.status_code = 0
        self.headers: list[tuple[str, str]] = []
        self.headers_sent = False
        self.chunked = False
        self.length: int | None = None
        self.sent = 0
        tokens = {t.strip().lower() for v in head.get_all("connection") for t in v.split(",")}
        if head.version >= (1, 1):
            self.keep_alive = "close" not in tokens
        else:
            self.keep_alive = "keep-alive" in tokens
        if not connection.server.keep_alive:
            self.keep_alive = False

    def run(self) -> bool:
        head = self.head
        check_host(head)
        framing = body_framing(head)
        send_continue = None
        expect = head.get_all("expect")
        if expect:
            if [value.lower() for value in expect] != ["100-continue"]:
                raise HTTPError(417, "unsupported Expect")
            if head.version >= (1, 1):
                send_continue = self._send_continue
        if framing.chunked:
            if send_continue:
                send_continue()
            body = tempfile.SpooledTemporaryFile(max_size=1 << 20)
            length = dechunk(self.connection.rfile, body, self.connection.server.limits)
            body.seek(0)
            reader: Any = body
        else:
            length = framing.length
            reader = LengthReader(self.connection.rfile, length, send_continue)
        environ = self._environ(reader, length if (framing.chunked or length or
                                                   head.get_all("content-length")) else None)
        try:
            self._respond(environ)
        finally:
            if framing.chunked:
                reader.close()
        if self.keep_alive and not framing.chunked and reader.remaining:
            if reader.remaining > DRAIN_LIMIT:
                return False
            reader.send_continue = None  # the app did not want the body: do not invite it now
            reader.read()
        return self.keep_alive and not self.connection.server.stopping

    def _send_continue(self) -> None:
        self.connection.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _environ(self, reader: Any, length: int | None) -> dict[str, Any]:
        head = self.head
        connection = self.connection
        target = head.target
        if target.startswith(("http://", "https://")):  # absolute-form
            slash = target.find("/", target.find("//") + 2)
            target = target[slash:] if slash >= 0 else "/"
        path, _, query = target.partition("?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": head.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query,
            "RAW_URI": head.target,
            "SERVER_PROTOCOL": f"HTTP/{head.version[0]}.{head.version[1]}",
            "SERVER_NAME": connection.local[0],
            "SERVER_PORT": connection.local[1],
            "REMOTE_ADDR": connection.remote[0],
            "REMOTE_PORT": connection.remote[1],
            "SERVER_SOFTWARE": "chaussette",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": reader,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
            "wsgi.file_wrapper": FileWrapper,
        }
        if length is not None:
            environ["CONTENT_LENGTH"] = str(length)
        for name, value in head.headers:
            if "_" in name:  # X_Forwarded_For would collide with X-Forwarded-For
                continue
            if name == "content-type":
                environ["CONTENT_TYPE"] = value
                continue
            if name in ("content-length", "transfer-encoding"):
                continue
            key = "HTTP_" + name.upper().replace("-", "_")
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ

    def _start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
        if exc_info:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response called a second time without exc_info")
        code = status[:3]
        if not (code.isdigit() and len(status) > 4 and status[3] == " ") or _unsafe(status):
            raise ValueError(f"invalid status line {status!r}")
        for name, value in headers:
            if _unsafe(name) or _unsafe(value) or ":" in name:
                raise ValueError(f"invalid response header {name!r}: {value!r}")
        self.status = status
        self.status_code = int(code)
        self.headers = list(headers)
        return self._write

    def _respond(self, environ: dict[str, Any]) -> None:
        log = self.connection.server.log
        try:
            result = self.connection.server.app(environ, self._start_response)
        except Exception:
            log.exception("error in the application for %s %s", self.head.method, environ["PATH_INFO"])
            self._internal_error()
            return
        try:
            if isinstance(result, (list, tuple)) and len(result) == 1 and self.status is not None:
                self.length = len(result[0])  # a single chunk gets a Content-Length, not chunked
            for chunk in result:
                if chunk:
                    self._write(chunk)
            if not self.headers_sent:
                self._send_head(b"")
            elif self.chunked:
                self.connection.sock.sendall(b"0\r\n\r\n")
            if self.length is not None and self.sent < self.length and self._has_body():
                self.keep_alive = False  # the app sent less than it announced
        except OSError:
            self.keep_alive = False
            raise
        except Exception:
            log.exception("error in the application for %s %s", self.head.method, environ["PATH_INFO"])
            if self.headers_sent:
                self.keep_alive = False
            else:
                self._internal_error()
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    log.exception("error closing the application's response")

    def _internal_error(self) -> None:
        body = b"Internal Server Error\n"
        self.status, self.status_code = "500 Internal Server Error", 500
        self.headers, self.length = [("Content-Type", "text/plain")], len(body)
        self.keep_alive = False
        self._write(body)

    def _has_body(self) -> bool:
        return self.head.method != "HEAD" and self.status_code >= 200 and self.status_code not in BODYLESS_STATUSES

    def _write(self, data: bytes) -> None:
        if not self.headers_sent:
            self._send_head(data)
            return
        self._send_body(data)

    def _send_body(self, data: bytes) -> None:
        if not data or not self._has_body():
            return
        if self.length is not None:
            data = data[: self.length - self.sent]
        self.sent += len(data)
        if self.chunked:
            data = b"%x\r\n%b\r\n" % (len(data), data)
        self.connection.sock.sendall(data)

    def _send_head(self, first: bytes) -> None:
        if self.status is None:
            raise AssertionError("the application returned data before calling start_response")
        lines = [f"HTTP/1.1 {self.status}"]
        has_date = False
        for name, value in self.headers:
            lower = name.lower()
            if lower == "content-length":
                try:
                    self.length = int(value)
                except ValueError:
                    raise ValueError(f"invalid Content-Length {value!r} from the application") from None
            elif lower == "connection":
                if "close" in value.lower():
                    self.keep_alive = False
                continue
            elif lower == "transfer-encoding":
                continue  # framing is the server's job
            elif lower == "date":
                has_date = True
            lines.append(f"{name}: {value}")
        if self.length is not None and not any(n.lower() == "content-length" for n, _ in self.headers):
            lines.append(f"Content-Length: {self.length}")
        elif self.length is None and self._has_body():
            if self.head.version >= (1, 1):
                self.chunked = True
                lines.append("Transfer-Encoding: chunked")
            else:
                self.keep_alive = False
        if not has_date:
            lines.append(f"Date: {http_date()}")
        if self.connection.server.stopping:
            self.keep_alive = False  # tell keep-alive clients not to send another request here
        if not self.keep_alive:
            lines.append("Connection: close")
        elif self.head.version < (1, 1):
            lines.append("Connection: keep-alive")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.headers_sent = True
        if first and self._has_body():
            if self.length is not None:
                first = first[: self.length]
            self.sent = len(first)
            if self.chunked:
                first = b"%x\r\n%b\r\n" % (len(first), first)
            head += first
        self.connection.sock.sendall(head)


def _unsafe(text: str) -> bool:
    return "\r" in text or "\n" in text or "\x00" in text


_date_cache: tuple[int, str] = (0, "")


def http_date() -> str:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]


REASONS = {400: "Bad Request", 414: "URI Too Long", 417: "Expectation Failed",
           431: "Request Header Fields Too Large", 505: "HTTP Version Not Supported"}
