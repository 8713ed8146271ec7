"""The application the eventlet-specific tests serve (``--python-path`` this directory)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Callable, Iterable
from urllib.parse import parse_qs

import eventlet
from eventlet import greenthread, patcher

#: Whether core monkey-patched before importing the application.
PATCHED_AT_IMPORT = patcher.is_monkey_patched("socket")

HOLD = {"active": 0, "peak": 0, "released": False}


def _reply(start_response: Callable, body: bytes, status: str = "200 OK") -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def _query(environ: dict, name: str, default: str) -> str:
    return parse_qs(environ.get("QUERY_STRING", "")).get(name, [default])[0]


def _hold(environ: dict, start_response: Callable) -> list[bytes]:
    """Waits until ``peers`` requests are in the application at once, or ``window``
    seconds, and answers the most it saw at once. Once one request gave up waiting the
    next ones do not wait, so a bounded server costs one window, not one per request."""
    peers, window = int(_query(environ, "peers", "3")), float(_query(environ, "window", "5"))
    HOLD["active"] += 1
    HOLD["peak"] = max(HOLD["peak"], HOLD["active"])
    print(f"hold started, {HOLD['active']} active", file=sys.stderr, flush=True)
    deadline = time.monotonic() + window
    try:
        while HOLD["active"] < peers and not HOLD["released"] and time.monotonic() < deadline:
            time.sleep(0.01)
        HOLD["released"] = True
    finally:
        HOLD["active"] -= 1
    return _reply(start_response, b"%d" % HOLD["peak"])


def _environ(environ: dict, start_response: Callable) -> list[bytes]:
    keys = ("REMOTE_ADDR", "REMOTE_PORT", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL")
    return _reply(start_response, json.dumps({key: environ.get(key) for key in keys}).encode())


def _patched(environ: dict, start_response: Callable) -> list[bytes]:
    return _reply(start_response, json.dumps(PATCHED_AT_IMPORT).encode())


def _lazy_error(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """Fails while the server iterates it, before the response started."""
    raise RuntimeError("secret-detail-in-lazy-exception")
    yield b""  # a generator: the error comes from the first next()


def _no_content(environ: dict, start_response: Callable) -> list[bytes]:
    start_response("204 No Content", [])
    return [b"a body HTTP forbids here"]


def _stubborn(environ: dict, start_response: Callable) -> list[bytes]:
    """Computes without yielding to the hub, so signal handlers run in its green thread,
    and swallows the exit they raise there, then waits (greenly) for 30 s."""
    print("stubborn request started", file=sys.stderr, flush=True)
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            pass
    except SystemExit:
        print("stubborn request swallowed an exit", file=sys.stderr, flush=True)
    time.sleep(30)
    return _reply(start_response, b"too late")


def signal_as_if_ended(signum: int) -> None:
    """Signal this process from the current green thread as if it had returned but not
    yet ended: the moment in which eventlet cannot name the thread."""
    exit_event = greenthread.getcurrent()._exit_event
    exit_event.send(None)  # as if it had returned
    os.kill(os.getpid(), signum)
    for _ in range(10000):  # the pending handler runs at one of these bytecodes
        pass
    exit_event.reset()  # so that its real return does not send twice


def _signal_while_ending(signum: int, trigger: str) -> None:
    """``signal_as_if_ended`` once ``trigger`` exists."""
    while not os.path.exists(trigger):
        time.sleep(0.02)
    signal_as_if_ended(signum)


def _signalling(environ: dict, start_response: Callable) -> list[bytes]:
    """Starts ``_signal_while_ending`` and stays in flight for ``seconds``."""
    signum = signal.Signals[_query(environ, "signal", "SIGINT")]
    eventlet.spawn(_signal_while_ending, signum, _query(environ, "trigger", ""))
    print("signalling request started", file=sys.stderr, flush=True)
    time.sleep(float(_query(environ, "seconds", "0")))
    return _reply(start_response, b"signalled")


def _generated(environ: dict, start_response: Callable) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"generated body"


ROUTES = {"/hold": _hold, "/environ": _environ, "/patched": _patched, "/lazy-error": _lazy_error,
          "/no-content": _no_content, "/generated": _generated, "/stubborn": _stubborn,
          "/signalling": _signalling}


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    route = ROUTES.get(environ.get("PATH_INFO", ""))
    if route is None:
        return _reply(start_response, b"hello world")
    return route(environ, start_response)
