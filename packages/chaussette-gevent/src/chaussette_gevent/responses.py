"""What the handler sends back, where pywsgi's own writing falls short: one send for a
small response, no body for HEAD, ``Connection: close`` once stopping, generic 500s
logged through Chaussette's logger, and no access log of pywsgi's."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gevent import GreenletExit, pywsgi

from chaussette.http import http_date

if TYPE_CHECKING:
    from chaussette_gevent.serving import ChaussetteServer

#: Largest first body chunk sent together with the response head (see _write_with_headers).
COALESCE_LIMIT = 1 << 16


class Responses(pywsgi.WSGIHandler):
    """The handler's response side (``protocol.Handler`` is built on it)."""

    server: ChaussetteServer
    # pywsgi's attributes this class reads and sets, with the types pywsgi gives them.
    code: int
    provided_date: bytes | None
    response_use_chunked: bool
    _held: bytearray | None = None  # the response head while _write_with_headers runs

    def finalize_headers(self) -> None:
        if self.provided_date is None:  # pywsgi would format the date for each response
            self.provided_date = http_date().encode("latin-1")
            self.response_headers.append((b"Date", self.provided_date))
        super().finalize_headers()
        if self.command == "HEAD" and self.response_use_chunked:
            # No body follows, so no chunked framing (nor its terminating chunk) either.
            self.response_use_chunked = False
            self.response_headers.remove((b"Transfer-Encoding", b"chunked"))
        if self.server.state.stopping:
            self.close_connection = True
        if (self.close_connection and self.code != 101 and self.request_version == "HTTP/1.1"
                and not any(name.lower() == b"connection" for name, _ in self.response_headers)):
            self.response_headers.append((b"Connection", b"close"))

    def _write_with_headers(self, data: bytes) -> None:
        """One send for the head and the first body bytes, where pywsgi makes two."""
        if len(data) > COALESCE_LIMIT:  # not worth copying a large first chunk
            super()._write_with_headers(data)
            return
        self._held = bytearray()
        try:
            super()._write_with_headers(data)
            held = self._held
        finally:
            self._held = None
        self._sendall(held)

    def _sendall(self, data: bytes | bytearray) -> None:
        """pywsgi's, with one ``send()`` when the socket buffer takes all the data (a small
        response does): gevent's ``sendall()`` first asks the kernel for SO_SNDBUF, one
        more system call per response."""
        if self._held is not None:
            self._held += data
            return
        sock = self.socket
        try:
            sent = sock.send(data)
            if sent < len(data):
                sock.sendall(memoryview(data)[sent:])
        except OSError as exc:
            self.status = f"socket error: {exc}"
            if self.code > 0:
                self.code = -self.code
            raise
        self.response_length += len(data)

    def _write(self, data: bytes) -> None:
        """pywsgi sends the application's body even for HEAD, which desynchronises the
        next response on a keep-alive connection."""
        if self.command != "HEAD":
            super()._write(data)

    def handle_error(self, t: type, v: BaseException, tb: Any) -> None:
        """Log through Chaussette's logger; the client gets pywsgi's generic 500 (or the
        connection closes if the response had started)."""
        if not issubclass(t, GreenletExit):
            path = (self.environ or {}).get("PATH_INFO", self.path)
            self.server.state.log.error("error in the application for %s %s", self.command, path,
                                        exc_info=(t, v, tb))
        del t, v, tb
        self._send_error_response_if_possible(500)

    def log_request(self) -> None:
        """No access log from pywsgi: core's ``--access-log`` middleware writes one."""
