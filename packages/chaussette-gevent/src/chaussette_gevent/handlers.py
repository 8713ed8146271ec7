"""pywsgi handlers with Chaussette's behaviour: strict request heads, core's limits,
keep-alive timeout, generic 500s logged through Chaussette's logger, no access log,
and a graceful stop that closes idle keep-alive connections.

Imported by ``serve()`` only, after monkey-patching.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field
from typing import Any

from gevent import GreenletExit, pywsgi
from gevent.pywsgi import unquote_latin1

from chaussette.backends.wsgiref import IO_TIMEOUT, REASONS, UNIX_REMOTE_ADDR, http_date
from chaussette.framing import (
    HTTPError,
    Limits,
    RequestHead,
    body_framing,
    check_host,
    check_trailer,
    chunk_size,
    read_head,
)

#: The close frame a websocket gets when the server stops: 1001 "going away" (RFC 6455 7.4.1).
GOING_AWAY = (1001, "server shutting down")
#: Largest first body chunk sent together with the response head (see _write_with_headers).
COALESCE_LIMIT = 1 << 16


@dataclass
class ServingState:
    """What every handler of one ``serve()`` shares."""

    log: logging.Logger
    limits: Limits
    keep_alive: float
    stopping: bool = False
    handlers: set = field(default_factory=set)

    def stop_connections(self) -> None:
        """Graceful stop: connections waiting for their next request are closed now, the
        others after the response they are working on; websockets are told to go away."""
        for handler in list(self.handlers):
            handler.server_stopping()


class ChaussetteServer(pywsgi.WSGIServer):
    """pywsgi's server carrying the shared state its handlers read."""

    state: ServingState


class UnixPeer(tuple):
    """The client address of an AF_UNIX connection, which has none.

    pywsgi only sets REMOTE_ADDR from a tuple, and apps expect an IP there, so this is
    ``(UNIX_REMOTE_ADDR, "")``. Equality is identity: gevent-websocket keys its client
    table by address, and two unix clients must not collide there.
    """

    def __new__(cls) -> UnixPeer:
        return super().__new__(cls, (UNIX_REMOTE_ADDR, ""))

    __hash__ = object.__hash__

    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return self is not other


def add_http_variables(environ: dict, fields: list[tuple[str, str]]) -> None:
    """The request's fields as ``HTTP_`` variables, by pywsgi's rules: a name with an
    underscore is dropped (it would pose as the same name with a dash), repeated fields
    are joined with commas (cookies with "; "), and Content-Type and Content-Length are
    left to their own variables."""
    for name, value in fields:
        if "_" in name:
            continue
        key = name.replace("-", "_").upper()
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            continue
        key = "HTTP_" + key
        value = value.strip()
        if key in environ:
            environ[key] += ("; " if "COOKIE" in key else ",") + value
        else:
            environ[key] = value


def refusal(error: HTTPError) -> bytes:
    """A complete response for a request refused before the application ran."""
    body = error.reason.encode("ascii") + b"\n"
    return (f"HTTP/1.1 {error.status} {REASONS.get(error.status, 'Bad Request')}\r\n"
            f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
            f"Date: {http_date()}\r\nConnection: close\r\n\r\n").encode("ascii") + body


class StrictInput(pywsgi.Input):
    """pywsgi's request body, with chunk-size lines and trailers checked by core's rules.

    pywsgi decodes chunks as the application reads them, and its chunk-size reader
    takes an empty line for a size and fails with a ValueError, which then leaves the
    connection waiting for a bogus chunk. Here a bad line is pywsgi's own
    ``_InvalidClientInput``: pywsgi answers 400 (if the response has not started) and
    closes the connection.
    """

    __slots__ = ("limits",)

    def _Input__read_chunk_length(self, rfile: Any) -> int:
        limit = self.limits.field_size + 2
        try:
            size = chunk_size(rfile.readline(limit))
            if size == 0:  # the trailer section, up to its blank line (bounded by the field count)
                lines = [rfile.readline(limit)]
                while lines[-1].endswith(b"\n") and lines[-1] != b"\r\n" and len(lines) <= self.limits.fields:
                    lines.append(rfile.readline(limit))
                check_trailer(b"".join(lines), self.limits)
        except HTTPError as exc:
            self._chunked_input_error = True
            raise pywsgi._InvalidClientInput(exc.reason) from None
        return size


class Handler(pywsgi.WSGIHandler):
    """The ``gevent`` backend's handler; the websocket handlers put it first in their MRO."""

    server: ChaussetteServer
    head: RequestHead | None = None
    fields: dict[str, str]  # the first value of each request field (read_request)
    chunked = False  # the request body is chunked (_read_head)
    idle = False  # waiting for the first byte of a request
    served = False  # a request was read on this connection
    _held: bytearray | None = None  # the response head while _write_with_headers runs

    def __init__(self, sock: Any, address: Any, server: ChaussetteServer, *args: Any) -> None:
        if not isinstance(address, tuple):
            address = UnixPeer()
        super().__init__(sock, address, server, *args)
        environ = server.get_environ()
        environ["SCRIPT_NAME"] = ""  # pywsgi's: the application is the root
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = str(address[0]), str(address[1])
        #: The server's environ plus what stays the same on this connection, built once.
        self.connection_environ = environ

    def handle(self) -> None:
        handlers = self.server.state.handlers
        handlers.add(self)
        try:
            super().handle()
        finally:
            handlers.discard(self)

    def server_stopping(self) -> None:
        """Close the connection now if it is idle between keep-alive requests; otherwise
        it closes after the current response (``handle_one_request``, ``finalize_headers``).

        A connection that has not sent its first request yet is served: it was accepted
        before the stop, so its client is sending a request this process must answer
        (the other processes sharing the socket never see it). The keep-alive timeout
        bounds the wait if nothing comes.
        """
        if self.idle and self.served and self.socket is not None:
            try:
                self.socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_one_request(self) -> Any:
        """Read the head with core's strict parser and limits, then let pywsgi go on from
        the already parsed head (see ``read_request`` and ``get_environ``)."""
        state = self.server.state
        if (state.stopping and self.served) or self.socket is None:
            return None
        try:
            self.head = self._read_head(state)
        except HTTPError as exc:
            return str(exc.status), refusal(exc)
        except OSError:  # idle timeout, reset, or shut down by a graceful stop
            return None
        if self.head is None:
            return None
        self.served = True
        # The application owns the connection now (long polls, upgrades): no timeout,
        # as in plain pywsgi.
        self.socket.settimeout(None)
        return super().handle_one_request()

    def _read_head(self, state: ServingState) -> RequestHead | None:
        """The next head, or None at a clean end of stream. The wait for its first byte is
        bounded by the keep-alive timeout, the rest of the head by IO_TIMEOUT."""
        sock = self.socket
        rfile = self.rfile
        sock.settimeout(state.keep_alive or IO_TIMEOUT)
        self.idle = True
        try:
            rfile.peek(1)  # returns at once when a pipelined request is already buffered
        finally:
            self.idle = False
        sock.settimeout(IO_TIMEOUT)
        head = read_head(rfile.readline, state.limits)
        if head is not None:
            check_host(head)
            # ambiguous or malformed framing is a 400 before pywsgi sees it
            self.chunked = body_framing(head).chunked
        return head

    def read_requestline(self) -> str:
        head = self.head
        assert head is not None
        return f"{head.method} {head.target} HTTP/{head.version[0]}.{head.version[1]}"

    def read_request(self, raw_requestline: str) -> bool:
        """pywsgi's request attributes, set from the head ``_read_head`` parsed, by pywsgi's
        rules: its own method would split the line again and build an email message only
        to look four fields up in it."""
        self.command, self.path, self.request_version = raw_requestline.split(" ")
        assert self.head is not None
        # dict() keeps the last of repeated names: reversed, it keeps the first, as email's get().
        self.fields = fields = dict(reversed(self.head.headers))
        length = fields.get("content-length")
        # int() refuses a list such as "4, 4": a 400, as with pywsgi's own parse.
        self.content_length = None if length is None else int(length)
        if self.content_length and self.command == "HEAD":
            raise pywsgi._InvalidClientRequest("Unexpected Content-Length")
        self.close_connection = not self.server.state.keep_alive or self._close_requested()
        return True

    def _close_requested(self) -> bool:
        """HTTP/1.1 keeps the connection unless told to close, HTTP/1.0 closes unless
        told to keep it."""
        if self.request_version == "HTTP/1.1":
            return self.fields.get("connection", "").lower() == "close"
        if self.request_version == "HTTP/1.0":
            return self.fields.get("connection", "close").lower() != "keep-alive"
        return True

    @property
    def headers(self) -> Any:
        """pywsgi's request attribute, in its message type: nothing that serves a request
        reads it any more, so it is built only when something does. compat32, the
        message's policy, stores each field as the (name, value) pair it is given, so the
        list is what pywsgi's own parse would hold."""
        message = pywsgi.OldMessage()
        if self.head is not None:
            message._headers = list(self.head.headers)
        return message

    def get_environ(self) -> dict:
        """pywsgi's environ, built in one pass over the parsed head (pywsgi formats each
        field back into a header line and splits it again), with a chunked body read
        through ``StrictInput``."""
        environ = self.connection_environ.copy()
        environ["REQUEST_METHOD"] = self.command
        path, _, environ["QUERY_STRING"] = self.path.partition("?")
        environ["PATH_INFO"] = unquote_latin1(path)
        environ["SERVER_PROTOCOL"] = self.request_version
        fields = self.fields
        if "content-type" in fields:
            environ["CONTENT_TYPE"] = fields["content-type"]
        if fields.get("content-length"):
            environ["CONTENT_LENGTH"] = fields["content-length"]
        assert self.head is not None
        add_http_variables(environ, self.head.headers)
        self.wsgi_input = self._input(environ.get("HTTP_EXPECT") == "100-continue")
        # pywsgi gives an upgraded connection's app the raw stream: the body is not framed.
        handling_reads = not self._connection_upgrade_requested()
        environ["wsgi.input"] = self.wsgi_input if handling_reads else self.rfile
        environ["wsgi.input_terminated"] = handling_reads
        return environ

    def _input(self, expects_continue: bool) -> pywsgi.Input:
        """pywsgi's body reader; given the socket, it answers 100 Continue on first read."""
        sock = self.socket if expects_continue else None
        if not self.chunked:
            return pywsgi.Input(self.rfile, self.content_length, socket=sock)
        strict = StrictInput(self.rfile, self.content_length, socket=sock, chunked_input=True)
        strict.limits = self.server.state.limits
        return strict

    def _connection_upgrade_requested(self) -> bool:
        fields = self.fields
        return (fields.get("connection", "").lower() == "upgrade"
                or fields.get("upgrade", "").lower() == "websocket")

    def finalize_headers(self) -> None:
        if self.provided_date is None:  # pywsgi would format the date for each response
            self.provided_date = http_date().encode("latin-1")
            self.response_headers.append((b"Date", self.provided_date))
        super().finalize_headers()
        if self.command == "HEAD" and self.response_use_chunked:
            # No body follows, so no chunked framing (nor its terminating chunk) either.
            self.response_use_chunked = False
            self.response_headers.remove((b"Transfer-Encoding", b"chunked"))
        if self.server.state.stopping:
            self.close_connection = True
        if (self.close_connection and self.code != 101 and self.request_version == "HTTP/1.1"
                and not any(name.lower() == b"connection" for name, _ in self.response_headers)):
            self.response_headers.append((b"Connection", b"close"))

    def _write_with_headers(self, data: bytes) -> None:
        """One send for the head and the first body bytes, where pywsgi makes two."""
        if len(data) > COALESCE_LIMIT:  # not worth copying a large first chunk
            super()._write_with_headers(data)
            return
        self._held = bytearray()
        try:
            super()._write_with_headers(data)
            held = self._held
        finally:
            self._held = None
        self._sendall(held)

    def _sendall(self, data: bytes) -> None:
        """pywsgi's, with one ``send()`` when the socket buffer takes all the data (a small
        response does): gevent's ``sendall()`` first asks the kernel for SO_SNDBUF, one
        more system call per response."""
        if self._held is not None:
            self._held += data
            return
        sock = self.socket
        try:
            sent = sock.send(data)
            if sent < len(data):
                sock.sendall(memoryview(data)[sent:])
        except OSError as exc:
            self.status = f"socket error: {exc}"
            if self.code > 0:
                self.code = -self.code
            raise
        self.response_length += len(data)

    def _write(self, data: bytes) -> None:
        """pywsgi sends the application's body even for HEAD, which desynchronises the
        next response on a keep-alive connection."""
        if self.command != "HEAD":
            super()._write(data)

    def handle_error(self, t: type, v: BaseException, tb: Any) -> None:
        """Log through Chaussette's logger; the client gets pywsgi's generic 500 (or the
        connection closes if the response had started)."""
        if not issubclass(t, GreenletExit):
            path = (self.environ or {}).get("PATH_INFO", self.path)
            self.server.state.log.error("error in the application for %s %s", self.command, path,
                                        exc_info=(t, v, tb))
        del t, v, tb
        self._send_error_response_if_possible(500)

    def log_request(self) -> None:
        """No access log from pywsgi: core's ``--access-log`` middleware writes one."""

