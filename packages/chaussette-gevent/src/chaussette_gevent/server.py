"""Serve on core's listeners: one pywsgi server per listener, all in one hub, sharing
one pool of connection greenlets (bounded by ``--spawn``)."""

from __future__ import annotations

import logging
import signal
from typing import TYPE_CHECKING, Any, Callable, Sequence

import gevent
from gevent import pywsgi
from gevent.event import Event
from gevent.pool import Pool

from chaussette.framing import Limits
from chaussette.lifecycle import STOP_SIGNALS
from chaussette_gevent.handlers import GOING_AWAY, ChaussetteServer, ServingState
from chaussette_gevent.signals import SignalRouter, signals_wake_the_hub

if TYPE_CHECKING:
    from chaussette.lifecycle import Lifecycle
    from chaussette.settings import Config
    from chaussette.sockets import Listener


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
    state = ServingState(log, Limits(config.limit_request_line, config.limit_request_fields,
                                     config.limit_request_field_size), config.keep_alive)
    pool = HandlerPool(config.spawn)
    servers = [_server(listener, app, pool, log, handler_class, state) for listener in listeners]
    stop_requested = Event()
    router = SignalRouter()

    def stop() -> None:
        """Runs in a signal handler: flips the flag and wakes the main greenlet."""
        state.stopping = True
        stop_requested.set()
        router.route(signal.SIGALRM)  # core arms its graceful timeout before calling us

    with signals_wake_the_hub():
        for server in servers:
            server.start()
        lifecycle.install(stop)
        for signum in STOP_SIGNALS:
            router.route(signum)
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
        environ = {"SERVER_NAME": "localhost", "SERVER_PORT": "0"}
    else:
        host, port = listener.sock.getsockname()[:2]
        # Set here so pywsgi does not resolve the bound address (getfqdn) at start-up.
        environ = {"SERVER_NAME": host, "SERVER_PORT": str(port)}
    server = ChaussetteServer(listener.sock, app, spawn=pool, log=None, error_log=log,
                              handler_class=handler_class, environ=environ)
    server.state = state
    return server
