"""Logging set-up, and log files that outlive logrotate.

``--log-output`` and ``--access-log`` files are reopened under their own name on SIGUSR1
(and SIGHUP), as nginx and gunicorn do: logrotate renames the file, signals the server,
and the next line goes to a fresh file of the old name.
"""

from __future__ import annotations

import logging
import sys
from posix import write as _write  # see write_line
from typing import TYPE_CHECKING, Any

from chaussette.errors import ChaussetteError

if TYPE_CHECKING:
    import threading

    _StreamHandler = logging.StreamHandler[Any]
else:  # not subscriptable at run time before Python 3.11
    _StreamHandler = logging.StreamHandler

LOG_FORMAT = "%(asctime)s [%(process)d] [%(levelname)s] %(message)s"
#: Where the access log's handler hangs, so that ``reopen_files`` finds it.
ACCESS_LOGGER = "chaussette.access"


def configure(level: str, output: str = "-") -> logging.Logger:
    handler = logging.StreamHandler(sys.stderr) if output == "-" else _handler(output, "--log-output")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    log = _only_handler("chaussette", handler)
    log.setLevel(level.upper())
    return log


def access_log_file(output: str) -> LineHandler:
    """Where the access log writes its lines: ``output`` (a path, or - for stdout)."""
    handler = LineHandler(sys.stdout) if output == "-" else _handler(output, "--access-log")
    _only_handler(ACCESS_LOGGER, handler)
    return handler


class LineHandler(_StreamHandler):
    """A stream handler that also takes ready-made lines.

    The access log writes one line per request: making a ``LogRecord`` of it and going
    through a logger costs several times what the rest of its layer does, so it hands its
    line to ``write_line``, which shares the handler's lock (lines written by threads never
    interleave), its stream and its error reporting.
    """

    lock: threading.RLock  # made by Handler.__init__

    def write_line(self, line: str) -> None:
        with self.lock:
            try:
                self.stream.write(line + self.terminator)
                self.stream.flush()
            except Exception:
                self.handleError(logging.makeLogRecord({"msg": line}))


class ReopeningFileHandler(LineHandler, logging.FileHandler):
    """A log file that can be reopened under its own name after logrotate renamed it.

    ``reopen()`` only sets a flag, so a signal handler may call it at any moment; the file
    is reopened before the next line, under the handler's lock, so no line is written half
    to the old file and half to the new one. The lock is re-entrant: a signal handler that
    logs while it interrupted this thread in the middle of a line writes to the file that
    line goes to, and the line after reopens.
    """

    def __init__(self, filename: str) -> None:
        self._reopen = False
        self._depth = 0  # records being written in this thread (changed under the lock only)
        self._fd = -1
        # Lines are text the server was handed: one that is not UTF-8 is escaped, not lost.
        super().__init__(filename, encoding="utf-8", errors="backslashreplace")

    def reopen(self) -> None:
        self._reopen = True

    def emit(self, record: logging.LogRecord) -> None:
        if self._reopen and not self._depth:
            self._open_again()
        self._depth += 1
        try:
            super().emit(record)
        finally:
            self._depth -= 1

    def write_line(self, line: str) -> None:
        """Straight to the file descriptor (opened for appending): a third of the cost
        of the text and buffer layers, which ``emit`` flushes after every record, so the
        two never reorder lines.

        ``posix.write``, not ``os.write``: eventlet's monkey-patching replaces the latter
        with one that stats the descriptor on every call and, for anything but a regular
        file (a pipe to the manager, /dev/null), first waits for the hub to say it is
        writable: a loop round trip per access-log line, which cut eventlet's throughput
        fivefold. A line is written at once, as on every other backend.
        """
        data = (line + self.terminator).encode("utf-8", "backslashreplace")
        with self.lock:
            try:
                if self._reopen and not self._depth:
                    self._open_again()
                while data:
                    data = data[_write(self._fd, data):]
            except Exception:
                self.handleError(logging.makeLogRecord({"msg": line}))

    def _open(self) -> Any:
        stream = super()._open()
        self._fd = stream.fileno()
        return stream

    def _open_again(self) -> None:
        self._reopen = False
        if self.stream is not None:
            self.stream.close()
        self.stream = self._open()


def reopen_files() -> None:
    """Ask every log file of chaussette's (``--log-output``, the access log) to reopen."""
    for name in ("chaussette", ACCESS_LOGGER):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, ReopeningFileHandler):
                handler.reopen()


def _only_handler(name: str, handler: logging.Handler) -> logging.Logger:
    log = logging.getLogger(name)
    log.handlers[:] = [handler]
    log.propagate = False
    return log


def _handler(path: str, option: str) -> ReopeningFileHandler:
    try:
        return ReopeningFileHandler(path)
    except OSError as exc:
        raise ChaussetteError(f"cannot write {option} {path!r}: {exc.strerror}; "
                              "choose a writable file or - for the terminal") from None
