"""The start-up sequence, in the order that matters.

options checked against the backend's capabilities (before anything opens) -> backend
checked -> sockets opened (stdlib, before any patching) -> backend patches -> hooks and
app imported -> backend adapts the app -> core's layers -> serve. Anything that fails
before serving closes what was opened, so nothing is left half-started.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Sequence

from chaussette import layers
from chaussette.addresses import Address, FdAddress, parse_address
from chaussette.backends import Backend
from chaussette.errors import BackendError, ChaussetteError
from chaussette.importer import import_string
from chaussette.lifecycle import Lifecycle, ThreadDelivery
from chaussette.notify import Notifier
from chaussette.settings import Config
from chaussette.sockets import Listener, close_all, open_listener
from chaussette.systemd import listen_fds


def check_options(backend: type[Backend], config: Config, addresses: Sequence[Address]) -> None:
    """Refuse what the backend cannot honour, but only what the user asked for."""
    caps = backend.capabilities
    if config.spawn is not None and not caps.spawn:
        raise BackendError(f"backend {backend.name!r} cannot bound concurrency with --spawn; "
                           "remove --spawn or use gevent or eventlet")
    for name, why in caps.unsupported.items():
        if config.is_set(name):
            raise BackendError(f"the {backend.name} backend cannot honour --{name.replace('_', '-')}: "
                               f"{why}; remove the option or use another backend")
    if caps.max_keep_alive is not None and config.keep_alive > caps.max_keep_alive:
        raise BackendError(f"--keep-alive {config.keep_alive:g} is too long for {backend.name}, "
                           f"whose timers go up to {caps.max_keep_alive:g} seconds; "
                           f"use at most {caps.max_keep_alive:g}")
    if caps.max_listeners is not None and len(addresses) > caps.max_listeners:
        raise BackendError(f"the {backend.name} backend serves at most {caps.max_listeners} socket(s) "
                           f"and was given {len(addresses)}; run one chaussette per socket, "
                           "or use another backend")
    if config.socket_type != "SOCK_STREAM":
        raise ChaussetteError(f"--socket-type {config.socket_type} cannot carry HTTP; use SOCK_STREAM")


def plan_addresses(config: Config, log: logging.Logger) -> list[Address]:
    """Where to listen: ``--fd`` wins, then systemd's LISTEN_FDS, then ``--host``/``--port``."""
    activated = listen_fds()
    if config.fd:
        return [FdAddress(fd) for fd in config.fd]
    if activated:
        log.info("Using %d socket(s) from systemd socket activation", len(activated))
        return [FdAddress(fd) for fd in activated]
    return [parse_address(config.host, config.port, config.address_family)]


def open_listeners(addresses: Sequence[Address], backlog: int) -> list[Listener]:
    listeners: list[Listener] = []
    try:
        for address in addresses:
            listeners.append(open_listener(address, backlog))
    except BaseException:
        close_all(listeners)
        raise
    return listeners


def prepare(backend_class: type[Backend], config: Config, log: logging.Logger) -> list[Listener]:
    """Check the options, then open the listeners: a refused option opens nothing."""
    addresses = plan_addresses(config, log)
    check_options(backend_class, config, addresses)
    return open_listeners(addresses, config.backlog)


Hook = Callable[[Any], Any]


def resolve_hook(name: str | None, option: str) -> Hook | None:
    if not name:
        return None
    try:
        hook = import_string(name)
    except ChaussetteError as exc:
        raise ChaussetteError(f"{option}: {exc}") from exc
    if not callable(hook):
        raise ChaussetteError(f"{option}: {name!r} is not callable")
    return hook


def check(config: Config, backend_class: type[Backend], log: logging.Logger) -> None:
    """``--check-config``: everything ``run`` does before it serves, opening no socket and
    no file, so a deploy script can refuse a broken release before any worker restarts."""
    from chaussette.access import line_format

    check_options(backend_class, config, plan_addresses(config, log))
    backend = backend_class(config, log)
    backend.check()
    load(config, backend, log)
    if config.access_log is not None:
        line_format(config)


def load(config: Config, backend: Backend, log: logging.Logger,
         app: Callable[..., Any] | None = None) -> tuple[Callable[..., Any], Hook | None, Hook | None]:
    """Patch for the backend, then import the user's code: the application (unless
    given) and the hooks."""
    from chaussette.apps import extend_python_path, load_app

    if backend.capabilities.monkey_patch and not config.no_monkey:
        backend.patch()
    # Everything of the user's is imported after patching: hooks may import socket
    # or threading as much as the application does.
    extend_python_path(config.python_path)
    pre_hook = resolve_hook(config.pre_hook, "--pre-hook")
    post_hook = resolve_hook(config.post_hook, "--post-hook")
    if app is None:
        if not config.is_set("application"):
            log.warning("no application given: serving chaussette's demo app (%s); name yours, "
                        "e.g. chaussette myproject.wsgi.application", config.application)
        app = load_app(config.application, config.arguments, backend.accepts)
    return app, pre_hook, post_hook


def run(config: Config, backend_class: type[Backend], log: logging.Logger,
        app: Callable[..., Any] | None = None, listeners: list[Listener] | None = None,
        started: Callable[[Lifecycle], None] | None = None) -> int:
    """Serve until stopped; returns the exit code. ``app``/``listeners`` may be given
    ready-made by the Python API (which checked the options when it opened them), which
    also gets the ``Lifecycle`` through ``started`` to stop it from another thread."""
    embedded = threading.current_thread() is not threading.main_thread()
    if embedded and not backend_class.capabilities.threads:
        raise BackendError(f"the {backend_class.name} backend serves only in the main thread (it stops "
                           "through signal handlers, which Python runs there only): call serve_forever() "
                           "from the main thread, or embed the wsgiref or waitress backend")
    backend = backend_class(config, log)
    if listeners is None:
        addresses = plan_addresses(config, log)
        check_options(backend_class, config, addresses)
        backend.check()
        listeners = open_listeners(addresses, config.backlog)
    else:
        backend.check()
    try:
        # Before patching: its socket is the standard library's, like the listeners. A
        # server in a thread is not the process systemd started: it tells systemd nothing.
        notifier = None if embedded else Notifier.from_environment(log)
        app, pre_hook, post_hook = load(config, backend, log, app)
        log.info("Application is %r", app)
        status = f"Serving on {', '.join(listener.name for listener in listeners)} with {backend_class.name}"
        announce = [f"Serving on {listener.name}" for listener in listeners]
        announce.append(f"Using {backend_class.name!r} as a backend")
        lifecycle = Lifecycle(config.graceful_timeout, log, config.drain_delay, notifier, status, announce,
                              ThreadDelivery() if embedded else None)
        if started is not None:
            started(lifecycle)
        app = layers.wrap(backend.adapt(app), config, lifecycle)
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
        return lifecycle.exit_code
    finally:
        close_all(listeners)
