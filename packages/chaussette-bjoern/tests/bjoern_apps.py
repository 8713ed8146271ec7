"""Applications for the bjoern-specific tests, routed by path (served as
``bjoern_apps.app`` with this directory on the server's ``--python-path``)."""

from __future__ import annotations

import json
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


ROUTES = {"/info": info, "/generated": generated, "/exit": exit_, "/": hello}


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    return ROUTES[environ["PATH_INFO"]](environ, start_response)
