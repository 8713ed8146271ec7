"""waitress's request parser with core's strict RFC 9112 rules plugged in.

waitress's own parser is close to strict but not quite: it folds obs-fold lines, takes
a chunked body with a Content-Length (ignoring the length), answers an unknown coding
with 501 while keeping pipelined data, accepts NUL in the request target, skips empty
chunk-size lines, and limits only the size of the whole head. Here every complete head
goes through ``chaussette.framing`` (``parse_head``, ``check_host``, ``body_framing``),
the same code wsgiref and gevent run, and waitress's request is filled in from core's
parsed head (so the plug costs little: the head is not parsed twice); chunked bodies are
decoded with core's chunk-size and trailer rules. A refusal becomes waitress's own error
response, which closes the connection.

Imported only by ``channel.py`` and ``serving.py`` (it imports waitress at module level).
"""

from __future__ import annotations

from typing import Any

from waitress.buffers import OverflowableBuffer
from waitress.parser import HTTPRequestParser, ParsingError, split_uri
from waitress.receiver import ChunkedReceiver, FixedStreamReceiver
from waitress.utilities import BadRequest, Error

from chaussette.framing import (
    Framing,
    HTTPError,
    Limits,
    RequestHead,
    body_framing,
    check_host,
    check_trailer,
    chunk_size,
    parse_head,
)
from chaussette.http import reason

#: What waitress parses to fill in the request an error response is built from.
ERROR_PLACEHOLDER = b"GET / HTTP/1.0\r\n"


def waitress_error(exc: HTTPError) -> Error:
    """The waitress error response for a refusal (status and reason from core)."""
    error = BadRequest(exc.reason)
    error.code = exc.status
    error.reason = reason(exc.status)
    return error


class StrictParser(HTTPRequestParser):
    """One request: its head parsed by core, the request then filled in as waitress's
    ``parse_header`` would (waitress 3.0.2), so the head is parsed once, not twice."""

    limits: Limits = Limits()

    @classmethod
    def with_limits(cls, limits: Limits) -> type[StrictParser]:
        """The parser class for one server: waitress makes parsers with ``parser_class(adj)``."""
        return type(cls.__name__, (cls,), {"limits": limits})

    def parse_header(self, header_plus: bytes) -> None:
        if header_plus == ERROR_PLACEHOLDER:  # waitress's own refusal (head too large)
            super().parse_header(header_plus)
            return
        try:
            head = parse_head(header_plus, self.limits)
            check_host(head)
            framing = body_framing(head)
            if head.method != head.method.upper():  # as waitress: nginx drops these too
                raise HTTPError(400, "malformed HTTP method")
            uri = split_uri(head.target.encode("latin-1"))
        except (HTTPError, ParsingError) as exc:
            super().parse_header(ERROR_PLACEHOLDER)  # the fields waitress's error response reads
            self.error = waitress_error(exc if isinstance(exc, HTTPError) else HTTPError(400, str(exc)))
            return  # no body receiver: waitress completes the request with its error
        self._fill(head, framing, uri)

    def _fill(self, head: RequestHead, framing: Framing, uri: tuple) -> None:
        headers = self.headers
        for name, value in head.headers:
            if "_" in name:  # as waitress: X_A would pass for X-A once in the environ
                continue
            key = name.upper().replace("-", "_")
            headers[key] = headers[key] + ", " + value if key in headers else value
        self.request_uri = head.target
        self.command = head.method
        self.version = version = f"1.{head.version[1]}"
        self.proxy_scheme, self.proxy_netloc, self.path, self.query, self.fragment = uri
        self.url_scheme = self.adj.url_scheme
        connection = headers.get("CONNECTION", "").lower()
        if version == "1.0" and connection != "keep-alive":
            self.connection_close = True
        if version == "1.1":
            headers.pop("TRANSFER_ENCODING", None)  # the app sees a CONTENT_LENGTH instead
            self.expect_continue = headers.get("EXPECT", "").lower() == "100-continue"
            self.connection_close = connection == "close"
        if framing.chunked:
            self.chunked = True
            self.body_rcv = StrictChunkedReceiver(OverflowableBuffer(self.adj.inbuf_overflow), self.limits)
        elif "CONTENT_LENGTH" in headers:
            headers["CONTENT_LENGTH"] = str(framing.length)  # "4, 4" was accepted as 4
            self.content_length = framing.length
            if framing.length:
                self.body_rcv = FixedStreamReceiver(framing.length, OverflowableBuffer(self.adj.inbuf_overflow))


class StrictChunkedReceiver(ChunkedReceiver):
    """Incremental chunked decoding with core's rules: every chunk-size line must match
    ``chunk_size`` (no empty line skipped, no bare LF), chunk data must be followed by
    CRLF, and the trailer section is validated by ``check_trailer`` (then dropped).
    ``waitress_error`` answers any refusal; waitress reads ``error``/``completed``."""

    # waitress's state, declared with their types (waitress ships none)
    chunk_remainder: int
    validate_chunk_end: bool
    control_line: bytes
    chunk_end: bytes
    all_chunks_received: bool
    trailer: bytes
    completed: bool
    error: Error | None

    def __init__(self, buf: Any, limits: Limits) -> None:
        super().__init__(buf)
        self.limits = limits
        self.line_limit = limits.field_size + 2
        self.trailer_limit = (limits.field_size + 2) * limits.fields + 2

    def received(self, s: bytes) -> int:
        """Consume what belongs to this body; returns how many bytes of ``s`` that is."""
        used = 0
        try:
            while used < len(s) and not self.completed and self.error is None:
                used += self._step(s, used)
        except HTTPError as exc:
            self.error = waitress_error(exc)
            self.all_chunks_received = True
        return used if self.completed else len(s)

    def _step(self, s: bytes, start: int) -> int:
        if self.chunk_remainder:
            data = s[start:start + self.chunk_remainder]
            self.buf.append(data)
            self.chunk_remainder -= len(data)
            self.validate_chunk_end = not self.chunk_remainder
            return len(data)
        if self.validate_chunk_end:
            ending = s[start:start + 2 - len(self.chunk_end)]
            self.chunk_end += ending
            if len(self.chunk_end) == 2:
                if self.chunk_end != b"\r\n":
                    raise HTTPError(400, "chunk data not followed by CRLF")
                self.chunk_end, self.validate_chunk_end = b"", False
            return len(ending)
        if not self.all_chunks_received:
            joined = self.control_line + s[start:start + self.line_limit + 1 - len(self.control_line)]
            end = joined.find(b"\n") + 1
            taken = (end or len(joined)) - len(self.control_line)
            if not end:
                if len(joined) > self.line_limit:
                    raise HTTPError(400, "chunk size line too long")
                self.control_line = joined
                return taken
            self.control_line = b""
            self.chunk_remainder = chunk_size(joined[:end])
            self.all_chunks_received = not self.chunk_remainder
            return taken
        joined = self.trailer + s[start:start + self.trailer_limit + 1 - len(self.trailer)]
        end = 2 if joined.startswith(b"\r\n") else joined.find(b"\r\n\r\n") + 4
        if end == 3:  # not complete yet (find gave -1)
            if len(joined) > self.trailer_limit:
                raise HTTPError(400, "trailer section too long")
            taken, self.trailer = len(joined) - len(self.trailer), joined
            return taken
        taken = end - len(self.trailer)
        check_trailer(joined[:end], self.limits)
        self.completed = True
        return taken
