"""Applications only the waitress tests need (served with ``--python-path`` set to this
directory); the rest come from ``chaussette_testing.apps``."""

from __future__ import annotations

from typing import Any, Callable, Iterable

from waitress import wasyncore

from chaussette_testing.apps import app as conformance_app

#: Sends the server has made, counted by wrapping waitress's dispatcher (``/sends``).
SENDS = [0]
_send = wasyncore.dispatcher.send


def _counted_send(self: Any, data: Any, *args: Any, **kwargs: Any) -> int:
    SENDS[0] += 1
    return _send(self, data, *args, **kwargs)


wasyncore.dispatcher.send = _counted_send


def _plain(start_response: Callable, body: bytes) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """``/file``: this module's source through ``wsgi.file_wrapper``; ``/sends``: how many
    sends the server has made so far; ``/big?size=N``: N bytes in one piece; anything else:
    the conformance application."""
    path = environ.get("PATH_INFO")
    if path == "/sends":
        return _plain(start_response, str(SENDS[0]).encode())
    if path == "/big":
        return _plain(start_response, b"b" * int(environ["QUERY_STRING"].partition("=")[2]))
    if path != "/file":
        return conformance_app(environ, start_response)
    with open(__file__, "rb") as source:
        size = len(source.read())
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(size))])
    return environ["wsgi.file_wrapper"](open(__file__, "rb"))
