"""Applications only the waitress tests need (served with ``--python-path`` set to this
directory); the rest come from ``chaussette.testing.apps``."""

from __future__ import annotations

from typing import Callable, Iterable

from chaussette.testing.apps import app as conformance_app


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """``/file``: this module's source through ``wsgi.file_wrapper``; anything else: the
    conformance application."""
    if environ.get("PATH_INFO") != "/file":
        return conformance_app(environ, start_response)
    with open(__file__, "rb") as source:
        size = len(source.read())
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(size))])
    return environ["wsgi.file_wrapper"](open(__file__, "rb"))
