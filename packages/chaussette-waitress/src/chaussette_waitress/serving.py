"""waitress serving core's listening sockets, with the graceful stop waitress lacks:
the servers on the listeners, the loop, the stop and the drain.

Imported only by ``WaitressBackend.serve()``: it imports waitress at module level. The
other parts keep waitress's own split: ``channel.py`` (a connection), ``task.py`` (a
request's response, run by a worker thread), ``waker.py`` (waitress's ``trigger.py``:
waking the loop) and ``protocol.py`` (its ``parser.py``: strict parsing).

Why not ``waitress.create_server(app, sockets=...)``: it builds its own server classes,
and these subclasses are needed to (1) keep the socket as core made it (waitress calls
``listen()`` again with its own backlog), (2) give unix-socket clients the same
REMOTE_ADDR as core's wsgiref backend, and (3) drain on stop. The construction below
mirrors what ``create_server`` does for ``sockets=``.

The drain: waitress runs an asyncore loop in the main thread and the application in a
pool of worker threads. On stop the loop drops the listening sockets, closes idle
connections, answers in-flight requests with ``Connection: close``, and keeps running
until no connection is left and no worker has a task.
"""

from __future__ import annotations

import logging
import select
from typing import Any, Callable, Sequence

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.server import BaseWSGIServer, TcpWSGIServer, UnixWSGIServer
from waitress.task import ThreadedTaskDispatcher

from chaussette.framing import Limits
from chaussette.http import UNIX_REMOTE_ADDR
from chaussette.sockets import Listener
from chaussette_waitress.channel import Channel
from chaussette_waitress.protocol import StrictParser
from chaussette_waitress.waker import Waker

#: Poll timeout while draining: a worker that finishes a request for a client that is
#: already gone wakes nobody, so the loop looks again this often.
DRAIN_POLL = 0.1


class ConnectionPolicy:
    """What the loop thread tells the worker threads about reusing connections."""

    def __init__(self, keep_alive: bool) -> None:
        self.keep_alive = keep_alive
        self.stopping = False

    @property
    def close_after_response(self) -> bool:
        return self.stopping or not self.keep_alive


class ListenerServer(BaseWSGIServer):
    """Serves a socket core already bound and put in listening state."""

    channel_class = Channel
    policy: ConnectionPolicy
    parser_class: type[StrictParser]

    def accept_connections(self) -> None:
        self.accepting = True  # no listen(): core did it with --backlog (or the parent did, for --fd)


class TcpServer(ListenerServer, TcpWSGIServer):
    pass


class UnixServer(ListenerServer, UnixWSGIServer):
    def fix_addr(self, addr: Any) -> tuple[str, str]:
        return (UNIX_REMOTE_ADDR, "")  # waitress gives ("localhost", None): REMOTE_PORT "None"

    def getsockname(self) -> tuple[str, str]:
        return ("localhost", "0")  # waitress gives the path, which would become SERVER_PORT


class WaitressServer:
    def __init__(self, app: Callable[..., Any], listeners: Sequence[Listener], adjustments: dict,
                 keep_alive: bool, log: logging.Logger, limits: Limits) -> None:
        self.listeners = listeners
        self.parser_class = StrictParser.with_limits(limits)
        self.log = log
        self.policy = ConnectionPolicy(keep_alive)
        self.map: dict = {}
        self.adj = Adjustments(**adjustments)
        self.tasks = ThreadedTaskDispatcher()
        self.tasks.set_thread_count(self.adj.threads)
        try:
            self.servers = [self._server(app, listener) for listener in listeners]
            self.waker = Waker(self.map)
        except BaseException:
            self._close()
            raise
        # waitress counts its own listening sockets and wake-up pipes against the limit;
        # raise it by them so --waitress-connection-limit N means N client connections.
        self.adj.connection_limit += len(self.map)

    def _server(self, app: Callable[..., Any], listener: Listener) -> ListenerServer:
        sock = listener.sock
        kind = UnixServer if listener.is_unix else TcpServer
        server = kind(app, self.map, _sock=sock, dispatcher=self.tasks, adj=self.adj, bind_socket=False,
                      sockinfo=(sock.family, sock.type, sock.proto, sock.getsockname()))
        server.policy = self.policy
        server.parser_class = self.parser_class
        return server

    def stop(self) -> None:
        """Signal-handler side: flip a flag and wake the loop, nothing that can block."""
        self.policy.stopping = True
        self.waker.wake()

    def run(self) -> None:
        poll = wasyncore.poll2 if hasattr(select, "poll") else wasyncore.poll  # select() stops at fd 1024
        try:
            while not self.policy.stopping:
                poll(self.adj.asyncore_loop_timeout, self.map)
            self._stop_accepting()
            self._close_idle()
            self.log.info("Stopped accepting; %d connection(s) with a request in flight",
                          len(self._channels()))
            while not self._drained():
                poll(DRAIN_POLL, self.map)
                self._close_idle()
            self.tasks.shutdown()
        finally:
            self._close()

    def _stop_accepting(self) -> None:
        for server in self.servers:
            server.del_channel()  # out of the loop; the socket belongs to the listener
            server.accepting = False
        for listener in self.listeners:
            listener.close()  # connections still in the listen queue are refused

    def _channels(self) -> list[Channel]:
        return [channel for server in self.servers for channel in list(server.active_channels.values())]

    def _close_idle(self) -> None:
        for channel in self._channels():
            if not channel.busy:
                channel.handle_close()

    def _drained(self) -> bool:
        if self._channels():
            return False
        with self.tasks.lock:  # a worker may still run the app for a client that left
            return not self.tasks.queue and self.tasks.active_count == 0

    def _close(self) -> None:
        """Close connections, waitress's triggers and the waker; on a forced exit this
        does not wait for the workers (they are daemon threads)."""
        wasyncore.close_all(self.map, ignore_all=True)


def forward_logs(log: logging.Logger) -> None:
    """Send waitress's own messages (application errors, connection-limit and queue-depth
    warnings) to chaussette's log, with its format and level, instead of Python's
    last-resort stderr handler. waitress logs nothing per request."""
    waitress_log = logging.getLogger("waitress")
    if waitress_log.handlers:  # the application configured it: leave it alone
        return
    waitress_log.addHandler(_Forward(log))
    waitress_log.setLevel(log.getEffectiveLevel())
    waitress_log.propagate = False


class _Forward(logging.Handler):
    def __init__(self, target: logging.Logger) -> None:
        super().__init__()
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        self.target.handle(record)
