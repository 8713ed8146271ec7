"""The WSGI applications the benchmarks serve (``ci/bench``, docs/benchmarks.md).

Each is the whole request: no framework, no middleware, so what is measured is the
server. Served as ``bench.apps:hello`` / ``bench.apps:io`` with the repository root as
the working directory.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable

HELLO = b"Hello, World!\n"
HELLO_HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))]
#: How long ``io`` waits per request: stands for a database or an upstream call.
IO_WAIT = 0.010


def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The smallest useful response, with a Content-Length so keep-alive works on
    every server (none has to fall back to chunked encoding or closing)."""
    start_response("200 OK", HELLO_HEADERS)
    return [HELLO]


def io(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Waits 10 ms as if on I/O, then answers like ``hello``.

    ``time.sleep`` is looked up at call time, so a backend that monkey-patches the
    standard library (gevent, eventlet, meinheld, gunicorn's gevent worker) turns it
    into a cooperative wait, exactly as it would a database driver's socket read;
    threaded servers wait in a thread; a server that patches nothing (bjoern) blocks
    its whole loop for 10 ms.
    """
    time.sleep(IO_WAIT)
    start_response("200 OK", HELLO_HEADERS)
    return [HELLO]
