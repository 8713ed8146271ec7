"""The WSGI side meinheld gets wrong, corrected between meinheld and the application.

meinheld 1.0.2 writes whatever the application returns, with its own keep-alive header,
and with keep-alive on (our default) that breaks framing in ways a client cannot recover
from. What this adapter fixes, and why each costs little on the hot path (an application
returning a list of bytes):

- a HEAD, 1xx, 204 or 304 response got its body sent anyway: here it never reaches meinheld;
- an empty body without Content-Length was sent with neither Content-Length nor chunked
  encoding on a kept-alive connection (a redirect returning ``[]``): the client waited for
  the connection to close. It gets ``Content-Length: 0``;
- an empty chunk (``b""``, which generators often yield first) became chunked encoding's
  last-chunk marker in the middle of the body: empty chunks are skipped;
- an HTTP/1.0 keep-alive request (``ab -k``) with a body of unknown length could not be
  framed (no chunked encoding in 1.0): the body is buffered to give it a Content-Length;
- ``start_response`` returned None instead of ``write``: ``write`` buffers until the
  application returns (PEP 3333 allows it);
- response headers were checked for LF but not CR or NUL (response splitting);
- the server's address in the environ (see ``Environ``).

meinheld writes nothing before the application returns, so the adapter looks at the first
non-empty chunk before handing status and headers over, the way PEP 3333 lets a server
delay the headers; an application that fails before that gets meinheld's generic 500.
"""

from __future__ import annotations

import _socket
from typing import Any, Callable, Iterable, Iterator, Sequence

from chaussette.backends.wsgiref import UNIX_ENVIRON
from chaussette.sockets import Listener

BODYLESS_CODES = ("204", "304")


class Environ:
    """Corrects what meinheld puts in the environ about the server's address.

    meinheld sets SERVER_NAME/SERVER_PORT to the address it would have bound itself
    (``127.0.0.1:8000`` when given sockets). With one listener bound to a given address
    (the usual case under a process manager) that address is the connection's local
    address, known once; a wildcard or several listeners leave only the connection to
    ask, a system call per request. The client's address is meinheld's own (the build
    recipe's fix 9 makes it right); a unix socket's clients get core's usual values.
    """

    def __init__(self, listeners: Sequence[Listener]) -> None:
        self.constant: dict[str, str] | None = None
        self.sockets: dict[int, _socket.socket] = {}
        if all(listener.is_unix for listener in listeners):
            self.constant = UNIX_ENVIRON
        elif len(listeners) == 1:
            host, port = listeners[0].sock.getsockname()[:2]
            if host not in ("0.0.0.0", "::"):
                self.constant = {"SERVER_NAME": host, "SERVER_PORT": str(port)}

    def fix(self, environ: dict[str, Any]) -> None:
        if self.constant is not None:
            environ.update(self.constant)
            return
        fd = environ["meinheld.client"].get_fd()
        sock = self.sockets.get(fd)
        if sock is None:
            # AF_UNIX only sizes the address buffer (the largest, so nothing is cut short);
            # the addresses come back in the fd's own family, whatever the fd is serving.
            # ``_socket``'s object, not ``socket``'s, which may be monkey-patched; it only
            # borrows the fd meinheld owns (see ``release``).
            sock = self.sockets[fd] = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, fd)
        try:
            local = sock.getsockname()
        except OSError:  # the client is already gone: the response will go nowhere
            return
        if type(local) is not tuple:  # a unix listener next to TCP ones
            environ.update(UNIX_ENVIRON)
            return
        environ["SERVER_NAME"], environ["SERVER_PORT"] = local[0], str(local[1])

    def release(self) -> None:
        """Give the fds back without closing them (meinheld closes its own)."""
        for sock in self.sockets.values():
            sock.detach()
        self.sockets.clear()


class Exchange:
    """One request: the ``start_response`` and ``write`` the application sees."""

    __slots__ = ("status", "headers", "written", "handed_over")

    def __init__(self) -> None:
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.written: list[bytes] = []
        self.handed_over = False

    def start_response(self, status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info:
            try:
                if self.handed_over:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response called a second time without exc_info")
        self.status, self.headers = status, headers
        return self.write

    def write(self, data: bytes) -> None:
        if self.handed_over:
            raise RuntimeError("write() called after the application returned; the meinheld "
                               "backend only supports write() before that")
        if data:
            self.written.append(data)


class Body:
    """The rest of an iterable response, without empty chunks, closing the original."""

    __slots__ = ("first", "rest", "result")

    def __init__(self, first: bytes, rest: Iterator[bytes], result: Any) -> None:
        self.first, self.rest, self.result = first, rest, result

    def __iter__(self) -> Iterator[bytes]:
        yield self.first
        for chunk in self.rest:
            if chunk:
                yield chunk

    def close(self) -> None:
        close = getattr(self.result, "close", None)
        if close is not None:
            close()


class Application:
    """What meinheld calls: the environ fixed, the application called, the response
    checked and handed over in a form meinheld frames correctly."""

    def __init__(self, app: Callable[..., Any], listeners: Sequence[Listener]) -> None:
        self.app = app
        self.environ = Environ(listeners)
        self.constant = self.environ.constant

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        # Every line here is paid on every request (~2 µs in all, against ~27 µs for a whole
        # hello-world request in meinheld): the common cases go first and stay inline.
        if self.constant is not None:
            environ.update(self.constant)
        else:
            self.environ.fix(environ)
        exchange = Exchange()
        result = self.app(environ, exchange.start_response)
        try:
            body = _first_look(result, exchange)
            status, headers = _checked(exchange)
        except BaseException:
            _close(result)
            raise
        if (environ["REQUEST_METHOD"] == "HEAD" or status[:3] in BODYLESS_CODES
                or status[0] == "1"):
            _close(body)
            body = []
        elif not body:
            if not _has_length(headers):
                headers = [*headers, ("Content-Length", "0")]
        elif (environ["SERVER_PROTOCOL"] == "HTTP/1.0" and not _is_file_wrapper(body)
              and "keep-alive" in environ.get("HTTP_CONNECTION", "").lower()
              and not _has_length(headers)):
            body = _buffered(body)
            headers = [*headers, ("Content-Length", str(sum(map(len, body))))]
        exchange.handed_over = True
        start_response(status, headers if type(headers) is list else list(headers))
        return body


def _first_look(result: Any, exchange: Exchange) -> Any:
    """The response with write()'s data first and no empty chunk, as a list when that
    costs nothing; [] if there is no body at all. Iterating a generator to its first
    non-empty chunk is what makes a lazy application call start_response."""
    if not exchange.written:
        if type(result) is list or isinstance(result, tuple):
            return result if all(result) else [chunk for chunk in result if chunk]
        if _is_file_wrapper(result):  # meinheld sends it with sendfile()
            return result
    rest = iter(result)
    for chunk in rest:
        if chunk:
            if exchange.written:
                return Body(b"".join(exchange.written), _chain(chunk, rest), result)
            return Body(chunk, rest, result)
    _close(result)
    return exchange.written


def _is_file_wrapper(result: Any) -> bool:
    """meinheld's ``wsgi.file_wrapper`` objects (type ``meinheld.file_wrapper``)."""
    kind = type(result)
    return kind.__name__ == "file_wrapper" and kind.__module__ == "meinheld"


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _checked(exchange: Exchange) -> tuple[str, Sequence[tuple[str, str]]]:
    """The status and headers, refused if missing or if they could split the response."""
    status, headers = exchange.status, exchange.headers
    if status is None:
        raise AssertionError("the application returned without calling start_response")
    text = status + "".join([name + value for name, value in headers])  # one scan, not 2n+1
    # isprintable(): one C scan, true for nearly every response; CR, LF and NUL are not
    # printable, and neither are a tab or some latin-1 characters, which are allowed.
    if not text.isprintable() and ("\r" in text or "\n" in text or "\0" in text):
        for name, value in headers:
            if _unsafe(name) or _unsafe(value):
                raise ValueError(f"invalid response header {name!r}: {value!r}")
        raise ValueError(f"invalid status line {status!r}")
    return status, headers


def _has_length(headers: Sequence[tuple[str, str]]) -> bool:
    return any(name.lower() == "content-length" for name, _ in headers)


def _unsafe(text: str) -> bool:
    return "\r" in text or "\n" in text or "\0" in text


def _buffered(body: Any) -> list[bytes]:
    try:
        return [chunk for chunk in body if chunk]
    finally:
        _close(body)


def _close(result: Any) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()
