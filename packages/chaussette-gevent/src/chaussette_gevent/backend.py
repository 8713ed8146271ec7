"""The four gevent backends: one pywsgi server, three request handlers.

This module only names classes: gevent and the websocket libraries are imported in
``check()`` (``library.py``), ``patch()`` and ``serve()``, because core loads the backend
class before monkey-patching and before the application is imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, ClassVar, Sequence

from chaussette.backends import Backend, Capabilities
from chaussette_gevent.library import require_gevent, require_gevent_websocket, require_ws4py

if TYPE_CHECKING:
    from chaussette.lifecycle import Lifecycle
    from chaussette.sockets import Listener


class GeventBackend(Backend):
    name = "gevent"
    summary = "gevent's pywsgi server: one greenlet per connection, monkey-patched stdlib"
    capabilities = Capabilities(spawn=True, monkey_patch=True, one_loop=True)
    #: What to pip install for this backend (named in error messages).
    install: ClassVar[str] = "chaussette-gevent"

    def check(self) -> None:
        require_gevent(self.install)

    def patch(self) -> None:
        from gevent import monkey

        monkey.patch_all()

    def handler_class(self) -> type:
        """The pywsgi handler for each connection; imported late, after patching."""
        from chaussette_gevent.protocol import Handler

        return Handler

    def serve(self, app: Callable[..., Any], listeners: Sequence[Listener],
              lifecycle: Lifecycle) -> None:
        from chaussette_gevent.serving import serve

        serve(app, listeners, lifecycle, self.config, self.log, self.handler_class(), self.stopping)

    def stopping(self) -> None:
        """Runs in serve()'s greenlet once a graceful stop has closed listeners, idle
        connections and websockets: subclasses end what else would hold the drain."""


class FastGeventBackend(GeventBackend):
    """gevent 1.0 dropped the libevent ``gevent.wsgi`` server this name used to mean; the
    name stays so old Circus configs keep working, served by the same pywsgi server."""

    name = "fastgevent"
    summary = "old name kept for 1.3 configs: the same server as gevent (gevent.pywsgi)"

    def check(self) -> None:
        super().check()
        self.log.info("Backend 'fastgevent' maps to 'gevent' (gevent.pywsgi): gevent's libevent "
                      "server gevent.wsgi no longer exists")


class GeventWebSocketBackend(GeventBackend):
    name = "geventwebsocket"
    summary = "gevent pywsgi with gevent-websocket: apps find environ['wsgi.websocket']"
    install = "chaussette-gevent[websocket]"

    def check(self) -> None:
        super().check()
        require_gevent_websocket(self.install)

    def handler_class(self) -> type:
        from chaussette_gevent.handler_websocket import GeventWebSocketHandler

        return GeventWebSocketHandler


class GeventWs4pyBackend(GeventBackend):
    name = "geventws4py"
    summary = "gevent pywsgi with ws4py's WebSocketWSGIHandler (serve a WebSocketWSGIApplication)"
    install = "chaussette-gevent[ws4py]"

    def check(self) -> None:
        super().check()
        require_ws4py(self.install)

    def handler_class(self) -> type:
        from chaussette_gevent.handler_ws4py import Ws4pyHandler

        return Ws4pyHandler
