"""The ``socketio`` backend: python-socketio 5 served by chaussette-gevent's server.

The server, its handlers and its graceful stop are the ``geventwebsocket`` backend's:
python-socketio's gevent mode finds gevent-websocket's ``environ["wsgi.websocket"]``
there. This backend adds what is Socket.IO's: the checks, what may be named as the
application, and ending long polls on a graceful stop.

Like every backend module, this one imports no server library: python-socketio loads
ssl and requests, which must wait for gevent's monkey-patching (``serve()`` runs after it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

from chaussette_gevent.backend import GeventWebSocketBackend
from chaussette_socketio.library import check_python_socketio, import_socketio_apps

if TYPE_CHECKING:
    from chaussette.lifecycle import Lifecycle
    from chaussette.sockets import Listener


class SocketIOBackend(GeventWebSocketBackend):
    name = "socketio"
    summary = "python-socketio 5 on gevent with gevent-websocket: serve a socketio.Server or WSGIApp"
    install = "chaussette-socketio"

    def check(self) -> None:
        super().check()  # gevent and gevent-websocket
        check_python_socketio(self.install)

    engines: list = []

    def accepts(self, app: Any) -> bool:
        """A ``socketio.Server`` too: ``serve()`` wraps it (called after patching)."""
        return callable(app) or isinstance(app, import_socketio_apps().socketio.Server)

    def serve(self, app: Callable[..., Any], listeners: Sequence[Listener],
              lifecycle: Lifecycle) -> None:
        apps = import_socketio_apps()
        app = apps.wsgi_app(app)
        self.engines = apps.engine_servers(app)
        apps.refuse_other_async_modes(self.engines)
        super().serve(app, listeners, lifecycle)

    def stopping(self) -> None:
        from chaussette_socketio.stopping import end_polls

        end_polls(self.engines)
