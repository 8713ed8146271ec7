"""systemd socket activation for real (systemd-socket-activate), and LISTEN_* hygiene."""

from __future__ import annotations

import http.client
import json
import os
import sys
from pathlib import Path

import pytest
from conftest import CommandProcess, stop_cleanly, write_module

from chaussette_testing import free_port, request, start_server
from chaussette_testing.procs import wait_until

ACTIVATE = "/usr/bin/systemd-socket-activate"


@pytest.fixture
def env_app(tmp_path: Path) -> Path:
    """An app answering what a child process it spawns sees of the LISTEN_* variables."""
    write_module(tmp_path, "listen_env_app", """
        import json
        import subprocess
        import sys

        PROBE = "import json, os; print(json.dumps({k: os.environ.get(k) for k in "
        PROBE += "('LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES')}))"

        def app(environ, start_response):
            seen = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, timeout=30).stdout
            start_response("200 OK", [("Content-Type", "application/json"),
                                      ("Content-Length", str(len(seen)))])
            return [seen]
    """)
    return tmp_path


UNSET = {"LISTEN_FDS": None, "LISTEN_PID": None, "LISTEN_FDNAMES": None}


def _get(port: int) -> tuple[int, bytes] | None:
    """One GET, or None while nothing listens on ``port`` yet."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        return response.status, response.read()
    except ConnectionRefusedError:
        return None
    finally:
        conn.close()


def test_socket_activation(env_app: Path) -> None:
    if not os.path.exists(ACTIVATE):
        pytest.skip("systemd-socket-activate not installed: apt-get install systemd")
    ports = [free_port(), free_port()]
    command = [ACTIVATE, "-l", f"127.0.0.1:{ports[0]}", "-l", f"127.0.0.1:{ports[1]}",
               "-E", "PYTHONUNBUFFERED=1", sys.executable, "-m", "chaussette", "--host", "127.0.0.1",
               "--port", "0", "--python-path", str(env_app), "listen_env_app.app"]
    with CommandProcess(command) as server:
        # systemd-socket-activate listens first and starts chaussette on the first
        # connection; until it listens, connecting is refused.
        for port in ports:
            status, body = wait_until(lambda port=port: _get(port), what=f"an answer on port {port}")
            assert status == 200
            assert json.loads(body) == UNSET, "LISTEN_* must not reach the app's children"
        server.wait_for("Using 2 socket\\(s\\) from systemd socket activation", timeout=10)
        assert server.wait_serving(2) == ["fd://3", "fd://4"]
        assert "Serving on 127.0.0.1" not in server.output, "--host/--port must lose to activation"
        stop_cleanly(server)


def test_listen_fds_of_another_process_is_ignored(env_app: Path) -> None:
    env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID="1", LISTEN_FDNAMES="web")
    with start_server("--host", "127.0.0.1", "--port", "0", "--python-path", str(env_app),
                      "listen_env_app.app", env=env) as server:
        assert server.addresses[0].startswith("127.0.0.1:")
        status, _, body = request(server.tcp_address)
        assert status == 200
        assert json.loads(body) == UNSET
        assert "systemd" not in server.output
        stop_cleanly(server)
