"""Core's stop signal handlers delivered under eventlet, where every green thread is the
main thread: a handler runs in whichever green thread the signal interrupted.

Imported only from ``chaussette_eventlet.serving``, after ``patch()``.
"""

from __future__ import annotations

from typing import Any

import greenlet
from eventlet import greenthread, hubs

from chaussette.lifecycle import Handler, SignalDelivery


class MainGreenletDelivery(SignalDelivery):
    """Makes sure the ``SystemExit`` (``ForcedExit``) of core's stop signal handlers
    (second SIGTERM/SIGINT, graceful timeout SIGALRM) ends ``serve()`` under eventlet.

    A handler runs in whichever green thread the signal interrupted, and its exit is
    raised there: that unwinds the green thread, releasing what it holds (a logging lock
    left held would hang the exit), and normally kills the hub, which hands the exit to
    the main greenlet where ``serve()`` waits. But the green thread may swallow it
    (application code that catches SystemExit or BaseException), so the exit is also
    thrown into the main greenlet from the hub's next turn, unless the main greenlet
    already has it. Create it in the main greenlet, the one that runs ``serve()``.
    """

    def __init__(self) -> None:
        self.main = greenlet.getcurrent()
        self.handlers: dict[int, Handler] = {}
        self.exit: SystemExit | None = None
        #: Set once the main greenlet has the exit (``serve()`` sets it when it catches one).
        self.received = False

    def install(self, signum: int, handler: Handler) -> None:
        self.handlers[signum] = handler
        super().install(signum, self.handle)

    def handle(self, signum: int, frame: Any) -> None:
        current = greenlet.getcurrent()
        if isinstance(current, greenthread.GreenThread) and current._exit_event.ready():
            # The green thread has returned but not yet ended. There eventlet's
            # threading.current_thread() raises KeyError, and every log call asks it for
            # the thread's name: core's handler would raise that instead of stopping or
            # exiting. Nothing of the application runs there any more, and the thread
            # hands over to the hub at once, so the handler runs on the hub's next turn.
            hubs.get_hub().schedule_call_global(0, self.handle, signum, None)
            return
        try:
            self.handlers[signum](signum, frame)
        except SystemExit as exc:
            if self.exit is None and greenlet.getcurrent() is not self.main:
                self.exit = exc
                hubs.get_hub().schedule_call_global(0, self._deliver)
            raise

    def _deliver(self) -> None:
        if not self.received:
            self.received = True
            self.main.throw(self.exit)

    def raise_swallowed(self) -> None:
        """Called when ``serve()`` would return: an exit was asked for, honour it."""
        if self.exit is not None and not self.received:
            self.received = True
            raise self.exit
