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

from gevent import GreenletExit
from gevent import pywsgi

from chaussette.backends.wsgiref import IO_TIMEOUT, REASONS, UNIX_REMOTE_ADDR, http_date
from chaussette.framing import (HTTPError, Limits, RequestHead, body_framing, check_host, check_trailer,
                                chunk_size, read_head)

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

    def __new__(cls) -> "UnixPeer":
        return super().__new__(cls, (UNIX_REMOTE_ADDR, ""))

    __hash__ = object.__hash__

    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return self is not other


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

    def _Input__read_chunk_length(self, rfile: Any) -> int:  # noqa: N802 - replaces Input.__read_chunk_length
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
    idle = False  # waiting for a request line
    served = False  # a request was read on this connection
    _held: bytearray | None = None  # the response head while _write_with_headers runs

    def __init__(self, sock: Any, address: Any, server: ChaussetteServer, *args: Any) -> None:
        if not isinstance(address, tuple):
            address = UnixPeer()
        super().__init__(sock, address, server, *args)

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
        the already parsed head (see ``read_requestline`` and ``MessageClass``)."""
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
        sock = self.socket
        self.idle = True
        sock.settimeout(state.keep_alive or IO_TIMEOUT)

        def readline(size: int) -> bytes:
            line = self.rfile.readline(size)
            if self.idle:  # the request started: the rest of its head gets IO_TIMEOUT
                self.idle = False
                sock.settimeout(IO_TIMEOUT)
            return line

        try:
            head = read_head(readline, state.limits)
        finally:
            self.idle = False
        if head is not None:
            check_host(head)
            body_framing(head)  # ambiguous or malformed framing is a 400 before pywsgi sees it
        return head

    def read_requestline(self) -> str:
        head = self.head
        assert head is not None
        return f"{head.method} {head.target} HTTP/{head.version[0]}.{head.version[1]}"

    def MessageClass(self, *args: Any) -> Any:  # noqa: N802 - pywsgi's name
        """The headers ``_read_head`` already parsed, in pywsgi's message type, without a
        second parse: pywsgi's own would re-read them from the socket with http.client's
        fixed limits, and even building the message header by header through the email
        package cost ~20 µs a request. compat32, the message's policy, stores each field
        as the (name, value) pair it is given, so the list is what it would hold."""
        message = pywsgi.OldMessage()
        if self.head is not None:
            message._headers = list(self.head.headers)
        return message

    def get_environ(self) -> dict:
        """pywsgi's environ, with a chunked body read through ``StrictInput``."""
        environ = super().get_environ()
        original = self.wsgi_input
        if original is not None and original.chunked_input:
            strict = StrictInput(original.rfile, original.content_length, socket=original.socket,
                                 chunked_input=True)
            strict.limits = self.server.state.limits
            self.wsgi_input = strict
            if environ.get("wsgi.input") is original:
                environ["wsgi.input"] = strict
        return environ

    def read_request(self, raw_requestline: str) -> bool:
        result = super().read_request(raw_requestline)
        if not self.server.state.keep_alive:
            self.close_connection = True
        return result

    def finalize_headers(self) -> None:
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
        if self._held is not None:
            self._held += data
            return
        super()._sendall(data)

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

