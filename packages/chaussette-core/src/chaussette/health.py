"""``--health-path``: the answer a polling load balancer reads, given by the server itself.

200 while serving, 503 from the moment a stop begins (``--drain-delay`` keeps serving
ordinary requests meanwhile), so the balancer takes this host out of its pool before
the socket stops accepting. A ``--max-requests`` recycle is no such stop: the host keeps
serving on its other processes, so it stays at 200. The application is never called
for it: a health check must not depend on the application's routes, and must not cost
it a request.

It is the outermost layer, so a poll is neither in the access log (a balancer polling
every second would drown it; the drain itself is logged) nor counted by
``--max-requests`` or the metrics.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, Callable, Iterable

if TYPE_CHECKING:
    from chaussette.lifecycle import Lifecycle
    from chaussette.settings import Config

App = Callable[..., Any]
StartResponse = Callable[..., Any]

METHODS = ("GET", "HEAD")


class PathError(argparse.ArgumentTypeError, ValueError):
    """A ValueError for the settings table, an ArgumentTypeError so that argparse prints
    the reason rather than "invalid value"."""


def health_path(value: Any) -> str:
    """The ``--health-path`` converter, checked when the settings are read: a path that
    can never match ``PATH_INFO`` would send the balancer the application's 404 and take
    the host out of its pool, with nothing logged to say why."""
    path = str(value)
    if not path.startswith("/") or "?" in path or "#" in path or any(char.isspace() for char in path):
        raise PathError(f"{path!r} is not a path: give one starting with /, without a query, "
                        "e.g. /healthz")
    return path


def _answer(status: str, body: bytes, *extra: tuple[str, str]) -> tuple[str, tuple[tuple[str, str], ...], bytes]:
    headers = (("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))),
               ("Cache-Control", "no-store"), *extra)
    return status, headers, body


SERVING = _answer("200 OK", b"ok\n")
DRAINING = _answer("503 Service Unavailable", b"draining\n")
NOT_ALLOWED = _answer("405 Method Not Allowed", b"GET or HEAD\n", ("Allow", ", ".join(METHODS)))


class HealthPath:
    """Answers ``config.health_path`` from ``lifecycle.draining``; every other path goes
    to ``app`` at the cost of one comparison."""

    def __init__(self, app: App, config: Config, lifecycle: Lifecycle) -> None:
        self.app = app
        self.path = config.health_path
        self.lifecycle = lifecycle

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != self.path:
            return self.app(environ, start_response)
        if environ.get("REQUEST_METHOD") not in METHODS:
            status, headers, body = NOT_ALLOWED
        elif self.lifecycle.draining:
            status, headers, body = DRAINING
        else:
            status, headers, body = SERVING
        # A new list: a server may add to the one it is given (Date, Server).
        start_response(status, list(headers))
        return [body]

    def __repr__(self) -> str:
        return repr(self.app)
