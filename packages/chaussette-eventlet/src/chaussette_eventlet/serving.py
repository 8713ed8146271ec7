"""eventlet.wsgi serving core's listeners, with the graceful stop it lacks.

One accept loop (green thread) per listener hands connections to ``eventlet.wsgi.Server``
through one shared ``GreenPool``: eventlet.wsgi's own ``server()`` loop would shut down
connections accepted but not yet answered when it stops, key its connection table by
peer address (every unix peer's is ``''``), fail to format an abstract socket's name, and
catch ``SystemExit``. Imported only from ``serve()``, after ``patch()``;
``chaussette_eventlet.protocol`` reads and fixes each request, and
``chaussette_eventlet.signals`` delivers core's stop signals.

Core settings and what they become (also in the README):

- ``spawn`` -> size of the ``GreenPool`` shared by every listener (eventlet's
  ``max_size``). eventlet spends one green thread per *connection*, so an idle keep-alive
  connection holds a slot until it closes.
- ``keep_alive`` -> ``keepalive``: ``False`` for 0, otherwise the seconds to wait for the
  next request (and for the first one on a new connection).
- ``limit_request_line``, ``limit_request_fields``, ``limit_request_field_size`` -> core's
  strict head parser (``chaussette_eventlet.protocol``), which reads every head before
  eventlet sees it: 414 for a request line too long, 431 for too many or too large header
  fields, as with ``wsgiref``. eventlet's own limits are never reached.
"""

from __future__ import annotations

import logging
import os
from functools import partial
from typing import Any, Callable, Sequence

import eventlet
import greenlet
from eventlet import greenio, greenthread, hubs, patcher, wsgi

from chaussette.http import IO_TIMEOUT, UNIX_REMOTE_ADDR, limits
from chaussette.settings import Config
from chaussette.sockets import Listener
from chaussette_eventlet.protocol import Guard, Protocol
from chaussette_eventlet.signals import MainGreenletDelivery

#: The peer address of a unix socket connection: AF_UNIX peers have none, and
#: applications expect an IP in REMOTE_ADDR.
UNIX_PEER = (UNIX_REMOTE_ADDR, "")
#: The unpatched ``os.write``: eventlet's green one waits in the hub, which a signal
#: handler must not do.
os_write = patcher.original("os").write


class GreenServer:
    """Accept loops, one shared pool of connection green threads, and the stop.

    ``stop()`` only wakes a green thread, which ends the accept loops that wait in
    ``accept()``, closes the listening sockets and closes the idle keep-alive connections.
    Connections accepted before the stop are still answered, with ``Connection: close``,
    even those that have not sent their request yet or wait for a ``--spawn`` slot: no
    other process can answer them. ``run()`` returns once all have finished; core bounds
    that wait with its SIGALRM.
    """

    def __init__(self, app: Callable[..., Any], listeners: Sequence[Listener], config: Config,
                 log: logging.Logger) -> None:
        self.listeners = listeners
        self.log = log
        self.pool = eventlet.GreenPool(config.spawn or wsgi.DEFAULT_MAX_SIMULTANEOUS_REQUESTS)
        self.stopping = False
        self.accepting: set[greenthread.GreenThread] = set()  # accept loops waiting in accept()
        self.connections: dict[greenio.GreenSocket, list[Any]] = {}  # eventlet's [address, socket, state]
        guard = Guard(app, log)
        head_limits = limits(config)
        self.servers = [wsgi.Server(
            greenio.GreenSocket(listener.sock), listener.name, guard,
            protocol=partial(Protocol, stopping=lambda: self.stopping, limits=head_limits),
            max_http_version="HTTP/1.1",
            keepalive=config.keep_alive or False,
            socket_timeout=IO_TIMEOUT,
            url_length_limit=config.limit_request_line + len(b"\r\n") + 1,  # never reached: core's limit
            minimum_chunk_size=0,  # PEP 3333: send each block as the application yields it
            log_output=False,  # no line per request: --access-log is core's
            debug=False,  # never a traceback in a 500
        ) for listener in listeners]
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        #: Hand it to ``lifecycle.install`` with ``stop``, before ``run()``.
        self.signals = MainGreenletDelivery()

    def run(self) -> None:
        """Serve until stopped; call once core installed its stop signal handlers
        through ``signals``."""
        loops = [eventlet.spawn(self._accept_loop, server, listener)
                 for server, listener in zip(self.servers, self.listeners, strict=True)]
        stopper = eventlet.spawn(self._stop_when_woken)
        try:
            for loop in loops:
                _wait(loop)
            self.pool.waitall()
        except SystemExit:
            # Exiting now. The pipe stays open: the stopper may still wait on it, and a
            # closed fd number reused by a post-hook's socket would confuse the hub.
            self.signals.received = True
            raise
        self.signals.raise_swallowed()
        stopper.kill()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _accept_loop(self, server: wsgi.Server, listener: Listener) -> None:
        current = greenlet.getcurrent()
        while not self.stopping:
            self.accepting.add(current)
            try:
                sock, address = server.socket.accept()
            except OSError as exc:  # EMFILE and friends: back off instead of spinning
                self.log.error("accept failed on %s: %s", listener.name, exc.strerror)
                eventlet.sleep(0.1)
                continue
            finally:
                self.accepting.discard(current)
            sock.settimeout(IO_TIMEOUT)
            if listener.is_unix:
                address = UNIX_PEER
            # Not idle until it served a request, so the stop does not close it unanswered.
            connection = [address, sock, wsgi.STATE_REQUEST]
            self.connections[sock] = connection
            self.pool.spawn(server.process_request, connection).link(self._finished, connection)

    def _finished(self, thread: greenthread.GreenThread, connection: list[Any]) -> None:
        sock = connection[1]
        self.connections.pop(sock, None)
        greenio.shutdown_safe(sock)
        sock.close()

    def stop(self) -> None:
        """Signal-handler side. It runs in whichever green thread the signal interrupted,
        where switching green threads is unsafe, so it only writes one byte to an empty
        pipe (core calls it once), which cannot block. Core has just installed its
        graceful timeout (SIGALRM) through ``signals`` and armed it."""
        os_write(self._wake_w, b"x")

    def _stop_when_woken(self) -> None:
        hubs.trampoline(self._wake_r, read=True)
        self.stopping = True
        for loop in list(self.accepting):
            loop.kill()  # a loop waiting for a pool slot ends once it handed its connection over
        for listener in self.listeners:
            listener.close()  # refuse new connections now rather than leave them queued
        for _, sock, state in list(self.connections.values()):
            if state == wsgi.STATE_IDLE:
                greenio.shutdown_safe(sock)  # waiting for a further keep-alive request


def _wait(loop: greenthread.GreenThread) -> None:
    try:
        loop.wait()
    except greenlet.GreenletExit:
        pass  # killed by the stop: the normal end
