"""Running meinheld's loop on core's listeners, with core's signals.

The application is handed to meinheld as it is: chaussette's build (``ci/build-meinheld``,
checked by ``check()`` through ``library``) frames responses and fills the environ the way core's contract
says, in C. meinheld is a C loop that swallows every exception the application raises (it answers
500 and logs), and whose ``run()`` installs its own C handlers for SIGINT/SIGTERM. Core's
contract needs the opposite: its Python signal handlers must run, and the ``ForcedExit``
they raise on a graceful timeout or second signal must end ``serve()``. So the loop runs
in a thread of its own and the main thread only waits for it: core's handlers run in the
main thread, where ``ForcedExit`` propagates normally, while the loop and every greenlet
stay in the loop thread (greenlets cannot switch across threads). A stop is handed to the
loop through a pipe it watches; nothing else touches meinheld from outside its thread.

Imported by ``serve()`` only, after monkey-patching.
"""

from __future__ import annotations

import _socket
import logging
import os
import resource
import signal
import threading
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from meinheld import server

from chaussette.framing import Limits
from chaussette.lifecycle import Lifecycle
from chaussette.sockets import Listener

START_POLL = 0.05
#: Longest delay before the main thread handles a signal (see ``MeinheldLoop.run``).
JOIN_POLL = 0.2
#: Seconds between two looks at the stop flag, should a wake-up through the pipe be lost.
STOP_CHECK = 1
#: Core's stop signals, and SIGALRM which it arms for --graceful-timeout.
BLOCKED_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGALRM}


def fd_table(requested: int | None, cap: int, log: logging.Logger) -> int:
    """Size of picoev's fd table, with the open-files limit kept within it.

    picoev range-checks fds when it registers them, but meinheld sets a timeout on a new
    connection's fd before registering it, so an fd past the table writes out of bounds.
    Lowering the soft limit to the table size makes such an fd impossible.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    unlimited = soft == resource.RLIM_INFINITY
    size = requested or (cap if unlimited else min(soft, cap))
    if unlimited or soft > size:
        resource.setrlimit(resource.RLIMIT_NOFILE, (size, hard))
        log.info("Open-files limit lowered from %s to %d, the size of meinheld's fd table "
                 "(--meinheld-max-fd)", "unlimited" if unlimited else soft, size)
    return size


class ErrorLog:
    """meinheld's error-logger protocol (``error(type, value, traceback)``) on core's log.
    meinheld calls it for exceptions from the application (after answering 500) and for
    its own I/O errors."""

    def __init__(self, log: logging.Logger) -> None:
        self.log = log

    def error(self, kind: type, value: BaseException, traceback: Any) -> None:
        self.log.error("error while serving a request", exc_info=(kind, value, traceback))


@dataclass(frozen=True)
class Knobs:
    """meinheld's settings, given to its loop from the loop's own thread (``apply``)."""

    keep_alive: int
    max_content_length: int
    client_body_buffer_size: int
    max_fd: int
    request_limits: Limits

    def apply(self) -> None:
        server.set_keepalive(self.keep_alive)
        server.set_max_content_length(self.max_content_length)
        server.set_client_body_buffer_size(self.client_body_buffer_size)
        server.set_picoev_max_fd(self.max_fd)
        # Our build takes core's limits (recipe fix 12): the request line's bounds the
        # request target, the field size a field's name and its value each (meinheld
        # stores them apart).
        limits = self.request_limits
        server.set_request_limits(limits.request_line, limits.fields, limits.field_size)


class MeinheldLoop:
    """One ``serve()``: meinheld's loop in its thread, and the main thread's side."""

    def __init__(self, app: Callable[..., Any], listeners: Sequence[Listener], log: logging.Logger,
                 knobs: Knobs) -> None:
        self.app = app
        self.listeners = listeners
        self.log = log
        self.knobs = knobs
        self.started = threading.Event()
        self.stopping = False
        self.failure: BaseException | None = None
        self.fds: list[int] = []
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    def run(self, lifecycle: Lifecycle) -> None:
        """Main thread: start the loop, route core's signals to ``stop``, wait for the end.

        meinheld's ``run()`` installs C handlers for SIGINT and SIGTERM (they would stop
        the loop and end in-flight requests after one second): core's handlers go back
        in once that has happened. Until then core's signals stay blocked, and a signal
        that arrives meanwhile is handled by core's handler when they are unblocked. The
        loop thread inherits the blocked set and keeps it for good, so signals are
        delivered to the main thread, which runs their handlers (``ForcedExit`` included)
        while it waits for the loop.

        This is a mask and not a ``SignalDelivery``: core's handlers are installed as they
        are (the default delivery), and what matters is when, after meinheld's, and which
        thread the kernel picks, which a mask set before the loop thread starts decides.
        """
        # meinheld closes the fds it serves on when its loop ends: give it duplicates, so
        # core's listeners stay valid and are closed by core, once.
        self.fds = [os.dup(listener.sock.fileno()) for listener in self.listeners]
        thread = threading.Thread(target=self._loop, name="meinheld", daemon=True)
        try:
            unblocked = signal.pthread_sigmask(signal.SIG_BLOCK, BLOCKED_SIGNALS)
            try:
                thread.start()
                while not self.started.wait(START_POLL) and thread.is_alive():
                    pass
                if self.started.is_set():
                    lifecycle.install(self.stop)
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, unblocked)  # pending ones run now
            while thread.is_alive():
                # Timed: CPython runs a signal's Python handler when a blocking wait returns,
                # and a signal landing just before the wait begins does not end it. An
                # untimed join lost a SIGTERM about once in a few hundred starts.
                thread.join(JOIN_POLL)
        finally:
            if not self.started.is_set():
                for fd in self.fds:  # meinheld never took them over
                    os.close(fd)
            if not thread.is_alive():
                os.close(self._wake_r)
                os.close(self._wake_w)
        if self.failure is not None:
            raise self.failure

    def stop(self) -> None:
        """Signal-handler side (main thread): flag the stop and wake the loop's stop
        greenlet, nothing more."""
        self.stopping = True
        try:
            os.write(self._wake_w, b"x")
        except OSError:  # already woken (pipe full) or closed after the loop ended
            pass

    def _loop(self) -> None:
        """The loop thread: configure meinheld and run it until it has drained."""
        try:
            server.set_access_logger(None)  # core's --access-log does it, when asked
            server.set_error_logger(ErrorLog(self.log))
            self.knobs.apply()
            server.set_listen_socket(list(self.fds))
            server.spawn(self._stopper)
            server.run(self.app, 1)  # 1: silent, no KeyboardInterrupt of its own
        except BaseException as exc:  # re-raised in the main thread
            self.failure = exc

    def _stopper(self) -> None:
        """A greenlet in meinheld's loop: the first thing the loop runs (so ``started``
        means meinheld's signal handlers are in place), then it waits for ``stop()``.

        On stop, keep-alive goes off (a request still to come on an open connection is
        answered with ``Connection: close``) and the listeners leave the loop: no more
        accepting. meinheld's loop ends by itself once nothing is left to watch: the
        requests in flight are done, and the connections accepted before the stop have
        sent their request or timed out. (meinheld's own ``server.stop(t)`` is not used:
        it ends the loop after ``t`` seconds, requests or not, and core owns that timeout.)
        """
        self.started.set()
        for fd in self.fds:
            _accept_at_once(fd)
        while not self.stopping:  # the pipe wakes it at once; the timeout is a safety net
            server.trampoline(self._wake_r, read=True, timeout=STOP_CHECK)
        server.set_keepalive(0)
        for fd in self.fds:
            server.cancel_wait(fd)


def _accept_at_once(fd: int) -> None:
    """Undo the TCP_DEFER_ACCEPT meinheld's ``run()`` sets on TCP listeners.

    With it, the kernel hands over a connection only once its request arrives, so a
    client that connected before a graceful stop but sends its request after it is
    never accepted, and under a process manager it is this worker that owns the
    connections it accepted. It is also a property of the socket, shared with every
    other process serving on it.
    """
    option = getattr(_socket, "TCP_DEFER_ACCEPT", None)  # Linux only, like meinheld's use of it
    sock = _socket.socket(fileno=fd)
    try:
        if option is not None and sock.family in (_socket.AF_INET, _socket.AF_INET6):
            sock.setsockopt(_socket.IPPROTO_TCP, option, 0)
    finally:
        sock.detach()
