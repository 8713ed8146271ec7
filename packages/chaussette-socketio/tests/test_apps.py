"""What may be named as the application: a socketio.WSGIApp (the other tests), any WSGI
application, or a socketio.Server, which the backend wraps in socketio.WSGIApp."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
import socketio

from chaussette_testing.client import request
from chaussette_testing.process import start_server

TESTS = str(Path(__file__).parent)
SCRIPT = """\
from gevent import monkey

monkey.patch_all()  # before python-socketio is imported, as gevent wants

import sys

sys.path.insert(0, {tests!r})
from chaussette.server import make_server
from socketio_apps import server

"""


@pytest.fixture
def client() -> Iterator[socketio.Client]:
    made = socketio.Client(reconnection=False)
    yield made
    made.eio.disconnect(abort=True)  # a polling client's disconnect() waits for its GET


def api_script(tmp_path: Path, serve: str) -> str:
    """An executable running ``serve`` (chaussette's Python API) with ``socketio_apps.server``
    imported. It ignores its arguments: ``ServerProcess`` runs ``PYTHON -m chaussette``,
    and this can be its PYTHON."""
    script = tmp_path / "serve.py"
    script.write_text(SCRIPT.format(tests=TESTS) + serve + "\n")
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{script}"\n')
    python.chmod(0o755)
    return str(python)


@pytest.mark.parametrize("access_log", [False, True])
def test_socketio_server_through_the_python_api(tmp_path: Path, client: socketio.Client,
                                                access_log: bool) -> None:
    """The backend turns the server into a WSGI application before core's access log wraps it."""
    options = ', access_log="-"' if access_log else ""
    script = api_script(tmp_path, 'make_server(server, host="127.0.0.1", port=0, backend="socketio"'
                                  f'{options}).serve_forever()')
    with start_server(python=script) as served:
        client.connect("http://%s:%d" % served.tcp_address, wait_timeout=10)
        assert client.call("echo", ["through", "make_server"], timeout=10) == ["through", "make_server"]
        status, headers, body = request(served.tcp_address, path="/elsewhere")
        assert (status, headers["content-type"], body) == (404, "text/plain", b"Not Found")
        assert served.stop() == 0
    assert ("GET /socket.io/?transport=polling&EIO=4&t=" in served.stdout) is access_log
    assert ('"GET /elsewhere HTTP/1.1" 404 9' in served.stdout) is access_log
    assert "Traceback" not in served.output, served.output


def test_asyncio_server_is_refused(tmp_path: Path) -> None:
    script = api_script(tmp_path, 'import socketio\n'
                                  'make_server(socketio.AsyncServer(), port=0, backend="socketio").serve_forever()')
    done = subprocess.run([script], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "chaussette.errors.BackendError: a socketio.AsyncServer runs on asyncio, not gevent; "
        "create a socketio.Server(async_mode='gevent') to serve it with this backend")


def test_socketio_server_on_the_command_line(client: socketio.Client) -> None:
    with start_server("--backend", "socketio", "--python-path", TESTS, "--port", "0", "socketio_apps.server") as served:
        client.connect("http://%s:%d" % served.tcp_address, wait_timeout=10)
        assert client.call("echo", "from the command line", timeout=10) == "from the command line"
        assert served.stop() == 0


def test_any_wsgi_application(client: socketio.Client) -> None:
    """An application that only calls socketio.WSGIApp is served the same."""
    with start_server("--backend", "socketio", "--python-path", TESTS, "--port", "0", "socketio_apps.routed") as served:
        # The backend cannot find this Socket.IO server to end its long polls on a stop.
        client.connect("http://%s:%d" % served.tcp_address, transports=["websocket"], wait_timeout=10)
        assert client.call("echo", "routed", timeout=10) == "routed"
        assert request(served.tcp_address, path="/")[2] == b"hello world"
        assert served.stop() == 0
