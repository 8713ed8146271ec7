"""Serve on core's listeners: one pywsgi server per listener, all in one hub, sharing
one pool of connection greenlets (bounded by ``--spawn``), and the graceful stop that
closes the listeners, tells connections and websockets, and waits for the pool."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

import gevent
from gevent import pywsgi
from gevent.event import Event
from gevent.pool import Pool

from chaussette.framing import Limits
from chaussette.http import UNIX_ENVIRON, limits
from chaussette_gevent.signals import GreenletDelivery, signals_wake_the_hub

if TYPE_CHECKING:
    from chaussette.lifecycle import Lifecycle
    from chaussette.settings import Config
    from chaussette.sockets import Listener

#: The close frame a websocket gets when the server stops: 1001 "going away" (RFC 6455 7.4.1).
GOING_AWAY = (1001, "server shutting down")


@dataclass
class ServingState:
    """What every handler of one ``serve()`` shares."""

    log: logging.Logger
    limits: Limits
    keep_alive: float
    stopping: bool = False
    handlers: set = field(default_factory=set)

    def stop_connections(self) -> None:
        """Graceful stop: connections waiting for their next request are closed now, the
        others after the response they are working on; websockets are told to go away."""
        for handler in list(self.handlers):
            handler.server_stopping()


class ChaussetteServer(pywsgi.WSGIServer):
    """pywsgi's server carrying the shared state its handlers read."""

    state: ServingState


class HandlerPool(Pool):
    """The connection greenlets, so a graceful stop can wait for exactly them."""

    def __init__(self, size: int | None = None) -> None:
        super().__init__(size)
        self.websockets: set = set()

    def track(self, websocket: Any) -> gevent.Greenlet:
        """ws4py's ``WebSocketWSGIHandler`` runs each upgraded websocket through
        ``server.pool.track`` and joins it from the connection's greenlet. It runs outside
        the pool: the connection already holds a slot, and a second one could deadlock a
        full pool."""
        self.websockets.add(websocket)
        greenlet = gevent.spawn(websocket.run)
        greenlet.link(lambda _: self.websockets.discard(websocket))
        return greenlet

    def stop_websockets(self) -> None:
        """Start the close handshake of ws4py's websockets; each ends when the client
        answers (or at the graceful timeout)."""
        for websocket in list(self.websockets):
            websocket.close(*GOING_AWAY)


def serve(app: Callable[..., Any], listeners: Sequence[Listener], lifecycle: Lifecycle,
          config: Config, log: logging.Logger, handler_class: type,
          on_stop: Callable[[], None] | None = None) -> None:
    # pywsgi's one request-line knob; core's parser enforces the same limit first, this
    # keeps pywsgi's own check (and its chunk-size lines) from refusing less.
    pywsgi.MAX_REQUEST_LINE = config.limit_request_line + 2
    state = ServingState(log, limits(config), config.keep_alive)
    pool = HandlerPool(config.spawn)
    servers = [_server(listener, app, pool, log, handler_class, state) for listener in listeners]
    stop_requested = Event()

    def stop() -> None:
        """Runs in a signal handler: flips the flag and wakes the main greenlet."""
        state.stopping = True
        stop_requested.set()

    with signals_wake_the_hub():
        for server in servers:
            server.start()
        lifecycle.install(stop, GreenletDelivery())  # created here: this greenlet gets the exits
        stop_requested.wait()
        for server in servers:
            server.close()  # stop accepting; core removes unix socket files afterwards
        state.stop_connections()
        pool.stop_websockets()
        if on_stop is not None:
            on_stop()  # the backend's own part of the stop, in this greenlet
        pool.join()  # no timeout here: core's SIGALRM ends a drain that takes too long


def _server(listener: Listener, app: Callable[..., Any], pool: Pool, log: logging.Logger,
            handler_class: type, state: ServingState) -> ChaussetteServer:
    # gevent accepts in a loop until EWOULDBLOCK: a blocking listener would hang the hub.
    listener.sock.setblocking(False)
    if listener.is_unix:
        environ = dict(UNIX_ENVIRON)  # the handler sets REMOTE_* again for each connection
    else:
        host, port = listener.sock.getsockname()[:2]
        # Set here so pywsgi does not resolve the bound address (getfqdn) at start-up.
        environ = {"SERVER_NAME": host, "SERVER_PORT": str(port)}
    server = ChaussetteServer(listener.sock, app, spawn=pool, log=None, error_log=log,
                              handler_class=handler_class, environ=environ)
    server.state = state
    return server
