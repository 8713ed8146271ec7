"""The ``waitress`` backend: waitress's HTTP engine on the sockets core opened.

This module only declares the backend (its options, and how core's options map onto
waitress's): importing it must stay cheap, so waitress itself is imported only by
``library.check()`` and in ``serve()``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

from chaussette.backends import Backend, Capabilities
from chaussette.errors import BackendError
from chaussette.http import limits
from chaussette.lifecycle import Lifecycle
from chaussette.settings import Setting, positive_int
from chaussette.sockets import Listener
from chaussette_waitress import library

#: waitress checks idle connections every ``cleanup_interval`` seconds (30 by default);
#: a shorter channel timeout gets a matching interval so it is honoured within 2x.
CLEANUP_INTERVAL = 30


class WaitressBackend(Backend):
    name = "waitress"
    summary = "waitress: pure-Python, multi-threaded, hardened HTTP/1.1 server"
    capabilities = Capabilities(spawn=True, threads=True)
    settings = (
        Setting("waitress_threads", "Worker threads running the application, i.e. requests served "
                "at once; --spawn N sets it too.",
                default=4, convert=positive_int, flags=("--waitress-threads",), metavar="N"),
        Setting("waitress_connection_limit", "Client connections held open at once, idle keep-alive "
                "ones included; past it waitress stops accepting and new clients wait in the "
                "listen queue.",
                default=100, convert=positive_int, flags=("--waitress-connection-limit",), metavar="N"),
        Setting("waitress_channel_timeout", "Seconds a connection may stay without activity before "
                "it is closed, idle keep-alive ones included; --keep-alive N sets it too.",
                default=120, convert=positive_int, flags=("--waitress-channel-timeout",),
                metavar="SECONDS"),
        Setting("waitress_max_request_header_size", "Largest request line plus header section "
                "accepted (larger: 431).",
                default=262144, convert=positive_int, flags=("--waitress-max-request-header-size",),
                metavar="BYTES"),
        Setting("waitress_max_request_body_size", "Largest request body accepted (larger: 413).",
                default=1073741824, convert=positive_int, flags=("--waitress-max-request-body-size",),
                metavar="BYTES"),
    )

    def check(self) -> None:
        """Refuse a waitress with known vulnerabilities, and contradictory options."""
        library.check()
        config = self.config
        if (config.is_set("spawn") and config.is_set("waitress_threads")
                and config.spawn != config.extra["waitress_threads"]):
            raise BackendError("--spawn and --waitress-threads both set how many requests waitress "
                               "serves at once; give only one of them")

    def adjustments(self) -> dict[str, Any]:
        """waitress's ``Adjustments`` for this configuration.

        Core's options map onto waitress's here: --spawn is --waitress-threads, an explicit
        --keep-alive N is --waitress-channel-timeout N (waitress has no separate keep-alive
        timeout). Proxy headers are passed to the application untouched, like every other
        backend does, rather than dropped as waitress does by default.
        """
        config, extra = self.config, self.config.extra
        threads = extra["waitress_threads"]
        if config.is_set("spawn") and not config.is_set("waitress_threads"):
            threads = config.spawn
        timeout = extra["waitress_channel_timeout"]
        if (config.is_set("keep_alive") and config.keep_alive > 0
                and not config.is_set("waitress_channel_timeout")):
            timeout = math.ceil(config.keep_alive)
        return {
            "threads": threads,
            "connection_limit": extra["waitress_connection_limit"],
            "channel_timeout": timeout,
            "cleanup_interval": min(CLEANUP_INTERVAL, timeout),
            "max_request_header_size": extra["waitress_max_request_header_size"],
            "max_request_body_size": extra["waitress_max_request_body_size"],
            "backlog": config.backlog,
            "expose_tracebacks": False,
            "clear_untrusted_proxy_headers": False,
        }

    def serve(self, app: Callable[..., Any], listeners: Sequence[Listener], lifecycle: Lifecycle) -> None:
        from chaussette_waitress.serving import WaitressServer, forward_logs

        forward_logs(self.log)
        server = WaitressServer(app, listeners, self.adjustments(), keep_alive=self.config.keep_alive > 0,
                                log=self.log, limits=limits(self.config))
        # Core's default signal delivery is right: waitress's loop runs in the main thread,
        # inside serve(), where Python runs signal handlers; stop() only flags and wakes it,
        # from any thread, so an embedded server (core's ThreadDelivery) works as well.
        lifecycle.install(server.stop)
        server.run()
