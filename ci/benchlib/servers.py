"""What is measured: the scenarios and every server configuration.

A server configuration is a command line; nothing else differs between two runs.
Names read ``<how>-<server>``: ``chaussette-X`` is ``chaussette --backend X``, ``raw-X``
is the library started by ``bench/raw.py`` with the settings chaussette gives it,
``raw-X-defaults`` the same with the one library default chaussette changes, and
``gunicorn-W`` is gunicorn with one worker of type W, the outside reference.
"""

from __future__ import annotations

from dataclasses import dataclass

IO_WAIT_S = 0.010  # bench.apps.IO_WAIT


@dataclass(frozen=True)
class Scenario:
    name: str
    app: str
    connections: int
    summary: str
    #: Request headers wrk sends with every request.
    headers: tuple[str, ...] = ()


#: What a proxy in front adds to each request (the client's address and scheme), and a
#: request id of the proxy's: the production servers read all three.
PROXIED_HEADERS = ("X-Forwarded-For: 203.0.113.7", "X-Forwarded-Proto: https",
                   "X-Request-ID: 7f1d4c2ab05e4a1c9d3e8f6a0b2c4d6e")

SCENARIOS = (
    Scenario("hello", "bench.apps:hello", 50,
             "hello world, keep-alive, 50 connections"),
    Scenario("io", "bench.apps:io", 200,
             "10 ms wait per request (time.sleep, patched where the server patches), "
             "keep-alive, 200 connections"),
    Scenario("proxied", "bench.apps:hello", 50,
             "hello world as behind a proxy (X-Forwarded-For, X-Forwarded-Proto, X-Request-ID), "
             "keep-alive, 50 connections", PROXIED_HEADERS),
)

#: What an operator turns on behind a proxy: a JSON access log written to a file (the
#: file is /dev/null: each line is formatted and written, only the disk is spared),
#: forwarded headers trusted from the proxy on loopback, request ids, request counting for
#: --max-requests (set beyond what a run serves: the process must not recycle mid-run), and
#: statsd metrics to a port nothing listens on (sending must cost nothing when statsd is down).
PRODUCTION_OPTIONS = ("--access-log", "/dev/null", "--access-log-json", "--forwarded-allow-ips", "127.0.0.1",
                      "--request-id-header", "X-Request-ID", "--max-requests", "100000000",
                      "--statsd-host", "127.0.0.1:8125")
#: gunicorn with the same duties: its access log, its trust of the proxy, its request count.
#: Not its statsd: gunicorn sends one datagram per request and logs every failed send, so a
#: dead statsd port would measure its error log; chaussette keeps the heavier duty list.
GUNICORN_PRODUCTION = ("--access-logfile", "/dev/null", "--forwarded-allow-ips", "127.0.0.1",
                       "--max-requests", "100000000")


@dataclass(frozen=True)
class Server:
    name: str
    family: str  # what --only selects besides the exact name
    kind: str  # chaussette | raw | raw-defaults | gunicorn
    scenarios: tuple[str, ...]
    backend: str | None = None  # chaussette backend it needs installed
    modules: tuple[str, ...] = ()  # importable modules it needs
    raw: str | None = None  # bench/raw.py runner
    worker: tuple[str, ...] = ()  # gunicorn worker options
    #: Requests it can have in the io scenario's 10 ms wait at once, when that is a small
    #: fixed number (threads, or a loop that the unpatched time.sleep blocks).
    io_concurrency: int | None = None
    #: Further chaussette options (the production servers').
    options: tuple[str, ...] = ()

    def command(self, python: str, app: str, host: str, port: int | str) -> list[str]:
        if self.kind == "chaussette":
            return [python, "-m", "chaussette", "--backend", str(self.backend), "--host", host,
                    "--port", str(port), *self.options, app]
        if self.kind == "gunicorn":
            return [python, "-m", "gunicorn", "--workers", "1", *self.worker, "--bind",
                    f"{host}:{port}", "--log-level", "warning", app]
        return [python, "bench/raw.py", str(self.raw), app, host, str(port)]

    @property
    def forks_worker(self) -> bool:
        """gunicorn serves from a child of the process started (its arbiter)."""
        return self.kind == "gunicorn"


BOTH = ("hello", "io")
HELLO = ("hello",)
IO = ("io",)
PROXIED = ("proxied",)
#: Backends measured bare and in production in the proxied scenario.
PRODUCTION_BACKENDS = ("wsgiref", "waitress", "gevent", "eventlet", "meinheld", "bjoern")


def _chaussette(backend: str, io_concurrency: int | None = None) -> Server:
    scenarios = (*BOTH, *PROXIED) if backend in PRODUCTION_BACKENDS else BOTH
    return Server(f"chaussette-{backend}", backend, "chaussette", scenarios, backend=backend,
                  io_concurrency=io_concurrency)


def _production(backend: str) -> Server:
    return Server(f"production-{backend}", backend, "chaussette", PROXIED, backend=backend,
                  options=PRODUCTION_OPTIONS)


def _raw(runner: str, family: str, modules: tuple[str, ...], scenarios: tuple[str, ...] = HELLO,
         io_concurrency: int | None = None) -> Server:
    kind = "raw-defaults" if runner.endswith("-defaults") else "raw"
    return Server(f"raw-{runner}", family, kind, scenarios, modules=modules, raw=runner,
                  io_concurrency=io_concurrency)


def _gunicorn(worker: str, options: tuple[str, ...], modules: tuple[str, ...] = (),
              io_concurrency: int | None = None, scenarios: tuple[str, ...] = BOTH) -> Server:
    return Server(f"gunicorn-{worker}", "gunicorn", "gunicorn", scenarios,
                  modules=("gunicorn", *modules), worker=options, io_concurrency=io_concurrency)


#: In chart and table order: each backend next to its raw server.
SERVERS = (
    _chaussette("wsgiref"),
    _raw("wsgiref", "wsgiref", ("chaussette",)),
    _raw("stdlib-wsgiref", "wsgiref", ("wsgiref",), IO, io_concurrency=1),
    _chaussette("waitress", io_concurrency=4),  # --waitress-threads 4
    _raw("waitress", "waitress", ("waitress",)),
    _chaussette("gevent"),
    _raw("gevent", "gevent", ("gevent",)),
    _raw("gevent-defaults", "gevent", ("gevent",)),
    _chaussette("eventlet"),
    _raw("eventlet", "eventlet", ("eventlet",)),
    _chaussette("meinheld"),  # its time.sleep waits on the loop (build fix 19)
    _raw("meinheld", "meinheld", ("meinheld",)),
    _raw("meinheld-defaults", "meinheld", ("meinheld",)),
    _chaussette("bjoern", io_concurrency=1),  # bjoern patches nothing: one request at a time
    _raw("bjoern", "bjoern", ("bjoern",)),
    _gunicorn("sync", ("--worker-class", "sync"), io_concurrency=1),
    _gunicorn("gthread", ("--worker-class", "gthread", "--threads", "4"), io_concurrency=4),
    _gunicorn("gevent", ("--worker-class", "gevent"), ("gevent",)),
    *(_production(backend) for backend in PRODUCTION_BACKENDS),
    _gunicorn("gevent-production", ("--worker-class", "gevent", *GUNICORN_PRODUCTION), ("gevent",),
              scenarios=PROXIED),
)


BY_NAME = {server.name: server for server in SERVERS}


def select(only: list[str] | None) -> list[Server]:
    """The servers named (exact name or family), all when ``only`` is empty."""
    if not only:
        return list(SERVERS)
    wanted = set(only)
    unknown = wanted - {s.name for s in SERVERS} - {s.family for s in SERVERS}
    if unknown:
        names = ", ".join(sorted({s.family for s in SERVERS} | {s.name for s in SERVERS}))
        raise SystemExit(f"bench: unknown --only {', '.join(sorted(unknown))}; choose from: {names}")
    return [s for s in SERVERS if s.name in wanted or s.family in wanted]
