"""Shared by the waitress tests: servers on the loopback, raw requests on kept sockets."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from chaussette_testing import ServerProcess, start_server
from chaussette_testing.client import read_response

HERE = os.path.dirname(os.path.abspath(__file__))
APP = "waitress_apps.app"
#: Generous bound for anything that must happen; never an assertion about speed.
ANSWER_TIMEOUT = 10.0


def start(*args: str, **kwargs: Any) -> ServerProcess:
    return start_server("--backend", "waitress", "--host", "127.0.0.1", "--port", "0",
                        "--python-path", HERE, *args, APP, **kwargs)


def get(sock: socket.socket, path: str = "/", headers: str = "") -> Any:
    """One GET on an open connection, leaving it open; returns the parsed response."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode("latin-1"))
    stream = sock.makefile("rb")
    try:
        return read_response(stream)
    finally:
        stream.close()


def closed_by_server(sock: socket.socket, timeout: float = ANSWER_TIMEOUT) -> bool:
    """True once the server closes ``sock`` (EOF or reset); False if it stays open."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def wait_count(server: ServerProcess, text: str, count: int, timeout: float = ANSWER_TIMEOUT) -> None:
    """Wait until ``text`` occurs ``count`` times in the server's log."""
    deadline = time.monotonic() + timeout
    while server.output.count(text) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not logged {count} times within {timeout}s:\n{server.output}")
        time.sleep(0.05)
