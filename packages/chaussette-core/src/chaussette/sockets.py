"""Listening sockets: bind them, adopt inherited ones, and clean up what we created.

Only core touches addresses. Backends receive ready, listening stdlib sockets, created
before any monkey-patching so that a patched ``socket`` module cannot misread an
inherited fd.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from dataclasses import dataclass
from typing import Iterable

from chaussette.addresses import Address, FdAddress, TcpAddress, UnixAddress
from chaussette.errors import SocketError


@dataclass
class Listener:
    """A listening socket and what to undo at exit (``owned_path``: the unix socket file
    we created, with its inode so we never remove a file someone else put there later)."""

    sock: socket.socket
    name: str
    owned_path: tuple[str, int] | None = None

    @property
    def is_unix(self) -> bool:
        return self.sock.family == socket.AF_UNIX

    def close(self) -> None:
        self.sock.close()
        if self.owned_path is None:
            return
        path, inode = self.owned_path
        try:
            if os.stat(path).st_ino == inode:
                os.unlink(path)
        except FileNotFoundError:
            pass
        self.owned_path = None


def open_listener(address: Address, backlog: int = 2048) -> Listener:
    if isinstance(address, FdAddress):
        return adopt_fd(address.fd, backlog)
    if isinstance(address, UnixAddress):
        return bind_unix(address.path, backlog)
    return bind_tcp(address, backlog)


def bind_tcp(address: TcpAddress, backlog: int) -> Listener:
    family = {None: socket.AF_UNSPEC, True: socket.AF_INET6, False: socket.AF_INET}[address.ipv6]
    try:
        infos = socket.getaddrinfo(address.host, address.port, family, socket.SOCK_STREAM, 0,
                                   socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise SocketError(f"cannot resolve host {address.host!r}: {exc.strerror}; "
                          "use an IP address such as 127.0.0.1 or ::1") from None
    except UnicodeError:  # the IDNA codec refuses it (empty or over-long label) before any lookup
        raise SocketError(f"invalid host {address.host!r}: not a valid host name; "
                          "use an IP address such as 127.0.0.1 or ::1") from None
    af, kind, proto, _, sockaddr = infos[0]
    sock = socket.socket(af, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise SocketError(_bind_problem(str(address), exc)) from None
    set_nodelay(sock)
    host, port = sock.getsockname()[:2]
    return Listener(sock, str(TcpAddress(host, port)))


def bind_unix(path: str, backlog: int) -> Listener:
    remove_stale_unix_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise SocketError(_bind_problem(f"unix:{path}", exc)) from None
    return Listener(sock, f"unix:{path}", owned_path=(path, os.stat(path).st_ino))


def remove_stale_unix_socket(path: str) -> None:
    """Unlink ``path`` only if it is a socket nobody listens on.

    A live socket means another server runs there; a regular file (or anything else) is
    somebody's data: both are refused and left untouched.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise SocketError(f"{path} exists and is not a socket; refusing to replace it. "
                          "Remove it yourself or choose another unix socket path")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)
        return
    except OSError:
        return  # let bind() report what is wrong with the path
    finally:
        probe.close()
    raise SocketError(f"unix:{path} is already in use by a running server; stop it or choose another path")


def adopt_fd(fd: int, backlog: int = 2048) -> Listener:
    """Wrap an inherited fd; family and type are read from the fd itself."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        if exc.errno == errno.EBADF:
            raise SocketError(f"--fd {fd} is not an open file descriptor; check that the process "
                              "manager passes this fd to chaussette") from None
        if exc.errno == errno.ENOTSOCK:
            raise SocketError(f"--fd {fd} is not a socket; pass the fd of a listening socket "
                              "(Circus: $(circus.sockets.NAME), Supervisor fcgi-program: 0)") from None
        raise SocketError(f"cannot use --fd {fd}: {exc.strerror}") from None
    if sock.type != socket.SOCK_STREAM:
        sock.detach()
        raise SocketError(f"--fd {fd} is not a stream socket; HTTP needs SOCK_STREAM")
    try:
        if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            sock.listen(backlog)
    except OSError as exc:
        sock.detach()
        raise SocketError(f"--fd {fd} cannot listen: {exc.strerror}; pass a bound socket") from None
    set_nodelay(sock)
    return Listener(sock, f"fd://{fd}")


def set_nodelay(sock: socket.socket) -> None:
    """Accepted connections inherit TCP_NODELAY from the listener on Linux; without it a
    response written in two sends waits ~40 ms for the peer's delayed ACK."""
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def close_all(listeners: Iterable[Listener]) -> None:
    for listener in listeners:
        listener.close()


def _bind_problem(where: str, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"{where} is already in use; stop the other server or choose another --port/--host"
    if exc.errno == errno.EACCES:
        return f"permission denied binding {where}; use a port above 1024 or check the path's permissions"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{where} is not an address of this machine; use 127.0.0.1, 0.0.0.0 or ::"
    if exc.errno == errno.ENOENT:
        return f"cannot bind {where}: its directory does not exist"
    return f"cannot bind {where}: {exc.strerror}"
