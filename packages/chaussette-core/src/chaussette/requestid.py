"""Request ids (``--request-id-header NAME``): one id per request, the same in the
environ, the response and the access log, so a line in a proxy's log, the application's
log and chaussette's access log can be matched.

The id a proxy sent is kept when it is sane (1 to 200 visible ASCII characters), so one
id follows the request through every hop; anything else, absent, too long, with spaces,
control or non-ASCII bytes, is replaced by a fresh one: a client must not be able to write
what it likes into log lines through it.
"""

from __future__ import annotations

import os
import random
import re
from typing import TYPE_CHECKING, Any, Callable, Iterable

from chaussette.errors import ChaussetteError

if TYPE_CHECKING:
    from chaussette.settings import Config

#: Where the application (and the access log) finds the id.
ENVIRON_KEY = "chaussette.request_id"
MAX_LENGTH = 200
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: Headers the id must not take the place of: they frame or route the response.
_RESERVED = frozenset(("content-length", "transfer-encoding", "connection", "keep-alive", "upgrade",
                       "te", "trailer", "host", "date", "server", "set-cookie", "content-type"))

# Ids are unique, not secret: 128 bits from a generator of this process's own, seeded
# from the OS, cost 0.5 µs; os.urandom() makes a system call per id (1.7 µs), uuid4()
# 6 µs. An application's random.seed() does not touch this generator, so ids never
# repeat across processes seeded alike.
_random = random.Random(os.urandom(32))


def new_id() -> str:
    """32 lower-case hex digits, like ``uuid4().hex``."""
    return _random.getrandbits(128).to_bytes(16, "big").hex()


def sane(value: str) -> bool:
    """Whether an id a client sent may be kept: 1 to MAX_LENGTH visible ASCII characters."""
    return 0 < len(value) <= MAX_LENGTH and value.isascii() and value.isprintable() and " " not in value


def environ_key(header: str) -> str:
    """The environ key a request header arrives under (PEP 3333)."""
    name = header.upper().replace("-", "_")
    return name if name in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + name


class RequestId:
    """Puts the request's id in ``environ["chaussette.request_id"]`` and in the request
    header's own environ key (so a framework reading the header sees the id chaussette
    kept or made), and sends it back in the response header of the same name.

    An application that sets that response header itself has it replaced: the response
    must carry the id the access log shows. An application that wants to know the id
    reads it from the environ.
    """

    def __init__(self, app: Callable[..., Any], config: Config) -> None:
        header = config.request_id_header or ""
        if not _TOKEN.fullmatch(header) or header.lower() in _RESERVED:
            raise ChaussetteError(f"--request-id-header {header!r} cannot carry a request id: give a "
                                  "header name of its own, e.g. X-Request-ID")
        self.app = app
        self.header = header
        self._lower = header.lower()
        self._key = environ_key(header)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        given = environ.get(self._key)
        request_id = given if given is not None and sane(given) else new_id()
        environ[ENVIRON_KEY] = environ[self._key] = request_id
        header, lower = self.header, self._lower

        def start_with_id(status: str, headers: list, exc_info: Any = None) -> Any:
            # A new list: an application may pass the same list object on every request.
            headers = [item for item in headers if item[0].lower() != lower]
            headers.append((header, request_id))
            return start_response(status, headers, exc_info)

        return self.app(environ, start_with_id)

    def __repr__(self) -> str:
        return repr(self.app)
