"""The Python adapter: what bjoern gets wrong, corrected between bjoern and the application:
the environ, HEAD responses, the stop's ``Connection: close``, and an application's
SystemExit.

Only for a bjoern that is not one of chaussette's marked builds (stock bjoern, or builds
before 3.2.2+chaussette.3): those do all this in C (ci/build-bjoern, fixes 5 and 9-12), and
the backend hands them the application as it is, which saves this wrapper's cost on
every request.

bjoern fills the server's address from the listening socket once (an IPv6 listener got
none), and a unix-socket client has no address (stock bjoern formats garbage, the fixed
builds before 3.2.2+chaussette.3 leave it empty). The backend serves a single listener, so
the right values for the server are known once; a unix-socket client gets core's usual
ones (``UNIX_ENVIRON``, their one source; a TCP client's REMOTE_ADDR and REMOTE_PORT come
from bjoern). Other responses than HEAD go to bjoern untouched, which keeps its fast paths
(a one-item list, ``wsgi.file_wrapper``).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Protocol

from chaussette.http import UNIX_ENVIRON
from chaussette.sockets import Listener

CLOSE = ("Connection", "close")


class Stopping(Protocol):
    stopping: bool


def fixed_environ(listener: Listener) -> dict[str, str]:
    """The environ entries bjoern gets wrong, right for every request on ``listener``."""
    if listener.is_unix:
        return dict(UNIX_ENVIRON)
    host, port = listener.sock.getsockname()[:2]
    return {"SERVER_NAME": host, "SERVER_PORT": str(port)}


class Application:
    """What bjoern calls: the environ fixed, then the application.

    Once the server stops, responses say ``Connection: close``, so that a client on a
    kept-alive connection closes it: bjoern's shutdown only ends once every connection is
    closed. (bjoern decides keep-alive from the request alone and still adds its own
    ``Connection: Keep-Alive`` after the application's headers; clients take the first.)
    """

    def __init__(self, app: Callable[..., Any], listener: Listener, server: Stopping) -> None:
        self.app = app
        self.fixed = fixed_environ(listener)
        self.server = server

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ.update(self.fixed)
        if self.server.stopping:
            start_response = _closing(start_response)
        try:
            if environ["REQUEST_METHOD"] == "HEAD":
                return _head(self.app, environ, start_response)
            return self.app(environ, start_response)
        except SystemExit as exc:
            # bjoern hands it to PyErr_Print, which then tries to end the interpreter from
            # the loop thread: the server hangs. An error like any other instead (a 500).
            raise RuntimeError(f"the application raised SystemExit({exc.code!r})") from exc


def _closing(start_response: Callable[..., Any]) -> Callable[..., Any]:
    def closing(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        return start_response(status, [*headers, CLOSE], exc_info)

    return closing


def _head(app: Callable[..., Any], environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """A HEAD response without its body, which bjoern sends as it would for a GET.

    Without a Content-Length, bjoern would also frame the (absent) body as chunked and
    send its last-chunk marker: the body is run to count its length, which is the
    Content-Length the GET would have had.
    """
    given: list[Any] = []

    def remember(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        given[:] = [status, headers]  # nothing is sent before the body has run: no exc_info check

    result = app(environ, remember)
    try:
        length = sum(len(chunk) for chunk in result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    if not given:
        raise AssertionError("the application returned without calling start_response")
    status, headers = given
    if not any(name.lower() == "content-length" for name, _ in headers):
        headers = [*headers, ("Content-Length", str(length))]
    start_response(status, headers)
    return []
