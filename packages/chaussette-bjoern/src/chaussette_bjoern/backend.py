"""The ``bjoern`` backend: bjoern's single-threaded libev loop on core's socket.

This module only declares the backend and what core must refuse for it: importing it
must stay cheap, so bjoern itself is imported in ``check()`` and ``serve()`` only
(through ``chaussette_bjoern.library``).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable, Sequence

from chaussette.backends import Backend, Capabilities
from chaussette.lifecycle import Lifecycle
from chaussette.sockets import Listener

if TYPE_CHECKING:
    from chaussette_bjoern.libev import Libev


class BjoernBackend(Backend):
    name = "bjoern"
    summary = "bjoern: single-threaded C server on libev, one request at a time per process"
    capabilities = Capabilities(
        # bjoern's server_run() takes one socket, and its loop keeps state in globals.
        max_listeners=1,
        one_loop=True,  # the application runs in the loop, one call at a time
        # Core options bjoern has no knob for: refused when given, never ignored.
        unsupported={
            "keep_alive": "bjoern keeps a connection open for as long as the client wants (it has "
                          "no idle timeout and cannot turn keep-alive off)",
            "limit_request_line": "bjoern's request-line limit is compiled in",
            "limit_request_fields": "bjoern's header limits are compiled in",
            "limit_request_field_size": "bjoern's header limits are compiled in",
        },
    )

    def check(self) -> None:
        """Refuse a bjoern the stop cannot drive."""
        self.libev  # noqa: B018 - refused here, before any socket is opened, rather than in serve()

    @functools.cached_property
    def libev(self) -> Libev:
        """libev's handle, found once: ``check()`` refuses a bjoern without it, ``serve()`` uses it."""
        from chaussette_bjoern import library

        return library.libev()

    def serve(self, app: Callable[..., Any], listeners: Sequence[Listener], lifecycle: Lifecycle) -> None:
        from chaussette_bjoern import library
        from chaussette_bjoern.serving import BjoernLoop

        warning = library.stock_bjoern_warning(library.installed_version())
        if warning is not None:
            self.log.warning(warning)
        listener, = listeners  # core gives no more (max_listeners)
        BjoernLoop(library.bjoern(), self.libev, app, listener, self.log,
                   adapt=not library.marked()).run(lifecycle)
