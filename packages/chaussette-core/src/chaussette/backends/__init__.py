"""The backend contract: what a backend package implements and core relies on.

A backend decides only *how* requests are served on sockets core hands it. It never
binds, never parses addresses and never reads options it did not declare. Packages
register a ``Backend`` subclass in the ``chaussette.backends`` entry-point group.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Sequence

from chaussette.errors import BackendError

if TYPE_CHECKING:
    from chaussette.lifecycle import Lifecycle
    from chaussette.settings import Config, Setting
    from chaussette.sockets import Listener

#: Bumped when the contract changes incompatibly; core refuses backends built for another.
API_VERSION = 1


@dataclass(frozen=True)
class Capabilities:
    """What a backend can honour, so core can refuse an option with a clear message
    instead of letting the backend ignore it or fail obscurely."""

    unix_sockets: bool = True
    spawn: bool = False
    graceful_stop: bool = True
    websockets: bool = False
    monkey_patch: bool = False


class Backend:
    """Base class of every backend. Importing the module that defines a subclass must be
    cheap and must not import the server library's patched-sensitive parts: core loads the
    class before monkey-patching and before the application is imported."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    api_version: ClassVar[int] = API_VERSION
    capabilities: ClassVar[Capabilities] = Capabilities()
    settings: ClassVar[Sequence["Setting"]] = ()

    def __init__(self, config: "Config", log: logging.Logger | None = None) -> None:
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
        ``socketio`` backend takes a ``socketio.Server``) adapts it in ``serve()``."""
        return callable(app)

    def serve(self, app: Callable[..., Any], listeners: Sequence["Listener"],
              lifecycle: "Lifecycle") -> None:
        """Serve ``app`` on ``listeners`` until stopped.

        Call ``lifecycle.install(stop)`` once serving: on SIGTERM/SIGINT core calls
        ``stop()``, which must stop accepting and let in-flight requests finish; ``serve``
        then returns. Core enforces ``--graceful-timeout`` and the second-signal exit.
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
