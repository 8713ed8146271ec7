"""Request heads and chunked bodies read with core's strict parser, for eventlet.wsgi.

eventlet.wsgi parses heads with the standard library's lenient ``http.server`` (bare LF
line ends, obs-fold, a bare CR splitting a field, ``int()`` Content-Lengths) and decodes
chunks with ``int(line, 16)``: the ways requests get smuggled. Here the head is read and
checked by ``chaussette.framing`` (request line, fields, Host, RFC 9112 framing) and a
chunked body is de-chunked by it before the application runs; eventlet then goes on from
the validated values and never parses a byte of the head itself.
"""

from __future__ import annotations

import http.client
import tempfile
from dataclasses import dataclass
from typing import IO, Callable

from chaussette.backends.wsgiref import REASONS, http_date
from chaussette.framing import HTTPError, Limits, RequestHead, body_framing, check_host, dechunk, read_head

#: A de-chunked body larger than this goes to a temporary file rather than memory.
SPOOL_SIZE = 1 << 20
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


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


def refusal(error: HTTPError) -> bytes:
    """A complete response for a request refused before the application ran."""
    body = error.reason.encode("ascii") + b"\n"
    return (f"HTTP/1.1 {error.status} {REASONS.get(error.status, 'Bad Request')}\r\n"
            f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
            f"Date: {http_date()}\r\nConnection: close\r\n\r\n").encode("ascii") + body
