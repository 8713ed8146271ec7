"""``--max-requests N`` / ``--max-requests-jitter J``, with gunicorn's meaning: after
N + a random 0..J requests the process stops gracefully and exits 0, and the manager
starts a fresh one on the same socket. It bounds what a slow leak in the application can
grow to; recycling by age or memory is the manager's business.

The stop is the in-process graceful stop (``Lifecycle.request_stop``): the backend stops
accepting, what it has accepted (the request that reached the limit included) is
answered. It skips ``--drain-delay``: the host is not leaving the load balancer's pool,
one of the processes on its socket is being replaced while the others keep serving, so
the health path keeps answering 200.

A manager that does not restart a process that exited 0 loses a worker at each recycle:
Circus restarts by default, Supervisor needs ``autorestart = true``, systemd
``Restart=always`` (docs/process-managers.md).
"""

from __future__ import annotations

import itertools
import random
from typing import TYPE_CHECKING, Any, Callable, Iterable

if TYPE_CHECKING:
    from chaussette.lifecycle import Lifecycle
    from chaussette.settings import Config

App = Callable[..., Any]


class MaxRequests:
    """Counts the requests that reach the application and asks for the stop once, on the
    one that reaches the limit."""

    def __init__(self, app: App, config: Config, lifecycle: Lifecycle) -> None:
        self.app = app
        self.lifecycle = lifecycle
        # SystemRandom: processes forked from one parent must not draw the same jitter.
        self.limit = config.max_requests + random.SystemRandom().randint(0, config.max_requests_jitter)
        # next() on a C iterator is atomic under the GIL: no lock on the hot path, and
        # exactly one request, whichever thread runs it, sees the limit.
        self._count = itertools.count(1)
        lifecycle.log.info("Recycling after %d requests (--max-requests %d, jitter 0..%d)",
                           self.limit, config.max_requests, config.max_requests_jitter)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if next(self._count) == self.limit:
            self.lifecycle.request_stop(f"served {self.limit} requests: recycling", drain=False)
        return self.app(environ, start_response)

    def __repr__(self) -> str:
        return repr(self.app)
