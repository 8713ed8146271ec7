"""Socket.IO applications the server subprocesses of these tests import (``--python-path tests``)."""

from __future__ import annotations

import sys

import socketio

from chaussette_testing.apps import app as plain_app

#: A long ping interval: a polling client's pending GET would hold a graceful stop for
#: that long, which the stop tests would notice.
PING_INTERVAL = 50

server = socketio.Server(async_mode="gevent", ping_interval=PING_INTERVAL)


def note(text: str) -> None:
    """What the tests read in the server's output."""
    print(text, file=sys.stderr, flush=True)


@server.event
def connect(sid: str, environ: dict, auth: object = None) -> None:
    note(f"connected {sid}")


@server.event
def disconnect(sid: str, reason: object = None) -> None:
    note(f"disconnected {sid} ({reason})")


@server.event
def echo(sid: str, data: object) -> object:
    return data


@server.event
def whoami(sid: str) -> dict:
    return {"sid": sid, "transport": server.transport(sid)}


@server.event
def say(sid: str, text: str) -> str:
    server.emit("said", {"from": sid, "text": text}, skip_sid=sid)
    return "sent"


@server.event
def leave(sid: str) -> None:
    server.disconnect(sid)


#: Socket.IO on /socket.io/, core's test application everywhere else.
app = socketio.WSGIApp(server, plain_app)


def routed(environ: dict, start_response: object) -> object:
    """A WSGI application that merely contains Socket.IO: the backend cannot see inside."""
    return app(environ, start_response)


#: python-socketio's other synchronous mode, which this backend refuses.
threading_app = socketio.WSGIApp(socketio.Server(async_mode="threading"))
