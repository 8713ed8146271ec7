"""The ``gevent`` backend's pywsgi handler: request heads read by core's strict parser
(``chaussette.framing``) and limits, then handed to pywsgi already parsed; chunked
bodies checked by core's rules; the keep-alive timeout pywsgi lacks. Its connection
bookkeeping is in ``connection.py``, its response side in ``responses.py``.

Imported by ``serve()`` only, after monkey-patching.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gevent import pywsgi
from gevent.pywsgi import unquote_latin1

from chaussette.framing import HTTPError, RequestHead, body_framing, check_host, check_trailer, chunk_size, read_head
from chaussette.http import IO_TIMEOUT, refusal
from chaussette_gevent.connection import Connection
from chaussette_gevent.responses import Responses

if TYPE_CHECKING:
    from chaussette_gevent.serving import ServingState


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
            # pywsgi.Input's slot (mypy sees gevent untyped, so only this class's slots)
            self._chunked_input_error = True  # type: ignore[misc]
            raise pywsgi._InvalidClientInput(exc.reason) from None
        return size


class Handler(Responses, Connection):
    """The ``gevent`` backend's handler; the websocket handlers put it first in their MRO."""

    head: RequestHead | None = None
    fields: dict[str, str]  # the first value of each request field (read_request)
    chunked = False  # the request body is chunked (_read_head)

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
