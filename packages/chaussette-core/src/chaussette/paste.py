"""PasteDeploy: load ``paste:app.ini`` applications, and serve them from ``[server:main]``.

Needs the optional extra ``chaussette-core[paste]``; without it the error says so.
"""

from __future__ import annotations

import configparser
import logging.config
import os
from typing import Any, Callable

from chaussette.errors import AppImportError, ChaussetteError


def _loadwsgi() -> Any:
    try:
        from paste.deploy import loadwsgi
    except ImportError:
        raise AppImportError("paste: applications need PasteDeploy; install it with: "
                             "pip install 'chaussette-core[paste]'") from None
    return loadwsgi


def load_paste_app(spec: str) -> Callable[..., Any]:
    """``path/app.ini`` or ``path/app.ini#name``; the ini's logging sections, if any,
    configure logging as ``pserve`` would."""
    path, _, name = spec.partition("#")
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise AppImportError(f"paste ini file {path} not found")
    loadwsgi = _loadwsgi()
    parser = configparser.ConfigParser()
    try:
        parser.read(path)
        if parser.has_section("loggers"):
            logging.config.fileConfig(path, {"here": os.path.dirname(path), "__file__": path},
                                      disable_existing_loggers=False)
        return loadwsgi.loadapp(f"config:{path}", name=name or None)
    except (configparser.Error, LookupError, ValueError, ImportError, KeyError) as exc:
        raise AppImportError(f"cannot load {path}{'#' + name if name else ''}: {type(exc).__name__}: {exc}") from exc


def serve_paste(app: Callable[..., Any], global_conf: dict, **settings: Any) -> int:
    """``[server:main] use = egg:chaussette-core`` with host, port, fd, backend, backlog,
    log_level and any other chaussette setting as keys."""
    from chaussette import logs, registry
    from chaussette.runner import run
    from chaussette.settings import build_config, settings_with

    settings.pop("use", None)
    backend = settings.get("backend", "wsgiref")
    backend_class = registry.load(backend)
    config = build_config(settings, settings_with(backend_class.settings, backend))
    log = logs.configure(config.log_level, config.log_output)
    try:
        return run(config, backend_class, log, app=app)
    except ChaussetteError as exc:
        log.error("%s", exc)
        raise SystemExit(exc.exit_code) from None
