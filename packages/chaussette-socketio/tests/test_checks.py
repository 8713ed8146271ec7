"""What the socketio backend refuses at start-up, each with one line saying how to fix it.

Each case runs the real CLI in a subprocess with a broken environment put in front of the
test environment's site-packages (PYTHONPATH), as a user's would be.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import socketio

TESTS = str(Path(__file__).parent)
FIX = "pip uninstall gevent-socketio && pip install --force-reinstall python-socketio"

#: gevent-socketio 0.3.6's modules are Python 2 (this is from its socketio/server.py).
PYTHON2 = textwrap.dedent("""\
    import sys
    try:
        from gevent.pywsgi import WSGIServer
    except ImportError, e:
        print >> sys.stderr, "gevent is required: %s" % e
    """)
#: gevent-socketio 0.3.6's socketio/__init__.py, in short: valid Python 3, none of python-socketio.
GEVENT_SOCKETIO_INIT = textwrap.dedent("""\
    __version__ = (0, 3, 6)

    import logging
    import gevent

    log = logging.getLogger(__name__)


    def socketio_manage(environ, namespaces, request=None, error_handler=None):
        socket = environ['socketio']
        socket._set_environ(environ)
    """)


def refusal(*args: str, pythonpath: Path | None = None, code: str = "") -> str:
    """The one stderr line of a CLI that refused to start (run with ``code`` first)."""
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    command = [sys.executable, "-m", "chaussette"] if not code else [
        sys.executable, "-c", code + "\nfrom chaussette.cli import main; main()"]
    done = subprocess.run([*command, "--backend", "socketio", "--host", "127.0.0.1", "--port", "0", *args],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env=env)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("chaussette: error: "), done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return lines[-1]


def test_gevent_socketio_installed_as_socketio(tmp_path: Path) -> None:
    """gevent-socketio's package in place of python-socketio's: its __init__ imports
    fine, but it is not python-socketio."""
    package = tmp_path / "socketio"
    package.mkdir()
    (package / "__init__.py").write_text(GEVENT_SOCKETIO_INIT)
    (package / "server.py").write_text(PYTHON2)
    line = refusal("chaussette_testing.apps.app", pythonpath=tmp_path)
    assert f"'socketio' package in {package / '__init__.py'} is not python-socketio's" in line
    assert "gevent-socketio" in line and line.endswith(FIX)


def test_python2_socketio_package(tmp_path: Path) -> None:
    package = tmp_path / "socketio"
    package.mkdir()
    (package / "__init__.py").write_text(PYTHON2)
    line = refusal("chaussette_testing.apps.app", pythonpath=tmp_path)
    assert "(Python 2 code: SyntaxError on line 4)" in line and line.endswith(FIX)


def test_gevent_socketio_installed_next_to_python_socketio(tmp_path: Path) -> None:
    """Its metadata alone: the files of both share one directory, whichever came last."""
    metadata = tmp_path / "gevent_socketio-0.3.6.dist-info"
    metadata.mkdir()
    (metadata / "METADATA").write_text("Metadata-Version: 2.1\nName: gevent-socketio\nVersion: 0.3.6\n")
    line = refusal("chaussette_testing.apps.app", pythonpath=tmp_path)
    assert "(gevent-socketio is installed)" in line and line.endswith(FIX)


def test_one_module_of_python_socketio_replaced_by_python2_code(tmp_path: Path) -> None:
    """What only importing shows: python-socketio's own package and metadata, with one
    module overwritten by gevent-socketio's."""
    installed = Path(socketio.__file__).parent
    shutil.copytree(installed, tmp_path / "socketio")
    metadata = next(installed.parent.glob("python_socketio-*.dist-info"))
    shutil.copytree(metadata, tmp_path / metadata.name)
    (tmp_path / "socketio" / "server.py").write_text(PYTHON2)
    line = refusal("chaussette_testing.apps.app", pythonpath=tmp_path)
    assert f"'socketio' package in {tmp_path / 'socketio' / 'server.py'} is not python-socketio's" in line
    assert line.endswith(FIX)


def test_python_socketio_missing() -> None:
    line = refusal("chaussette_testing.apps.app", code="import sys; sys.modules['socketio'] = None")
    assert line.endswith("install it with: pip install chaussette-socketio")


def test_another_async_mode_is_refused() -> None:
    line = refusal("--python-path", TESTS, "socketio_apps.threading_app")
    assert line == ("chaussette: error: the Socket.IO server runs in async_mode='threading', but the socketio "
                    "backend serves it with gevent: create it with socketio.Server(async_mode='gevent')")
