"""Each server library started directly, without chaussette: the "raw" side of the
benchmark's overhead ratios (``ci/bench``, docs/benchmarks.md).

    python bench/raw.py SERVER APP HOST PORT      e.g.  raw.py gevent bench.apps:hello 127.0.0.1 8000

SERVER is one of the names in ``RUNNERS``. Each runner starts the library the way a user
would, but with the *settings chaussette's backend gives it* (read from each backend's
``backend.py``/``server.py``), so "chaussette vs raw" measures only what chaussette adds.
The ``*-defaults`` runners change exactly one setting back to the library's own default,
the one chaussette exists to fix:

- ``gevent-defaults``: no TCP_NODELAY. pywsgi writes the response head and body in two
  sends, so on a keep-alive connection the body waits for the client's delayed ACK (the
  Nagle stall, ~40 ms on Linux). Core sets TCP_NODELAY on every TCP listener, and
  chaussette's gevent handler also coalesces the two sends.
- ``meinheld-defaults``: keep-alive off (meinheld's default), so every request pays a new
  connection. Chaussette turns it on with ``--keep-alive`` (5 s by default).

``stdlib-wsgiref`` is ``wsgiref.simple_server``: what chaussette 1.3's ``wsgiref`` backend
was (HTTP/1.0, one request at a time), kept as the historical reference.

Like the library used alone, a runner dies on SIGTERM; the benchmark sends nothing else.
This file imports chaussette only for ``wsgiref``, whose server *is* chaussette's.
"""

from __future__ import annotations

import importlib
import resource
import socket
import sys
from typing import Any, Callable

#: chaussette's defaults (chaussette.settings): --backlog, --keep-alive, request limits.
BACKLOG = 2048
KEEP_ALIVE = 5
LIMIT_REQUEST_LINE = 8190
LIMIT_REQUEST_FIELDS = 100
LIMIT_REQUEST_FIELD_SIZE = 8190


def load(spec: str) -> Callable[..., Any]:
    """``module:attribute``, imported after any monkey-patching, as chaussette does."""
    module, _, attribute = spec.partition(":")
    return getattr(importlib.import_module(module), attribute)


def listen(host: str, port: int, nodelay: bool = True) -> socket.socket:
    """The listener exactly as chaussette.sockets.bind_tcp makes it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    if nodelay:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def run_wsgiref(app: str, host: str, port: int) -> None:
    """chaussette's own threaded server (chaussette.backends.wsgiref.serving.ThreadedServer)
    without the command line, settings table, logging set-up or signal handling."""
    import logging
    from types import SimpleNamespace

    from chaussette.backends.wsgiref.serving import ThreadedServer
    from chaussette.sockets import Listener

    config = SimpleNamespace(keep_alive=KEEP_ALIVE, limit_request_line=LIMIT_REQUEST_LINE,
                             limit_request_fields=LIMIT_REQUEST_FIELDS,
                             limit_request_field_size=LIMIT_REQUEST_FIELD_SIZE)
    backend = SimpleNamespace(config=config, log=logging.getLogger("raw"))
    sock = listen(host, port)
    ThreadedServer(load(app), [Listener(sock, f"{host}:{port}")], backend).run()  # type: ignore[arg-type]


def run_stdlib_wsgiref(app: str, host: str, port: int) -> None:
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass  # no line per request on stderr

    make_server(host, port, load(app), handler_class=Quiet).serve_forever()


def run_waitress(app: str, host: str, port: int) -> None:
    """chaussette_waitress.backend.WaitressBackend.adjustments() with default options."""
    import waitress

    sock = listen(host, port)
    waitress.serve(load(app), sockets=[sock], threads=4, connection_limit=100, channel_timeout=120,
                   cleanup_interval=30, max_request_header_size=262144,
                   max_request_body_size=1073741824, backlog=BACKLOG, expose_tracebacks=False,
                   clear_untrusted_proxy_headers=False, _quiet=True)


def _gevent(app: str, host: str, port: int, nodelay: bool) -> None:
    """chaussette_gevent.serving: pywsgi on the listener, an unbounded pool, no access log."""
    from gevent import monkey

    monkey.patch_all()
    from gevent import pywsgi
    from gevent.pool import Pool

    pywsgi.MAX_REQUEST_LINE = LIMIT_REQUEST_LINE + 2
    sock = listen(host, port, nodelay=nodelay)
    sock.setblocking(False)
    server = pywsgi.WSGIServer(sock, load(app), spawn=Pool(None), log=None,
                               environ={"SERVER_NAME": host, "SERVER_PORT": str(port)})
    server.serve_forever()


def run_gevent(app: str, host: str, port: int) -> None:
    _gevent(app, host, port, nodelay=True)


def run_gevent_defaults(app: str, host: str, port: int) -> None:
    _gevent(app, host, port, nodelay=False)


def run_eventlet(app: str, host: str, port: int) -> None:
    """chaussette_eventlet.serving.GreenServer's options, with eventlet's own protocol."""
    import eventlet

    eventlet.monkey_patch()
    import http.client

    from eventlet import greenio, wsgi

    wsgi.MAX_HEADER_LINE = LIMIT_REQUEST_FIELD_SIZE + 3
    http.client._MAXHEADERS = LIMIT_REQUEST_FIELDS + 1  # type: ignore[attr-defined]
    sock = listen(host, port)
    wsgi.server(greenio.GreenSocket(sock), load(app),
                custom_pool=eventlet.GreenPool(wsgi.DEFAULT_MAX_SIMULTANEOUS_REQUESTS),
                keepalive=KEEP_ALIVE, socket_timeout=60.0,
                url_length_limit=LIMIT_REQUEST_LINE + 3, minimum_chunk_size=0,
                log_output=False, debug=False)


def _meinheld(app: str, host: str, port: int, keep_alive: int) -> None:
    """chaussette_meinheld.serving.MeinheldLoop._loop's settings, in the main thread."""
    from meinheld import patch, server

    patch.patch_all()
    sock = listen(host, port)
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    max_fd = 65536 if soft == resource.RLIM_INFINITY else min(soft, 65536)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max_fd, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    server.set_access_logger(None)
    if keep_alive:
        server.set_keepalive(keep_alive)
    server.set_picoev_max_fd(max_fd)
    server.set_listen_socket([sock.fileno()])
    server.run(load(app))


def run_meinheld(app: str, host: str, port: int) -> None:
    _meinheld(app, host, port, keep_alive=KEEP_ALIVE)


def run_meinheld_defaults(app: str, host: str, port: int) -> None:
    _meinheld(app, host, port, keep_alive=0)


def run_bjoern(app: str, host: str, port: int) -> None:
    """bjoern on a socket bound here, as chaussette hands it one (keep-alive is bjoern's own)."""
    import bjoern

    bjoern.server_run(listen(host, port), load(app))


RUNNERS: dict[str, Callable[[str, str, int], None]] = {
    "wsgiref": run_wsgiref,
    "stdlib-wsgiref": run_stdlib_wsgiref,
    "waitress": run_waitress,
    "gevent": run_gevent,
    "gevent-defaults": run_gevent_defaults,
    "eventlet": run_eventlet,
    "meinheld": run_meinheld,
    "meinheld-defaults": run_meinheld_defaults,
    "bjoern": run_bjoern,
}


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[0] not in RUNNERS:
        print(f"usage: raw.py {{{','.join(RUNNERS)}}} MODULE:APP HOST PORT", file=sys.stderr)
        return 2
    name, app, host, port = argv
    sys.path.insert(0, ".")  # the app is found from the current directory, as chaussette does
    RUNNERS[name](app, host, int(port))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
