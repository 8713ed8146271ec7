"""The application the process-manager examples serve (``server.app``).

Every response names the process that served it, so with five workers on one socket
you see the pid change from request to request, and see it change again after a
reload. ``/slow?seconds=N`` (at most 60) answers after N seconds, and says on stderr
when it starts: a request to be in flight while the manager stops or reloads the workers.

The configurations beside this file (circus.ini, circus-unix.ini, supervisord.conf,
systemd/) expect it in /srv/app; docs/process-managers.md shows how to try them.
"""

import os
import sys
import time
from urllib.parse import parse_qs

MAX_DELAY = 60.0


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/slow":
        query = parse_qs(environ.get("QUERY_STRING", ""))
        try:
            seconds = float(query.get("seconds", ["1"])[0])
        except ValueError:
            seconds = 1.0
        if not 0.0 <= seconds <= MAX_DELAY:  # also true for nan
            seconds = MAX_DELAY if seconds > MAX_DELAY else 0.0
        print(f"slow request: {seconds:g}s in pid {os.getpid()}", file=sys.stderr, flush=True)
        time.sleep(seconds)
    body = f"served by pid {os.getpid()}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"),
                              ("Content-Length", str(len(body)))])
    return [body]
