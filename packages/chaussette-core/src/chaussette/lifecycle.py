"""Stopping: the first SIGTERM/SIGINT stops gracefully, a second one or the graceful
timeout ends the process at once; a stop may also be asked for from inside the process.

With ``--drain-delay`` a stop first drains: the process keeps serving for that long while
``Lifecycle.draining`` tells the health path to answer 503, so a load balancer that polls
it stops sending here before the socket stops accepting. The delay is one ITIMER_REAL
alarm delivered like the graceful timeout's (no thread): when it rings the stop proper
begins and the same timer is re-armed for ``--graceful-timeout``.

Where a handler runs is the backend's business: Python runs it in the main thread, which
under gevent or eventlet is whichever greenlet runs next, and a C loop may need the
signal kept away from its own thread. A backend says how through a ``SignalDelivery``
handed to ``Lifecycle.install``; the handlers themselves are core's, the same everywhere.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:
    from chaussette.notify import Notifier

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: Reopen the log files (after logrotate renamed them), as nginx and gunicorn do on SIGUSR1.
#: SIGHUP does the same rather than kill the process: Circus' ``send_hup`` or a stray
#: ``kill -HUP`` must not turn into an outage, and a reload is the manager's job.
REOPEN_SIGNALS = (signal.SIGUSR1, signal.SIGHUP)
#: What ``request_stop`` raises in this process: the stop then takes the same path as
#: one from the manager, through the backend's delivery.
REQUEST_SIGNAL = signal.SIGTERM

Handler = Callable[[int, Any], None]


class ForcedExit(SystemExit):
    """Raised from a signal handler so ``finally`` blocks (post-hook, socket cleanup)
    still run when we cannot wait any longer."""


class SignalDelivery:
    """How core's handlers reach a backend's loop. This default installs them as they
    are, which is right wherever the main thread waits in ``serve()``: the stdlib
    backend, waitress, and loop threads that keep the signals blocked (meinheld).
    Subclasses change ``install``; raising a signal and the alarm go through it."""

    #: The graceful timeout may end the process (``ForcedExit``).
    forced_exit = True

    def install(self, signum: int, handler: Handler) -> None:
        signal.signal(signum, handler)

    def raise_signal(self, signum: int) -> None:
        os.kill(os.getpid(), signum)

    def alarm(self, seconds: float, handler: Handler) -> None:
        """Run ``handler`` in ``seconds``, replacing any alarm set before."""
        self.install(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, seconds)

    def disarm(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)


class ThreadDelivery(SignalDelivery):
    """For a server serving in a thread of someone else's program (``make_server()``
    in a test fixture): the process's signals stay that program's, and Python allows
    handlers only in the main thread anyway. A stop comes from ``Server.shutdown()`` or
    ``request_stop()`` and runs in the caller's thread; the drain's alarm is a timer
    thread; the graceful timeout ends nothing, since a process cannot be exited for one
    of its threads (``shutdown()`` bounds its own wait instead)."""

    forced_exit = False

    def __init__(self) -> None:
        self._handlers: dict[int, Handler] = {}
        self._timer: threading.Timer | None = None

    def install(self, signum: int, handler: Handler) -> None:
        self._handlers[signum] = handler

    def raise_signal(self, signum: int) -> None:
        self._handlers[signum](signum, None)

    def alarm(self, seconds: float, handler: Handler) -> None:
        self.disarm()
        self._timer = threading.Timer(seconds, handler, (signal.SIGALRM, None))
        self._timer.daemon = True
        self._timer.start()

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


_current: Lifecycle | None = None


def request_stop(reason: str, drain: bool = True, exit_code: int = 0) -> bool:
    """Begin a graceful stop of this server from any thread or greenlet (a request that
    decides the process has served enough, a watchdog). False when nothing serves here.
    ``drain=False`` skips ``--drain-delay``: for a process that is replaced beside its
    siblings on the same socket, where the host stays in the load balancer's pool.
    ``exit_code`` is the process's, however the stop ends (drained, or cut by the
    graceful timeout): non-zero tells the manager something went wrong."""
    return _current is not None and _current.request_stop(reason, drain, exit_code)


class Lifecycle:
    def __init__(self, graceful_timeout: float, log: logging.Logger, drain_delay: float = 0.0,
                 notifier: Notifier | None = None, serving_status: str = "Serving",
                 announce: Sequence[str] = (), delivery: SignalDelivery | None = None) -> None:
        global _current
        self.graceful_timeout = graceful_timeout
        self.drain_delay = drain_delay
        self.log = log
        #: systemd's notify socket, when it gave one: told READY once serving, STOPPING...
        self.notifier = notifier
        self.serving_status = serving_status
        #: Logged by install(), when they are true: a manager, a test or a person that
        #: reads "Serving on" and sends SIGTERM must find core's handlers in place.
        self.announce = tuple(announce)
        #: The process's exit code once serving ends normally or by the graceful timeout.
        self.exit_code = 0
        #: A stop has begun (draining or stopping): a new one is not started.
        self.stopping = False
        #: Not ready any more: the health path answers 503 from now on (draining, then
        #: stopping). Stays false for a stop asked for with ``drain=False``.
        self.draining = False
        self._signalled = False
        self._requested: tuple[str, bool] | None = None
        self._why = ""
        self._request_lock = threading.Lock()
        self._installed = False
        self._on_stop: Callable[[], None] | None = None
        #: Where handlers run; a backend's ``install(on_stop, delivery)`` may replace it.
        self._delivery = delivery or SignalDelivery()
        # Current from the start: a C loop may serve its first request before serve()
        # gets to install(), and a stop asked for then must not be lost.
        _current = self

    def install(self, on_stop: Callable[[], None], delivery: SignalDelivery | None = None) -> None:
        """Route stop signals (and the graceful timeout's SIGALRM) to ``on_stop`` through
        ``delivery``; backends call this once they serve."""
        self._on_stop = on_stop
        if delivery is not None:
            self._delivery = delivery
        for signum in STOP_SIGNALS:
            self._delivery.install(signum, self.handle)
        for signum in REOPEN_SIGNALS:
            self._delivery.install(signum, self._reopen_logs)
        with self._request_lock:
            self._installed = True
            early = self._requested is not None
        for line in self.announce:
            self.log.info("%s", line)
        if self.notifier is not None:  # install() is the backend saying it serves
            self.notifier.ready(self.serving_status)
            self.notifier.start_watchdog(self._delivery)
        if early:  # asked for before the handlers were in place
            self._delivery.raise_signal(REQUEST_SIGNAL)

    def request_stop(self, reason: str, drain: bool = True, exit_code: int = 0) -> bool:
        """See the module's ``request_stop``. The stop itself runs in the signal handler,
        where the backend wants stops to run; this only raises the signal."""
        with self._request_lock:
            if self.stopping or self._requested is not None:
                return True
            self._requested = (reason, drain)
            self.exit_code = exit_code
            installed = self._installed
        if installed:  # else install() raises it once core's handlers are in place
            self._delivery.raise_signal(REQUEST_SIGNAL)
        return True

    def handle(self, signum: int, frame: Any) -> None:
        """Core's handler of the stop signals."""
        requested, self._requested = self._requested, None
        name = signal.Signals(signum).name
        if requested is not None and signum == REQUEST_SIGNAL and not self.stopping:
            self.stopping = True
            self._begin(*requested)
            return
        if self._signalled:
            self.log.warning("%s received again: exiting now", name)
            raise ForcedExit(1)
        # Marked before logging: a second signal can run its handler inside this one (at
        # any bytecode, e.g. in the log call) and must then count as the second.
        self._signalled = True
        if self.stopping:
            self.log.info("%s received: already stopping; a second one exits at once", name)
            return
        self.stopping = True
        self._begin(f"{name} received", True)

    def stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.draining = True
        self._begin_stop(None)

    def _begin(self, why: str, drain: bool) -> None:
        """The first stop: drain first if asked to and configured, else stop now."""
        if not drain:
            self._begin_stop(why)
            return
        self.draining = True  # before anything is logged: whoever reads the log sees 503
        if self.drain_delay <= 0:
            self._begin_stop(why)
            return
        self._why = why
        # Until a stop, SIGALRM is the application's; from here it is the drain's end.
        self._delivery.alarm(self.drain_delay, self._drained)
        message = f"{why}: draining for {_seconds(self.drain_delay)}s: still serving, not ready on the health path"
        if self.notifier is not None:
            self.notifier.status(message)
        self.log.info("%s", message)

    def _drained(self, signum: int, frame: Any) -> None:
        self.log.info("drain delay of %ss over", _seconds(self.drain_delay))
        self._begin_stop(self._why)

    def _begin_stop(self, why: str | None) -> None:
        forced = self._delivery.forced_exit
        if self.graceful_timeout > 0 and forced:
            # Only now: until a stop (or its drain), SIGALRM is the application's.
            self._delivery.alarm(self.graceful_timeout, self._timed_out)
        if self._on_stop is not None:
            self._on_stop()
        message = f"{why or 'stop'}: stopping, in-flight requests have {_seconds(self.graceful_timeout)}s to finish"
        if self.notifier is not None:
            self.notifier.stopping(message)
        # Logged once the backend has stopped accepting, so whoever reads "stopping"
        # (an operator, a test) knows a new connection will not be served.
        if why is not None:
            self.log.info("%s", message)
        if self.graceful_timeout <= 0 and forced:
            raise ForcedExit(self.exit_code)

    def _reopen_logs(self, signum: int, frame: Any) -> None:
        from chaussette.logs import reopen_files

        # Only flags the files: each reopens at its next line, under its handler's lock,
        # never here where the signal may have interrupted a write to it.
        reopen_files()
        self.log.info("%s received: reopening the log files", signal.Signals(signum).name)

    def _timed_out(self, signum: int, frame: Any) -> None:
        self.log.warning("graceful timeout of %ss reached: exiting with requests still running",
                         _seconds(self.graceful_timeout))
        raise ForcedExit(self.exit_code)

    def stopped(self) -> None:
        """Disarm the timeout (or the drain's alarm) once serving has ended on its own."""
        global _current
        if self.stopping:
            self._delivery.disarm()
        if self.notifier is not None:
            self.notifier.close()
        if _current is self:
            _current = None


def _seconds(value: float) -> str:
    return f"{value:g}"
