"""``--timeout SECONDS``: a request running longer is reported once, at warning, with its
request line, its age and the stack of what runs it; on a backend whose requests share one
loop (``Capabilities.one_loop``), a request that holds that loop for as long ends the
process, with ``EXIT_CODE``, so that the manager starts a fresh one.

The layer only keeps the set of requests in flight. The checks run in a thread of their
own, which must keep running when nothing else can: a real OS thread, even where gevent or
eventlet turned ``threading`` into greenlets, and one that no blocked loop can hold back.
It is started, and sleeps, with a fresh instance of the ``_thread`` and ``time`` builtin
modules (``_pristine``): whatever patched the loaded ones, and whenever (an application
using the Python API may patch before it imports chaussette), a fresh instance has the
interpreter's own functions. It logs without the logging locks, which a patched loop owns
(``_log``), and keeps every signal away from itself, which belong to the main thread (and
to bjoern's ``sigwait``).

A request on a one-loop backend that waits cooperatively (gevent's or meinheld's
``time.sleep``, a patched socket) is parked and only reported; one that keeps the loop's
thread busy (CPU work, a blocking call nothing made cooperative, anything on bjoern) is
seen running at every check, and once it has been for ``--timeout`` seconds the process
stops gracefully: the drain lets what can finish finish, the graceful timeout ends what
cannot, and the exit code is ``EXIT_CODE`` however the stop ends (``request_stop``'s).

A websocket (``environ["wsgi.websocket"]``, gevent-websocket's and so Socket.IO's) is a
request for as long as the connection lasts: it is reported only if it holds the loop.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import logging
import os
import signal
import sys
import threading
import traceback
import weakref
from types import FrameType, ModuleType
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from chaussette import registry
from chaussette.layers import close_body

if TYPE_CHECKING:
    from chaussette.lifecycle import Lifecycle
    from chaussette.settings import Config

App = Callable[..., Any]


def _pristine(name: str) -> ModuleType:
    """A new instance of the builtin module ``name``, with the interpreter's functions
    whatever monkey-patching did to the one in ``sys.modules``."""
    spec = importlib.machinery.BuiltinImporter.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"{name} is not a builtin module of this interpreter")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_thread = _pristine("_thread")
_time = _pristine("time")

#: The exit code of a process replaced because a request held its loop (sysexits'
#: EX_SOFTWARE): non-zero, so every manager restarts it (Supervisor's ``autorestart =
#: unexpected``, systemd's ``Restart=on-failure``), and distinct from chaussette's 1.
EXIT_CODE = 70
#: Seconds between two checks: a quarter of ``--timeout``, within these bounds.
LONGEST_INTERVAL = 1.0
SHORTEST_INTERVAL = 0.05
#: Seconds the main thread gets after the graceful timeout to end the process itself
#: (post-hook, sockets) before the watchdog ends it: only when it cannot even run the
#: graceful timeout's signal handler (a C call that never returns to Python).
EXIT_MARGIN = 5.0
#: Signals that must never be handled in the watchdog's thread; the synchronous ones
#: (faults) cannot be held back from the thread that causes them.
HELD_SIGNALS = signal.valid_signals() - {signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL,
                                         signal.SIGABRT, signal.SIGTRAP, signal.SIGSYS}


class InFlight:
    """One request, from the call of the application until the server closes its body.

    It is also the body the server iterates, when the application returned anything but
    a list or tuple: closing it is what ends the request.
    """

    __slots__ = ("started", "environ", "thread", "greenlet", "result", "requests", "reported",
                 "running_since")

    def __init__(self, started: float, environ: dict[str, Any], thread: int, greenlet: Any,
                 requests: set[InFlight]) -> None:
        self.started = started
        self.environ = environ
        #: The OS thread that called the application (its ident, a key of
        #: ``sys._current_frames()``), and the greenlet, under a greenlet loop.
        self.thread = thread
        self.greenlet = greenlet
        self.result: Iterable[bytes] = ()
        self.requests = requests
        self.reported = False
        #: When the checks first saw it running, at every check since (one-loop backends).
        self.running_since: float | None = None

    def __iter__(self) -> Iterator[bytes]:
        yield from self.result

    def close(self) -> None:
        try:
            close_body(self.result)
        finally:
            self.requests.discard(self)

    def request_line(self) -> str:
        environ = self.environ
        target = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING")
        if query:
            target += "?" + query
        line = f"{environ.get('REQUEST_METHOD', '-')} {target} {environ.get('SERVER_PROTOCOL', '-')}"
        # PATH_INFO is percent-decoded: a client must not be able to write log lines.
        return line.encode("unicode_escape").decode("ascii")

    def frame(self, frames: dict[int, FrameType]) -> FrameType | None:
        """The innermost frame of what runs this request, from ``sys._current_frames()``."""
        greenlet = self.greenlet
        if greenlet is not None and (greenlet.gr_frame is not None or not greenlet):
            return greenlet.gr_frame  # parked (or ended: None)
        return frames.get(self.thread)

    def running(self, frames: dict[int, FrameType]) -> bool:
        """Whether the request holds its thread now, rather than being parked until its
        loop switches back to it."""
        greenlet = self.greenlet
        if greenlet is not None:
            return greenlet.gr_frame is None and bool(greenlet)  # started, not ended, not parked
        return _on_stack(self, frames.get(self.thread))


def _on_stack(request: InFlight, frame: FrameType | None) -> bool:
    """Whether ``request`` is being served by the stack ending in ``frame``: its call of
    the application or its body's iteration is there. Both keep the request in a local,
    which tells it from another request that thread runs meanwhile (bjoern calls the
    application for one request between two chunks of another's body)."""
    while frame is not None:
        code = frame.f_code
        if code is _CALL and frame.f_locals.get("request") is request:
            return True
        if code is _BODY and frame.f_locals.get("self") is request:
            return True
        frame = frame.f_back
    return False


class Watchdog:
    """The layer: records each request in flight, and starts the thread that checks them."""

    def __init__(self, app: App, config: Config, lifecycle: Lifecycle, *,
                 clock: Callable[[], float] = _time.monotonic, start: bool = True) -> None:
        assert config.timeout  # the layer exists only with --timeout
        self.app = app
        self.timeout = config.timeout
        self.graceful_timeout = config.graceful_timeout
        self.backend = config.backend
        self.one_loop = registry.load(config.backend).capabilities.one_loop
        self.lifecycle = lifecycle
        self.log = lifecycle.log
        self.clock = clock
        self.requests: set[InFlight] = set()
        #: Set once a request held the loop for too long: when the watchdog ends the
        #: process itself, should the main thread not have by then.
        self.exit_deadline: float | None = None
        if start:
            interval = min(LONGEST_INTERVAL, max(SHORTEST_INTERVAL, self.timeout / 4))
            _start_thread(_watch, weakref.ref(self), interval)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        # Looked up each time: a loop may import greenlet only once it runs (meinheld).
        module = sys.modules.get("greenlet")
        greenlet = module.getcurrent() if module is not None else None
        if greenlet is not None and greenlet.parent is None:
            greenlet = None  # a thread's own greenlet: the thread runs the request
        request = InFlight(self.clock(), environ, _thread.get_ident(), greenlet, self.requests)
        self.requests.add(request)
        try:
            result = self.app(environ, start_response)
        except BaseException:
            self.requests.discard(request)
            raise
        if isinstance(result, (list, tuple)) or type(result) is environ.get("wsgi.file_wrapper"):
            # Nothing of the application's runs any more: returned as is, so servers keep
            # their single-chunk Content-Length and their sendfile().
            self.requests.discard(request)
            return result
        request.result = result
        return request

    def check(self) -> None:
        """One look at the requests in flight (the watchdog's thread, every interval)."""
        now = self.clock()
        if self.exit_deadline is not None and now >= self.exit_deadline:
            _log(self.log, logging.ERROR, f"still running {EXIT_MARGIN:g}s after the graceful timeout: "
                 f"exiting with code {EXIT_CODE} now")
            os._exit(EXIT_CODE)
        late = [request for request in self.requests.copy()
                if self.one_loop or now - request.started >= self.timeout]
        if not late:
            return
        frames = sys._current_frames()
        for request in late:
            if self.one_loop:
                if not request.running(frames):
                    request.running_since = None
                elif request.running_since is None:
                    request.running_since = now
            # A websocket is one long conversation, not a stuck request: only a websocket
            # that holds the loop is.
            stuck = now - request.started >= self.timeout and not request.environ.get("wsgi.websocket")
            held = now - request.running_since if request.running_since is not None else 0.0
            if not request.reported and (stuck or held >= self.timeout):
                request.reported = True
                self._report(request, now, request.frame(frames))
            if held >= self.timeout and self.exit_deadline is None:
                self._replace_process(request, now, held)

    def _report(self, request: InFlight, now: float, frame: FrameType | None) -> None:
        runner = f"thread {request.thread:#x}"
        if request.greenlet is not None:
            runner += f", greenlet {type(request.greenlet).__name__} at {id(request.greenlet):#x}"
        if frame is None:
            stack = "no Python frame: the server is sending the response"
        else:
            stack = "Stack (most recent call last):\n" + "".join(traceback.format_stack(frame)).rstrip("\n")
        _log(self.log, logging.WARNING, f'stuck request: "{request.request_line()}" running for '
             f"{now - request.started:.1f}s (--timeout {self.timeout:g}) in {runner}\n{stack}")

    def _replace_process(self, request: InFlight, now: float, held: float) -> None:
        """A request held the only loop for ``--timeout``: stop gracefully, exit non-zero."""
        self.exit_deadline = now + self.graceful_timeout + EXIT_MARGIN
        _log(self.log, logging.ERROR, f'stuck request: "{request.request_line()}" has held the '
             f"{self.backend} backend's only loop for {held:.1f}s "
             f"(--timeout {self.timeout:g}), every other request waits for it: exiting with code "
             f"{EXIT_CODE} so that the manager starts a fresh process")
        self.lifecycle.request_stop("a stuck request holds the loop", drain=False, exit_code=EXIT_CODE)

    def __repr__(self) -> str:
        return repr(self.app)


_CALL = Watchdog.__call__.__code__
_BODY = InFlight.__iter__.__code__


def _watch(ref: weakref.ReferenceType[Watchdog], interval: float) -> None:
    """The watchdog's thread: checks until its layer is gone (or the process is)."""
    # The first log record names this thread: registered now, before anything is served,
    # so that it never waits for a lock a greenlet holds (threading's own, when patched).
    threading.current_thread()
    failure = ""
    while (watchdog := ref()) is not None:
        try:
            watchdog.check()
        except Exception:  # a watchdog that gave up would hide the next stuck request
            if traceback.format_exc() != failure:  # logged once, not at every check
                failure = traceback.format_exc()
                _log(watchdog.log, logging.ERROR, f"--timeout: a check failed, checking on:\n{failure}")
        del watchdog
        _time.sleep(interval)


def _start_thread(function: Callable[..., None], *args: Any) -> None:
    """``function(*args)`` in a new OS thread holding every asynchronous signal back."""
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)
    try:
        _thread.start_new_thread(function, args)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _log(log: logging.Logger, level: int, message: str) -> None:
    """``log.log(level, message)`` from the watchdog's thread.

    gevent and eventlet replace the logging locks with green ones, which a thread other
    than the loop's cannot wait for (eventlet's would hang it, or the loop). So a handler
    writing to a file descriptor gets the formatted record in one ``os.write``, as its own
    ``emit`` would write it, without its lock; another handler handles it its own way.
    """
    if log.disabled or level < log.getEffectiveLevel():
        return
    record = log.makeRecord(log.name, level, __file__, 0, message, (), None)
    logger: logging.Logger | None = log
    while logger is not None:
        for handler in logger.handlers:
            if record.levelno >= handler.level and handler.filter(record):
                _write(handler, record)
        logger = logger.parent if logger.propagate else None


def _write(handler: logging.Handler, record: logging.LogRecord) -> None:
    stream: Any = getattr(handler, "stream", None)
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # no stream, or not a file (io.StringIO)
        handler.handle(record)
        return
    try:
        text = handler.format(record) + getattr(handler, "terminator", "\n")
        data = text.encode(getattr(stream, "encoding", None) or "utf-8", "backslashreplace")
        while data:
            data = data[os.write(fd, data):]
    except Exception:
        handler.handleError(record)
