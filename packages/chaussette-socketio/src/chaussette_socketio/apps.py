"""What the user named, as the WSGI application served, and the Engine.IO servers in it.

Imported by the backend's ``accepts()`` and ``adapt()`` only, after monkey-patching: it
imports python-socketio.
"""

from __future__ import annotations

from typing import Any, Callable

import engineio
import socketio

from chaussette.errors import BackendError

#: Instance attributes through which WSGI wrappers reach what they wrap: most middleware
#: (``app``, as werkzeug's ProxyFix), socketio.WSGIApp (``engineio_app``, ``wsgi_app``),
#: Flask and Flask-SocketIO's middleware (``wsgi_app``), socketio.Server (``eio``).
LINKS = ("app", "wsgi_app", "engineio_app", "eio", "application")
#: How far ``engine_servers`` follows them.
MAX_DEPTH = 8


def wsgi_app(app: Any) -> Callable[..., Any]:
    """A ``socketio.Server`` is not a WSGI application: serve it in ``socketio.WSGIApp``,
    which answers every other path with a plain 404. Anything else is served as it is."""
    if isinstance(app, socketio.AsyncServer):
        raise BackendError("a socketio.AsyncServer runs on asyncio, not gevent; create a "
                           "socketio.Server(async_mode='gevent') to serve it with this backend")
    if isinstance(app, socketio.Server):
        return socketio.WSGIApp(app)
    return app


def engine_servers(app: Any) -> list[engineio.Server]:
    """The Engine.IO servers reachable from ``app`` through the usual wrapper attributes
    (a ``socketio.Server`` has one, ``eio``). Instance dicts only: no property or proxy
    of the application runs."""
    found: list[engineio.Server] = []
    seen: set[int] = set()
    layer = [app]
    for _ in range(MAX_DEPTH):
        following = []
        for obj in layer:
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if isinstance(obj, engineio.Server):
                found.append(obj)
            else:
                following.extend(_links(obj))
        layer = following
    return found


def _links(obj: Any) -> list[Any]:
    try:
        attributes = object.__getattribute__(obj, "__dict__")
    except AttributeError:  # __slots__ only
        return []
    return [attributes[name] for name in LINKS if attributes.get(name) is not None]


def refuse_other_async_modes(engines: list[engineio.Server]) -> None:
    """Another async mode would bring its own concurrency (threads, eventlet) or expect
    another server's websockets: refuse it before serving anything."""
    for engine in engines:
        if engine.async_mode != "gevent":
            raise BackendError(f"the Socket.IO server runs in async_mode={engine.async_mode!r}, but the "
                               "socketio backend serves it with gevent: create it with "
                               "socketio.Server(async_mode='gevent')")
