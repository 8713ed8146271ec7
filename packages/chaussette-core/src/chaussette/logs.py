"""Logging set-up and the common-log-format access log shared by every backend."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Callable, Iterable

from chaussette.errors import ChaussetteError

LOG_FORMAT = "%(asctime)s [%(process)d] [%(levelname)s] %(message)s"


def configure(level: str, output: str = "-") -> logging.Logger:
    log = logging.getLogger("chaussette")
    log.handlers.clear()
    log.propagate = False
    log.setLevel(level.upper())
    log.addHandler(_handler(output, "--log-output"))
    for handler in log.handlers:
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
    return log


class ReopeningFileHandler(logging.FileHandler):
    """A log file that can be reopened under its own name after logrotate renamed it.

    ``reopen()`` only sets a flag, so a signal handler may call it at any moment; the file
    is reopened at the next line, under the handler's lock, so no line is written half to
    the old file and half to the new one.
    """

    def __init__(self, filename: str) -> None:
        super().__init__(filename)
        self._reopen = False

    def reopen(self) -> None:
        self._reopen = True

    def emit(self, record: logging.LogRecord) -> None:
        if self._reopen:
            self._reopen = False
            if self.stream is not None:
                self.stream.close()
            self.stream = self._open()
        super().emit(record)


def reopen_files() -> None:
    """Ask every log file of chaussette's (``--log-output``, the access log) to reopen."""
    for name in ("chaussette", "chaussette.access"):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, ReopeningFileHandler):
                handler.reopen()


def _handler(output: str, option: str) -> logging.Handler:
    if output == "-":
        return logging.StreamHandler(sys.stderr)
    try:
        return ReopeningFileHandler(output)
    except OSError as exc:
        raise ChaussetteError(f"cannot write {option} {output!r}: {exc.strerror}; "
                              "choose a writable file or - for the terminal") from None


def access_logger(output: str) -> logging.Logger:
    log = logging.getLogger("chaussette.access")
    log.handlers.clear()
    log.propagate = False
    log.setLevel(logging.INFO)
    handler = logging.StreamHandler(sys.stdout) if output == "-" else _handler(output, "--access-log")
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    return log


class AccessLog:
    """WSGI middleware writing one common-log-format line per request.

    A middleware rather than each server's own log, so the format is the same on every
    backend; it is only in the call path when ``--access-log`` is given.
    """

    def __init__(self, app: Callable[..., Any], log: logging.Logger) -> None:
        self.app = app
        self.log = log

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        state = {"status": "-"}

        def recording_start_response(status: str, headers: list, exc_info: Any = None) -> Any:
            state["status"] = status.split(" ", 1)[0]
            return start_response(status, headers, exc_info)

        result = self.app(environ, recording_start_response)
        if isinstance(result, (list, tuple)):
            # Logged at once and returned as is: servers keep their single-chunk
            # Content-Length and no generator is added to the response path.
            self.log.info(_common_log_line(environ, state["status"], sum(map(len, result))))
            return result
        return self._body(environ, result, state)

    def _body(self, environ: dict, result: Iterable[bytes], state: dict) -> Iterable[bytes]:
        sent = 0
        try:
            for chunk in result:
                sent += len(chunk)
                yield chunk
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
            self.log.info(_common_log_line(environ, state["status"], sent))

    def __repr__(self) -> str:
        return repr(self.app)


def _common_log_line(environ: dict, status: str, sent: int) -> str:
    target = environ.get("PATH_INFO", "")
    query = environ.get("QUERY_STRING")
    if query:
        target += "?" + query
    request = f"{environ.get('REQUEST_METHOD', '-')} {target} {environ.get('SERVER_PROTOCOL', '-')}"
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S %z")
    return (f"{environ.get('REMOTE_ADDR') or '-'} - {environ.get('REMOTE_USER') or '-'} [{stamp}] "
            f"\"{request}\" {status} {sent or '-'}")
