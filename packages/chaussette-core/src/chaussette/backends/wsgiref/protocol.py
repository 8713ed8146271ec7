"""One request and its response on a connection: ``wsgi.input``, the environ, and the
response's framing (Content-Length, chunked, keep-alive or close)."""

from __future__ import annotations

import sys
import tempfile
from typing import TYPE_CHECKING, Any, Callable, Iterable
from urllib.parse import unquote_to_bytes
from wsgiref.util import FileWrapper

from chaussette.framing import HTTPError, RequestHead, body_framing, check_host, dechunk
from chaussette.http import BODYLESS_STATUSES, http_date

if TYPE_CHECKING:
    from chaussette.backends.wsgiref.serving import Connection

DRAIN_LIMIT = 1 << 16  # unread request body we still read to keep the connection alive


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
