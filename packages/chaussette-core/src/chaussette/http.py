"""HTTP helpers every backend shares: reason phrases, the Date header, the one refusal
response, the head limits read from the settings, and the connection facts of a unix
socket.

Public and covered by ``chaussette.backends.API_VERSION``: backend packages import these
from here (the stdlib backend too) rather than from each other, so a backend can be
pinned, dropped or rewritten without the others noticing.
"""

from __future__ import annotations

import time
from email.utils import formatdate
from typing import TYPE_CHECKING

from chaussette.framing import HTTPError, Limits

if TYPE_CHECKING:
    from chaussette.settings import Config

#: Seconds a read or write may wait once a request has started (the head's first byte
#: waits for ``--keep-alive`` instead).
IO_TIMEOUT = 60.0
#: AF_UNIX peers have no address; applications expect an IP in ``REMOTE_ADDR``.
UNIX_REMOTE_ADDR = "127.0.0.1"
#: The connection part of the environ of a request on a unix socket, for backends whose
#: library fills it in itself (wrongly): AF_UNIX has no IP address or port to give.
UNIX_ENVIRON = {"REMOTE_ADDR": UNIX_REMOTE_ADDR, "REMOTE_PORT": "", "SERVER_NAME": "localhost",
                "SERVER_PORT": "0"}
#: Statuses whose responses never carry a body (HEAD and 1xx aside).
BODYLESS_STATUSES = frozenset((204, 304))
#: Reason phrases of the statuses core's parser refuses with.
REASONS = {400: "Bad Request", 414: "URI Too Long", 417: "Expectation Failed",
           431: "Request Header Fields Too Large", 505: "HTTP Version Not Supported"}


def limits(config: Config) -> Limits:
    """The request-head limits the user set (``--limit-request-*``)."""
    return Limits(config.limit_request_line, config.limit_request_fields,
                  config.limit_request_field_size)


_date_cache: tuple[int, str] = (0, "")


def http_date() -> str:
    """The ``Date`` header's value, formatted at most once a second: every response
    carries one and ``formatdate`` costs more than the rest of a small response head."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]


def reason(status: int) -> str:
    return REASONS.get(status, "Bad Request")


def refusal(error: HTTPError) -> bytes:
    """The whole response to a request refused before the application ran: the same
    bytes on every backend, and the connection closes after it."""
    body = error.reason.encode("ascii") + b"\n"
    return (f"HTTP/1.1 {error.status} {reason(error.status)}\r\n"
            f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
            f"Date: {http_date()}\r\nConnection: close\r\n\r\n").encode("ascii") + body

