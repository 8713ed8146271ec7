"""The application the access log suite serves, routed by path.

Every answer has a body of a known length, so a test can assert the exact byte count a
log line gives; the default route answers with the request id the application saw.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Callable, Iterable

#: The header the suite's servers carry request ids in (``--request-id-header``).
REQUEST_ID_HEADER = "X-Request-ID"
#: A response header the default route sets, for ``%({x-out}o)s``.
OUT_HEADER = ("X-Out", "out-value")
#: What the streaming route sends, and how long it waits between its two chunks.
STREAM_CHUNKS = (b"first\n", b"last\n")
STREAM_PAUSE = 0.3
#: How long the slow route waits before returning its list body.
SLOW_PAUSE = 0.2
#: Logged by ``/logged`` through chaussette's logger, so it lands in ``--log-output``.
LOGGED = "application line for request %s"

_log = logging.getLogger("chaussette.access_apps")


def _seen(environ: dict) -> bytes:
    return json.dumps({"request_id": environ.get("chaussette.request_id"),
                       "header": environ.get("HTTP_X_REQUEST_ID")}).encode()


def _reply(start_response: Callable, body: bytes, *headers: tuple[str, str]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body))), *headers])
    return [body]


def _stream(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """A body from a generator: the access log measures until it is closed."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield STREAM_CHUNKS[0]
    time.sleep(STREAM_PAUSE)
    yield STREAM_CHUNKS[1]


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/stream":
        return _stream(environ, start_response)
    if path == "/slow":
        time.sleep(SLOW_PAUSE)
        return _reply(start_response, b"slow\n")
    if path == "/app-id":
        # The application's own id header: the request id layer replaces it.
        return _reply(start_response, _seen(environ), (REQUEST_ID_HEADER, "set-by-the-app"))
    if path == "/logged":
        _log.info(LOGGED, environ.get("chaussette.request_id"))
        return _reply(start_response, b"logged\n")
    return _reply(start_response, _seen(environ), OUT_HEADER)
