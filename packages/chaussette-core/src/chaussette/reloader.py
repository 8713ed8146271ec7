"""``--use-reloader``: a parent that holds the sockets and restarts a child on changes.

The parent binds once and hands the sockets down with ``--fd``, so a restart never
refuses connections: they queue in the backlog while the new child imports the app.
Watching is watchfiles' job (native OS notifications), not a polling loop of ours.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading

from chaussette.backends import Backend
from chaussette.errors import ChaussetteError
from chaussette.settings import Config


def run_with_reloader(argv: list[str], config: Config, backend_class: type[Backend],
                      log: logging.Logger) -> int:
    try:
        import watchfiles
    except ImportError:
        raise ChaussetteError("--use-reloader needs watchfiles; install it with: "
                              "pip install 'chaussette-core[reload]'") from None
    from chaussette.apps import extend_python_path
    from chaussette.runner import prepare
    from chaussette.sockets import close_all

    extend_python_path(config.python_path)
    listeners = prepare(backend_class, config, log)  # refused options open nothing
    child_argv = [arg for arg in argv if arg != "--use-reloader"]
    if not config.fd:  # a given --fd is in argv already: naming it twice would listen twice
        for listener in listeners:
            child_argv += ["--fd", str(listener.sock.fileno())]
    fds = tuple(listener.sock.fileno() for listener in listeners)
    roots = [os.getcwd()] + [p for p in (config.python_path or "").split(os.pathsep) if p]
    stop = threading.Event()
    child: subprocess.Popen | None = None

    def start() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "chaussette", *child_argv], pass_fds=fds,
                                start_new_session=True)  # Ctrl-C reaches the parent only; it forwards

    def on_signal(signum: int, frame: object) -> None:
        stop.set()
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    try:
        child = start()
        for changes in watchfiles.watch(*roots, watch_filter=watchfiles.PythonFilter(),
                                        stop_event=stop, raise_interrupt=False):
            log.info("Reloading: %s changed", ", ".join(sorted({os.path.relpath(p) for _, p in changes})))
            child.send_signal(signal.SIGTERM)
            child.wait()
            child = start()
        return child.wait()
    finally:
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)
            child.wait()
        close_all(listeners)
