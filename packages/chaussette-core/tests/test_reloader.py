"""--use-reloader: a parent holding the socket, a child restarted when the code changes."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

from conftest import CommandProcess, Result, assert_clean_error, stop_cleanly, write_module

from chaussette_testing import ServerProcess, free_port, request
from chaussette_testing.procs import wait_until

APP_SOURCE = """
from chaussette_testing.apps import create_app

app = create_app({greeting!r})
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _child_pids(output: str) -> list[int]:
    return [int(pid) for pid in re.findall(r"\[(\d+)\] \[INFO\] Serving on fd://", output)]


def _kill_children(server: ServerProcess) -> None:
    """Never leave a child behind, even on failure: the children first, by the pids they
    logged (they are in their own session, and they hold the reloader's output pipe)."""
    for pid in _child_pids(server.output):
        if _alive(pid):
            os.kill(pid, 9)
    server.kill()


def _body(port: int) -> bytes | None:
    try:
        return request(("127.0.0.1", port), timeout=10)[2]
    except OSError:
        return None


def test_reload_on_change(tmp_path: Path) -> None:
    app = write_module(tmp_path, "reloaded", APP_SOURCE.format(greeting="v1"))
    port = free_port()
    server = ServerProcess(["--use-reloader", "--host", "127.0.0.1", "--port", str(port), "reloaded.app"],
                           cwd=str(tmp_path), env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    children: list[int] = []
    try:
        server.wait_serving()
        assert _body(port) == b"v1"
        # Rewrite until the new code answers: a write that lands before the watcher is
        # running would otherwise be missed. Bounded: 40 s at most.
        deadline = time.monotonic() + 40
        body = b"v1"
        while body != b"v2, reloaded" and time.monotonic() < deadline:
            app.write_text(APP_SOURCE.format(greeting="v2, reloaded"))
            poll_until = time.monotonic() + 5
            while time.monotonic() < poll_until:
                body = _body(port)
                if body == b"v2, reloaded":
                    break
                time.sleep(0.1)
        assert body == b"v2, reloaded", server.output
        # v2 answering does not mean its log line has been read from the pipe yet
        children = wait_until(lambda: len(set(_child_pids(server.output))) >= 2 and _child_pids(server.output),
                              what="a second child serving", context=lambda: server.output)
        assert "Reloading: reloaded.py changed" in server.output
        assert server.pid not in children
        assert not _alive(children[0]), "the v1 child still runs after the reload"
        stop_cleanly(server)
        for pid in children:
            assert not _alive(pid), f"child {pid} outlived the reloader"
    finally:
        _kill_children(server)


def test_reloader_keeps_an_inherited_fd(tmp_path: Path) -> None:
    """``--fd N --use-reloader``: the child must get the fd once, not twice."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        fd = sock.fileno()
        server = ServerProcess(["--use-reloader", "--fd", str(fd), "chaussette.util.hello_app"],
                               pass_fds=[fd], cwd=str(tmp_path))
        try:
            server.wait_serving()
            assert request(sock.getsockname())[2] == b"hello world"
            stop_cleanly(server)
        finally:
            _kill_children(server)


WITHOUT_WATCHFILES = """
import sys

sys.modules["watchfiles"] = None  # import watchfiles now raises ImportError
from chaussette.cli import main

main(sys.argv[1:])
"""


def test_missing_watchfiles_is_explained(tmp_path: Path) -> None:
    script = write_module(tmp_path, "no_watchfiles", WITHOUT_WATCHFILES)
    with CommandProcess([sys.executable, str(script), "--use-reloader", "--host", "127.0.0.1",
                         "--port", "0"]) as proc:
        code = proc.wait(30)
        result = Result(code, proc.stdout, proc.output)
    assert_clean_error(result, "--use-reloader needs watchfiles", "pip install 'chaussette-core[reload]'")
