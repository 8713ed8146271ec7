"""Applications for the meinheld-specific tests, routed by path (served as
``meinheld_apps.app`` with this directory on the server's ``--python-path``)."""

from __future__ import annotations

import json
import resource
import socket
import sys
from typing import Callable, Iterable, Iterator
from urllib.parse import parse_qs


def _query(environ: dict, name: str) -> str:
    return parse_qs(environ.get("QUERY_STRING", "")).get(name, [""])[0]


def _json(start_response: Callable, info: dict) -> list[bytes]:
    body = json.dumps(info).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def info(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """What the environ says about the connection, and what the process looks like."""
    keys = ("REMOTE_ADDR", "REMOTE_PORT", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL")
    return _json(start_response, {
        **{key: environ.get(key) for key in keys},
        "socket_module": socket.socket.__module__,
        "open_files_soft_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    })


def gate(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """Waits, on a (monkey-patched) socket, until the test's gate server sends a byte:
    meinheld's only way to let other requests run meanwhile is patched socket I/O."""
    with socket.create_connection(("127.0.0.1", int(_query(environ, "port"))), timeout=60) as sock:
        print("gate request started", file=sys.stderr, flush=True)
        released = sock.recv(1)
    body = b"released" if released else b"gate closed"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def big(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """``size`` bytes, after reading the whole request body."""
    environ["wsgi.input"].read()
    body = b"y" * int(_query(environ, "size"))
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def redirect(environ: dict, start_response: Callable) -> Iterable[bytes]:
    start_response("302 Found", [("Location", "/")])
    return []


def empty_first(environ: dict, start_response: Callable) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b""
    yield b"abc"
    yield b""
    yield b"def"


def lazy_empty(environ: dict, start_response: Callable) -> Iterator[bytes]:
    """A generator that calls start_response on its first step and yields nothing."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield from ()


def no_content(environ: dict, start_response: Callable) -> Iterable[bytes]:
    start_response("204 No Content", [("X-Body", "dropped")])
    return [b"must not be sent"]


def legacy_write(environ: dict, start_response: Callable) -> Iterable[bytes]:
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"written, ")
    return [b"then returned"]


def bad_header(environ: dict, start_response: Callable) -> Iterable[bytes]:
    start_response("200 OK", [("X-Split", "a\rInjected: yes")])
    return [b"never sent"]


def hello(environ: dict, start_response: Callable) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "11")])
    return [b"hello world"]


ROUTES = {"/info": info, "/gate": gate, "/big": big, "/redirect": redirect, "/empty-first": empty_first,
          "/lazy-empty": lazy_empty, "/no-content": no_content, "/write": legacy_write,
          "/bad-header": bad_header, "/": hello}


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    return ROUTES[environ["PATH_INFO"]](environ, start_response)
