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
    handler = LineHandler(sys.stderr) if output == "-" else _handler(output, "--log-output")
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
    """A stream handler that writes each line with one ``write(2)`` on the descriptor.

    Not through the stream's buffer, for three reasons:

    - signal handlers log (``SIGTERM received: stopping``), and under gevent or eventlet
      a handler runs in whichever greenlet is current, possibly one inside this stream's
      ``flush()``: ``io.BufferedWriter`` refuses the nested call ("reentrant call inside
      <_io.BufferedWriter>") and the handler's line was lost. A bare ``write`` may be
      nested, and a line written in one call is never cut by another;
    - the access log writes one line per request: the text and buffer layers, which a
      handler flushes after every line anyway, cost a third of its layer;
    - ``posix.write``, not ``os.write``: eventlet's monkey-patching replaces the latter
      with one that stats the descriptor on every call and, for anything but a regular
      file (a pipe to the manager, /dev/null), first waits for the hub to say it is
      writable: a loop round trip per line, which cut eventlet's throughput fivefold.

    A stream without a descriptor (``io.StringIO`` under a test runner) is written as a
    stream. The access log hands ready-made lines to ``write_line``: making a
    ``LogRecord`` of each would cost several times the rest of its layer.
    """

    lock: threading.RLock  # made by Handler.__init__

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._fd = _descriptor(stream)
        self._encoding = getattr(stream, "encoding", None) or "utf-8"

    def emit(self, record: logging.LogRecord) -> None:
        """Called by ``Handler.handle``, which holds the lock."""
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
        else:
            self._put(line)

    def write_line(self, line: str) -> None:
        with self.lock:
            self._put(line)

    def _put(self, line: str) -> None:
        """Write one line; the caller holds the lock."""
        try:
            if self._fd < 0:
                self.stream.write(line + self.terminator)
                self.stream.flush()
                return
            data = (line + self.terminator).encode(self._encoding, "backslashreplace")
            while data:
                data = data[_write(self._fd, data):]
        except Exception:
            self.handleError(logging.makeLogRecord({"msg": line}))


class ReopeningFileHandler(LineHandler):
    """A log file that can be reopened under its own name after logrotate renamed it.

    ``reopen()`` only sets a flag, so a signal handler may call it at any moment; the file
    is reopened before the next line, under the handler's lock. A signal handler that
    logs while it interrupted this thread in the middle of a line (the lock is
    re-entrant) writes to the file that line goes to, and the line after reopens.
    """

    def __init__(self, filename: str) -> None:
        self.path = filename
        self._reopen = False
        self._depth = 0  # lines being written in this thread (changed under the lock only)
        super().__init__(self._open())

    def reopen(self) -> None:
        self._reopen = True

    def emit(self, record: logging.LogRecord) -> None:
        self._enter_line()  # under handle()'s lock; formatting counts as inside the line
        try:
            super().emit(record)
        finally:
            self._depth -= 1

    def write_line(self, line: str) -> None:
        with self.lock:
            self._enter_line()
            try:
                self._put(line)
            finally:
                self._depth -= 1

    def close(self) -> None:
        with self.lock:
            self.stream.close()
            self._fd = -1  # the number may be reused: later lines fail, they do not stray
        super().close()

    def _enter_line(self) -> None:
        """Reopen if asked, unless this thread is already inside a line (a signal handler
        logging), then count the line."""
        if self._reopen and not self._depth:
            self._reopen = False
            try:
                stream = self._open()
            except OSError as exc:  # lines keep going to the renamed file
                self.handleError(logging.makeLogRecord({"msg": f"cannot reopen {self.path}: {exc}"}))
            else:
                self.stream.close()
                self.stream, self._fd = stream, stream.fileno()
        self._depth += 1

    def _open(self) -> Any:
        # Bytes, unbuffered: lines are encoded by write_line, as UTF-8 whatever the
        # locale; one that is not valid text is escaped, not lost.
        return open(self.path, "ab", buffering=0)


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


def _descriptor(stream: Any) -> int:
    try:
        return int(stream.fileno())
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return -1
