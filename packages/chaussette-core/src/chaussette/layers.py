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
    from chaussette.lifecycle import Lifecycle
    from chaussette.settings import Config

App = Callable[..., Any]


def close_body(result: Any) -> None:
    """PEP 3333: a server calls the body's ``close()`` if it has one. A layer that wraps
    the body calls it for the server, in its own ``close()``."""
    close = getattr(result, "close", None)
    if close is not None:
        close()


@dataclass(frozen=True)
class Layer:
    #: The setting that turns the layer on (any true value).
    setting: str
    #: Wraps an application; imported late, so a layer that is off costs no import. The
    #: lifecycle lets a layer see a stop coming (health) or ask for one (recycling).
    build: Callable[[App, Config, Lifecycle], App]

    def enabled(self, config: Config) -> bool:
        return bool(getattr(config, self.setting))


def _health(app: App, config: Config, lifecycle: Lifecycle) -> App:
    from chaussette.health import HealthPath

    return HealthPath(app, config, lifecycle)


def _forwarded(app: App, config: Config, lifecycle: Lifecycle) -> App:
    from chaussette.proxy import ProxyHeaders

    return ProxyHeaders(app, config)


def _request_id(app: App, config: Config, lifecycle: Lifecycle) -> App:
    from chaussette.requestid import RequestId

    return RequestId(app, config)


def _metrics(app: App, config: Config, lifecycle: Lifecycle) -> App:
    from chaussette.metrics import Metrics

    return Metrics(app, config)


def _access_log(app: App, config: Config, lifecycle: Lifecycle) -> App:
    from chaussette.access import access_log

    return access_log(app, config)


def _recycling(app: App, config: Config, lifecycle: Lifecycle) -> App:
    from chaussette.recycling import MaxRequests

    return MaxRequests(app, config, lifecycle)


def _watchdog(app: App, config: Config, lifecycle: Lifecycle) -> App:
    from chaussette.watchdog import Watchdog

    return Watchdog(app, config, lifecycle)


#: Outermost first: a request meets them in this order on its way in. The health path
#: answers before anything else (a load balancer's poll is no request of the app's); the
#: forwarded client and the request id are in the environ before the access log reads them.
LAYERS: tuple[Layer, ...] = (
    Layer("health_path", _health),
    Layer("forwarded_allow_ips", _forwarded),
    Layer("request_id_header", _request_id),
    Layer("statsd_host", _metrics),
    Layer("access_log", _access_log),
    Layer("max_requests", _recycling),
    Layer("timeout", _watchdog),
)


def wrap(app: App, config: Config, lifecycle: Lifecycle, layers: tuple[Layer, ...] = LAYERS) -> App:
    """``app`` inside every enabled layer; ``app`` itself when none is."""
    for layer in reversed(layers):
        if layer.enabled(config):
            app = layer.build(app, config, lifecycle)
    return app
