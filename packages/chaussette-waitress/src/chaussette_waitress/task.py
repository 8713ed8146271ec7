"""The task a worker thread runs for one request: waitress's WSGI task with the
connection policy applied, bodiless HEAD responses, and the response head sent with the
first part of its body.

Imported by ``channel.py`` (it imports waitress at module level).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from wsgiref.util import FileWrapper

from waitress.task import WSGITask

if TYPE_CHECKING:
    from chaussette_waitress.channel import Channel

#: Largest first body part sent together with the response head: joining them copies it.
HEAD_WITH_BODY_MAX = 64 * 1024


class Task(WSGITask):
    """waitress's WSGI task, plus connection policy and bodiless HEAD responses.

    waitress 3.0.2 writes whatever the application returns for a HEAD request onto the
    wire, which a client reads as the start of the next response; here the headers are
    sent as for GET and the body is dropped.
    """

    channel: Channel

    @property
    def is_head(self) -> bool:
        return self.request.command == "HEAD"

    def get_environment(self) -> dict:
        environ = super().get_environment()
        if self.is_head:  # waitress sends its own file wrapper's content directly: iterate instead
            environ["wsgi.file_wrapper"] = FileWrapper
        return environ

    def build_response_header(self) -> bytes:
        """Close the connection after this response when keep-alive is off or we are
        stopping; asking through the request's own header lets waitress write a single,
        correct ``Connection: close`` for HTTP/1.0 and 1.1 alike."""
        if self.channel.server.policy.close_after_response:
            self.request.headers["CONNECTION"] = "close"
        head = super().build_response_header()
        if self.is_head:
            self.chunked_response = False  # no terminating chunk either
        return head

    def write(self, data: bytes) -> None:
        """The response head goes out with the first part of the body, in one send:
        waitress sends each of its writes at once, so a small response took two sends
        (two segments for the client to read) and two trips through the output lock."""
        if self.is_head:
            data = b""
        if self.wrote_header or not data or len(data) > HEAD_WITH_BODY_MAX:
            super().write(data)
            return
        channel, held = self.channel, HeldWrites(self.channel)
        self.channel = held  # type: ignore[assignment]  # stands in for the channel in this write only
        try:
            super().write(data)
        finally:
            self.channel = channel
        channel.write_soon(b"".join(held.parts))

    def finish(self) -> None:
        super().finish()
        self.channel.served = True


class HeldWrites:
    """A channel whose ``write_soon`` keeps what it is given, for ``Task.write`` to send
    in one piece; everything else is the channel's."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.parts: list[bytes] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.channel, name)

    def write_soon(self, data: bytes) -> int:
        self.parts.append(data)
        return len(data)
