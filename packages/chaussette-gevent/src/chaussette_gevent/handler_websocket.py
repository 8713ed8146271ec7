"""The ``geventwebsocket`` backend's handler: gevent-websocket on Chaussette's handler."""

from __future__ import annotations

import struct
from typing import Any

from geventwebsocket.exceptions import WebSocketError
from geventwebsocket.handler import WebSocketHandler
from geventwebsocket.websocket import MSG_ALREADY_CLOSED
from geventwebsocket.websocket import WebSocket as _WebSocket

from chaussette_gevent.protocol import Handler
from chaussette_gevent.serving import GOING_AWAY


class WebSocket(_WebSocket):
    """gevent-websocket 0.10.1's ``close(code, message)`` drops the status code and sends
    ``str(message)`` (``"bytearray(b'...')"`` for the reason it echoes back), so its close
    frames are malformed whenever there is a reason. This one sends code and reason."""

    __slots__ = ()
    closed: bool

    def close(self, code: int = 1000, message: Any = b"") -> None:
        if self.closed:
            self.current_app.on_close(MSG_ALREADY_CLOSED)
        try:
            if not self.handler.going_away_sent:  # then this is the end of that handshake
                self.send_frame(close_payload(code, message), opcode=self.OPCODE_CLOSE)
        except WebSocketError:
            pass  # the peer is gone: we are closing anyway
        finally:
            # gevent-websocket's slots; mypy, without that package's types, sees only this class's.
            self.closed = True  # type: ignore[misc]
            self.stream = self.raw_write = self.raw_read = self.environ = None  # type: ignore[misc]


def close_payload(code: int, reason: Any) -> bytes:
    return struct.pack("!H", code) + (reason.encode("utf-8") if isinstance(reason, str) else bytes(reason or b""))


class GeventWebSocketHandler(Handler, WebSocketHandler):
    """Upgrades ``Upgrade: websocket`` requests and hands the app
    ``environ["wsgi.websocket"]``; other requests are served as by ``gevent``."""

    going_away_sent = False

    def server_stopping(self) -> None:
        """Send the websocket a close frame; the app's ``receive()`` returns None once the
        client answers it. Only the frame: closing the websocket object here would pull
        the stream from under the greenlet reading it."""
        super().server_stopping()
        websocket = getattr(self, "websocket", None)
        if websocket is not None and not websocket.closed and not self.going_away_sent:
            self.going_away_sent = True
            try:
                websocket.send_frame(close_payload(*GOING_AWAY), websocket.OPCODE_CLOSE)
            except WebSocketError:
                pass

    def upgrade_connection(self) -> Any:
        result = super().upgrade_connection()
        websocket = getattr(self, "websocket", None)
        if websocket is not None:
            websocket.__class__ = WebSocket  # same slots: only close() differs
        return result
