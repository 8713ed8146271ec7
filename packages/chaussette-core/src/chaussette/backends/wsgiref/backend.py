"""The ``wsgiref`` backend's declaration: the stdlib backend, laid out like every
backend package (``backend``, ``serving``, ``protocol``)."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from chaussette.backends import Backend, Capabilities
from chaussette.lifecycle import Lifecycle
from chaussette.sockets import Listener


class WsgirefBackend(Backend):
    name = "wsgiref"
    summary = "threaded HTTP/1.1 server from the standard library only"
    capabilities = Capabilities(threads=True)

    def serve(self, app: Callable[..., Any], listeners: Sequence[Listener], lifecycle: Lifecycle) -> None:
        from chaussette.backends.wsgiref.serving import ThreadedServer

        server = ThreadedServer(app, listeners, self)
        lifecycle.install(server.stop)
        server.run()
