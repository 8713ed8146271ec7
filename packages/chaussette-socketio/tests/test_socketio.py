"""The socketio backend with python-socketio's own client, on real servers."""

from __future__ import annotations

import signal
import socket
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import pytest
from helpers import TIMEOUT, TRANSPORTS, Peer, connect

from chaussette_testing.client import request
from chaussette_testing.process import ServerProcess, start_server

TESTS = str(Path(__file__).parent)


class Served(NamedTuple):
    server: ServerProcess
    url: str
    #: The test's own copy of an inherited listening socket (a process manager's).
    listener: socket.socket | None


@pytest.fixture(params=["tcp", "inherited fd"])
def served(request: Any) -> Iterator[Served]:
    """``socketio_apps.app`` on a port the server binds, or on an fd it inherits."""
    common = ("--backend", "socketio", "--python-path", TESTS, "--graceful-timeout", "60")
    if request.param == "tcp":
        with start_server(*common, "--host", "127.0.0.1", "--port", "0", "socketio_apps.app") as server:
            yield Served(server, "http://%s:%d" % server.tcp_address, None)
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        fd = sock.fileno()
        with start_server(*common, "--fd", str(fd), "socketio_apps.app", pass_fds=[fd]) as server:
            yield Served(server, "http://127.0.0.1:%d" % sock.getsockname()[1], sock)


def address(url: str) -> tuple[str, int]:
    host, port = url[len("http://"):].rsplit(":", 1)
    return host, int(port)


def assert_clean(server: ServerProcess) -> None:
    """No error, and nothing imported ssl before gevent patched it (python-socketio does)."""
    for trouble in ("ERROR", "Traceback", "MonkeyPatchWarning"):
        assert trouble not in server.output, server.output


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
def test_emit_with_ack(served: Served, peers: list[Peer], transport: str) -> None:
    server, url, _ = served
    peer = connect(peers, url, transport)
    payload = {"text": "héllo", "numbers": list(range(100)), "blob": "x" * 100_000}
    assert peer.call("echo", payload) == payload
    assert peer.call("whoami")["transport"] == TRANSPORTS[transport][1]
    # What is not Socket.IO's goes to the plain application inside socketio.WSGIApp.
    assert request(address(url), path="/")[2] == b"hello world"
    assert server.stop() == 0
    assert_clean(server)


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
def test_server_disconnects_a_client(served: Served, peers: list[Peer],
                                     transport: str) -> None:
    server, url, _ = served
    peer = connect(peers, url, transport)
    sid = peer.call("whoami")["sid"]
    peer.client.emit("leave")
    assert peer.disconnects.get(timeout=TIMEOUT) == peer.client.reason.SERVER_DISCONNECT
    server.wait_for(rf"disconnected {sid} \(server disconnect\)")
    assert server.stop() == 0
    assert_clean(server)


@pytest.mark.parametrize("transport", ["websocket", "polling then websocket"])
def test_client_disconnects(served: Served, peers: list[Peer], transport: str) -> None:
    """Not on polling: python-socketio's polling client can lose its own CLOSE packet in
    a race of its threads, and the server then learns of the departure only when the
    client misses a ping."""
    server, url, _ = served
    peer = connect(peers, url, transport)
    sid = peer.call("whoami")["sid"]
    peer.client.disconnect()
    # The client may also close its websocket before its DISCONNECT packet is out.
    server.wait_for(rf"disconnected {sid} \((client disconnect|transport close)\)")
    assert server.stop() == 0
    assert_clean(server)


def test_broadcast_between_two_clients(served: Served, peers: list[Peer]) -> None:
    """One client on a websocket, one polling: each gets what the other says, not its own."""
    server, url, _ = served
    websocket, polling = connect(peers, url, "websocket"), connect(peers, url, "polling")
    websocket_sid, polling_sid = websocket.call("whoami")["sid"], polling.call("whoami")["sid"]
    assert websocket.call("say", "from the websocket") == "sent"
    assert polling.received() == ("said", ({"from": websocket_sid, "text": "from the websocket"},))
    assert polling.call("say", "from polling") == "sent"
    assert websocket.received() == ("said", ({"from": polling_sid, "text": "from polling"},))
    assert websocket.events.empty() and polling.events.empty()
    assert server.stop() == 0
    assert_clean(server)


def test_stop_does_not_wait_for_socketio_clients(served: Served, peers: list[Peer]) -> None:
    """Left alone, a websocket stays open and a polling client's GET waits for the next
    ping (``socketio_apps.PING_INTERVAL``, 50 s): either would hold the stop until the
    graceful timeout (60 s). Both are closed at once, in a way that lets Socket.IO
    clients reconnect (a "server disconnect" tells them not to)."""
    server, url, listener = served
    clients = [connect(peers, url, transport) for transport in sorted(TRANSPORTS)]
    for peer in clients:
        assert peer.call("echo", "before the stop") == "before the stop"
    server.signal(signal.SIGTERM)
    assert server.wait(30) == 0
    if listener is not None:
        # As if nothing were restarted on it: the polling client's next GET is refused
        # (instead of waiting in the backlog), which is how it learns of the stop.
        listener.close()
    for peer in clients:
        assert peer.disconnects.get(timeout=TIMEOUT) == peer.client.reason.TRANSPORT_ERROR
    assert "graceful timeout" not in server.output
    assert_clean(server)
