"""Applications for the meinheld-specific tests, routed by path (served as
``meinheld_apps.app`` with this directory on the server's ``--python-path``)."""

from __future__ import annotations

import contextvars
import json
import os
import resource
import socket
import sys
import threading
import time
from typing import Callable, Iterable, Iterator
from urllib.parse import parse_qs

import greenlet


def _query(environ: dict, name: str) -> str:
    return parse_qs(environ.get("QUERY_STRING", "")).get(name, [""])[0]


def _json(start_response: Callable, info: dict) -> list[bytes]:
    body = json.dumps(info).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def info(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """What the environ says about the connection, and what the process looks like."""
    keys = ("REMOTE_ADDR", "REMOTE_PORT", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL")
    return _json(start_response, {
        **{key: environ.get(key) for key in keys},
        "socket_module": socket.socket.__module__,
        "sleep_module": time.sleep.__module__,
        "open_files_soft_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    })


def gate(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """Waits, on a (monkey-patched) socket, until the test's gate server sends a byte:
    meinheld's only way to let other requests run meanwhile is patched socket I/O."""
    with socket.create_connection(("127.0.0.1", int(_query(environ, "port"))), timeout=60) as sock:
        print("gate request started", file=sys.stderr, flush=True)
        released = sock.recv(1)
    body = b"released" if released else b"gate closed"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


#: Set by every ``/greenlet`` request: a value seen before it is set leaked from another.
REQUEST_VAR: contextvars.ContextVar[str] = contextvars.ContextVar("request_var", default="unset")


def greenlet_info(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """How many requests this request's greenlet has served (meinheld keeps them for the
    next request), and what an earlier request left in a context variable."""
    current = greenlet.getcurrent()
    current.served = getattr(current, "served", 0) + 1
    leaked = REQUEST_VAR.get()
    REQUEST_VAR.set(environ["PATH_INFO"])
    return _json(start_response, {"served": current.served, "leaked": leaked})


def nap(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """Sleeps ``step`` seconds at a time (``time.sleep``, patched) until the file ``flag``
    exists: as long as the test wants, however slow the machine."""
    flag, step = _query(environ, "flag"), float(_query(environ, "step") or 0.01)
    print("napping", file=sys.stderr, flush=True)
    time.sleep(step)
    while not os.path.exists(flag):
        time.sleep(step)
    body = b"woke"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def nap_in_thread(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """``time.sleep`` in a thread of the application's, where it cannot wait on the loop."""
    thread = threading.Thread(target=time.sleep, args=(0.01,))
    thread.start()
    thread.join()
    body = b"slept in a thread"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def big(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """``size`` bytes, after reading the whole request body."""
    environ["wsgi.input"].read()
    body = b"y" * int(_query(environ, "size"))
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def redirect(environ: dict, start_response: Callable) -> Iterable[bytes]:
    start_response("302 Found", [("Location", "/")])
    return []


def empty_first(environ: dict, start_response: Callable) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b""
    yield b"abc"
    yield b""
    yield b"def"


def lazy_empty(environ: dict, start_response: Callable) -> Iterator[bytes]:
    """A generator that calls start_response on its first step and yields nothing."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield from ()


def no_body(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """A status that has no body (``?status=204``, 304, 100...), given one anyway."""
    start_response(_query(environ, "status") + " Whatever", [("X-Body", "dropped")])
    return [b"must not be sent"]


def lazy_hello(environ: dict, start_response: Callable) -> Iterator[bytes]:
    """A generator that calls start_response on its first step, without Content-Length."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"hello world"


def legacy_write(environ: dict, start_response: Callable) -> Iterable[bytes]:
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"written, ")
    write(b"")
    return [b"", b"then returned"]


def write_late(environ: dict, start_response: Callable) -> Iterator[bytes]:
    """write() once the response has started: refused, so the response is cut short."""
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"started"
    write(b"too late")


#: name -> (status, headers) the application gives start_response; each must end in a 500.
UNSAFE_RESPONSES = {
    "cr": ("200 OK", [("X-Split", "a\rInjected: yes")]),
    "lf": ("200 OK", [("X-Split", "a\nInjected: yes")]),
    "nul": ("200 OK", [("X-Split", "a\0Injected: yes")]),
    "name": ("200 OK", [("X-Split\r\nInjected", "yes")]),
    "status": ("200 OK\r\nInjected: yes", []),
    "not-str": ("200 OK", [("X-Length", 11)]),
    "not-latin-1": ("200 \u2603", []),
}


def bad_response(environ: dict, start_response: Callable) -> Iterable[bytes]:
    start_response(*UNSAFE_RESPONSES[_query(environ, "kind")])
    return [b"never sent"]


def exc_info_replaces(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """The PEP 3333 error pattern before anything is sent: the second status wins."""
    start_response("200 OK", [("X-First", "yes")])
    try:
        raise ValueError("caught by the application")
    except ValueError:
        start_response("503 Service Unavailable", [("Content-Type", "text/plain")], sys.exc_info())
    return [b"replaced"]


def exc_info_too_late(environ: dict, start_response: Callable) -> Iterator[bytes]:
    """The same pattern once the headers are sent: start_response re-raises."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"partial"
    try:
        raise ValueError("late-error-reraised")
    except ValueError:
        start_response("500 Internal Server Error", [], sys.exc_info())
    yield b"never sent"


def twice(environ: dict, start_response: Callable) -> Iterable[bytes]:
    start_response("200 OK", [])
    start_response("200 OK", [])
    return [b"never sent"]


def no_start_response(environ: dict, start_response: Callable) -> Iterable[bytes]:
    return [b"never sent"]


def hello(environ: dict, start_response: Callable) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "11")])
    return [b"hello world"]


ROUTES = {"/info": info, "/gate": gate, "/greenlet": greenlet_info, "/nap": nap, "/nap-in-thread": nap_in_thread,
          "/big": big, "/redirect": redirect, "/empty-first": empty_first,
          "/lazy-empty": lazy_empty, "/lazy-hello": lazy_hello, "/no-body": no_body, "/write": legacy_write,
          "/write-late": write_late, "/bad-response": bad_response, "/exc-info": exc_info_replaces,
          "/exc-info-late": exc_info_too_late, "/twice": twice, "/no-start-response": no_start_response,
          "/": hello}


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    return ROUTES[environ["PATH_INFO"]](environ, start_response)
