"""Shared pieces of the meinheld tests: servers of this directory's apps, and a gate."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from chaussette_testing.process import ServerProcess, start_server

HERE = Path(__file__).resolve().parent
APP = "meinheld_apps.app"


def start(*args: str, app: str = APP, **kwargs: Any) -> ServerProcess:
    """A meinheld server of ``meinheld_apps`` (or ``app``), on a free port unless told."""
    where = () if any(arg in ("--host", "--fd") for arg in args) else ("--host", "127.0.0.1", "--port", "0")
    return start_server("--backend", "meinheld", "--python-path", str(HERE), *where, *args, app, **kwargs)


def run_chaussette(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """``chaussette`` run to completion (start-up refusals)."""
    return subprocess.run([sys.executable, "-m", "chaussette", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, env=env, timeout=timeout)


class Gate:
    """A TCP server the ``/gate`` requests connect to and wait on, until ``release()``."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.waiting: list[socket.socket] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed
                return
            with self.lock:
                self.waiting.append(conn)

    def count(self) -> int:
        with self.lock:
            return len(self.waiting)

    def wait_for(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.count() < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.count()} of {count} requests reached the gate")
            time.sleep(0.02)

    def release(self) -> None:
        with self.lock:
            for conn in self.waiting:
                conn.sendall(b"x")

    def __enter__(self) -> Gate:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.sock.close()
        self.thread.join(5)
        with self.lock:
            for conn in self.waiting:
                conn.close()
