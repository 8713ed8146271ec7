"""Core's per-request layers: WSGI middleware built from the settings and wrapped around
what the backend adapted, so a per-request feature is written once and behaves the same
on every backend, the C ones included (they get the wrapped callable).

A layer is only in the call path when its setting is on: with every one off, the backend
calls the application itself, and a bare server's hot path is exactly the backend's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from chaussette.settings import Config

App = Callable[..., Any]


@dataclass(frozen=True)
class Layer:
    #: The setting that turns the layer on (any true value).
    setting: str
    #: Wraps an application; imported late, so a layer that is off costs no import.
    build: Callable[[App, Config], App]

    def enabled(self, config: Config) -> bool:
        return bool(getattr(config, self.setting))


def _access_log(app: App, config: Config) -> App:
    from chaussette.logs import AccessLog, access_logger

    assert config.access_log is not None
    return AccessLog(app, access_logger(config.access_log))


#: Outermost first: a request meets them in this order on its way in.
LAYERS: tuple[Layer, ...] = (
    Layer("access_log", _access_log),
)


def wrap(app: App, config: Config, layers: tuple[Layer, ...] = LAYERS) -> App:
    """``app`` inside every enabled layer; ``app`` itself when none is."""
    for layer in reversed(layers):
        if layer.enabled(config):
            app = layer.build(app, config)
    return app
