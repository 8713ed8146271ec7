"""Applications the conformance suite serves, routed by path."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Callable, Iterable
from urllib.parse import parse_qs

from chaussette import lifecycle

#: What ``/stop-me`` gives as its reason to stop: the server logs "<reason>: stopping".
STOP_REASON = "stop requested by the test app"


def _reply(start_response: Callable, body: bytes, status: str = "200 OK",
           content_type: str = "text/plain") -> list[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def _echo(environ: dict, start_response: Callable) -> Iterable[bytes]:
    body = environ["wsgi.input"].read()
    info = {
        "method": environ["REQUEST_METHOD"],
        "path": environ.get("PATH_INFO", ""),
        "query": environ.get("QUERY_STRING", ""),
        "content_length": environ.get("CONTENT_LENGTH"),
        "remote_addr": environ.get("REMOTE_ADDR"),
        "remote_port": environ.get("REMOTE_PORT"),
        "body_length": len(body),
        "body": body.decode("latin-1"),
        "headers": {k: v for k, v in environ.items() if k.startswith("HTTP_")},
    }
    return _reply(start_response, json.dumps(info).encode(), content_type="application/json")


def _stream(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """Yields a first chunk, then waits for the test to create the ``gate`` file."""
    gate = parse_qs(environ.get("QUERY_STRING", "")).get("gate", [""])[0]
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"first\n"
    deadline = time.monotonic() + 20
    while gate and not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.02)
    for number in range(3):
        yield b"chunk %d\n" % number
    yield b"last\n"


def _slow(environ: dict, start_response: Callable) -> Iterable[bytes]:
    seconds = float(parse_qs(environ.get("QUERY_STRING", "")).get("seconds", ["1"])[0])
    print(f"slow request started ({seconds}s)", file=sys.stderr, flush=True)
    time.sleep(seconds)
    return _reply(start_response, b"done\n")


def _error(environ: dict, start_response: Callable) -> Iterable[bytes]:
    raise RuntimeError("secret-detail-in-exception")


def _error_midstream(environ: dict, start_response: Callable) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"partial\n"
    raise RuntimeError("secret-detail-in-exception")


def _stop_me(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """Asks the server serving it for a graceful stop, as an app that decides its process
    has served enough would; answered like any request in flight when a stop begins."""
    if not lifecycle.request_stop(STOP_REASON):
        return _reply(start_response, b"no server to stop in this process\n", "500 Internal Server Error")
    return _reply(start_response, b"stop requested\n")


def _hello(environ: dict, start_response: Callable) -> Iterable[bytes]:
    return _reply(start_response, b"hello world")


ROUTES = {"/echo": _echo, "/stream": _stream, "/slow": _slow, "/error": _error,
          "/error-midstream": _error_midstream, "/stop-me": _stop_me, "/": _hello}


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    handler = ROUTES.get(environ.get("PATH_INFO", "/"))
    if handler is None:
        return _reply(start_response, b"not found\n", "404 Not Found")
    return handler(environ, start_response)


def create_app(greeting: str = "hello") -> Callable:
    """A factory, for ``pkg.mod:create_app()`` and positional ``arguments``."""

    def greeter(environ: dict, start_response: Callable) -> Iterable[bytes]:
        return _reply(start_response, greeting.encode())

    return greeter
