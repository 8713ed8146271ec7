"""``GreenletDelivery`` in-process: the two promises the end-to-end stop tests rely on,
checked without the timing of real signals."""

from __future__ import annotations

import os
import signal
from typing import Any

import gevent
import pytest
from gevent.event import Event

from chaussette.lifecycle import ForcedExit
from chaussette_gevent.signals import GreenletDelivery


def test_a_handler_interrupted_by_a_signal_runs_the_next_one_after_it() -> None:
    delivery = GreenletDelivery()
    calls: list[str] = []

    def first(signum: int, frame: Any) -> None:
        calls.append("first begins")
        delivery.run(second, signal.SIGINT, None)  # as if SIGINT landed in this handler
        calls.append("first ends")

    def second(signum: int, frame: Any) -> None:
        calls.append(f"second ({signal.Signals(signum).name})")

    delivery.run(first, signal.SIGTERM, None)
    assert calls == ["first begins", "first ends", "second (SIGINT)"]
    assert not delivery.running and not delivery.pending


def test_an_exit_raised_in_another_greenlet_ends_the_one_that_created_the_delivery() -> None:
    delivery = GreenletDelivery()  # created here, as serve() creates it

    def forced_exit(signum: int, frame: Any) -> None:
        raise ForcedExit(1)

    # The greenlet a signal handler happens to run in: pywsgi would report the exit there
    # as an application error.
    application = gevent.spawn(delivery.run, forced_exit, signal.SIGTERM, None)
    with pytest.raises(ForcedExit):
        Event().wait(10)  # serve() waiting for its stop
    assert application.exception is None
    assert not delivery.running and not delivery.pending


def test_install_puts_the_handler_behind_the_delivery() -> None:
    delivery = GreenletDelivery()
    received: list[int] = []
    previous = signal.getsignal(signal.SIGUSR1)
    try:
        delivery.install(signal.SIGUSR1, lambda signum, frame: received.append(signum))
        os.kill(os.getpid(), signal.SIGUSR1)
        gevent.sleep(0.01)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert received == [signal.SIGUSR1]
