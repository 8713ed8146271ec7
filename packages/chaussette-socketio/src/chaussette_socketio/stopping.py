"""A graceful stop that does not wait for Socket.IO clients.

Websocket clients are told to go away by the ``geventwebsocket`` backend's 1001 close
frame. A polling client's pending GET would hold the stop until Engine.IO's next ping
(``ping_interval``, 25 s by default): its Engine.IO session is dropped instead, which
answers that GET at once. Its next request then fails (or reaches a process that does
not know the session), and Socket.IO clients reconnect: to another process sharing the
socket, or to this one once restarted. Dropped, not closed with a CLOSE packet: on that
packet python-socketio's client gives up instead of reconnecting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    import engineio


def end_polls(engines: Sequence[engineio.Server]) -> None:
    """Drop the sessions still on the polling transport (websockets get their close frame
    from the handler). ``wait=False``: a client between two polls never drains the queue."""
    for engine in engines:
        for session in list(engine.sockets.values()):
            if not session.upgraded:
                session.close(wait=False, abort=True)
