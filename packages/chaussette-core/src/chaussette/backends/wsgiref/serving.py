"""The serving loop: one accept loop on every listener, a thread per connection, and
the graceful stop that closes idle connections and waits for the busy ones."""

from __future__ import annotations

import os
import selectors
import signal
import socket
import threading
import time
from typing import Any, Callable, Sequence

from chaussette.backends import Backend
from chaussette.backends.wsgiref.protocol import DRAIN_LIMIT, Exchange
from chaussette.framing import HTTPError, read_head
from chaussette.http import IO_TIMEOUT, UNIX_REMOTE_ADDR, limits, refusal
from chaussette.sockets import Listener


class ThreadedServer:
    def __init__(self, app: Callable[..., Any], listeners: Sequence[Listener], backend: Backend) -> None:
        config = backend.config
        self.app = app
        self.listeners = listeners
        self.log = backend.log
        self.keep_alive = config.keep_alive
        self.limits = limits(config)
        self.stopping = False
        self.lock = threading.Lock()
        self.connections: set[Connection] = set()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    def run(self) -> None:
        selector = selectors.DefaultSelector()
        for listener in self.listeners:
            listener.sock.setblocking(False)
            selector.register(listener.sock, selectors.EVENT_READ, listener)
        selector.register(self._wake_r, selectors.EVENT_READ)
        # The C-level signal handler writes to the pipe as well: a signal received by
        # another thread then still wakes select() here, where Python runs its handler.
        # Off the main thread (an embedded server) signals are not ours to watch.
        main = threading.current_thread() is threading.main_thread()
        previous_wakeup_fd = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False) if main else -1
        try:
            try:
                while not self.stopping:
                    for key, _ in selector.select():
                        if key.data is None:
                            self._clear_wakeups()
                        else:
                            self._accept(key.data)
            finally:
                selector.close()
                for listener in self.listeners:
                    listener.close()  # stop accepting now; pending connections are refused
            # Not in the finally: a ForcedExit (second signal) leaving the loop must not
            # then wait for the in-flight requests it is meant to abandon.
            self._drain()
        finally:
            if main:
                signal.set_wakeup_fd(previous_wakeup_fd)
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _clear_wakeups(self) -> None:
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def _accept(self, listener: Listener) -> None:
        try:
            sock, address = listener.sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        except OSError as exc:  # EMFILE and friends: back off instead of spinning
            self.log.error("accept failed on %s: %s", listener.name, exc.strerror)
            time.sleep(0.1)
            return
        sock.setblocking(True)
        connection = Connection(self, sock, address, listener)
        with self.lock:
            self.connections.add(connection)
        threading.Thread(target=connection.run, name=f"chaussette-{sock.fileno()}", daemon=True).start()

    def stop(self) -> None:
        """Signal handler side: only flips flags and wakes the accept loop."""
        self.stopping = True
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass

    def _drain(self) -> None:
        with self.lock:
            connections = list(self.connections)
        for connection in connections:
            connection.close_if_idle()
        for connection in connections:
            # Timed waits return to Python regularly, so the graceful-timeout alarm or a
            # second signal runs its handler even when another thread received it.
            while not connection.finished.wait(0.5):
                pass

    def forget(self, connection: Connection) -> None:
        with self.lock:
            self.connections.discard(connection)


class Connection:
    def __init__(self, server: ThreadedServer, sock: socket.socket, address: Any, listener: Listener) -> None:
        self.server = server
        self.sock = sock
        self.listener = listener
        # A new connection is not idle: its client sent (or is sending) a request that we
        # accepted, so a graceful stop still answers it. Only the wait for a *further*
        # keep-alive request is idle, and may be cut short by a stop.
        self.fresh = True
        self.idle = False
        self.finished = threading.Event()
        if listener.is_unix or not isinstance(address, tuple):
            self.remote = (UNIX_REMOTE_ADDR, "")
            self.local = ("localhost", "0")
        else:
            self.remote = (address[0], str(address[1]))
            local = sock.getsockname()
            self.local = (local[0], str(local[1]))
        self.rfile = sock.makefile("rb", buffering=1 << 16)

    def close_if_idle(self) -> None:
        with self.server.lock:
            if self.idle:
                try:
                    self.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def run(self) -> None:
        try:
            while self._one_request():
                pass
        except Exception:  # a server bug must not kill the process; log it
            self.server.log.exception("unexpected error on a connection")
        finally:
            self.rfile.close()
            self.sock.close()
            self.server.forget(self)
            self.finished.set()

    def _one_request(self) -> bool:
        """Serve one request; True to keep the connection for another."""
        server = self.server
        with server.lock:
            if server.stopping and not self.fresh:
                return False
            self.idle = not self.fresh
        self.sock.settimeout(server.keep_alive or IO_TIMEOUT)
        try:
            head = read_head(self.rfile.readline, server.limits)
        except HTTPError as exc:
            self._refuse(exc)
            return False
        except OSError:  # idle timeout, reset, or shut down by a graceful stop
            return False
        with server.lock:
            self.idle = self.fresh = False
        if head is None:
            return False
        self.sock.settimeout(IO_TIMEOUT)
        try:
            return Exchange(self, head).run()
        except HTTPError as exc:
            self._refuse(exc)
            return False
        except OSError:
            return False

    def _refuse(self, error: HTTPError) -> None:
        try:
            self.sock.sendall(refusal(error))
            self.sock.shutdown(socket.SHUT_WR)
            self.sock.settimeout(1.0)
            self.sock.recv(DRAIN_LIMIT)  # let the peer read our answer before any RST
        except OSError:
            pass
