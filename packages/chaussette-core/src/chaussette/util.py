"""The 1.3 helpers, kept importable under their old names."""

from __future__ import annotations

import socket
from typing import Callable, Iterable

from chaussette.addresses import parse_address
from chaussette.importer import import_string
from chaussette.sockets import open_listener

__all__ = ["hello_app", "create_socket", "import_string"]

_FAMILIES: dict[int, str] = {socket.AF_INET: "AF_INET", socket.AF_INET6: "AF_INET6", socket.AF_UNIX: "AF_UNIX"}


def hello_app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """The default application: proves the server answers."""
    body = b"hello world"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def create_socket(host: str, port: int = 8080, family: int = socket.AF_INET,
                  type: int = socket.SOCK_STREAM, backlog: int = 2048, blocking: bool = True) -> socket.socket:
    """Bind (or adopt, for ``fd://N``) a listening socket, as 1.3's helper did.

    The caller owns the returned socket, including removing a unix socket file.
    """
    if type != socket.SOCK_STREAM:
        raise ValueError("only SOCK_STREAM sockets can serve HTTP")
    family_name = None if family == socket.AF_INET and ":" in host else _FAMILIES.get(family)
    listener = open_listener(parse_address(host, port, family_name), backlog)
    listener.sock.setblocking(blocking)
    return listener.sock
