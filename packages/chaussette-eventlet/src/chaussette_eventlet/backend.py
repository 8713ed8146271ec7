"""The ``eventlet`` backend: ``eventlet.wsgi`` green threads on the sockets core opened.

Importing this module imports no eventlet: core loads the backend class before it opens
the listeners and before it monkey-patches, and importing eventlet already prints its
deprecation warning. The server itself lives in ``chaussette_eventlet.serving``, imported
only by ``serve()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

from chaussette.backends import Backend, Capabilities
from chaussette_eventlet import library

if TYPE_CHECKING:
    from chaussette.lifecycle import Lifecycle
    from chaussette.sockets import Listener


class EventletBackend(Backend):
    name = "eventlet"
    summary = "eventlet.wsgi green threads; monkey-patches the standard library"
    capabilities = Capabilities(spawn=True, monkey_patch=True, one_loop=True)

    def check(self) -> None:
        library.check()

    def patch(self) -> None:
        """Before the application is imported, so its sockets, sleeps and locks cooperate
        with eventlet's hub."""
        library.monkey_patch()

    def serve(self, app: Callable[..., Any], listeners: Sequence[Listener], lifecycle: Lifecycle) -> None:
        from chaussette_eventlet.serving import GreenServer

        server = GreenServer(app, listeners, self.config, self.log)
        lifecycle.install(server.stop, server.signals)
        server.run()
