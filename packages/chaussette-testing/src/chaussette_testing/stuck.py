"""Shared suite: requests running longer than --timeout reported, and the process replaced where one blocks all.

Every backend package runs it (tests/test_production.py). Each test ends its own server,
which is what it shows: a server that keeps serving, then stops with 0 on SIGTERM, or one
that exits with ``chaussette.watchdog.EXIT_CODE`` by itself. What to expect of a backend
comes from its capabilities: on a one-loop backend a request spinning on the CPU holds
the loop; so does one in ``time.sleep`` on a one-loop backend that does not patch it
(bjoern); elsewhere a stuck request is only reported.
"""

from __future__ import annotations

import re
import time
from typing import Any, ClassVar

from chaussette import registry
from chaussette.backends import Capabilities
from chaussette.watchdog import EXIT_CODE
from chaussette_testing.client import Concurrently, request
from chaussette_testing.process import ServerProcess, start_server

STUCK_APP = "chaussette_testing.stuck_apps.app"
TIMEOUT = 1.0
GRACEFUL_TIMEOUT = 2.0
SLEEP = "/sleep?seconds=3"
SPIN = "/spin?seconds=4"
#: A log line's start (logs.LOG_FORMAT): what ends the stack of a report.
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[\d+\] \[[A-Z]+\] ")


def answer(address: Any, path: str = "/") -> tuple[int, bytes]:
    status, _, body = request(address, path=path, timeout=15)
    return status, body


def report(server: ServerProcess, target: str, function: str) -> tuple[str, float]:
    """The warning logged for the stuck request to ``target``, whose stack ends in
    ``function``: (the whole report, the age it gives)."""
    header = server.wait_for(rf'\[WARNING\] stuck request: "GET {re.escape(target)} HTTP/1\.1" running for '
                             rf"(\d+\.\d)s \(--timeout {TIMEOUT:g}\) in thread 0x[0-9a-f]+")
    server.wait_for(rf'^  File ".*stuck_apps\.py", line \d+, in {function}$', timeout=10)
    lines = server.output.splitlines()
    first = next(index for index, line in enumerate(lines) if header.group(0) in line)
    block = [lines[first]]
    for line in lines[first + 1:]:
        if LOG_LINE.match(line):
            break
        block.append(line)
    return "\n".join(block), float(header.group(1))


class StuckRequestSuite:
    backend: ClassVar[str] = "wsgiref"

    @classmethod
    def capabilities(cls) -> Capabilities:
        return registry.load(cls.backend).capabilities

    @classmethod
    def start_watched(cls) -> ServerProcess:
        return start_server("--backend", cls.backend, "--host", "127.0.0.1", "--port", "0",
                            "--timeout", f"{TIMEOUT:g}", "--graceful-timeout", f"{GRACEFUL_TIMEOUT:g}",
                            STUCK_APP)

    def test_sleeping_request(self) -> None:
        caps = self.capabilities()
        # bjoern leaves time.sleep blocking; the other one-loop backends patch it to wait
        # on their loop, where the request is parked and the loop serves others.
        self.check_stuck(SLEEP, "stuck_sleeping", "time.sleep(seconds)",
                         holds_the_loop=caps.one_loop and not caps.monkey_patch)

    def test_spinning_request(self) -> None:
        self.check_stuck(SPIN, "stuck_spinning", "while time.monotonic() < deadline:",
                         holds_the_loop=self.capabilities().one_loop)

    def check_stuck(self, target: str, function: str, line: str, holds_the_loop: bool) -> None:
        with self.start_watched() as server:
            address = server.tcp_address
            sent = time.monotonic()
            stuck = Concurrently(1, lambda: answer(address, target))
            text, age = report(server, target, function)
            assert TIMEOUT <= age < TIMEOUT + 1.5, text
            assert f"\n    {line}" in text, text  # the source line the request is stuck on
            # Greenlet loops name the greenlet; a thread runs the request everywhere else.
            assert (", greenlet " in text.splitlines()[0]) == self.capabilities().monkey_patch, text
            if holds_the_loop:
                assert server.wait(TIMEOUT + GRACEFUL_TIMEOUT + 10) == EXIT_CODE, server.output
                elapsed = time.monotonic() - sent
                assert elapsed < 2 * TIMEOUT + GRACEFUL_TIMEOUT + 3, f"exited {elapsed:.1f}s after the request"
                assert (f"[ERROR] stuck request: \"GET {target} HTTP/1.1\" has held the {self.backend} "
                        f"backend's only loop for ") in server.output
                assert (f"every other request waits for it: exiting with code {EXIT_CODE} so that the "
                        "manager starts a fresh process") in server.output
                assert (f"a stuck request holds the loop: stopping, in-flight requests have "
                        f"{GRACEFUL_TIMEOUT:g}s to finish") in server.output
            else:
                assert answer(address) == (200, b"hello\n")
                assert stuck.results == [], "the other request was answered after the stuck one"
                assert stuck.outcomes(15) == [(200, b"done\n")]
                assert server.output.count(f'stuck request: "GET {target} ') == 1, "reported once"
                assert server.stop() == 0, server.output
