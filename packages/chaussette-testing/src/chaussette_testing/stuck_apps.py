"""The application ``StuckRequestSuite`` servers load (``chaussette_testing.stuck_apps.app``):
``/sleep?seconds=N`` waits with ``time.sleep`` (cooperative where the backend patched it),
``/spin?seconds=N`` keeps the CPU busy without yielding, anything else answers at once.
Each stuck request has a function of its own, for the test to find in the stack the
watchdog logs."""

from __future__ import annotations

import time
from typing import Callable, Iterable
from urllib.parse import parse_qs


def stuck_sleeping(seconds: float) -> None:
    time.sleep(seconds)


def stuck_spinning(seconds: float) -> int:
    deadline = time.monotonic() + seconds
    turns = 0
    while time.monotonic() < deadline:
        turns += 1
    return turns


STUCK: dict[str, Callable[[float], object]] = {"/sleep": stuck_sleeping, "/spin": stuck_spinning}


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    stuck = STUCK.get(environ.get("PATH_INFO", ""))
    if stuck is not None:
        stuck(float(parse_qs(environ.get("QUERY_STRING", ""))["seconds"][0]))
        body = b"done\n"
    else:
        body = b"hello\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
