"""Make core's signal handling (lifecycle.py) behave under gevent as it does with threads.

With threads, Python runs signal handlers in the main thread, which is where ``serve()``
waits. Under gevent every greenlet is the main thread: a handler runs in whichever
greenlet executes the next bytecode (often an application's), and:

- a signal that lands just before the hub blocks in its poll is not noticed until some
  unrelated I/O wakes the hub (``signals_wake_the_hub``);
- ``ForcedExit`` raised by a handler would end that greenlet, where pywsgi reports it as
  an application error, instead of ending ``serve()`` (``GreenletDelivery``);
- a second signal can run its handler inside the first one's (in its log call, say);
  throwing ``ForcedExit`` to ``serve()`` from there, with the first handler's frames
  suspended, was seen to leave the process hanging on exit, so ``GreenletDelivery`` runs
  handlers one after the other.
"""

from __future__ import annotations

import os
import signal
from contextlib import contextmanager
from typing import Any, Iterator

from gevent import get_hub, getcurrent

from chaussette.lifecycle import Handler, SignalDelivery


@contextmanager
def signals_wake_the_hub() -> Iterator[None]:
    """With a wakeup fd, the C-level handler writes a byte the loop watches, so the poll
    returns and the Python handler runs at once (a second SIGINT just after the first,
    the graceful-timeout SIGALRM)."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    os.set_blocking(write_fd, False)
    previous = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    watcher = get_hub().loop.io(read_fd, 1)

    def drain() -> None:
        try:
            while os.read(read_fd, 512):
                pass
        except BlockingIOError:
            pass

    watcher.start(drain)
    try:
        yield
    finally:
        watcher.stop()
        watcher.close()
        signal.set_wakeup_fd(previous)
        os.close(read_fd)
        os.close(write_fd)


class GreenletDelivery(SignalDelivery):
    """Runs core's handlers one at a time in whichever greenlet a signal lands in, and
    throws what they raise (``ForcedExit``) into the greenlet that created the delivery:
    create it in the one that waits in ``serve()``."""

    def __init__(self) -> None:
        self.main = getcurrent()
        self.running = False
        self.pending: list[tuple[Handler, int]] = []

    def install(self, signum: int, handler: Handler) -> None:
        super().install(signum, lambda number, frame: self.run(handler, number, frame))

    def run(self, handler: Handler, signum: int, frame: Any) -> None:
        if self.running:  # a signal interrupting a handler: run it when that one returns
            self.pending.append((handler, signum))
            return
        self.running = True
        try:
            handler(signum, frame)
            while self.pending:
                handler, signum = self.pending.pop(0)
                handler(signum, None)
        except BaseException as exc:
            self.pending.clear()
            self.running = False
            if getcurrent() is self.main:
                raise
            self.main.throw(exc)
        self.running = False
