"""``MainGreenletDelivery``: core's forced exits end ``serve()`` under eventlet.

A signal handler runs in whichever green thread the signal interrupted. The cases that
matter (the exit raised in a green thread that swallows it, as application code or
eventlet.wsgi.server's accept loop may) are too narrow to hit on purpose, so they are
reproduced here in-process with ``signal.raise_signal``; ``test_eventlet`` has the
end-to-end case.
"""

from __future__ import annotations

import logging
import signal
from typing import Any, Iterator

import eventlet
import greenlet
import pytest
from eventlet import hubs
from eventlet.green import threading as green_threading
from eventlet_apps import signal_as_if_ended

from chaussette.lifecycle import Lifecycle
from chaussette_eventlet.signals import MainGreenletDelivery


def exiting(signum: int, frame: Any) -> None:
    raise SystemExit(3)


@pytest.fixture
def delivery() -> Iterator[MainGreenletDelivery]:
    """SIGUSR1 delivered with a handler that exits like core's second signal does."""
    saved = signal.getsignal(signal.SIGUSR1)
    hubs.get_hub()  # created here, as serve() does: its greenlet's parent is the main one
    delivery = MainGreenletDelivery()
    delivery.install(signal.SIGUSR1, exiting)  # as Lifecycle.install does
    yield delivery
    signal.signal(signal.SIGUSR1, saved)


def test_an_exit_in_the_main_greenlet_is_raised_there(delivery: MainGreenletDelivery) -> None:
    with pytest.raises(SystemExit) as info:
        signal.raise_signal(signal.SIGUSR1)
    assert info.value.code == 3
    delivery.raise_swallowed()  # nothing left over: the main greenlet had it


def test_an_exit_is_raised_where_the_signal_landed(delivery: MainGreenletDelivery) -> None:
    """So that green thread unwinds and releases what it holds."""
    seen: list[int] = []

    def interrupted() -> None:
        try:
            signal.raise_signal(signal.SIGUSR1)
        except SystemExit as exc:
            seen.append(exc.code)
            raise

    with pytest.raises(SystemExit):
        greenlet.greenlet(interrupted).switch()
    delivery.received = True  # as serve() records when the exit reaches it
    assert seen == [3]
    eventlet.sleep(0)  # the hub's turn comes: nothing is thrown a second time


def swallowing() -> None:
    try:
        signal.raise_signal(signal.SIGUSR1)
    except SystemExit:
        pass  # as application code catching SystemExit does


def test_a_swallowed_exit_reaches_the_main_greenlet(delivery: MainGreenletDelivery) -> None:
    greenlet.greenlet(swallowing).switch()
    with pytest.raises(SystemExit) as info:
        eventlet.sleep(0)  # the hub's next turn
    assert info.value.code == 3


def test_a_swallowed_exit_is_raised_when_serve_would_return(delivery: MainGreenletDelivery) -> None:
    """The servers may drain before the hub's next turn."""
    greenlet.greenlet(swallowing).switch()  # back here with no turn of the hub
    with pytest.raises(SystemExit) as info:
        delivery.raise_swallowed()
    assert info.value.code == 3
    eventlet.sleep(0)  # the hub's turn comes: nothing is thrown a second time


def test_installing_twice_wraps_once(delivery: MainGreenletDelivery) -> None:
    delivery.install(signal.SIGUSR1, exiting)
    assert delivery.handlers[signal.SIGUSR1] != delivery.handle
    assert signal.getsignal(signal.SIGUSR1) == delivery.handle


def test_a_signal_in_an_ending_green_thread_is_handled_on_the_hubs_turn(delivery: MainGreenletDelivery) -> None:
    """A green thread that has returned but not yet ended cannot be named by eventlet's
    current_thread() (KeyError), which every log record asks for: core's handler, which
    logs, would raise that there instead of its exit."""
    names: list[str] = []

    def logging_exit(signum: int, frame: Any) -> None:
        names.append(green_threading.current_thread().name)  # as a log record does
        raise SystemExit(3)

    delivery.handlers[signal.SIGUSR1] = logging_exit

    thread = eventlet.spawn(signal_as_if_ended, signal.SIGUSR1)
    with pytest.raises(SystemExit) as info:
        for _ in range(10):
            eventlet.sleep(0.01)  # the hub's turns
    delivery.received = True  # as serve() records when the exit reaches it
    assert info.value.code == 3
    assert names == ["MainThread"]  # run from the hub, not the ending green thread
    assert thread.dead


def test_core_installs_its_handlers_through_the_delivery() -> None:
    """SIGTERM, SIGINT and the log-reopening SIGUSR1 and SIGHUP when the backend installs its
    stop, SIGALRM when a stop begins."""
    signums = (signal.SIGTERM, signal.SIGINT, signal.SIGALRM, signal.SIGUSR1, signal.SIGHUP)
    saved = {signum: signal.getsignal(signum) for signum in signums}
    lifecycle = Lifecycle(30, logging.getLogger("test_signals"))
    delivery = MainGreenletDelivery()
    stops: list[bool] = []
    try:
        lifecycle.install(lambda: stops.append(True), delivery)
        assert sorted(delivery.handlers) == sorted((signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGHUP))
        assert signal.getsignal(signal.SIGTERM) == signal.getsignal(signal.SIGINT) == delivery.handle
        signal.raise_signal(signal.SIGTERM)
        assert stops == [True]
        assert signal.getsignal(signal.SIGALRM) == delivery.handle
        assert signal.SIGALRM in delivery.handlers
    finally:
        lifecycle.stopped()  # disarms the graceful timeout
        for signum, handler in saved.items():
            signal.signal(signum, handler)
