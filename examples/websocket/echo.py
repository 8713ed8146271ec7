"""A websocket echo server: text comes back as text, binary as binary.

Run it from the repository root (needs ``pip install chaussette-gevent[websocket]``):

    chaussette --backend geventwebsocket --port 8080 examples.websocket.echo.app

then connect a websocket client to ws://localhost:8080/. Plain HTTP requests get a
short page saying so.
"""

from typing import Callable, Iterable


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    websocket = environ.get("wsgi.websocket")  # set by the geventwebsocket backend
    if websocket is None:
        body = b"This is a websocket echo server: connect with a websocket client.\n"
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    while True:
        message = websocket.receive()  # None once the client has closed
        if message is None:
            return []
        websocket.send(message, binary=not isinstance(message, str))
