"""Applications the server subprocesses of these tests import (``--python-path tests``)."""

from __future__ import annotations

import socket
import sys
from typing import Callable, Iterable

from ws4py.server.wsgiutils import WebSocketWSGIApplication
from ws4py.websocket import EchoWebSocket


def nodelay(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """Answers the TCP_NODELAY option of the server side of this very connection.

    pywsgi does not put its socket in the environ, so this walks up to the handler that
    called the application (a test-only trick) and reads the option there.
    """
    from gevent.pywsgi import WSGIHandler

    frame = sys._getframe(1)
    while frame is not None and not isinstance(frame.f_locals.get("self"), WSGIHandler):
        frame = frame.f_back
    if frame is None:
        raise RuntimeError("no pywsgi handler up the stack")
    sock = frame.f_locals["self"].socket
    body = str(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def websocket_echo(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """gevent-websocket: echo text as text and binary as binary until the client closes."""
    ws = environ.get("wsgi.websocket")
    if ws is None:
        start_response("400 Bad Request", [("Content-Type", "text/plain")])
        return [b"websocket only\n"]
    while True:
        message = ws.receive()
        if message is None:
            return []
        ws.send(message, binary=not isinstance(message, str))



#: ws4py's own echo, served the way its docs say (needs the geventws4py backend).
ws4py_echo = WebSocketWSGIApplication(handler_cls=EchoWebSocket)
