"""Stopping: the first SIGTERM/SIGINT stops gracefully, a second one or the graceful
timeout ends the process at once."""

from __future__ import annotations

import logging
import signal
from typing import Callable

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class ForcedExit(SystemExit):
    """Raised from a signal handler so ``finally`` blocks (post-hook, socket cleanup)
    still run when we cannot wait any longer."""


class Lifecycle:
    def __init__(self, graceful_timeout: float, log: logging.Logger) -> None:
        self.graceful_timeout = graceful_timeout
        self.log = log
        self.stopping = False
        self._on_stop: Callable[[], None] | None = None

    def install(self, on_stop: Callable[[], None]) -> None:
        """Route stop signals to ``on_stop``; backends call this once they serve."""
        self._on_stop = on_stop
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._signalled)

    def _signalled(self, signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if self.stopping:
            self.log.warning("%s received again: exiting now", name)
            raise ForcedExit(1)
        # Marked before logging: a second signal can run its handler inside this one (at
        # any bytecode, e.g. in the log call) and must then count as the second.
        self.stopping = True
        self._begin_stop(name)

    def stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        self._begin_stop(None)

    def _begin_stop(self, signal_name: str | None) -> None:
        if self.graceful_timeout > 0:
            signal.signal(signal.SIGALRM, self._timed_out)
            signal.setitimer(signal.ITIMER_REAL, self.graceful_timeout)
        if self._on_stop is not None:
            self._on_stop()
        # Logged once the backend has stopped accepting, so whoever reads "stopping"
        # (an operator, a test) knows a new connection will not be served.
        if signal_name is not None:
            self.log.info("%s received: stopping, in-flight requests have %ss to finish",
                          signal_name, _seconds(self.graceful_timeout))
        if self.graceful_timeout <= 0:
            raise ForcedExit(0)

    def _timed_out(self, signum: int, frame: object) -> None:
        self.log.warning("graceful timeout of %ss reached: exiting with requests still running",
                         _seconds(self.graceful_timeout))
        raise ForcedExit(0)

    def stopped(self) -> None:
        """Disarm the timeout once serving has ended on its own."""
        if self.stopping:
            signal.setitimer(signal.ITIMER_REAL, 0)


def _seconds(value: float) -> str:
    return f"{value:g}"
