"""The meta distribution must bring the command and every default backend, usable."""

import subprocess
import sys
from importlib.metadata import distribution, version

from chaussette.registry import installed
from chaussette_testing import request, start_server

DEFAULT_BACKENDS = {"wsgiref", "eventlet", "gevent", "fastgevent", "geventwebsocket", "geventws4py", "socketio",
                    "waitress"}


def test_meta_ships_no_modules() -> None:
    files = [str(f) for f in distribution("chaussette").files or [] if str(f).endswith(".py")]
    assert files == []


def test_every_default_backend_is_installed_and_serves() -> None:
    assert DEFAULT_BACKENDS <= set(installed())
    for backend in sorted(DEFAULT_BACKENDS):
        with start_server("--backend", backend, "--host", "127.0.0.1", "--port", "0") as server:
            assert request(server.tcp_address)[2] == b"hello world"
            assert server.stop() == 0


def test_version_is_above_the_python2_release() -> None:
    major = int(version("chaussette").split(".")[0])
    assert major >= 2


def test_command_comes_from_core() -> None:
    out = subprocess.run([sys.executable, "-m", "chaussette", "--version"], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    assert out.startswith("chaussette-core ")
