"""examples/socketio_chat, served exactly as its docstring and the README say."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import pytest
from helpers import Peer, connect

from chaussette_testing.client import request
from chaussette_testing.process import ServerProcess, start_server

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "socketio_chat" / "chat.py"
COMMAND = "chaussette --backend socketio --port 8080 examples.socketio_chat.chat.app"


@pytest.fixture(scope="module")
def chat() -> Iterator[ServerProcess]:
    assert COMMAND in EXAMPLE.read_text()
    assert COMMAND in (Path(__file__).parents[1] / "README.md").read_text()
    arguments = COMMAND.split()[1:]
    arguments[arguments.index("--port") + 1] = "0"
    with start_server(*arguments, "--host", "127.0.0.1", cwd=str(REPO)) as server:
        yield server
        assert server.stop() == 0
    assert "ERROR" not in server.output and "Traceback" not in server.output, server.output


def test_chat(chat: ServerProcess, peers: list[Peer]) -> None:
    url = "http://%s:%d" % chat.tcp_address
    ada, bob = connect(peers, url, "polling"), connect(peers, url, "websocket")
    assert ada.call("message", "too early") == {"ok": False, "error": "join first"}
    assert ada.call("join", "ada") == {"ok": True, "nicknames": ["ada"]}
    assert bob.call("join", "ada") == {"ok": False, "error": "ada is taken"}
    assert bob.call("join", "  bob  ") == {"ok": True, "nicknames": ["ada", "bob"]}
    assert ada.received() == ("announcement", ("bob joined",))
    assert ada.call("message", "hello bob") == {"ok": True}
    assert bob.received() == ("message", ({"nickname": "ada", "text": "hello bob"},))
    assert bob.call("message", "hi ada") == {"ok": True}
    assert ada.received() == ("message", ({"nickname": "bob", "text": "hi ada"},))
    assert ada.events.empty() and bob.events.empty()  # nobody hears themselves
    bob.client.disconnect()
    assert ada.received() == ("announcement", ("bob left",))


def test_page(chat: ServerProcess) -> None:
    status, headers, body = request(chat.tcp_address, path="/")
    assert (status, headers["content-type"]) == (200, "text/html; charset=utf-8")
    assert re.search(rb'<script src="[^"]*/socket\.io\.min\.js"></script>', body)
    assert b'socket.emit("join"' in body and b'socket.emit("message"' in body
    assert request(chat.tcp_address, path="/nowhere")[0] == 404
