"""Request metrics pushed to statsd (``--statsd-host HOST:PORT``, ``--statsd-prefix``), under
gunicorn's names where gunicorn has one, so a gunicorn dashboard keeps working
(docs/metrics.md lists them).

Push, not pull: a manager runs several chaussette processes on one socket, and an endpoint
to scrape would be answered by whichever of them accepted the connection. Each process
sends its own counts and statsd adds them up; the in-flight gauge is sent as changes
(``+2|g``, ``-1|g``) for the same reason, since statsd keeps the last absolute value it is
sent and would show one process's.

No datagram is sent from a request. A datagram is a system call, which can cost as much as
a whole hello-world request on bjoern or meinheld; so a request only records its status and
duration in memory, and a flusher sends what accumulated once a second, many lines to a
datagram. A request never waits on the network, and a dead statsd host costs one refused
datagram a second. What a process has not sent when it exits goes on its way out
(``atexit``).

No lock on a request's path either, on threaded backends (wsgiref, waitress) included:
a request start is one ``next()`` on an ``itertools.count`` and its end one
``deque.append``, each a single C call that no other thread can interleave with under
the GIL (a lock per request would cost as much as the rest of the layer). The flusher
alone reads them: it pops what
finished and counts the starts, and the number in flight is the difference. The flusher
is a thread as the backend makes them: a greenlet under gevent and eventlet, an OS thread
elsewhere (next to meinheld's and bjoern's C loop).
"""

from __future__ import annotations

# The C socket module, which no monkey-patching touches: sending on a non-blocking
# datagram socket never waits, so it must not go through a green library's hub either.
import _socket
import atexit
import itertools
import logging
import math
import random
import signal
import threading
import time
from collections import Counter, deque
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

from chaussette.errors import ChaussetteError
from chaussette.layers import close_body

if TYPE_CHECKING:
    from chaussette.settings import Config

App = Callable[..., Any]
#: What a finished request leaves for the flusher: its status line and its duration.
Record = tuple[Any, float]

#: gunicorn's names (gunicorn.instrument.statsd).
REQUESTS = "gunicorn.requests"
STATUS = "gunicorn.request.status."
DURATION = "gunicorn.request.duration"
#: chaussette's own, where gunicorn has no name.
STATUS_CLASS = "chaussette.request.status_class."
IN_FLIGHT = "chaussette.requests.in_flight"

#: Seconds between two sends: well under statsd's usual 10 s flush, so metrics land in
#: the interval their requests ran in.
FLUSH_INTERVAL = 1.0
#: Largest datagram sent: it fits a 1500-byte Ethernet frame after the IP and UDP headers,
#: with room to spare, so nothing is fragmented on the way to a remote statsd (the size
#: DogStatsD's clients use).
MAX_DATAGRAM = 1432
#: Duration lines sent per flush at most; beyond, a random sample of one in N goes with
#: statsd's sample rate (``|@0.249999999`` for one in 4), from which statsd counts the
#: rest. Keeps a flush cheap at any request rate; the counters stay exact.
MAX_TIMINGS = 1000

_NAME_FORBIDDEN = frozenset(":|@#")
perf_counter = time.perf_counter


def parse_host(value: str) -> tuple[str, int, bool]:
    """``HOST:PORT`` or ``[IPv6]:PORT`` as (host, port, whether an IPv6 literal)."""
    literal = value.startswith("[")
    if literal:
        host, bracket, rest = value[1:].partition("]")
        colon, port = (rest[:1] if bracket else ""), rest[1:]
    else:
        host, colon, port = value.rpartition(":")
        if ":" in host:
            raise ChaussetteError(f"--statsd-host {value!r}: an IPv6 address goes in brackets, e.g. [::1]:8125")
    if colon != ":" or not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise ChaussetteError(f"--statsd-host {value!r}: expected HOST:PORT or [IPv6]:PORT, "
                              "e.g. localhost:8125")
    return host, int(port), literal


def resolve(host: str, port: int, literal: bool = False) -> tuple[int, Any]:
    """(family, address) to send to, resolved once at start-up: no request waits on DNS.

    A name with both kinds of address gets its IPv4 one: statsd listens on IPv4 only
    unless told otherwise, and gunicorn only ever sends over IPv4, while ``localhost``
    often resolves to ``::1`` first. An IPv6 statsd is named by its address in brackets.
    """
    family, flags = (_socket.AF_INET6, _socket.AI_NUMERICHOST) if literal else (_socket.AF_UNSPEC, 0)
    shown = f"[{host}]:{port}" if literal else f"{host}:{port}"
    try:
        found = _socket.getaddrinfo(host, port, family, _socket.SOCK_DGRAM, 0, flags)
    except OSError as exc:
        what = "not an IPv6 address" if literal else f"cannot resolve {host!r}"
        raise ChaussetteError(f"--statsd-host {shown}: {what} ({exc.strerror or exc})") from None
    found.sort(key=lambda info: info[0] != _socket.AF_INET)
    return found[0][0], found[0][4]


def metric_prefix(value: str) -> str:
    """gunicorn's rule: ``app`` becomes ``app.``, a trailing dot is not doubled (``app..`` is
    ``app.``), empty stays empty. Characters that would end a statsd name, its line or
    its datagram are refused rather than sent."""
    bad = sorted({char for char in value if char in _NAME_FORBIDDEN or not (char.isascii() and char.isprintable())
                  or char.isspace()})
    if bad:
        raise ChaussetteError(f"--statsd-prefix {value!r}: a statsd name cannot hold {' '.join(map(repr, bad))}; "
                              "use letters, digits, dots, dashes and underscores")
    stem = value.rstrip(".")
    return f"{stem}." if stem else ""


def status_code(status: Any) -> str | None:
    """The three digits of a status line, or None when an application sent no valid one."""
    code = status[:3] if isinstance(status, str) else ""
    return code if len(code) == 3 and code.isascii() and code.isdigit() else None


def render(prefix: str, finished: Sequence[Record], in_flight_change: int, max_timings: int = MAX_TIMINGS,
           sample: Callable[[Sequence[Record], int], list[Record]] = random.sample) -> list[str]:
    """The statsd lines for the requests finished since the last flush, and the change of
    the number in flight since then (0: no line). Each distinct status line is looked at
    once, and durations beyond ``max_timings`` are sampled before they are formatted: a
    flush costs little per request at any rate."""
    lines: list[str] = []
    if finished:
        lines.append(f"{prefix}{REQUESTS}:{len(finished)}|c")
        try:
            statuses = Counter(map(itemgetter(0), finished))
        except TypeError:  # an application gave start_response a status that cannot be hashed
            statuses = Counter(status if isinstance(status, str) else None for status, _ in finished)
        codes: Counter[str] = Counter()
        for status, count in statuses.items():
            code = status_code(status)
            if code is not None:
                codes[code] += count
        classes: Counter[str] = Counter()
        for code, count in sorted(codes.items()):
            lines.append(f"{prefix}{STATUS}{code}:{count}|c")
            classes[code[0]] += count
        lines.extend(f"{prefix}{STATUS_CLASS}{digit}xx:{count}|c" for digit, count in sorted(classes.items()))
        rate = ""
        if len(finished) > max_timings:
            # One duration in ``every`` is sent, with the rate 1/every written a hair under
            # it: statsd_exporter counts a sampled value int(1/rate) times, statsd 1/rate.
            every = -(-len(finished) // max_timings)
            rate = f"|@{(math.ceil(1e9 / every) - 1) / 1e9:.9g}"
            finished = sample(finished, round(len(finished) / every))
        lines.extend(f"{prefix}{DURATION}:{seconds * 1000:.3f}|ms{rate}" for _, seconds in finished)
    if in_flight_change:
        lines.append(f"{prefix}{IN_FLIGHT}:{in_flight_change:+d}|g")
    return lines


def datagrams(lines: Iterable[str], limit: int = MAX_DATAGRAM) -> list[bytes]:
    """``lines`` joined by newlines (statsd reads several a datagram) into datagrams of at
    most ``limit`` bytes; a longer line goes alone."""
    packed: list[bytes] = []
    batch: list[bytes] = []
    size = 0
    for line in lines:
        data = line.encode("ascii")
        if batch and size + 1 + len(data) > limit:
            packed.append(b"\n".join(batch))
            batch, size = [], 0
        size += len(data) + (1 if batch else 0)
        batch.append(data)
    if batch:
        packed.append(b"\n".join(batch))
    return packed


class Sender:
    """A connected, non-blocking datagram socket: a send takes what the kernel buffer has
    room for or nothing, and its errors are swallowed. The first one is logged, once, so a
    wrong port shows in the log without a line a second."""

    def __init__(self, family: int, address: Any, shown: str, log: logging.Logger) -> None:
        self.shown = shown
        self.log = log
        self.sock = _socket.socket(family, _socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        try:
            self.sock.connect(address)  # routes once, and reports a refusal to the next send
        except OSError as exc:
            self.sock.close()
            raise ChaussetteError(f"--statsd-host {shown}: cannot send there ({exc.strerror or exc})") from None
        # next() on a count is atomic: the flusher and a final flush may fail together.
        self._failures = itertools.count()

    def send(self, datagram: bytes) -> None:
        try:
            self.sock.send(datagram)
        except ConnectionRefusedError as exc:
            # The ICMP "port unreachable" an earlier datagram met, reported now; this one
            # has not gone yet and may reach a statsd that is back.
            self._failed(exc)
            self._send_once(datagram)
        except OSError as exc:  # EAGAIN: the buffer is full; ENETUNREACH...: dropped
            self._failed(exc)

    def _send_once(self, datagram: bytes) -> None:
        try:
            self.sock.send(datagram)
        except OSError:
            pass

    def _failed(self, exc: OSError) -> None:
        if next(self._failures) == 0:
            self.log.warning("statsd at %s does not take metrics (%s): they are dropped while it does not; "
                             "this is logged once", self.shown, exc.strerror or exc)

    def close(self) -> None:
        self.sock.close()


class Metrics:
    """Counts requests, their statuses and durations, and the requests in flight, for the
    flusher to send. A request's duration runs until its body is done: its iterable is
    closed, or, for a list (or a ``wsgi.file_wrapper``), the application has returned it,
    which is returned as it is so servers keep their fast paths. The access log measures
    the same way."""

    def __init__(self, app: App, config: Config) -> None:
        host, port, literal = parse_host(config.statsd_host or "")
        self.prefix = metric_prefix(config.statsd_prefix)
        family, address = resolve(host, port, literal)
        shown = f"[{host}]:{port}" if literal else f"{host}:{port}"
        self.log = logging.getLogger("chaussette")
        self.sender = Sender(family, address, shown, self.log)
        self.app = app
        # The request side: see the module.
        self._starts = itertools.count()
        self._finished: deque[Record] = deque()
        self._record = self._finished.append
        # The flusher side, one flush at a time (the flusher's, or the last one at exit).
        self._flushing = threading.Lock()
        self._peeks = 0  # what the flusher's own next() calls added to the count of starts
        self._ended = 0
        self._reported = 0  # the number in flight statsd has been told
        self._closed = False
        self._sleep = time.sleep  # green where the backend patched it
        self._flush_failed = False
        self._start_flusher()
        atexit.register(self.close)
        self.log.info("Sending request metrics to statsd at %s every %gs (%s)", shown, FLUSH_INTERVAL,
                      f"prefix {self.prefix!r}" if self.prefix else "no prefix")

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        # A closure rather than an object per request: cheaper, and most bodies are lists.
        next(self._starts)
        started = perf_counter()
        status: Any = None
        timed: Timed | None = None

        def start(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            nonlocal status
            status = line
            if timed is not None:  # an error page replacing a body being sent (exc_info)
                timed.status = line
            return start_response(line, headers, exc_info)

        try:
            result = self.app(environ, start)
        except BaseException:
            self._record(("500", perf_counter() - started))  # the server's answer when nothing was sent
            raise
        if isinstance(result, (list, tuple)) or type(result) is environ.get("wsgi.file_wrapper"):
            self._record((status, perf_counter() - started))
            return result
        timed = Timed(result, status, started, self._record)
        return timed

    def flush(self) -> None:
        """Send what finished since the last flush, and the in-flight change."""
        with self._flushing:
            if not self._closed:
                self._send(*self._take())

    def close(self) -> None:
        """The last flush, at exit: what finished since the one before, and the gauge back
        down to what this process leaves, nothing (requests a stop past the graceful timeout
        abandons included)."""
        with self._flushing:
            if self._closed:
                return
            self._closed = True
            told = self._reported
            finished, _ = self._take()
            self._send(finished, -told)
            self.sender.close()
        atexit.unregister(self.close)

    def _take(self) -> tuple[list[Record], int]:
        """What finished since the last call, and the change in the number in flight."""
        popleft = self._finished.popleft
        finished = [popleft() for _ in range(len(self._finished))]
        self._ended += len(finished)
        # Read after the ends: every request counted as ended is counted as started.
        started = next(self._starts) - self._peeks
        self._peeks += 1
        in_flight = started - self._ended
        change, self._reported = in_flight - self._reported, in_flight
        return finished, change

    def _send(self, finished: list[Record], change: int) -> None:
        for datagram in datagrams(render(self.prefix, finished, change)):
            self.sender.send(datagram)

    def _start_flusher(self) -> None:
        flusher = threading.Thread(target=self._flush_every, args=(FLUSH_INTERVAL,), name="chaussette-statsd",
                                   daemon=True)
        # An OS thread must take none of the process's signals: core's handlers run where
        # the backend has them delivered (bjoern and meinheld keep them blocked in their
        # loop thread, and bjoern takes SIGINT with sigwait). Blocked here, the thread
        # starts with them blocked; a greenlet does not care.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        try:
            flusher.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def _flush_every(self, interval: float) -> None:
        while not self._closed:
            self._sleep(interval)
            try:
                self.flush()
            except Exception:  # a bug here must not end the flushing, nor flood the log
                if not self._flush_failed:
                    self._flush_failed = True
                    self.log.exception("could not send the statsd metrics")

    def __repr__(self) -> str:
        return repr(self.app)


class Timed:
    """A body the server iterates and closes, which records the request once it is closed.
    A class rather than a generator: a server may close a body it never iterated, and the
    request must still be counted as finished (and no longer in flight)."""

    __slots__ = ("result", "status", "started", "record", "sent")

    def __init__(self, result: Iterable[bytes], status: Any, started: float,
                 record: Callable[[Record], None]) -> None:
        self.result = result
        self.status = status
        self.started = started
        self.record: Callable[[Record], None] | None = record
        self.sent = False

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self.result:
                if chunk:
                    self.sent = True
                yield chunk
        except BaseException:
            if not self.sent:
                self.status = "500"  # the headers were not sent: the server answers 500
            raise

    def close(self) -> None:
        try:
            close_body(self.result)
        finally:
            record, self.record = self.record, None
            if record is not None:  # once only, however often a server closes
                record((self.status, perf_counter() - self.started))
