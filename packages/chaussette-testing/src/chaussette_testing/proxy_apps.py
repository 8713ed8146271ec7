"""The application the proxy suite serves: it answers with what the application sees of
the connection, so a test asserts the exact values the forwarded-headers layer left."""

from __future__ import annotations

import json
from typing import Callable, Iterable

#: The environ entries the layer may rewrite, and the one it adds.
SEEN = ("REMOTE_ADDR", "REMOTE_PORT", "wsgi.url_scheme", "HTTP_HOST", "SERVER_NAME", "SERVER_PORT",
        "chaussette.peer")


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """Every key is present in the answer: ``None`` when the environ has no such entry,
    so an assertion tells an absent value from an empty one. ``headers`` holds every
    ``HTTP_*`` entry, so a test sees which forwarded headers reached the application."""
    seen = {key: environ.get(key) for key in SEEN}
    seen["headers"] = {key: value for key, value in environ.items() if key.startswith("HTTP_")}
    body = json.dumps(seen).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
