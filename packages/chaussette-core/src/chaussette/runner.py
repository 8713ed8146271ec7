"""The start-up sequence, in the order that matters.

backend resolved and checked -> sockets opened (stdlib, before any patching) -> backend
patches -> app imported -> hooks -> serve. Anything that fails before serving closes
what was opened, so nothing is left half-started.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

from chaussette import registry
from chaussette.addresses import FdAddress, parse_address
from chaussette.backends import Backend
from chaussette.errors import BackendError, ChaussetteError
from chaussette.importer import import_string
from chaussette.lifecycle import Lifecycle
from chaussette.settings import Config
from chaussette.sockets import Listener, close_all, open_listener
from chaussette.systemd import listen_fds


def check_options(backend: type[Backend], config: Config) -> None:
    """Refuse options the backend cannot honour, but only when the user asked for them."""
    caps = backend.capabilities
    if config.spawn is not None and not caps.spawn:
        raise BackendError(f"backend {backend.name!r} cannot bound concurrency with --spawn; "
                           "remove --spawn or use gevent or eventlet")
    if config.is_set("graceful_timeout") and not caps.graceful_stop:
        raise BackendError(f"backend {backend.name!r} cannot stop gracefully, so --graceful-timeout "
                           "has no effect; remove it")
    if config.socket_type != "SOCK_STREAM":
        raise ChaussetteError(f"--socket-type {config.socket_type} cannot carry HTTP; use SOCK_STREAM")


def open_listeners(config: Config, log: logging.Logger) -> list[Listener]:
    """``--fd`` wins, then systemd's LISTEN_FDS, then ``--host``/``--port``."""
    addresses: Sequence[Any]
    activated = listen_fds()
    if config.fd:
        addresses = [FdAddress(fd) for fd in config.fd]
    elif activated:
        log.info("Using %d socket(s) from systemd socket activation", len(activated))
        addresses = [FdAddress(fd) for fd in activated]
    else:
        addresses = [parse_address(config.host, config.port, config.address_family)]
    listeners: list[Listener] = []
    try:
        for address in addresses:
            listeners.append(open_listener(address, config.backlog))
    except BaseException:
        close_all(listeners)
        raise
    return listeners


def resolve_hook(name: str | None, option: str) -> Callable[[Any], Any] | None:
    if not name:
        return None
    try:
        hook = import_string(name)
    except ChaussetteError as exc:
        raise ChaussetteError(f"{option}: {exc}") from exc
    if not callable(hook):
        raise ChaussetteError(f"{option}: {name!r} is not callable")
    return hook


def run(config: Config, backend_class: type[Backend], log: logging.Logger,
        app: Callable[..., Any] | None = None, listeners: list[Listener] | None = None) -> int:
    """Serve until stopped; returns the exit code. ``app``/``listeners`` may be given
    ready-made by the Python API."""
    from chaussette.apps import extend_python_path, load_app

    check_options(backend_class, config)
    backend = backend_class(config, log)
    backend.check()
    extend_python_path(config.python_path)  # first: hooks may live in the user's project too
    pre_hook = resolve_hook(config.pre_hook, "--pre-hook")
    post_hook = resolve_hook(config.post_hook, "--post-hook")
    if listeners is None:
        listeners = open_listeners(config, log)
    try:
        if not backend_class.capabilities.unix_sockets and any(l.is_unix for l in listeners):
            raise BackendError(f"backend {backend_class.name!r} cannot serve on unix sockets; "
                               "use a TCP address or another backend")
        if backend_class.capabilities.monkey_patch and not config.no_monkey:
            backend.patch()
        if app is None:
            app = load_app(config.application, config.arguments, backend.accepts)
        if config.access_log:
            from chaussette.logs import AccessLog, access_logger

            app = AccessLog(app, access_logger(config.access_log))
        log.info("Application is %r", app)
        for listener in listeners:
            log.info("Serving on %s", listener.name)
        log.info("Using %r as a backend", backend_class.name)
        lifecycle = Lifecycle(config.graceful_timeout, log)
        if pre_hook is not None:
            log.info("Running the pre-hook %r", config.pre_hook)
        try:
            if pre_hook is not None:
                pre_hook(config)
            backend.serve(app, listeners, lifecycle)
            lifecycle.stopped()
        finally:
            if post_hook is not None:
                log.info("Running the post-hook %r", config.post_hook)
                post_hook(config)
        log.info("Stopped")
        return 0
    finally:
        close_all(listeners)
