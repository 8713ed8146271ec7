"""The application ``DrainSuite`` servers load (``chaussette_testing.drain_apps.app``):
the conformance app, plus ``/seen``, which tells the test every path the application was
called with, so a test can show the health path never reached it."""

from __future__ import annotations

import json
import threading
from typing import Callable, Iterable

from chaussette_testing import apps

SEEN_PATH = "/seen"

_seen: list[str] = []
_lock = threading.Lock()


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == SEEN_PATH:
        with _lock:
            body = json.dumps(_seen).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    with _lock:
        _seen.append(f"{environ['REQUEST_METHOD']} {path}")
    return apps.app(environ, start_response)
