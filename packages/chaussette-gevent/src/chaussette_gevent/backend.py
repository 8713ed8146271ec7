"""The four gevent backends: one pywsgi server, three request handlers.

This module only names classes: gevent and the websocket libraries are imported in
``check()``, ``patch()`` and ``serve()``, because core loads the backend class before
monkey-patching and before the application is imported.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Sequence

from chaussette.backends import Backend, Capabilities, require
from chaussette.errors import BackendError

if TYPE_CHECKING:
    from chaussette.lifecycle import Lifecycle
    from chaussette.sockets import Listener

#: pywsgi fixes for chunk-trailer smuggling (CVE-2023-41419) and the Expect: 100-continue leak.
MIN_GEVENT = (25, 4, 1)
#: ws4py 0.6 renamed 1.3's ``UpgradableWSGIHandler`` to ``WebSocketWSGIHandler``.
MIN_WS4PY = (0, 6, 0)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


class GeventBackend(Backend):
    name = "gevent"
    summary = "gevent's pywsgi server: one greenlet per connection, monkey-patched stdlib"
    capabilities = Capabilities(unix_sockets=True, spawn=True, graceful_stop=True, monkey_patch=True)
    #: What to pip install for this backend (named in error messages).
    install: ClassVar[str] = "chaussette-gevent"

    def check(self) -> None:
        gevent = require("gevent", self.install)
        if _version(gevent.__version__) < MIN_GEVENT:
            wanted = ".".join(map(str, MIN_GEVENT))
            raise BackendError(f"gevent {gevent.__version__} is too old (its pywsgi has known request "
                               f"smuggling bugs); install gevent>={wanted}: pip install -U {self.install}")

    def patch(self) -> None:
        from gevent import monkey

        monkey.patch_all()

    def handler_class(self) -> type:
        """The pywsgi handler for each connection; imported late, after patching."""
        from chaussette_gevent.handlers import Handler

        return Handler

    def serve(self, app: Callable[..., Any], listeners: Sequence[Listener],
              lifecycle: Lifecycle) -> None:
        from chaussette_gevent.server import serve

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
    capabilities = Capabilities(unix_sockets=True, spawn=True, graceful_stop=True, monkey_patch=True,
                                websockets=True)
    install = "chaussette-gevent[websocket]"

    def check(self) -> None:
        super().check()
        require("geventwebsocket.handler", self.install)

    def handler_class(self) -> type:
        from chaussette_gevent.handler_websocket import GeventWebSocketHandler

        return GeventWebSocketHandler


class GeventWs4pyBackend(GeventBackend):
    name = "geventws4py"
    summary = "gevent pywsgi with ws4py's WebSocketWSGIHandler (serve a WebSocketWSGIApplication)"
    capabilities = Capabilities(unix_sockets=True, spawn=True, graceful_stop=True, monkey_patch=True,
                                websockets=True)
    install = "chaussette-gevent[ws4py]"

    def check(self) -> None:
        super().check()
        # Only the package here: ws4py.server.geventserver imports ssl and threading, which
        # must wait until gevent has patched them.
        ws4py = require("ws4py", self.install)
        if _version(getattr(ws4py, "__version__", "0")) < MIN_WS4PY:
            raise BackendError(f"ws4py {getattr(ws4py, '__version__', '?')} is too old; the geventws4py "
                               f"backend needs ws4py>=0.6.0: pip install -U {self.install}")

    def handler_class(self) -> type:
        from chaussette_gevent.handler_ws4py import Ws4pyHandler

        return Ws4pyHandler
