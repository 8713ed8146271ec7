"""Turn the user's host/port/fd words into one of three address kinds.

Pure parsing, no sockets: it is fuzzed on its own and shared by the CLI, the Python API
and the Paste runner.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaussette.errors import SocketError


@dataclass(frozen=True)
class TcpAddress:
    host: str
    port: int
    ipv6: bool | None = None  # None: let the resolver decide

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class UnixAddress:
    path: str

    def __str__(self) -> str:
        return f"unix:{self.path}"


@dataclass(frozen=True)
class FdAddress:
    fd: int

    def __str__(self) -> str:
        return f"fd://{self.fd}"


Address = TcpAddress | UnixAddress | FdAddress
MAX_FD = 2**31 - 1  # fds are C ints: a larger number would overflow, not fail cleanly


def parse_fd(text: str) -> FdAddress:
    try:
        fd = int(text)
    except ValueError:
        raise SocketError(f"invalid file descriptor {text!r}: expected a number such as fd://3") from None
    if not 0 <= fd <= MAX_FD:
        raise SocketError(f"invalid file descriptor {fd}: must be between 0 and {MAX_FD}")
    return FdAddress(fd)


def parse_address(host: str, port: int = 8080, family: str | None = None) -> Address:
    """Parse ``--host`` (with ``--port`` and ``--address-family``) into an address.

    Accepted: ``localhost``, ``0.0.0.0``, ``::1``, ``[::1]``, ``unix:/path``,
    ``unix:///path``, ``fd://N``; with ``--address-family AF_UNIX`` a bare path.
    """
    host = host.strip()
    if not host:
        raise SocketError("empty --host: give a name or address such as 127.0.0.1, ::1 or unix:/path")
    if host.startswith("fd://"):
        return parse_fd(host[len("fd://"):])
    if host.startswith("unix:"):
        path = host[len("unix:"):]
        if path.startswith("//"):
            path = path[2:]
        return _unix(path)
    if family == "AF_UNIX":
        return _unix(host)
    if not 0 <= port <= 65535:
        raise SocketError(f"invalid --port {port}: must be between 0 and 65535")
    if host.startswith("["):
        if not host.endswith("]") or len(host) == 2:
            raise SocketError(f"invalid IPv6 host {host!r}: write it as [::1] or ::1")
        host = host[1:-1]
    if any(char.isspace() or char in "/\\?#@" for char in host) or "\x00" in host:
        raise SocketError(f"invalid host {host!r}: expected a name or an IP address")
    if ":" in host:
        return TcpAddress(host, port, ipv6=True)
    if family == "AF_INET6":
        return TcpAddress(host, port, ipv6=True)
    if family == "AF_INET":
        return TcpAddress(host, port, ipv6=False)
    return TcpAddress(host, port)


def _unix(path: str) -> UnixAddress:
    if not path or "\x00" in path:
        raise SocketError("invalid unix socket path: write it as unix:/path/to/app.sock")
    return UnixAddress(path)
