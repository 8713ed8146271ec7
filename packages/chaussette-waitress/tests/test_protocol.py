"""StrictParser fills in waitress's request from core's parsed head: for every request
both accept, the request waitress's tasks read must be the same as waitress's own."""

from __future__ import annotations

import pytest
from waitress.adjustments import Adjustments
from waitress.parser import HTTPRequestParser

from chaussette_waitress.protocol import StrictParser

ATTRIBUTES = ("completed", "error", "headers_finished", "command", "version", "request_uri", "path", "query",
              "fragment", "proxy_scheme", "proxy_netloc", "url_scheme", "headers", "connection_close",
              "expect_continue", "chunked", "content_length")

VALID = [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /a%20b/c?x=1&y=%41#frag HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n",
    b"GET http://example.com:8080/p?q HTTP/1.1\r\nHost: example.com\r\n\r\n",
    b"GET //double/slash HTTP/1.1\r\nHost: x\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    b"POST /echo HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"PUT /x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nab",
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Twice: a\r\nx-twice: b\r\nX_Under: dropped\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Spaces:   padded value \t\r\nX-Empty:\r\n\r\n",
    b"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
]


def parsed(parser_class: type, raw: bytes) -> HTTPRequestParser:
    """What waitress's channel does: feed the data until the request is complete."""
    parser = parser_class(Adjustments())
    while raw and not parser.completed:
        raw = raw[parser.received(raw):]
    assert parser.completed
    return parser


@pytest.mark.parametrize("raw", VALID)
def test_same_request_as_waitress(raw: bytes) -> None:
    strict, plain = parsed(StrictParser, raw), parsed(HTTPRequestParser, raw)
    assert plain.error is None and strict.completed
    for name in ATTRIBUTES:
        assert getattr(strict, name) == getattr(plain, name), name
    assert strict.get_body_stream().read() == plain.get_body_stream().read()


@pytest.mark.parametrize("raw, status", [
    (b"get / HTTP/1.1\r\nHost: x\r\n\r\n", 400),  # waitress refuses lowercase methods
    (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", 400),  # obs-fold, which waitress folds
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
])
def test_refusals_are_waitress_errors(raw: bytes, status: int) -> None:
    strict = parsed(StrictParser, raw)
    assert strict.completed and strict.error is not None and strict.error.code == status
    assert strict.version == "1.0" and strict.body_rcv is None  # the error response closes
