"""Shared tools for core's own tests: run ``chaussette`` to completion, run any command as
a server process, write modules, and install fake backends as a real distribution.

Everything runs real subprocesses on loopback; every wait is bounded.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pytest

from chaussette_testing.process import ServerProcess

RUN_TIMEOUT = 30.0
ERROR_LINE = re.compile(r"^chaussette: error: (.+)$", re.MULTILINE)


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def error(self) -> str:
        """The one ``chaussette: error:`` line, asserting there is exactly one."""
        found = ERROR_LINE.findall(self.stderr)
        assert len(found) == 1, f"expected one error line, got:\n{self.stderr}"
        return found[0]


def run_chaussette(*args: str, env: dict | None = None, cwd: Any = None, pass_fds: Sequence[int] = (),
                   timeout: float = RUN_TIMEOUT) -> Result:
    """Run ``python -m chaussette`` to completion (killed by pid on timeout)."""
    proc = subprocess.run([sys.executable, "-m", "chaussette", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, env=env, cwd=cwd, pass_fds=tuple(pass_fds),
                          timeout=timeout)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def assert_clean_error(result: Result, *fragments: str) -> str:
    """Bad input: non-zero exit, one readable line naming the problem, no traceback."""
    assert result.code != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    message = result.error
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


class CommandProcess(ServerProcess):
    """A ``ServerProcess`` for any command: a script using the Python API, a wrapper such
    as systemd-socket-activate. Same output capture, waits and by-pid cleanup."""

    def __init__(self, command: Sequence[str], pass_fds: Sequence[int] = (), env: dict | None = None,
                 cwd: Any = None) -> None:
        self.args = list(command)
        self._spawn(self.args, pass_fds, env, cwd)


def stop_cleanly(server: ServerProcess, timeout: float = 30.0) -> None:
    """SIGTERM, then expect exit 0 within ``timeout``; on failure show the server's log."""
    code = server.stop(timeout)
    assert code == 0, f"exit code {code}:\n{server.output}"


def env_with(*paths: Any, **variables: str) -> dict:
    """The current environment with ``paths`` first on PYTHONPATH and extra variables."""
    env = dict(os.environ)
    entries = [str(path) for path in paths]
    if env.get("PYTHONPATH"):
        entries.append(env["PYTHONPATH"])
    if entries:
        env["PYTHONPATH"] = os.pathsep.join(entries)
    env.update(variables)
    return env


def write_module(directory: Path, name: str, source: str) -> Path:
    path = directory / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return path


def read_text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


FAKE_BACKENDS = '''
"""Fake backends installed for core's tests. They serve through the wsgiref backend and
differ only in what core must do with them."""

import os
import sys

from chaussette.backends import Capabilities, require
from chaussette.backends.wsgiref.backend import WsgirefBackend
from chaussette.settings import Setting

PATCHED = False


def record(line):
    """Append ``line`` to the file named by FAKE_RECORD, so the test can read the order."""
    with open(os.environ["FAKE_RECORD"], "a") as out:
        out.write(line + "\\n")


class PatchingBackend(WsgirefBackend):
    name = "fake_patching"
    capabilities = Capabilities(monkey_patch=True)

    def patch(self):
        global PATCHED
        PATCHED = True
        record(f"patch: app imported={os.environ['FAKE_APP_MODULE'] in sys.modules}")


class FutureBackend(WsgirefBackend):
    name = "fake_future"
    api_version = 99


class FixedBackend(WsgirefBackend):
    name = "fake_fixed"
    capabilities = Capabilities(unsupported={"graceful_timeout": "it has no way to wait for requests"})


class SingleBackend(WsgirefBackend):
    name = "fake_single"
    capabilities = Capabilities(max_listeners=1, max_keep_alive=10)


class ClashingBackend(WsgirefBackend):
    name = "fake_clash"
    settings = (Setting("port", "A backend setting named like a core one.", flags=("--fake-port",)),)


class AdaptingBackend(WsgirefBackend):
    """Serves what the user named wrapped in a marker, so a test sees that ``adapt`` ran
    and that core's layers (the access log) went around its result."""

    name = "fake_adapting"

    def accepts(self, app):
        return app == "a plain string"

    def adapt(self, app):
        def adapted(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"adapted: " + app.encode()]
        return adapted


class NeedsLibBackend(WsgirefBackend):
    name = "fake_needs_lib"

    def check(self):
        require("fakeserverlib", "chaussette-fakes[lib]")


class SettingsBackend(WsgirefBackend):
    name = "fake_settings"
    settings = (Setting("fake_greeting", "Word the fake backend logs when it starts serving.",
                        default="hi", flags=("--fake-greeting",)),)

    def serve(self, app, listeners, lifecycle):
        self.log.info("fake_greeting=%s", self.config.extra["fake_greeting"])
        super().serve(app, listeners, lifecycle)
'''

FAKE_BROKEN = '''
raise ImportError("No module named 'fakeserverlib'", name="fakeserverlib")
'''

FAKE_ENTRY_POINTS = """\
[chaussette.backends]
fake_patching = chaussette_fakes:PatchingBackend
fake_future = chaussette_fakes:FutureBackend
fake_fixed = chaussette_fakes:FixedBackend
fake_single = chaussette_fakes:SingleBackend
fake_clash = chaussette_fakes:ClashingBackend
fake_adapting = chaussette_fakes:AdaptingBackend
fake_settings = chaussette_fakes:SettingsBackend
fake_needs_lib = chaussette_fakes:NeedsLibBackend
fake_broken = chaussette_fake_broken:BrokenBackend
"""


@pytest.fixture(scope="session")
def fake_backends(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the ``chaussette-fakes`` distribution (modules + dist-info with
    entry points); put it on PYTHONPATH of a subprocess to install the fake backends."""
    root = tmp_path_factory.mktemp("fake-dist")
    write_module(root, "chaussette_fakes", FAKE_BACKENDS)
    write_module(root, "chaussette_fake_broken", FAKE_BROKEN)
    info = root / "chaussette_fakes-0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: chaussette-fakes\nVersion: 0\n")
    (info / "entry_points.txt").write_text(FAKE_ENTRY_POINTS)
    return root


@pytest.fixture
def noisy_backend(tmp_path: Path) -> tuple[dict, Path]:
    """A distribution whose backend module creates ``mark`` when imported: the environment
    that installs it, and the mark, prove whether a command imported the module."""
    write_module(tmp_path, "noisy_backend", """
        import os
        open(os.environ["NOISY_MARK"], "w").close()
        from chaussette.backends.wsgiref.backend import WsgirefBackend as NoisyBackend
    """)
    info = tmp_path / "noisy-0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: noisy\nVersion: 0\n")
    (info / "entry_points.txt").write_text("[chaussette.backends]\nnoisy = noisy_backend:NoisyBackend\n")
    mark = tmp_path / "imported"
    env = env_with(tmp_path, NOISY_MARK=str(mark))
    return env, mark


@pytest.fixture
def fake_env(fake_backends: Path, tmp_path: Path) -> dict:
    """Environment with the fake backends installed and FAKE_RECORD in this test's tmp dir."""
    return env_with(fake_backends, FAKE_RECORD=str(tmp_path / "record.txt"))
