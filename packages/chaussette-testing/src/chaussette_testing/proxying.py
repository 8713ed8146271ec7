"""Shared suite: trusted forwarded headers (``--forwarded-allow-ips``), on real servers.

Every backend package runs it (tests/test_production.py). Three servers per class, each
started once and asked many questions; each test sends exact header lines over a raw
socket and asserts the exact environ values the application saw
(``chaussette_testing.proxy_apps``):

- ``proxy_trusting``: trusts 127.0.0.1 (the test) and 10.1.0.0/16 (proxies further out in
  the chains the tests write), reads Forwarded and X-Forwarded-For/-Proto: the walk,
  RFC 7239, the scheme.
- ``proxy_selective``: trusts 127.0.0.0/8, reads only X-Forwarded-For/-Host/-Port, and
  also listens on a unix socket, whose peers it does not trust.
- ``proxy_elsewhere``: trusts 10.0.0.1 (nobody here: the test is an untrusted peer) and
  ``unix``, with the default headers, also on a unix socket.

A backend that serves a single socket (bjoern) gets one server per address instead of
one with two listeners; the tests do not notice.
"""

from __future__ import annotations

import contextlib
import json
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator, Sequence

import pytest

from chaussette_testing.client import connect, read_responses, tcp_and_unix_listeners
from chaussette_testing.process import start_server

APP = "chaussette_testing.proxy_apps.app"
#: Every header the layer knows, as a client would spoof them.
SPOOFED = (("Forwarded", "for=6.6.6.6;proto=https;host=evil.example"), ("X-Forwarded-For", "6.6.6.6"),
           ("x-forwarded-proto", "https"), ("X-FORWARDED-HOST", "evil.example"), ("X-Forwarded-Port", "443"))
FORWARDED_KEYS = frozenset(("HTTP_FORWARDED", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO",
                            "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT"))
HOST = "app.example"


@dataclass
class Served:
    """Where one trust configuration serves: a TCP (host, port), and a unix socket path
    when it was asked for one."""

    tcp: tuple[str, int]
    unix: str | None
    output: Any  # () -> the servers' logs


@dataclass
class Seen:
    """What the application saw of one request, and the client's own port."""

    environ: dict
    port: str  # the client socket's port ("" on a unix socket)

    @property
    def headers(self) -> dict:
        return self.environ["headers"]


def exchange(address: Any, *requests: Sequence[tuple[str, str]]) -> list[Seen]:
    """``GET /`` once per entry of ``requests`` on one kept-alive connection, each with
    exactly its header lines (plus Host, and Connection: close on the last)."""
    seen = []
    with connect(address) as sock:
        port = str(sock.getsockname()[1]) if sock.family != socket.AF_UNIX else ""
        for number, headers in enumerate(requests):
            lines = [("Host", HOST), *headers]
            if number == len(requests) - 1:
                lines.append(("Connection", "close"))
            head = "GET / HTTP/1.1\r\n" + "".join(f"{name}: {value}\r\n" for name, value in lines) + "\r\n"
            sock.sendall(head.encode("latin-1"))
            response, = read_responses(sock, ["GET"])
            assert response.status == 200, response.body
            seen.append(Seen(json.loads(response.body), port))
    return seen


def get(address: Any, *headers: tuple[str, str]) -> Seen:
    return exchange(address, headers)[0]


class ProxySuite:
    backend: ClassVar[str] = "wsgiref"
    #: Extra arguments every server of this suite gets (backend options).
    server_args: ClassVar[Sequence[str]] = ()

    # -- servers ---------------------------------------------------------------------------

    @classmethod
    @contextlib.contextmanager
    def proxy_serve(cls, *args: str, unix: bool = False) -> Iterator[Served]:
        """Servers with ``args`` on 127.0.0.1 and, with ``unix``, on a unix socket: one
        server with both listeners, or one per listener for a backend that serves one."""
        from chaussette.registry import load

        common = ("--backend", cls.backend, *cls.server_args, *args, APP)
        with contextlib.ExitStack() as stack:
            if not unix:
                server = stack.enter_context(start_server("--host", "127.0.0.1", "--port", "0", *common))
                yield Served(server.tcp_address, None, lambda: server.output)
                return
            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="proxy-"))
            if (load(cls.backend).capabilities.max_listeners or 2) >= 2:
                tcp, _, path, fds = stack.enter_context(tcp_and_unix_listeners(Path(directory)))
                server = stack.enter_context(start_server("--fd", str(fds[0]), "--fd", str(fds[1]), *common,
                                                          pass_fds=fds, count=2))
                yield Served(tcp.getsockname(), path, lambda: server.output)
            else:
                path = f"{directory}/proxy.sock"
                by_tcp = stack.enter_context(start_server("--host", "127.0.0.1", "--port", "0", *common))
                by_unix = stack.enter_context(start_server("--host", f"unix:{path}", *common))
                yield Served(by_tcp.tcp_address, path, lambda: by_tcp.output + "\n" + by_unix.output)

    @pytest.fixture(scope="class")
    @classmethod
    def proxy_trusting(cls) -> Any:
        with cls.proxy_serve("--forwarded-allow-ips", "127.0.0.1,10.1.0.0/16",
                             "--forwarded-headers", "forwarded,x-forwarded-for,x-forwarded-proto") as served:
            yield served

    @pytest.fixture(scope="class")
    @classmethod
    def proxy_selective(cls) -> Any:
        with cls.proxy_serve("--forwarded-allow-ips", "127.0.0.0/8", "--forwarded-headers",
                             "x-forwarded-for,x-forwarded-host,x-forwarded-port", unix=True) as served:
            yield served

    @pytest.fixture(scope="class")
    @classmethod
    def proxy_elsewhere(cls) -> Any:
        with cls.proxy_serve("--forwarded-allow-ips", "10.0.0.1,unix", unix=True) as served:
            yield served

    # -- untrusted peers -------------------------------------------------------------------

    def test_spoofed_headers_from_an_untrusted_peer_never_reach_the_app(self, proxy_elsewhere: Served) -> None:
        plain, spoofed = exchange(proxy_elsewhere.tcp, [], [*SPOOFED, ("X-Forwarded-For", "7.7.7.7"),
                                                            ("X-Trace", "kept")])
        assert spoofed.headers == {"HTTP_HOST": HOST, "HTTP_X_TRACE": "kept", "HTTP_CONNECTION": "close"}
        assert spoofed.environ["REMOTE_ADDR"] == "127.0.0.1"
        assert spoofed.environ["REMOTE_PORT"] == spoofed.port
        assert spoofed.environ["wsgi.url_scheme"] == "http"
        assert spoofed.environ["HTTP_HOST"] == HOST
        assert spoofed.environ["chaussette.peer"] == ["127.0.0.1", spoofed.port]
        # everything else is what a request without those headers sees
        del plain.environ["headers"], spoofed.environ["headers"]
        assert spoofed.environ == plain.environ

    def test_loopback_tcp_peer_is_not_a_unix_peer(self, proxy_elsewhere: Served) -> None:
        """``unix`` trusts unix-socket peers only: 127.0.0.1 over TCP stays untrusted."""
        seen = get(proxy_elsewhere.tcp, ("X-Forwarded-For", "192.0.2.33"))
        assert seen.environ["REMOTE_ADDR"] == "127.0.0.1"
        assert FORWARDED_KEYS.isdisjoint(seen.headers)

    def test_unix_peer_is_trusted_when_unix_is_listed(self, proxy_elsewhere: Served) -> None:
        assert proxy_elsewhere.unix is not None
        seen = get(proxy_elsewhere.unix, ("X-Forwarded-For", "6.6.6.6, 192.0.2.33"), ("X-Forwarded-Proto", "https"))
        assert seen.environ["REMOTE_ADDR"] == "192.0.2.33"
        assert seen.environ["REMOTE_PORT"] == ""
        assert seen.environ["wsgi.url_scheme"] == "https"
        assert seen.environ["chaussette.peer"] == ["127.0.0.1", ""]
        assert seen.headers["HTTP_X_FORWARDED_FOR"] == "6.6.6.6, 192.0.2.33"

    def test_unix_peer_is_untrusted_without_unix(self, proxy_selective: Served) -> None:
        """Its REMOTE_ADDR reads 127.0.0.1, inside the trusted 127.0.0.0/8: still no."""
        assert proxy_selective.unix is not None
        seen = get(proxy_selective.unix, *SPOOFED)
        assert seen.headers == {"HTTP_HOST": HOST, "HTTP_CONNECTION": "close"}
        assert (seen.environ["REMOTE_ADDR"], seen.environ["REMOTE_PORT"]) == ("127.0.0.1", "")
        assert (seen.environ["wsgi.url_scheme"], seen.environ["HTTP_HOST"]) == ("http", HOST)
        assert seen.environ["chaussette.peer"] == ["127.0.0.1", ""]

    # -- trusted peers: X-Forwarded-* ------------------------------------------------------

    def test_trusted_chain_gives_the_client(self, proxy_trusting: Served) -> None:
        """The right-most untrusted hop: 10.1.2.3 is a trusted proxy (a CIDR entry), and
        6.6.6.6 is whatever the client wrote itself."""
        seen = get(proxy_trusting.tcp, ("X-Forwarded-For", "6.6.6.6, 203.0.113.9, 10.1.2.3"))
        assert seen.environ["REMOTE_ADDR"] == "203.0.113.9"
        assert seen.environ["REMOTE_PORT"] == ""
        assert seen.environ["chaussette.peer"] == ["127.0.0.1", seen.port]
        assert seen.headers["HTTP_X_FORWARDED_FOR"] == "6.6.6.6, 203.0.113.9, 10.1.2.3"

    def test_client_port_when_the_chain_gives_one(self, proxy_trusting: Served) -> None:
        seen = get(proxy_trusting.tcp, ("X-Forwarded-For", "[2001:db8::7]:4711"))
        assert (seen.environ["REMOTE_ADDR"], seen.environ["REMOTE_PORT"]) == ("2001:db8::7", "4711")

    def test_several_x_forwarded_for_lines(self, proxy_trusting: Served) -> None:
        lines = (("X-Forwarded-For", "6.6.6.6, 203.0.113.9"), ("X-Forwarded-For", "10.1.0.1"))
        self.assert_joined(get(proxy_trusting.tcp, *lines), lines, "203.0.113.9")

    def test_forwarded_proto_gives_the_scheme(self, proxy_trusting: Served) -> None:
        """And only to its own request: the next one on the connection is plain http."""
        forwarded, plain = exchange(proxy_trusting.tcp, [("X-Forwarded-Proto", "https"),
                                                         ("X-Forwarded-For", "203.0.113.9")], [])
        assert (forwarded.environ["wsgi.url_scheme"], forwarded.environ["REMOTE_ADDR"]) == ("https", "203.0.113.9")
        assert (plain.environ["wsgi.url_scheme"], plain.environ["REMOTE_ADDR"]) == ("http", "127.0.0.1")
        assert plain.environ["REMOTE_PORT"] == plain.port == forwarded.port
        assert plain.environ["chaussette.peer"] == forwarded.environ["chaussette.peer"] == ["127.0.0.1", plain.port]

    def test_headers_not_enabled_are_removed_from_a_trusted_peer(self, proxy_trusting: Served) -> None:
        plain, seen = exchange(proxy_trusting.tcp, [], [("X-Forwarded-Host", "evil.example"),
                                                        ("X-Forwarded-Port", "8443")])
        assert seen.headers == {"HTTP_HOST": HOST, "HTTP_CONNECTION": "close"}
        for key in ("HTTP_HOST", "SERVER_NAME", "SERVER_PORT"):
            assert seen.environ[key] == plain.environ[key]

    def test_malformed_values_from_a_trusted_peer_are_ignored_one_by_one(self, proxy_trusting: Served) -> None:
        plain, broken, walked, partly = exchange(proxy_trusting.tcp, [], [
            ("X-Forwarded-For", "203.0.113.9, not-an-address"), ("X-Forwarded-Proto", "gopher")], [
            ("Forwarded", 'for=192.0.2.60;proto=https, for="10.1.0.1')], [
            ("Forwarded", "for=192.0.2.60;proto=gopher")])
        del plain.environ["headers"]
        for seen in (broken, walked):  # nothing is known of the client: nothing changes
            del seen.environ["headers"]
            assert seen.environ == plain.environ
        # one bad field costs only itself
        assert (partly.environ["REMOTE_ADDR"], partly.environ["wsgi.url_scheme"]) == ("192.0.2.60", "http")

    # -- trusted peers: Forwarded ----------------------------------------------------------

    def test_forwarded_with_quoted_ipv6(self, proxy_trusting: Served) -> None:
        seen = get(proxy_trusting.tcp, ("Forwarded", 'for="[2001:db8:cafe::17]:4711";proto=https'),
                   ("X-Forwarded-For", "198.51.100.1"))  # Forwarded wins
        assert seen.environ["REMOTE_ADDR"] == "2001:db8:cafe::17"
        assert seen.environ["REMOTE_PORT"] == "4711"
        assert seen.environ["wsgi.url_scheme"] == "https"
        assert seen.environ["chaussette.peer"] == ["127.0.0.1", seen.port]

    def test_forwarded_elements_walked_with_their_proto(self, proxy_trusting: Served) -> None:
        seen = get(proxy_trusting.tcp, ("Forwarded", "for=6.6.6.6;proto=http, for=192.0.2.60;proto=https, "
                                                     'for="10.1.0.5";proto=http'))
        assert (seen.environ["REMOTE_ADDR"], seen.environ["wsgi.url_scheme"]) == ("192.0.2.60", "https")

    def test_several_forwarded_lines(self, proxy_trusting: Served) -> None:
        lines = (("Forwarded", "for=192.0.2.60;proto=https"), ("Forwarded", "for=10.1.0.5"))
        seen = get(proxy_trusting.tcp, *lines)
        self.assert_joined(seen, lines, "192.0.2.60")
        assert seen.environ["wsgi.url_scheme"] == "https"

    def test_forwarded_obfuscated_client_keeps_the_peer(self, proxy_trusting: Served) -> None:
        seen = get(proxy_trusting.tcp, ("Forwarded", "for=_hidden;proto=https"))
        assert (seen.environ["REMOTE_ADDR"], seen.environ["REMOTE_PORT"]) == ("127.0.0.1", seen.port)
        assert seen.environ["wsgi.url_scheme"] == "https"

    # -- trusted peers: the selection of headers, host and port ----------------------------

    def test_forwarded_host_and_port_when_enabled(self, proxy_selective: Served) -> None:
        """127.0.0.1 is trusted through the CIDR entry 127.0.0.0/8; X-Forwarded-Proto and
        Forwarded are not enabled there, so they are removed and not applied."""
        seen = get(proxy_selective.tcp, ("Forwarded", "for=6.6.6.6;proto=https;host=evil.example"),
                   ("X-Forwarded-Proto", "https"), ("X-Forwarded-For", "192.0.2.77"),
                   ("X-Forwarded-Host", "www.example.com"), ("X-Forwarded-Port", "8443"))
        assert seen.environ["HTTP_HOST"] == "www.example.com:8443"
        assert seen.environ["SERVER_NAME"] == "www.example.com"
        assert seen.environ["SERVER_PORT"] == "8443"
        assert seen.environ["wsgi.url_scheme"] == "http"
        assert seen.environ["REMOTE_ADDR"] == "192.0.2.77"
        assert seen.environ["chaussette.peer"] == ["127.0.0.1", seen.port]
        assert {key for key in seen.headers if key in FORWARDED_KEYS} == {
            "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT"}

    def test_proxy_start_up_line_says_what_is_trusted(self, proxy_selective: Served) -> None:
        assert ("Trusting forwarded headers (x-forwarded-for, x-forwarded-host, x-forwarded-port) "
                "from 127.0.0.0/8") in proxy_selective.output()

    # -- helpers ---------------------------------------------------------------------------

    def assert_joined(self, seen: Seen, lines: Sequence[tuple[str, str]], client: str) -> None:
        """Two lines of one header reach the application as one comma-separated value
        (RFC 9110 5.3), and the layer walks the whole list. A backend that glues them
        without the comma (bjoern's C parser, the fixed build's too) must at least not make a client
        up: the walk meets a value it cannot read and leaves the peer's address."""
        key = "HTTP_" + lines[0][0].upper().replace("-", "_")
        if seen.headers[key] == "".join(value for _, value in lines):
            assert (seen.environ["REMOTE_ADDR"], seen.environ["wsgi.url_scheme"]) == ("127.0.0.1", "http")
            pytest.xfail(f"the {self.backend} backend joins repeated header lines without a comma: "
                         f"{seen.headers[key]!r}")
        assert seen.environ["REMOTE_ADDR"] == client
