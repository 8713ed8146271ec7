"""The Python adapter (``chaussette_bjoern.protocol``) on its own, as it serves a bjoern without
chaussette's mark. Its real-server tests run on the marked build, whose C code does the
same corrections and would hide a fault of the adapter's: here nothing else can."""

from __future__ import annotations

import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import pytest

from chaussette.http import UNIX_ENVIRON
from chaussette_bjoern.protocol import Application
from chaussette_testing.client import ipv6_loopback


class Recorder:
    """bjoern's side: what the adapter passed to start_response."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[tuple[str, str]]]] = []

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        self.calls.append((status, headers))


def generated(environ: dict, start_response: Callable) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"abc"
    yield b"defg"


def adapter(app: Callable, sock: socket.socket, is_unix: bool = False,
            stopping: bool = False) -> Application:
    return Application(app, SimpleNamespace(sock=sock, is_unix=is_unix),  # type: ignore[arg-type]
                       SimpleNamespace(stopping=stopping))


def call(application: Application, method: str = "GET") -> tuple[list[bytes], Recorder, dict]:
    environ = {"REQUEST_METHOD": method, "SERVER_NAME": "", "SERVER_PORT": ""}
    recorder = Recorder()
    body = list(application(environ, recorder))
    return body, recorder, environ


@pytest.fixture
def tcp() -> Iterator[socket.socket]:
    family, host = (socket.AF_INET6, "::1") if ipv6_loopback() else (socket.AF_INET, "127.0.0.1")
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        yield sock


def test_the_server_address_comes_from_the_listener(tcp: socket.socket) -> None:
    _, _, environ = call(adapter(generated, tcp))
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == tuple(map(str, tcp.getsockname()[:2]))


def test_a_unix_listener_gets_cores_environ(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "s"))
        _, _, environ = call(adapter(generated, sock, is_unix=True))
    assert {key: environ[key] for key in UNIX_ENVIRON} == UNIX_ENVIRON


def test_head_counts_the_body_and_sends_none(tcp: socket.socket) -> None:
    closed = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            return generated({}, lambda *args: None)

        def close(self) -> None:
            closed.append(True)

    def app(environ: dict, start_response: Callable) -> Body:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Body()

    body, recorder, _ = call(adapter(app, tcp), "HEAD")
    assert body == [] and closed == [True]
    assert recorder.calls == [("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "7")])]


def test_get_goes_through_untouched_until_the_stop(tcp: socket.socket) -> None:
    body, recorder, _ = call(adapter(generated, tcp))
    assert body == [b"abc", b"defg"] and recorder.calls == [("200 OK", [("Content-Type", "text/plain")])]
    _, recorder, _ = call(adapter(generated, tcp, stopping=True))
    assert recorder.calls == [("200 OK", [("Content-Type", "text/plain"), ("Connection", "close")])]


def test_system_exit_becomes_an_application_error(tcp: socket.socket) -> None:
    def app(environ: dict, start_response: Callable) -> list[bytes]:
        raise SystemExit(3)

    with pytest.raises(RuntimeError, match=r"the application raised SystemExit\(3\)"):
        call(adapter(app, tcp))
