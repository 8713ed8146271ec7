"""The ``bjoern`` backend: bjoern's single-threaded libev loop on core's socket.

This module only declares the backend and refuses what bjoern cannot honour: importing
it must stay cheap, so bjoern itself is imported in ``check()`` and ``serve()`` only.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

from chaussette.backends import Backend, Capabilities, require
from chaussette.errors import BackendError
from chaussette.lifecycle import Lifecycle
from chaussette.sockets import Listener

INSTALL = "chaussette-bjoern (building bjoern needs the libev headers: apt-get install libev-dev)"

#: Core options bjoern has no knob for: refused when given, never ignored.
UNSUPPORTED = {
    "keep_alive": "bjoern keeps a connection open for as long as the client wants (it has no "
                  "idle timeout and cannot turn keep-alive off)",
    "limit_request_line": "bjoern's request-line limit is compiled in",
    "limit_request_fields": "bjoern's header limits are compiled in",
    "limit_request_field_size": "bjoern's header limits are compiled in",
}

#: In the version of the fixed bjoern builds (ci/build-bjoern), e.g. 3.2.2+chaussette.3.
FIXED_BUILD = "+chaussette"
#: On ``_bjoern`` in the builds (3.2.2+chaussette.3 and later) that do in C what the Python
#: adapter (``chaussette_bjoern.wsgi``) does for any other bjoern: the application is handed
#: to them as it is.
MARK = "CHAUSSETTE_WSGI"


def stock_bjoern_warning(version: str) -> str | None:
    """The one line to log when ``version`` is not a fixed build, else None.

    Stock bjoern still serves, so it is not refused: the dependency is on the official
    distribution, which PyPI installs by itself; the fixed build is what we test.
    """
    if FIXED_BUILD in version:
        return None
    return (f"bjoern {version} is not the fixed build (3.2.2+chaussette.N): it answers only the "
            "last of several pipelined requests, and its lenient parser accepts requests a proxy "
            "reads differently (request smuggling), and a Python adapter has to correct its "
            "responses on every request; install the fixed build with: ci/build-wheels "
            "DIR && pip install --find-links DIR chaussette-bjoern")


class BjoernBackend(Backend):
    name = "bjoern"
    summary = "bjoern: single-threaded C server on libev, one request at a time per process"
    capabilities = Capabilities(unix_sockets=True, spawn=False, graceful_stop=True)

    def check(self) -> None:
        """Refuse options bjoern cannot honour, and a bjoern the stop cannot drive."""
        for name, why in UNSUPPORTED.items():
            if self.config.is_set(name):
                raise BackendError(f"the bjoern backend cannot honour --{name.replace('_', '-')}: "
                                   f"{why}; remove the option or use another backend")
        if len(self.config.fd) > 1:
            raise BackendError(_one_socket(len(self.config.fd)))
        self.libev  # noqa: B018 - refused here, before any socket is opened, rather than in serve()

    @functools.cached_property
    def libev(self) -> Any:
        """libev's handle, found once: ``check()`` refuses a bjoern without it, ``serve()`` uses it."""
        from chaussette_bjoern.libev import libev_of

        require("bjoern", INSTALL)
        extension = require("_bjoern", INSTALL)
        libev = libev_of(extension)
        if libev is None:
            raise BackendError(f"this bjoern ({extension.__file__}) does not expose libev's "
                               "ev_feed_signal, which its graceful stop needs; install the "
                               f"official bjoern distribution: pip install {INSTALL}")
        return libev

    def serve(self, app: Callable[..., Any], listeners: Sequence[Listener], lifecycle: Lifecycle) -> None:
        if len(listeners) != 1:
            raise BackendError(_one_socket(len(listeners)))
        from importlib.metadata import PackageNotFoundError, version

        from chaussette_bjoern.server import BjoernLoop

        try:
            installed = version("bjoern")
        except PackageNotFoundError:  # importable without its metadata: not ours either
            installed = "(no distribution metadata)"
        warning = stock_bjoern_warning(installed)
        if warning is not None:
            self.log.warning(warning)
        # Asked here, not in check(): the application is imported by now, as it would be
        # when it changes what bjoern offers (the tests hide the mark this way).
        direct = getattr(require("_bjoern", INSTALL), MARK, 0) >= 1
        BjoernLoop(require("bjoern", INSTALL), self.libev, app, listeners[0], self.log,
                   adapt=not direct).run(lifecycle)


def _one_socket(count: int) -> str:
    return (f"the bjoern backend serves a single socket and was given {count}: bjoern's "
            "server_run() takes one; run one chaussette per socket, or use another backend")
