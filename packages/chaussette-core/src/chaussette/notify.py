"""systemd's notify protocol (sd_notify), without libsystemd: readiness, status lines,
stopping, and the watchdog.

systemd (``Type=notify``) starts the next unit, or a rolling restart moves on, when it
gets ``READY=1``: that must wait until the application is imported and every listener
serves. ``WATCHDOG=1`` must stop when the server is wedged, so it is not sent from a
timer thread of its own: a real OS thread only *asks* for a ping every half period, with a
signal sent to the main thread (which interrupts whatever wait the loop is in), and the
ping is sent by a handler that runs where the backend runs core's signal handlers (its
``SignalDelivery``). A loop that never gets back to Python stops pinging, and systemd
restarts the service.
"""

from __future__ import annotations

import _thread
import logging
import os
import signal
import socket
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chaussette.lifecycle import SignalDelivery

#: The handler that sends the watchdog ping; only installed when systemd asks for pings.
PING_SIGNAL = signal.SIGUSR2
# Taken when core is imported, before any backend monkey-patches: the pinging thread must
# be an OS thread and its sleep a real one, whatever a green library makes of them later.
_start_thread = _thread.start_new_thread
_sleep = time.sleep
#: The main thread, as the OS knows it (gevent's patched get_ident names greenlets).
_MAIN_THREAD = _thread.get_ident()


class Notifier:
    """The notify socket systemd gave this process (``NOTIFY_SOCKET``)."""

    def __init__(self, address: str, watchdog_usec: int | None, log: logging.Logger) -> None:
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_usec = watchdog_usec
        self.log = log
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self._pinging = False

    @classmethod
    def from_environment(cls, log: logging.Logger) -> Notifier | None:
        """The notifier systemd set up for *this* process, or None. The variables are
        removed, so the application's own children never speak for the service."""
        address = os.environ.pop("NOTIFY_SOCKET", "")
        usec_text = os.environ.pop("WATCHDOG_USEC", "")
        pid_text = os.environ.pop("WATCHDOG_PID", "")
        if not address or not address.startswith(("/", "@")):
            return None
        watchdog_usec: int | None = None
        try:
            usec = int(usec_text) if usec_text else 0
            pid = int(pid_text) if pid_text else os.getpid()
        except ValueError:
            log.warning("ignoring WATCHDOG_USEC=%r WATCHDOG_PID=%r: not numbers", usec_text, pid_text)
            usec, pid = 0, 0
        if usec > 0 and pid == os.getpid():
            watchdog_usec = usec
        return cls(address, watchdog_usec, log)

    def send(self, *lines: str) -> None:
        """One datagram; a notify socket that is gone costs a debug line, never a crash."""
        try:
            self.sock.sendto("\n".join(lines).encode("utf-8", "replace"), self.address)
        except OSError as exc:
            self.log.debug("sd_notify to %r failed: %s", self.address, exc)

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def stopping(self, status: str) -> None:
        self.send("STOPPING=1", f"STATUS={status}")

    def start_watchdog(self, delivery: SignalDelivery) -> None:
        """Ping every half of ``WATCHDOG_USEC`` (systemd's advice), from where the backend
        runs core's handlers."""
        if self.watchdog_usec is None or self._pinging:
            return
        self._pinging = True
        delivery.install(PING_SIGNAL, self._ping)
        self._ping(PING_SIGNAL, None)  # the first one at once: READY=1 has just gone out
        _start_thread(self._ask_for_pings, (self.watchdog_usec / 2e6,))

    def _ping(self, signum: int, frame: Any) -> None:
        if self._pinging:
            self.send("WATCHDOG=1")

    def _ask_for_pings(self, interval: float) -> None:
        while self._pinging:
            _sleep(interval)
            if self._pinging:
                signal.pthread_kill(_MAIN_THREAD, PING_SIGNAL)

    def close(self) -> None:
        self._pinging = False
        self.sock.close()
