"""Each request as eventlet.wsgi handles it, read with core's strict parser and with what
eventlet gets wrong fixed on the way.

eventlet.wsgi parses heads with the standard library's lenient ``http.server`` (bare LF
line ends, obs-fold, a bare CR splitting a field, ``int()`` Content-Lengths) and decodes
chunks with ``int(line, 16)``: the ways requests get smuggled. Here the head is read and
checked by ``chaussette.framing`` (request line, fields, Host, RFC 9112 framing) and a
chunked body is de-chunked by it before the application runs (``Request``,
``read_request``); eventlet then goes on from the validated values and never parses a
byte of the head itself (``Protocol``). The application's side of the exchange is fixed
by ``Guard`` and ``Exchange``.
"""

from __future__ import annotations

import http.client
import logging
import socket
import tempfile
from dataclasses import dataclass
from functools import partial
from typing import IO, Any, Callable, Iterable, Iterator

import eventlet
from eventlet import wsgi

from chaussette.framing import HTTPError, Limits, RequestHead, body_framing, check_host, dechunk, read_head
from chaussette.http import BODYLESS_STATUSES, UNIX_ENVIRON, refusal

#: A de-chunked body larger than this goes to a temporary file rather than memory.
SPOOL_SIZE = 1 << 20
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
#: ``BODYLESS_STATUSES`` as the status line's first word, which is what the application
#: gives ``start_response``.
BODYLESS_CODES = frozenset(str(status) for status in BODYLESS_STATUSES)
#: What eventlet.wsgi itself catches from an application.
APP_ERRORS = (Exception, eventlet.Timeout)


@dataclass
class Request:
    """One validated request head, and its de-chunked body if it was chunked."""

    head: RequestHead
    length: int | None  # None: the request had no Content-Length and was not chunked
    body: IO[bytes] | None = None  # the de-chunked body; None: read from the connection

    @property
    def requestline(self) -> str:
        return f"{self.head.method} {self.head.target} {self.version}"

    @property
    def version(self) -> str:
        return "HTTP/%d.%d" % self.head.version

    def headers(self) -> http.client.HTTPMessage:
        """The fields in the message type eventlet.wsgi reads, with the framing fields
        replaced by the one validated Content-Length (a de-chunked body has one too), so
        eventlet's own ``int()`` of it and its chunked decoder never see the client's."""
        message = http.client.HTTPMessage()
        for name, value in self.head.headers:
            if name not in ("content-length", "transfer-encoding"):
                message[name] = value
        if self.length is not None:
            message["content-length"] = str(self.length)
        return message

    def keep_alive(self) -> bool:
        """RFC 9112 9.3: HTTP/1.1 persists unless ``close``; HTTP/1.0 only on ``keep-alive``."""
        tokens = {token.strip(" \t").lower() for value in self.head.get_all("connection")
                  for token in value.split(",")}
        if "close" in tokens:
            return False
        return self.head.version >= (1, 1) or "keep-alive" in tokens

    def close(self) -> None:
        if self.body is not None:
            self.body.close()


def read_request(rfile: IO[bytes], limits: Limits, started: Callable[[], None],
                 send: Callable[[bytes], None]) -> Request | None:
    """Read and check one request head (and a chunked body); ``None`` at a clean end of
    stream. ``started`` is called once the first line arrived; ``send`` writes the
    ``100 Continue`` a chunked body with ``Expect: 100-continue`` waits for. Raises
    ``HTTPError`` for what must be refused."""
    first = True

    def readline(size: int) -> bytes:
        nonlocal first
        line = rfile.readline(size)
        if first:
            first = False
            started()
        return line

    head = read_head(readline, limits)
    if head is None:
        return None
    check_host(head)
    framing = body_framing(head)
    if not framing.chunked:
        return Request(head, framing.length if head.get_all("content-length") else None)
    if head.version >= (1, 1) and [value.lower() for value in head.get_all("expect")] == ["100-continue"]:
        send(CONTINUE)
    body = tempfile.SpooledTemporaryFile(max_size=SPOOL_SIZE)
    try:
        length = dechunk(rfile, body, limits)
    except BaseException:
        body.close()
        raise
    body.seek(0)
    return Request(head, length, body)


class Protocol(wsgi.HttpProtocol):
    """eventlet.wsgi's handler of one connection, made strict, made to stop gracefully
    and to give the environ PEP 3333 asks for.

    - The head is read by core's strict parser with core's limits (``_read_request_line``)
      and eventlet goes on from the validated values (``parse_request``); a refused
      request gets its 4xx with ``Connection: close`` and the connection ends. A chunked
      body is de-chunked by core before the application runs (``get_environ``).
    - Once the server is stopping every response says ``Connection: close`` and ends its
      connection, so keep-alive clients send their next request elsewhere.
    - SERVER_PROTOCOL is the version the client sent (eventlet.wsgi always says HTTP/1.0);
      on unix sockets the connection's part of the environ is core's ``UNIX_ENVIRON``,
      as on every backend (eventlet.wsgi sets an empty SERVER_PORT, which PEP 3333 forbids).

    eventlet calls ``protocol(conn_state, server)``: ``stopping`` and ``limits`` are bound
    beforehand.
    """

    def __init__(self, conn_state: list[Any], server: wsgi.Server, stopping: Callable[[], bool],
                 limits: Limits) -> None:
        self.stopping = stopping
        self.limits = limits
        self.current: Request | None = None
        self._close_connection = True
        super().__init__(conn_state, server)

    @property
    def close_connection(self) -> bool:
        """Read by eventlet.wsgi when it writes the response head and after the response."""
        return self._close_connection or self.stopping()

    @close_connection.setter
    def close_connection(self, value: bool) -> None:
        self._close_connection = bool(value)

    def _read_request_line(self) -> str:
        """Read the whole head (not just its first line, as eventlet does) with core's
        parser; the keep-alive timeout applies until the request starts, then eventlet's
        socket timeout. eventlet takes an empty line for the end of the connection."""
        self._end_request()
        if self.rfile.closed:
            self.close_connection = True
            return ""
        sock = self.connection
        keepalive = self.server.keepalive
        if keepalive and not isinstance(keepalive, bool):
            sock.settimeout(keepalive)
        started = partial(sock.settimeout, self.server.socket_timeout)
        try:
            self.current = read_request(self.rfile, self.limits, started, self._send)
        except HTTPError as exc:
            self.close_connection = True
            try:
                self._send(refusal(exc))
            except OSError:
                pass
            return ""
        except OSError:  # idle timeout, reset, or shut down by a graceful stop
            self.close_connection = True
            return ""
        if self.current is None:
            return ""
        # No longer than eventlet's url_length_limit, which core's limit already enforced.
        return self.current.requestline + "\r\n"

    def _send(self, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()

    def parse_request(self) -> bool:
        """What ``http.server`` would set, from the head core validated."""
        request = self.current
        assert request is not None
        self.command, self.path = request.head.method, request.head.target
        self.request_version = request.version
        self.requestline = request.requestline
        self.headers = request.headers()
        self.close_connection = not request.keep_alive()
        return True

    def _end_request(self) -> None:
        if self.current is not None:
            self.current.close()
            self.current = None

    def finish(self) -> None:
        self._end_request()
        super().finish()

    def get_environ(self) -> dict[str, Any]:
        environ = super().get_environ()
        request = self.current
        if request is not None and request.body is not None:
            # The de-chunked body, read like any sized body; no wfile: its 100 Continue is sent.
            environ["wsgi.input"] = environ["eventlet.input"] = wsgi.Input(
                request.body, request.length, self.connection)
        environ["SERVER_PROTOCOL"] = self.request_version
        if self.request.family == socket.AF_UNIX:
            environ.update(UNIX_ENVIRON)
        return environ


class Guard:
    """The application as eventlet.wsgi calls it: one ``Exchange`` per request."""

    def __init__(self, app: Callable[..., Any], log: logging.Logger) -> None:
        self.app = app
        self.log = log

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return Exchange(self.app, self.log, environ, start_response).respond()


class Exchange:
    """One request, with what eventlet.wsgi gets wrong fixed on the way.

    - Application errors are logged with core's logger: eventlet.wsgi logs them only
      through its own logger, which is off because it also writes a line per request.
      They are re-raised, and eventlet answers an empty 500 (``debug=False``: no
      traceback) or cuts a response already started.
    - No body where HTTP forbids one (HEAD, 1xx, 204, 304): eventlet.wsgi leaves out the
      framing headers there but still writes what the application yields, and the client
      then reads those bytes as the start of the next response.
    """

    def __init__(self, app: Callable[..., Any], log: logging.Logger, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> None:
        self.app = app
        self.log = log
        self.environ = environ
        self._start_response = start_response
        self._write: Callable[[bytes], Any] | None = None
        self.head = environ.get("REQUEST_METHOD") == "HEAD"
        self.bodyless = self.head
        self.result: Any = None

    def respond(self) -> Iterable[bytes]:
        try:
            self.result = self.app(self.environ, self.start_response)
        except APP_ERRORS:
            self.log_error()
            raise
        if isinstance(self.result, (list, tuple)) and not self.bodyless:
            return self.result  # as is: eventlet gives a sized response a Content-Length
        return self

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
        code = status.split(" ", 1)[0]
        self.bodyless = self.head or code.startswith("1") or code in BODYLESS_CODES
        self._write = self._start_response(status, headers, exc_info)
        return self.write

    def write(self, data: bytes) -> None:
        """The legacy ``write()`` callable ``start_response`` returns."""
        assert self._write is not None
        if not self.bodyless:
            self._write(data)

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self.result:
                if not self.bodyless:
                    yield chunk
        except APP_ERRORS:
            self.log_error()
            raise

    def close(self) -> None:
        close = getattr(self.result, "close", None)
        if close is not None:
            try:
                close()
            except APP_ERRORS:
                self.log.exception("error closing the application's response")

    def log_error(self) -> None:
        self.log.exception("error in the application for %s %s", self.environ.get("REQUEST_METHOD"),
                           self.environ.get("PATH_INFO"))
