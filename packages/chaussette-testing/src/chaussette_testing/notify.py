"""Shared suite: systemd's notify protocol, against a real datagram socket the test binds
as ``NOTIFY_SOCKET`` (a path, and an abstract name).

Every backend package runs it (tests/test_production.py).
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from chaussette_testing.client import request
from chaussette_testing.process import ServerProcess, start_server

#: The watchdog period the tests give: pings are due every half of it.
WATCHDOG_USEC = 400_000
RECEIVE_TIMEOUT = 20.0


class NotifyListener:
    """The service manager's end: a bound ``AF_UNIX`` datagram socket, read message by message."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.messages: list[dict[str, str]] = []

    def receive(self, timeout: float = RECEIVE_TIMEOUT) -> dict[str, str]:
        self.sock.settimeout(timeout)
        data = self.sock.recv(65536).decode("utf-8")
        message = dict(line.split("=", 1) for line in data.split("\n") if line)
        self.messages.append(message)
        return message

    def receive_until(self, key: str, timeout: float = RECEIVE_TIMEOUT) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while True:
            message = self.receive(max(0.1, deadline - time.monotonic()))
            if key in message:
                return message

    def close(self) -> None:
        self.sock.close()
        if not self.address.startswith("@"):
            os.unlink(self.address)


class NotifySuite:
    backend: ClassVar[str] = "wsgiref"

    @contextmanager
    def _served(self, address: str, *args: str, **env: str) -> Iterator[tuple[ServerProcess, NotifyListener]]:
        listener = NotifyListener(address)
        try:
            environ = dict(os.environ, NOTIFY_SOCKET=address, **env)
            with start_server("--backend", self.backend, "--host", "127.0.0.1", "--port", "0", *args,
                              "chaussette_testing.apps.app", env=environ) as server:
                yield server, listener
        finally:
            listener.close()

    def test_ready_once_serving_then_stopping(self, tmp_path: Any) -> None:
        with self._served(str(tmp_path / "notify.sock")) as (server, listener):
            ready = listener.receive_until("READY")
            assert ready["READY"] == "1"
            assert ready["MAINPID"] == str(server.pid)
            # READY=1 means served: the listener answers as soon as it was sent.
            assert request(server.tcp_address)[0] == 200
            assert ready["STATUS"] == f"Serving on {server.addresses[0]} with {self.backend}"
            server.signal(signal.SIGTERM)
            stopping = listener.receive_until("STOPPING")
            assert stopping["STOPPING"] == "1"
            assert stopping["STATUS"].startswith("SIGTERM received: stopping")
            assert server.wait(30) == 0, server.output
        assert "WATCHDOG" not in {key for message in listener.messages for key in message}

    def test_watchdog_pings_from_the_loop_at_half_the_period(self) -> None:
        address = f"@chaussette-notify-{os.getpid()}-{self.backend}"
        with self._served(address, WATCHDOG_USEC=str(WATCHDOG_USEC)) as (server, listener):
            listener.receive_until("READY")
            started = time.monotonic()
            pings = 0
            while pings < 5:
                assert listener.receive_until("WATCHDOG")["WATCHDOG"] == "1"
                pings += 1
            elapsed = time.monotonic() - started
            # Five pings due every 0.2 s: about 0.8 s, well under the period each time.
            assert elapsed < 5 * WATCHDOG_USEC / 1e6, elapsed
            assert request(server.tcp_address)[0] == 200
            server.signal(signal.SIGTERM)
            assert server.wait(30) == 0, server.output

    def test_watchdog_for_another_pid_is_not_ours(self, tmp_path: Any) -> None:
        with self._served(str(tmp_path / "notify.sock"), WATCHDOG_USEC=str(WATCHDOG_USEC),
                          WATCHDOG_PID="1") as (server, listener):
            listener.receive_until("READY")
            time.sleep(WATCHDOG_USEC / 1e6)
            server.signal(signal.SIGTERM)
            listener.receive_until("STOPPING")
            assert server.wait(30) == 0, server.output
        assert "WATCHDOG" not in {key for message in listener.messages for key in message}
