"""A connection's part in ``serve()``: its environ, built once, and its registration
with the serving state, so that a graceful stop reaches it (``server_stopping``)."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from gevent import pywsgi

from chaussette.http import UNIX_REMOTE_ADDR

if TYPE_CHECKING:
    from chaussette_gevent.serving import ChaussetteServer


class UnixPeer(tuple):
    """The client address of an AF_UNIX connection, which has none.

    pywsgi only sets REMOTE_ADDR from a tuple, and apps expect an IP there, so this is
    ``(UNIX_REMOTE_ADDR, "")``. Equality is identity: gevent-websocket keys its client
    table by address, and two unix clients must not collide there.
    """

    def __new__(cls) -> UnixPeer:
        return super().__new__(cls, (UNIX_REMOTE_ADDR, ""))

    __hash__ = object.__hash__

    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return self is not other


class Connection(pywsgi.WSGIHandler):
    """The handler's connection bookkeeping; ``protocol.Handler`` sets the two flags
    as it reads requests."""

    server: ChaussetteServer
    idle = False  # waiting for the first byte of a request
    served = False  # a request was read on this connection

    def __init__(self, sock: Any, address: Any, server: ChaussetteServer, *args: Any) -> None:
        if not isinstance(address, tuple):
            address = UnixPeer()
        super().__init__(sock, address, server, *args)
        environ = server.get_environ()
        environ["SCRIPT_NAME"] = ""  # pywsgi's: the application is the root
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = str(address[0]), str(address[1])
        #: The server's environ plus what stays the same on this connection, built once.
        self.connection_environ = environ

    def handle(self) -> None:
        handlers = self.server.state.handlers
        handlers.add(self)
        try:
            super().handle()
        finally:
            handlers.discard(self)

    def server_stopping(self) -> None:
        """Close the connection now if it is idle between keep-alive requests; otherwise
        it closes after the current response (``handle_one_request``, ``finalize_headers``).

        A connection that has not sent its first request yet is served: it was accepted
        before the stop, so its client is sending a request this process must answer
        (the other processes sharing the socket never see it). The keep-alive timeout
        bounds the wait if nothing comes.
        """
        if self.idle and self.served and self.socket is not None:
            try:
                self.socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
