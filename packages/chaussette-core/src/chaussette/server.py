"""The 1.3 Python API: ``make_server(app, host, port, ...)`` and ``main``."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Callable

from chaussette import logs, registry
from chaussette.cli import main
from chaussette.settings import Config, build_config, settings_with

if TYPE_CHECKING:
    from chaussette.lifecycle import Lifecycle

__all__ = ["make_server", "main", "Server"]


class Server:
    """What ``make_server`` returns: the sockets are bound at once (so errors surface
    there, like 1.3), the backend serves on ``serve_forever()``, in the main thread or,
    for the backends that allow it (wsgiref, waitress), in any other; ``shutdown()``
    from another thread stops it, as ``socketserver``'s does."""

    def __init__(self, app: Callable[..., Any], config: Config, log: logging.Logger) -> None:
        from chaussette.runner import prepare

        self.app = app
        self.config = config
        self.log = log
        self.backend_class = registry.load(config.backend)
        self.listeners = prepare(self.backend_class, config, log)
        self._lock = threading.Lock()
        self._lifecycle: Lifecycle | None = None
        self._shutdown = False
        self._idle = threading.Event()  # set while serve_forever() is not running
        self._idle.set()

    @property
    def server_address(self) -> Any:
        return self.listeners[0].sock.getsockname()

    def serve_forever(self) -> int:
        from chaussette.runner import run

        self._idle.clear()
        try:
            return run(self.config, self.backend_class, self.log, app=self.app, listeners=self.listeners,
                       started=self._started)
        finally:
            self._idle.set()

    def _started(self, lifecycle: Lifecycle) -> None:
        with self._lock:
            self._lifecycle = lifecycle
            asked = self._shutdown
        if asked:  # shutdown() came first: stop as soon as the backend serves
            lifecycle.request_stop("shutdown() called", drain=False)

    def shutdown(self, timeout: float | None = None) -> bool:
        """Stop accepting, let in-flight requests finish, and return once
        ``serve_forever()`` has returned: True; or, after ``timeout`` seconds (default:
        ``graceful_timeout``), False with the requests still running (a thread cannot be
        killed). Called before ``serve_forever()``, that one returns as soon as it serves."""
        with self._lock:
            self._shutdown = True
            lifecycle = self._lifecycle
        if lifecycle is not None:
            lifecycle.request_stop("shutdown() called", drain=False)
        limit = self.config.graceful_timeout if timeout is None else timeout
        done = self._idle.wait(limit)
        if not done:
            self.log.warning("shutdown(): serve_forever() still waits for requests after %gs", limit)
        return done

    def server_close(self) -> None:
        for listener in self.listeners:
            listener.close()


def make_server(app: Callable[..., Any], host: str | None = None, port: int | None = None,
                backend: str = "wsgiref", backlog: int = 2048, spawn: int | None = None,
                logger: logging.Logger | None = None, address_family: Any = None,
                socket_type: Any = None, **settings: Any) -> Server:
    """Build a server for ``app``. Any setting of the CLI is accepted by keyword
    (``graceful_timeout=5``, ``fd=3``, ``access_log="-"``...); ``address_family`` and
    ``socket_type`` take the socket constants or their names, as in 1.3."""
    import socket

    given = dict(settings, host=host, port=port, backend=backend, backlog=backlog, spawn=spawn,
                 address_family=_constant_name(address_family, socket),
                 socket_type=_constant_name(socket_type, socket))
    config = build_config(given, settings_with(registry.load(backend).settings, backend))
    log = logger or logs.configure(config.log_level, config.log_output)
    return Server(app, config, log)


def _constant_name(value: Any, socket: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    for name in ("AF_INET", "AF_INET6", "AF_UNIX", "SOCK_STREAM", "SOCK_DGRAM", "SOCK_RAW",
                 "SOCK_RDM", "SOCK_SEQPACKET"):
        if getattr(socket, name) == value:
            return name
    return str(value)
