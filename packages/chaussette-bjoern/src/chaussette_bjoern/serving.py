"""Running bjoern's loop on core's listener, with core's signals.

``bjoern.server_run(sock, app)`` is a libev loop that releases the GIL while it waits, and
runs the application in its own thread, one request at a time. It watches SIGINT itself:
on SIGINT it stops accepting and keeps running until every connection is closed (the fixed
build closes the idle keep-alive ones at once, and the others after their response), then
simulates a SIGINT for Python (``PyErr_SetInterrupt``). Its only way to run Python signal
handlers is a 0.1 s timer, which it stops on SIGINT, so in the main thread core's
``--graceful-timeout`` alarm would never fire during the drain.

So the loop runs in a thread of its own and the main thread waits for it, as in the
meinheld backend. The stop signals are kept away from the loop thread, and SIGINT is taken
by ``sigwait`` in the main thread (``chaussette_bjoern.signals``, the delivery core's
handlers are installed through); ``stop()`` starts bjoern's own shutdown with libev's
``ev_feed_signal(SIGINT)``.

Imported by ``serve()`` only.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from types import TracebackType
from typing import Any, Callable

from chaussette.errors import BackendError
from chaussette.lifecycle import Lifecycle
from chaussette.sockets import Listener
from chaussette_bjoern.libev import Libev, c_handler
from chaussette_bjoern.signals import SigwaitDelivery

#: How often the main thread looks for a SIGINT and for the end of the loop.
POLL = 0.1
#: How long bjoern's loop may take to start (it starts at once; this only bounds a hang).
START_TIMEOUT = 10.0
START_POLL = 0.005


class BjoernLoop:
    """One ``serve()``: bjoern's loop in its thread, and the main thread's side."""

    def __init__(self, bjoern: Any, libev: Libev, app: Callable[..., Any], listener: Listener,
                 log: logging.Logger, adapt: bool) -> None:
        """``adapt``: wrap ``app`` in the Python adapter, for a bjoern that is not one of the
        marked builds (see ``chaussette_bjoern.protocol``); those get the application as it is."""
        self.bjoern = bjoern
        self.libev = libev
        self.listener = listener
        self.log = log
        self.app = app
        if adapt:
            from chaussette_bjoern.protocol import Application

            self.app = Application(app, listener, self)
        self.stopping = False
        self.failure: BaseException | None = None

    def run(self, lifecycle: Lifecycle) -> None:
        """Main thread: start the loop, route the stop signals, wait until it has drained."""
        # bjoern accepts whenever the socket is readable; with several processes on one
        # socket another may take the connection first, and a blocking accept() would then
        # hang the whole loop until the next client.
        self.listener.sock.setblocking(False)
        thread = threading.Thread(target=self._loop, name="bjoern", daemon=True)
        previous_hook = sys.excepthook
        delivery = SigwaitDelivery()
        try:
            delivery.hold()
            sys.excepthook = self._excepthook
            before = c_handler(signal.SIGINT)
            thread.start()  # inherits the blocked signals, and keeps them blocked
            self._wait_started(thread, before)
            lifecycle.install(self.stop, delivery)
            delivery.release()
            announced = False
            while thread.is_alive():
                thread.join(POLL)  # core's SIGTERM and SIGALRM handlers run meanwhile
                delivery.deliver_pending()
                if self.stopping and not announced and c_handler(signal.SIGINT) == 0:
                    # libev resets SIGINT to SIG_DFL when bjoern's shutdown stops watching it
                    announced = True
                    self.log.info("bjoern stopped accepting; waiting for its open connections "
                                  "to close")
        finally:
            delivery.restore()  # a pending SIGINT goes to core's handler now
            if not thread.is_alive():
                sys.excepthook = previous_hook
        if self.failure is not None:
            raise self.failure

    def _wait_started(self, thread: threading.Thread, before: int) -> None:
        """Until libev installed its SIGINT handler: only then can ``stop()`` reach it."""
        deadline = time.monotonic() + START_TIMEOUT
        while c_handler(signal.SIGINT) == before:
            if not thread.is_alive():
                if self.failure is not None:
                    raise self.failure
                raise BackendError("bjoern's loop ended as soon as it started")
            if time.monotonic() > deadline:
                raise BackendError(
                    "bjoern does not watch SIGINT (built without WANT_SIGINT_HANDLING?), so it "
                    "cannot stop gracefully; install the official bjoern distribution")
            time.sleep(START_POLL)

    def stop(self) -> None:
        """Core's handler side (main thread): flag the stop, start bjoern's shutdown."""
        self.stopping = True
        self.libev.feed_signal(signal.SIGINT)

    def _loop(self) -> None:
        try:
            self.bjoern.server_run(self.listener.sock, self.app)
        except BaseException as exc:  # re-raised in the main thread
            self.failure = exc

    def _excepthook(self, kind: type[BaseException], value: BaseException,
                    traceback: TracebackType | None) -> None:
        """bjoern reports every error (the application's, a bad response) with
        ``PyErr_Print``, which calls ``sys.excepthook``: into Chaussette's log instead."""
        self.log.error("error while serving a request", exc_info=(kind, value, traceback))
