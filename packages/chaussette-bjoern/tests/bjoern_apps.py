"""Applications for the bjoern-specific tests, routed by path (served as
``bjoern_apps.app`` with this directory on the server's ``--python-path``)."""

from __future__ import annotations

import json
import sys
from typing import Callable, Iterable


def info(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """What the environ says about the connection."""
    keys = ("REMOTE_ADDR", "REMOTE_PORT", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL")
    body = json.dumps({key: environ.get(key) for key in keys}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def hello(environ: dict, start_response: Callable) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "11")])
    return [b"hello world"]


def generated(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """A body of unknown length (no Content-Length): bjoern frames it chunked."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"abc"
    yield b""
    yield b"defg"


def exit_(environ: dict, start_response: Callable) -> Iterable[bytes]:
    raise SystemExit(3)


def exit_in_body(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """SystemExit once the response has started: the connection can only be closed."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"started"
    raise SystemExit(4)


def caller(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """Who called the application: bjoern's C code alone (the Python frame above is
    ``bjoern.server_run``) or the Python adapter (``__call__``)."""
    frame = sys._getframe(1)
    while frame.f_code.co_filename == __file__:  # past the router
        frame = frame.f_back
    body = frame.f_code.co_name.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


ROUTES = {"/info": info, "/generated": generated, "/exit": exit_, "/exit-in-body": exit_in_body,
          "/caller": caller, "/": hello}


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    return ROUTES[environ["PATH_INFO"]](environ, start_response)
