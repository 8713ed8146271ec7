"""waitress serving core's listening sockets, with the graceful stop waitress lacks.

Imported only by ``WaitressBackend.serve()``: it imports waitress at module level.

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
import os
import select
import time
from typing import Any, Callable, Sequence
from wsgiref.util import FileWrapper

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, TcpWSGIServer, UnixWSGIServer
from waitress.task import ThreadedTaskDispatcher, WSGITask

from chaussette.backends.wsgiref import UNIX_REMOTE_ADDR
from chaussette.framing import Limits
from chaussette.sockets import Listener
from chaussette_waitress.parser import StrictParser

#: Poll timeout while draining: a worker that finishes a request for a client that is
#: already gone wakes nobody, so the loop looks again this often.
DRAIN_POLL = 0.1
#: How long a stop waits for the first request of a connection accepted before it: under a
#: process manager no other worker can answer that client.
FRESH_CONNECTION_WAIT = 5.0
#: Largest first body part sent together with the response head: joining them copies it.
HEAD_WITH_BODY_MAX = 64 * 1024


class ConnectionPolicy:
    """What the loop thread tells the worker threads about reusing connections."""

    def __init__(self, keep_alive: bool) -> None:
        self.keep_alive = keep_alive
        self.stopping = False

    @property
    def close_after_response(self) -> bool:
        return self.stopping or not self.keep_alive


class Task(WSGITask):
    """waitress's WSGI task, plus connection policy and bodiless HEAD responses.

    waitress 3.0.2 writes whatever the application returns for a HEAD request onto the
    wire, which a client reads as the start of the next response; here the headers are
    sent as for GET and the body is dropped.
    """

    @property
    def is_head(self) -> bool:
        return self.request.command == "HEAD"

    def get_environment(self) -> dict:
        environ = super().get_environment()
        if self.is_head:  # waitress sends its own file wrapper's content directly: iterate instead
            environ["wsgi.file_wrapper"] = FileWrapper
        return environ

    def build_response_header(self) -> bytes:
        """Close the connection after this response when keep-alive is off or we are
        stopping; asking through the request's own header lets waitress write a single,
        correct ``Connection: close`` for HTTP/1.0 and 1.1 alike."""
        if self.channel.server.policy.close_after_response:
            self.request.headers["CONNECTION"] = "close"
        head = super().build_response_header()
        if self.is_head:
            self.chunked_response = False  # no terminating chunk either
        return head

    def write(self, data: bytes) -> None:
        """The response head goes out with the first part of the body, in one send:
        waitress sends each of its writes at once, so a small response took two sends
        (two segments for the client to read) and two trips through the output lock."""
        if self.is_head:
            data = b""
        if self.wrote_header or not data or len(data) > HEAD_WITH_BODY_MAX:
            super().write(data)
            return
        channel, held = self.channel, HeldWrites(self.channel)
        self.channel = held  # type: ignore[assignment]
        try:
            super().write(data)
        finally:
            self.channel = channel
        channel.write_soon(b"".join(held.parts))

    def finish(self) -> None:
        super().finish()
        self.channel.served = True


class HeldWrites:
    """A channel whose ``write_soon`` keeps what it is given, for ``Task.write`` to send
    in one piece; everything else is the channel's."""

    def __init__(self, channel: HTTPChannel) -> None:
        self.channel = channel
        self.parts: list[bytes] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.channel, name)

    def write_soon(self, data: bytes) -> int:
        self.parts.append(data)
        return len(data)


class Channel(HTTPChannel):
    task_class = Task
    served = False

    @property
    def parser_class(self) -> type[StrictParser]:  # type: ignore[override]
        """waitress makes each request's parser with ``parser_class(adj)``: core's strict
        checks with this server's limits (see ``parser.py``)."""
        return self.server.parser_class

    @property
    def busy(self) -> bool:
        """True while a request is being received (its head is complete), queued, run,
        or its response is still being sent, and for a connection accepted but not yet
        served (for a while): what a graceful stop waits for."""
        receiving = self.request is not None and self.request.headers_finished
        fresh = not self.served and time.time() - self.creation_time < FRESH_CONNECTION_WAIT
        return bool(self.requests or self.total_outbufs_len or receiving or fresh)


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


class Waker(wasyncore.file_dispatcher):
    """Wakes the loop from a signal handler. waitress's own trigger is not safe there: it
    writes to a blocking pipe that only the (interrupted) loop thread empties."""

    def __init__(self, socket_map: dict) -> None:
        read_end, self._write_end = os.pipe()
        os.set_blocking(self._write_end, False)
        super().__init__(read_end, map=socket_map)
        os.close(read_end)  # file_dispatcher keeps its own duplicate

    def wake(self) -> None:
        try:
            os.write(self._write_end, b"x")
        except BlockingIOError:
            pass  # full pipe: the loop is woken already

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def handle_read(self) -> None:
        try:
            os.read(self.socket.fileno(), 4096)
        except BlockingIOError:
            pass

    def close(self) -> None:
        super().close()
        if self._write_end >= 0:
            os.close(self._write_end)
            self._write_end = -1


class WaitressServer:
    def __init__(self, app: Callable[..., Any], listeners: Sequence[Listener], adjustments: dict,
                 keep_alive: bool, log: logging.Logger, limits: Limits = Limits()) -> None:
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
