"""gunicorn's and uvicorn's options that chaussette does not have, each answered with
what chaussette does instead.

People who used those servers type them out of habit; argparse would answer
"unrecognized arguments" and leave them guessing. Chaussette leaves processes, TLS and
pid files to the process manager and the proxy, so the answer is usually "that is their
job", said once, here.
"""

from __future__ import annotations

from typing import Sequence

_MANAGER = ("one chaussette is one process: run several with the process manager "
            "(Circus numprocesses, Supervisor numprocs, systemd: several instances on one socket)")

#: (flags, what to do instead), in the words of the error line.
FOREIGN: tuple[tuple[tuple[str, ...], str], ...] = (
    (("-w", "--workers"), _MANAGER),
    (("-b", "--bind"), "use --host and --port (--host unix:/path for a unix socket), "
                       "or --fd for a socket the manager opened"),
    (("--reload",), "use --use-reloader"),
    (("--threads",), "use the waitress backend: --backend waitress --waitress-threads N"),
    (("--certfile", "--keyfile"), "chaussette serves plain HTTP: terminate TLS at the proxy "
                                  "in front of it (nginx, HAProxy)"),
    (("-D", "--daemon"), "chaussette stays in the foreground: the process manager runs it"),
    (("--pid",), "chaussette writes no pid file: the process manager knows the pid "
                 "(systemd's MAINPID, circusctl pid, supervisorctl pid)"),
)


def advice(argv: Sequence[str]) -> str | None:
    """The answer to the first foreign option in ``argv`` (``--flag value``,
    ``--flag=value`` and gunicorn's ``-w4``), or None; nothing after ``--`` counts."""
    for arg in argv:
        if arg == "--":
            return None
        if " " in arg:
            continue  # argparse takes it for a value, as in --access-log-format "-D %(D)s"
        typed = arg.split("=", 1)[0] if arg.startswith("--") else arg[:2]
        for flags, instead in FOREIGN:
            if typed in flags:
                return f"chaussette has no {typed}: {instead}"
    return None
