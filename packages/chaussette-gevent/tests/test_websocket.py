"""Websockets on geventwebsocket and geventws4py, with a real client (websocket-client)."""

from __future__ import annotations

import signal
import socket
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import websocket

from chaussette_testing.client import request
from chaussette_testing.process import ServerProcess, start_server

TESTS = str(Path(__file__).parent)
ECHO_APPS = {"geventwebsocket": "gevent_apps.websocket_echo", "geventws4py": "gevent_apps.ws4py_echo"}


@pytest.fixture(params=sorted(ECHO_APPS))
def backend(request: Any) -> str:
    return request.param


@pytest.fixture(params=["tcp", "inherited fd"])
def echo_server(request: Any, backend: str) -> Iterator[tuple[ServerProcess, str]]:
    """An echo server of ``backend``, on a port it binds or on an fd it inherits."""
    common = ("--backend", backend, "--python-path", TESTS)
    if request.param == "tcp":
        with start_server(*common, "--host", "127.0.0.1", "--port", "0", ECHO_APPS[backend]) as server:
            yield server, "ws://%s:%d/" % server.tcp_address
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        fd = sock.fileno()
        with start_server(*common, "--fd", str(fd), ECHO_APPS[backend], pass_fds=[fd]) as server:
            yield server, "ws://127.0.0.1:%d/" % sock.getsockname()[1]


def exchange(url: str, **options: Any) -> None:
    """Text and binary round trips, then a close handshake started by the client."""
    ws = websocket.create_connection(url, timeout=10, **options)
    try:
        ws.send("héllo")
        assert ws.recv() == "héllo"
        payload = bytes(range(256)) * 300  # 76,800 bytes: a 64-bit length frame
        ws.send_binary(payload)
        opcode, data = ws.recv_data()
        assert (opcode, data) == (websocket.ABNF.OPCODE_BINARY, payload)
        ws.send_close(websocket.STATUS_NORMAL, b"bye")
        frame = ws.recv_frame()  # not recv_data(), which would answer the close with another
        assert frame.opcode == websocket.ABNF.OPCODE_CLOSE
        assert frame.data == struct.pack("!H", websocket.STATUS_NORMAL) + b"bye"
        ws.sock.settimeout(10)
        assert ws.sock.recv(1) == b"", "the server should close the connection after the handshake"
    finally:
        ws.shutdown()


def test_echo(echo_server: tuple[ServerProcess, str]) -> None:
    server, url = echo_server
    exchange(url)
    exchange(url)  # the server is still fine after a closed websocket
    assert server.stop() == 0
    assert "ERROR" not in server.output and "Traceback" not in server.output, server.output


def test_concurrent_websockets_on_a_unix_socket(backend: str, tmp_path: Path) -> None:
    """Unix peers have no address: two clients must not be mistaken for one another."""
    path = str(tmp_path / "ws.sock")
    with start_server("--backend", backend, "--python-path", TESTS, "--host", f"unix:{path}",
                      ECHO_APPS[backend]) as server:
        clients = []
        for _ in range(2):
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(path)
            clients.append(websocket.create_connection("ws://localhost/", socket=sock, timeout=10))
        for number, ws in enumerate(clients):
            ws.send(f"client {number}")
        assert [ws.recv() for ws in clients] == ["client 0", "client 1"]
        for ws in clients:
            ws.close()
        assert server.stop() == 0
    assert "ERROR" not in server.output and "Traceback" not in server.output, server.output


def test_plain_http_next_to_websockets(backend: str) -> None:
    with start_server("--backend", backend, "--host", "127.0.0.1", "--port", "0",
                      "chaussette_testing.apps.app") as server:
        assert request(server.tcp_address)[2] == b"hello world"


def test_the_example_from_the_readme(chaussette_examples: Path) -> None:
    """Serves examples/websocket/echo.py exactly as its docstring says, from the repo root."""
    example = chaussette_examples / "websocket" / "echo.py"
    assert "chaussette --backend geventwebsocket --port 8080 examples.websocket.echo.app" in example.read_text()
    with start_server("--backend", "geventwebsocket", "--host", "127.0.0.1", "--port", "0",
                      "examples.websocket.echo.app", cwd=str(chaussette_examples.parent)) as server:
        exchange("ws://%s:%d/" % server.tcp_address)
        assert b"websocket echo server" in request(server.tcp_address)[2]


@pytest.mark.parametrize("backend, module, extra", [("geventws4py", "ws4py", "ws4py"),
                                                     ("geventwebsocket", "geventwebsocket", "websocket")])
def test_missing_extra_says_what_to_install(backend: str, module: str, extra: str) -> None:
    """Run the real CLI with the library made unimportable (the test env has every extra)."""
    code = (f"import sys; sys.modules[{module!r}] = None\n"
            "from chaussette.cli import main; main()")
    done = subprocess.run([sys.executable, "-c", code, "--backend", backend, "--port", "0"],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("chaussette: error: ")
    assert lines[0].endswith(f"install it with: pip install chaussette-gevent[{extra}]")


def test_stop_tells_open_websockets_to_go_away(backend: str) -> None:
    """An open websocket never finishes on its own: a graceful stop sends it 1001 and
    ends as soon as the client has answered, not at the graceful timeout."""
    with start_server("--backend", backend, "--python-path", TESTS, "--host", "127.0.0.1", "--port", "0",
                      "--graceful-timeout", "60", ECHO_APPS[backend]) as server:
        ws = websocket.create_connection("ws://%s:%d/" % server.tcp_address, timeout=10)
        try:
            ws.send("before the stop")
            assert ws.recv() == "before the stop"
            server.signal(signal.SIGTERM)
            frame = ws.recv_frame()
            assert frame.opcode == websocket.ABNF.OPCODE_CLOSE
            assert struct.unpack("!H", frame.data[:2])[0] == websocket.STATUS_GOING_AWAY
            ws.send_close(websocket.STATUS_GOING_AWAY)
            assert server.wait(20) == 0
        finally:
            ws.shutdown()
    assert "graceful timeout" not in server.output
    assert "ERROR" not in server.output and "Traceback" not in server.output, server.output
