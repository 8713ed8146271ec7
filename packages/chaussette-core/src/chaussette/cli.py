"""The ``chaussette`` command (and ``python -m chaussette``)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import NoReturn, Sequence

from chaussette import __version__
from chaussette.errors import ChaussetteError
from chaussette.lifecycle import ForcedExit
from chaussette.settings import CORE_SETTINGS, Setting, build_config, settings_with


def build_parser(extra: Sequence[Setting] = (), backend: str = "") -> argparse.ArgumentParser:
    """Core's options and the backend's own; a backend option that clashes with a core
    one is refused (``settings_with``) before argparse would fail on it."""
    settings_with(extra, backend)
    parser = argparse.ArgumentParser(
        prog="chaussette",
        description="Serve a WSGI application on a socket chaussette binds or one a process "
                    "manager already opened (--fd, systemd socket activation).")
    parser.add_argument("--version", action="version", version=f"chaussette-core {__version__}")
    parser.add_argument("--list-backends", action="store_true",
                        help="List installed backends, and known ones with the package to install.")
    for setting in CORE_SETTINGS:
        setting.add_to(parser)
    if extra:
        group = parser.add_argument_group(f"{backend} backend options")
        for setting in extra:
            setting.add_to(group)
    return parser


def _requested_backend(argv: Sequence[str]) -> str:
    """Find --backend before parsing, so the backend's own options can join the parser."""
    for index, arg in enumerate(argv):
        if arg == "--backend" and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--backend="):
            return arg.split("=", 1)[1]
    return "wsgiref"


def list_backends() -> str:
    from chaussette.registry import describe

    lines = []
    for info in describe():
        if info.version is None:
            lines.append(f"{info.name:<16} not installed  pip install {info.distribution}")
        else:
            lines.append(f"{info.name:<16} {info.distribution} {info.version}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        code = run_cli(argv)
    except ForcedExit as exc:
        # The stop could not wait (second signal, graceful timeout): threads may still be
        # in the application or in a backend's C loop. The interpreter's own exit would
        # wait for the first and pull objects from under the second (meinheld died of
        # SIGSEGV there), so once run()'s cleanup is done, leave without it.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exc.code if isinstance(exc.code, int) else 1)
    sys.exit(code)


def run_cli(argv: list[str]) -> int:
    from chaussette import logs, registry

    debug = False
    backend_name = _requested_backend(argv)
    backend_class = None
    backend_error: ChaussetteError | None = None
    if "--list-backends" not in argv:  # listing must not import any backend
        try:
            backend_class = registry.load(backend_name)
        except ChaussetteError as exc:
            backend_error = exc
    extra = backend_class.settings if backend_class else ()
    try:
        parser = build_parser(extra, backend_name)
    except ChaussetteError as exc:
        print(f"chaussette: error: {exc}", file=sys.stderr)
        return exc.exit_code
    namespace = parser.parse_args(argv)
    if namespace.list_backends:
        print(list_backends())
        return 0
    values = {key: value for key, value in vars(namespace).items() if key != "list_backends"}
    try:
        config = build_config(values, settings_with(extra, backend_name))
        debug = config.log_level == "debug"
        log = logs.configure(config.log_level, config.log_output)
        if backend_error is not None:
            raise backend_error
        assert backend_class is not None
        if config.use_reloader:
            from chaussette.reloader import run_with_reloader

            return run_with_reloader(argv, config, backend_class, log)
        from chaussette.runner import run

        return run(config, backend_class, log)
    except ChaussetteError as exc:
        if debug:
            logging.getLogger("chaussette").exception("start-up failed")
        print(f"chaussette: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
