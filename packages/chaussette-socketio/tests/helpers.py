"""In-process helpers: python-socketio clients for the tests, recording what the server sends."""

from __future__ import annotations

import queue
import time
from typing import Any

import socketio

TIMEOUT = 10
#: client transports -> the transport the session ends up on
TRANSPORTS = {
    "websocket": (["websocket"], "websocket"),
    "polling": (["polling"], "polling"),
    "polling then websocket": (["polling", "websocket"], "websocket"),
}


class Peer:
    """A python-socketio client that records what the server sends it."""

    def __init__(self, url: str, transports: list[str]) -> None:
        self.client = socketio.Client(reconnection=False)
        self.events: queue.Queue = queue.Queue()
        self.disconnects: queue.Queue = queue.Queue()
        self.client.on("*", lambda event, *args: self.events.put((event, args)))
        self.client.on("disconnect", lambda reason=None: self.disconnects.put(reason))
        self.client.connect(url, transports=transports, wait_timeout=TIMEOUT)

    def call(self, event: str, *args: Any) -> Any:
        return self.client.call(event, args[0] if len(args) == 1 else args or None, timeout=TIMEOUT)

    def received(self) -> tuple[str, tuple]:
        return self.events.get(timeout=TIMEOUT)

    def on_transport(self, transport: str) -> None:
        """Wait for the upgrade to ``transport``, which python-socketio does in the background."""
        deadline = time.monotonic() + TIMEOUT
        while self.client.transport() != transport:
            assert time.monotonic() < deadline, f"still on {self.client.transport()}"
            time.sleep(0.05)


def connect(peers: list[Peer], url: str, transport: str) -> Peer:
    transports, final = TRANSPORTS[transport]
    peer = Peer(url, transports)
    peers.append(peer)
    peer.on_transport(final)
    return peer
