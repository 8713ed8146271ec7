"""The ``socketio`` backend: python-socketio 5 served by chaussette-gevent's server.

The server, its handlers and its graceful stop are the ``geventwebsocket`` backend's:
python-socketio's gevent mode finds gevent-websocket's ``environ["wsgi.websocket"]``
there. This backend adds what is Socket.IO's: the checks, what may be named as the
application, and ending long polls on a graceful stop.

Like every backend module, this one imports no server library: python-socketio loads
ssl and requests, which must wait for gevent's monkey-patching (``accepts()`` and
``adapt()`` run after it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

from chaussette_gevent.backend import GeventWebSocketBackend
from chaussette_socketio.library import check_python_socketio, import_socketio_apps

if TYPE_CHECKING:
    import engineio


class SocketIOBackend(GeventWebSocketBackend):
    name = "socketio"
    summary = "python-socketio 5 on gevent with gevent-websocket: serve a socketio.Server or WSGIApp"
    install = "chaussette-socketio"

    #: The Engine.IO servers found in the application by ``adapt()``, whose polling
    #: sessions ``stopping()`` ends.
    engines: Sequence[engineio.Server] = ()

    def check(self) -> None:
        super().check()  # gevent and gevent-websocket
        check_python_socketio(self.install)

    def accepts(self, app: Any) -> bool:
        """A ``socketio.Server`` too: ``adapt()`` wraps it (both run after patching)."""
        return callable(app) or isinstance(app, import_socketio_apps().socketio.Server)

    def adapt(self, app: Any) -> Callable[..., Any]:
        """What the user named as a WSGI application, its Engine.IO servers found and
        checked before core's layers wrap it: a server in another async mode is refused
        before anything is served, and no layer of core's needs to be seen through."""
        apps = import_socketio_apps()
        app = super().adapt(apps.wsgi_app(app))
        self.engines = apps.engine_servers(app)
        apps.refuse_other_async_modes(self.engines)
        return app

    def stopping(self) -> None:
        from chaussette_socketio.stopping import end_polls

        end_polls(self.engines)
