"""The demo application of the README.

    chaussette --backend gevent examples.demo.app

Answers every request with who served it, so a process manager running several
workers on one socket shows a different pid from request to request.
"""

import os
from html import escape


def app(environ, start_response):
    body = (
        "<!doctype html><title>Chaussette demo</title>"
        "<h1>Hello from Chaussette</h1>"
        f"<p>Served by process {os.getpid()} on {escape(environ.get('SERVER_SOFTWARE', '?'))}, "
        f"for {escape(environ.get('REMOTE_ADDR') or '?')}: "
        f"{escape(environ['REQUEST_METHOD'])} {escape(environ.get('PATH_INFO', '/'))}</p>"
    ).encode()
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                              ("Content-Length", str(len(body)))])
    return [body]
