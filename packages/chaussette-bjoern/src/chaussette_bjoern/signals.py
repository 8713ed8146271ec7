"""Core's signals while bjoern's loop runs in its own thread: SIGINT taken by ``sigwait``.

bjoern's loop thread must never run a stop signal's handler, and the main thread must
run core's. So SIGTERM, SIGINT and SIGALRM are blocked before the loop thread starts (it
inherits the mask and keeps it), and the main thread unblocks SIGTERM and SIGALRM once
core's handlers are in. SIGINT stays blocked there too, because its disposition is not
ours while bjoern runs: libev installs its own SIGINT handler when the loop starts, and
resets it to SIG_DFL when its shutdown stops watching. The main thread takes a pending
SIGINT with ``sigwait`` instead and hands it to core's handler.

Python's own SIGINT handler meanwhile is ``_simulated_interrupt``, which ignores what it
gets: only bjoern's simulated SIGINT at the end (``PyErr_SetInterrupt``) can reach it, and
it must not count as a second signal. It has to be a Python function: with SIG_DFL or
SIG_IGN there, ``PyErr_SetInterrupt`` compares integers without holding the GIL, and
CPython 3.12 crashes.
"""

from __future__ import annotations

import signal
from typing import Any, Callable

from chaussette.lifecycle import Handler, SignalDelivery

#: Core's stop signals and the alarm it arms for ``--graceful-timeout``.
BLOCKED = {signal.SIGTERM, signal.SIGINT, signal.SIGALRM}


class SigwaitDelivery(SignalDelivery):
    """Core's SIGINT handler kept for ``deliver_pending``; the other handlers installed as
    usual (they run in the main thread, the only one where their signals are unblocked)."""

    def __init__(self) -> None:
        #: Core's SIGINT handler, once ``Lifecycle.install`` has handed it over.
        self.sigint: Handler | None = None
        #: Python's SIGINT handler before ``hold()``, put back if core never installed one.
        self._previous: Callable[[int, Any], Any] | int | None = None
        self._mask: set[int] | None = None

    def install(self, signum: int, handler: Handler) -> None:
        if signum == signal.SIGINT:
            self.sigint = handler
            signal.signal(signal.SIGINT, _simulated_interrupt)
        else:
            super().install(signum, handler)

    def hold(self) -> None:
        """Block the stop signals in this thread (and the loop thread it is about to start)
        and put ``_simulated_interrupt`` in Python's SIGINT slot."""
        self._previous = signal.getsignal(signal.SIGINT)
        self._mask = signal.pthread_sigmask(signal.SIG_BLOCK, BLOCKED)
        signal.signal(signal.SIGINT, _simulated_interrupt)

    def release(self) -> None:
        """Once core's handlers are in: SIGTERM and SIGALRM run them in the main thread."""
        signal.pthread_sigmask(signal.SIG_UNBLOCK, BLOCKED - {signal.SIGINT})

    def deliver_pending(self) -> None:
        """A SIGINT that came since the last look, to core's handler (in this thread)."""
        # Not sigtimedwait(): when a handler runs past its timeout, CPython returns a
        # siginfo it never filled in instead of None, a SIGINT that never came.
        if self.sigint is not None and signal.SIGINT in signal.sigpending():
            signal.sigwait({signal.SIGINT})  # pending: returns at once
            self.sigint(signal.SIGINT, None)

    def restore(self) -> None:
        """Core's SIGINT handler back in Python's slot (or the one before ``hold()``), then
        the mask as it was: a SIGINT still pending goes to core's handler now."""
        handler = self.sigint if self.sigint is not None else self._previous
        if handler is not None:  # None: not set from Python, nothing to restore
            signal.signal(signal.SIGINT, handler)
        if self._mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)


def _simulated_interrupt(signum: int, frame: object) -> None:
    """Python's SIGINT handler while bjoern runs. Real SIGINTs stay blocked and are taken
    by ``sigwait``; what comes here is bjoern's ``PyErr_SetInterrupt`` once its loop
    has ended, which means nothing more than that."""
