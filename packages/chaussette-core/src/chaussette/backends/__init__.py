"""The backend contract: what a backend package implements and core relies on.

A backend decides only *how* requests are served on sockets core hands it. It never
binds, never parses addresses and never reads options it did not declare. Packages
register a ``Backend`` subclass in the ``chaussette.backends`` entry-point group.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping, Sequence

from chaussette.errors import BackendError

if TYPE_CHECKING:
    from chaussette.lifecycle import Lifecycle
    from chaussette.settings import Config, Setting
    from chaussette.sockets import Listener

#: Bumped when the contract changes incompatibly; core refuses backends built for another.
#: It covers this module, ``chaussette.http``, ``chaussette.framing``, ``chaussette.lifecycle``
#: (``Lifecycle``, ``SignalDelivery``), ``chaussette.sockets.Listener`` and ``Config``.
#: 2: capabilities say what core refuses, ``adapt()``, signal delivery, ``chaussette.http``.
API_VERSION = 2


@dataclass(frozen=True)
class Capabilities:
    """What core must refuse for this backend, checked before any socket is opened, so
    an option is never silently ignored and nothing is left half-started; and how it runs
    requests, where a core layer depends on it (``one_loop``)."""

    #: ``--spawn`` bounds this backend's concurrency.
    spawn: bool = False
    #: ``patch()`` monkey-patches the standard library (skipped with ``--no-monkey``).
    monkey_patch: bool = False
    #: How many listening sockets one process can serve; None for any number.
    max_listeners: int | None = None
    #: Longest ``--keep-alive`` the server's timers can honour, in seconds.
    max_keep_alive: float | None = None
    #: Core settings the server has no knob for, with why: refused when the user sets them.
    unsupported: Mapping[str, str] = field(default_factory=dict)
    #: Every request runs on one loop in one thread (a C loop, greenlets): a request that
    #: does not yield to it (CPU work, a call the backend did not make cooperative) stalls
    #: every other. ``--timeout`` then replaces the process instead of only reporting it.
    one_loop: bool = False
    #: ``serve()`` may run in a thread other than the main one (``make_server()`` in a
    #: test fixture): its loop needs no signal handler, and ``stop()`` works from any
    #: thread. Off, serving from another thread is refused.
    threads: bool = False


class Backend:
    """Base class of every backend. Importing the module that defines a subclass must be
    cheap and must not import the server library's patched-sensitive parts: core loads the
    class before monkey-patching and before the application is imported."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    api_version: ClassVar[int] = API_VERSION
    capabilities: ClassVar[Capabilities] = Capabilities()
    settings: ClassVar[Sequence[Setting]] = ()

    def __init__(self, config: Config, log: logging.Logger | None = None) -> None:
        self.config = config
        self.log = log or logging.getLogger("chaussette")

    def check(self) -> None:
        """Refuse to start (raise BackendError) if the server library is missing or broken,
        instead of failing on the first request."""

    def patch(self) -> None:
        """Monkey-patch the standard library. Called before the app is imported, unless
        ``--no-monkey``; only when ``capabilities.monkey_patch`` is true."""

    def accepts(self, app: Any) -> bool:
        """Whether ``app``, what the user named, can be served; core refuses anything else
        as soon as it is loaded. WSGI callables here; a backend that serves more (the
        ``socketio`` backend takes a ``socketio.Server``) turns it into one in ``adapt()``."""
        return callable(app)

    def adapt(self, app: Any) -> Callable[..., Any]:
        """The WSGI application to serve for what the user named. Runs after patching and
        before core wraps its per-request layers (access log...) around the result, so
        those layers always see a WSGI callable."""
        return app

    def serve(self, app: Callable[..., Any], listeners: Sequence[Listener],
              lifecycle: Lifecycle) -> None:
        """Serve ``app`` on ``listeners`` until stopped.

        Call ``lifecycle.install(stop, delivery)`` once serving: on SIGTERM/SIGINT (or
        ``lifecycle.request_stop()``) core calls ``stop()``, which must stop accepting and
        let in-flight requests finish; ``serve`` then returns. ``delivery`` (a
        ``SignalDelivery``) says where core's handlers must run in this backend's loop.
        Core enforces ``--graceful-timeout`` and the second-signal exit.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.{type(self).__name__} {self.name!r}>"


def require(module: str, install: str) -> Any:
    """Import a backend's server library, or say which distribution to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendError(f"cannot import {module!r} ({exc}); install it with: pip install {install}") from exc


def version_tuple(text: str) -> tuple[int, ...]:
    """``"25.4.1"`` or ``"3.0.2rc1"`` as ``(25, 4, 1)``: enough to compare a server
    library's version with the oldest one a backend accepts."""
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])
