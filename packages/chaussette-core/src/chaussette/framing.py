"""Strict HTTP/1.1 request-head parsing and message framing (RFC 9112).

Lenient parsers are how requests get smuggled: ``int()`` accepts ``+5`` and ``1_0``,
CPython's header parser splits on a bare CR, and a request with both Content-Length and
Transfer-Encoding means different things to different hops. Everything here answers
those cases with a 4xx and closes the connection, before the application runs.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from typing import Callable, Protocol

_TCHAR = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"
_REQUEST_LINE_RE = rb"([" + _TCHAR + rb"]+) ([^\x00-\x20\x7f]+) HTTP/(\d)\.(\d)\r\n"
_HEADER_LINE_RE = rb"([" + _TCHAR + rb"]+):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*?)[ \t]*\r\n"
_REQUEST_LINE = re.compile(_REQUEST_LINE_RE)
_HEADER_LINE = re.compile(_HEADER_LINE_RE)
#: A whole head in one match (parse_head's fast path): the same line rules as read_head.
_HEAD = re.compile(rb"(?:\r\n){0,4}" + _REQUEST_LINE_RE + rb"((?:" + _HEADER_LINE_RE.replace(b"(", b"(?:")
                   + rb")*)\r\n")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(;[^\x00-\x08\x0a-\x1f\x7f]*)?\r\n")
_DIGITS = re.compile(rb"[0-9]{1,18}")
READ_SIZE = 1 << 16


class HTTPError(Exception):
    """A request we refuse: answered with ``status`` and the connection closed."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Limits:
    request_line: int = 8190
    fields: int = 100
    field_size: int = 8190


@dataclass
class RequestHead:
    method: str
    target: str
    version: tuple[int, int]
    headers: list[tuple[str, str]] = field(default_factory=list)

    def get_all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]


def read_head(readline: Callable[[int], bytes], limits: Limits = Limits()) -> RequestHead | None:
    """Read one request head; ``None`` on a clean end of stream before any byte."""
    line = readline(limits.request_line + 2)
    skipped = 0
    while line == b"\r\n" and skipped < 4:  # RFC 9112 2.2: tolerate CRLFs between requests
        line, skipped = readline(limits.request_line + 2), skipped + 1
    if not line:
        return None
    if not line.endswith(b"\n"):
        if len(line) >= limits.request_line + 2:
            raise HTTPError(414, "request line too long")
        raise HTTPError(400, "incomplete request line")
    match = _REQUEST_LINE.fullmatch(line)
    if match is None:
        raise HTTPError(400, "malformed request line")
    method, target, major, minor = match.groups()
    if major != b"1":
        raise HTTPError(505, "HTTP version not supported")
    head = RequestHead(method.decode("ascii"), target.decode("latin-1"), (1, int(minor)))
    total = 0
    while True:
        line = readline(limits.field_size + 2)
        if line == b"\r\n":
            return head
        if not line.endswith(b"\n"):
            if len(line) >= limits.field_size + 2:
                raise HTTPError(431, "header field too large")
            raise HTTPError(400, "incomplete header section")
        total += 1
        if total > limits.fields:
            raise HTTPError(431, "too many header fields")
        match = _HEADER_LINE.fullmatch(line)
        if match is None:
            raise HTTPError(400, "malformed header field")
        head.headers.append((match.group(1).decode("ascii").lower(), match.group(2).decode("latin-1")))


def parse_head(raw: bytes, limits: Limits = Limits()) -> RequestHead:
    """Parse a complete request head already in memory, as ``read_head`` would.

    The plug point for servers with their own (lenient) incremental parser, such as
    waitress: once their buffer holds the head up to and including its blank line, they
    call this, then ``check_host`` and ``body_framing``, and answer an ``HTTPError``
    before their own parser acts on the head. ``raw`` must end with the blank line.
    """
    match = _HEAD.fullmatch(raw)
    if match is not None and match.group(3) == b"1":  # the common case, in one regex pass
        method, target, _, minor, block = match.groups()
        fields = _HEADER_LINE.findall(block)
        if (match.start(5) - match.start(1) <= limits.request_line + 2 and len(fields) <= limits.fields
                and (len(block) <= limits.field_size
                     or max(map(len, block.split(b"\r\n"))) <= limits.field_size)):
            return RequestHead(method.decode("ascii"), target.decode("latin-1"), (1, int(minor)),
                               [(name.decode("ascii").lower(), value.decode("latin-1")) for name, value in fields])
    buffer = io.BytesIO(raw)  # otherwise the stream parser finds the exact refusal
    head = read_head(buffer.readline, limits)
    if head is None or buffer.tell() != len(raw):
        raise HTTPError(400, "incomplete request head")
    return head


def chunk_size(line: bytes) -> int:
    """The size announced by one chunk-size line (CRLF included); extensions are ignored.

    Hex digits only (no ``0x``, sign or underscore) and nothing but OWS before an
    optional extension: the same rules for every backend that decodes chunks itself.
    """
    match = _CHUNK_SIZE.fullmatch(line)
    if match is None:
        raise HTTPError(400, "invalid chunk size line")
    return int(match.group(1), 16)


@dataclass(frozen=True)
class Framing:
    """How the body is delimited: ``length`` bytes, or ``chunked``."""

    length: int = 0
    chunked: bool = False


def body_framing(head: RequestHead) -> Framing:
    """Apply RFC 9112 section 6 strictly; anything ambiguous is a 400."""
    lengths = head.get_all("content-length")
    codings = head.get_all("transfer-encoding")
    if codings:
        if lengths:
            raise HTTPError(400, "both Transfer-Encoding and Content-Length")
        if head.version < (1, 1):
            raise HTTPError(400, "Transfer-Encoding in an HTTP/1.0 request")
        parts = [part.strip(" \t").lower() for value in codings for part in value.split(",")]
        if parts != ["chunked"]:
            raise HTTPError(400, "unsupported Transfer-Encoding")
        return Framing(chunked=True)
    if not lengths:
        return Framing()
    # Only OWS (space, tab) around list members: str.strip() would also eat NBSP and NEL.
    values = {part.strip(" \t").encode("latin-1") for value in lengths for part in value.split(",")}
    if len(values) != 1:
        raise HTTPError(400, "conflicting Content-Length values")
    value = values.pop()
    if not _DIGITS.fullmatch(value):
        raise HTTPError(400, "invalid Content-Length")
    return Framing(length=int(value))


def check_host(head: RequestHead) -> None:
    """RFC 9112 3.2: an HTTP/1.1 request carries exactly one Host."""
    hosts = head.get_all("host")
    if len(hosts) > 1 or (head.version >= (1, 1) and not hosts):
        raise HTTPError(400, "missing or repeated Host header")


class Source(Protocol):
    """What a body is read from: a buffered socket file, or a green one."""

    def read(self, size: int = ..., /) -> bytes: ...
    def readline(self, size: int = ..., /) -> bytes: ...


class Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


def dechunk(rfile: Source, sink: Sink, limits: Limits = Limits()) -> int:
    """Copy a chunked body from ``rfile`` into ``sink``; returns its length.

    The whole body is read before the application runs, so a malformed chunk is a 400,
    never an exception in the middle of the app, and the app sees a CONTENT_LENGTH.
    """
    size_total = 0
    while True:
        size = chunk_size(rfile.readline(limits.field_size + 2))
        if size == 0:
            break
        remaining = size
        while remaining:  # in pieces: a buffered read(size) would allocate size bytes at once
            data = rfile.read(min(remaining, READ_SIZE))
            if not data:
                raise HTTPError(400, "truncated chunk")
            sink.write(data)
            remaining -= len(data)
        if rfile.read(2) != b"\r\n":
            raise HTTPError(400, "chunk data not followed by CRLF")
        size_total += size
    _read_trailer(rfile.readline, limits)  # validated, then dropped
    return size_total


def check_trailer(raw: bytes, limits: Limits = Limits()) -> None:
    """Validate a trailer section already in memory (its blank line included), for
    backends that decode chunks themselves; the fields are dropped either way."""
    buffer = io.BytesIO(raw)
    _read_trailer(buffer.readline, limits)
    if buffer.tell() != len(raw):
        raise HTTPError(400, "invalid trailer section")


def _read_trailer(readline: Callable[[int], bytes], limits: Limits) -> None:
    fields = 0
    while True:
        line = readline(limits.field_size + 2)
        if line == b"\r\n":
            return
        fields += 1
        if fields > limits.fields or _HEADER_LINE.fullmatch(line) is None:
            raise HTTPError(400, "invalid trailer section")
