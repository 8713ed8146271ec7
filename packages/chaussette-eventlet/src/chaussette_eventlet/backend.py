"""The ``eventlet`` backend: ``eventlet.wsgi`` green threads on the sockets core opened.

Importing this module imports no eventlet: core loads the backend class before it opens
the listeners and before it monkey-patches, and importing eventlet already prints its
deprecation warning. The server itself lives in ``chaussette_eventlet.server``, imported
only by ``serve()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

from chaussette.backends import Backend, Capabilities, require

if TYPE_CHECKING:
    from chaussette.lifecycle import Lifecycle
    from chaussette.sockets import Listener

INSTALL = "chaussette-eventlet"


class EventletBackend(Backend):
    name = "eventlet"
    summary = "eventlet.wsgi green threads; monkey-patches the standard library"
    capabilities = Capabilities(unix_sockets=True, spawn=True, graceful_stop=True, monkey_patch=True)

    def check(self) -> None:
        """Fail at start-up, not on the first request, if eventlet is missing or broken."""
        require("eventlet.wsgi", INSTALL)

    def patch(self) -> None:
        """Green the standard library before the application is imported, so the
        application's sockets, sleeps and locks cooperate with eventlet's hub."""
        require("eventlet", INSTALL).monkey_patch()

    def serve(self, app: Callable[..., Any], listeners: Sequence[Listener], lifecycle: Lifecycle) -> None:
        from chaussette_eventlet.server import GreenServer

        server = GreenServer(app, listeners, self.config, self.log)
        lifecycle.install(server.stop)
        server.run()
