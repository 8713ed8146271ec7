"""The forwarded-headers layer in process: its parsers, its trust decisions, and what it
leaves in the environ. The same behaviour on real servers, every backend, is
chaussette_testing.proxying.ProxySuite; behind a real nginx, test_nginx.py.

Hostile input (any text, any bytes a header can carry) never raises: hypothesis tries it
against every parser and against the whole layer.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import time
from typing import Any

import pytest
from conftest import assert_clean_error, run_chaussette
from hypothesis import example, given, settings
from hypothesis import strategies as st

from chaussette import layers
from chaussette.errors import ChaussetteError
from chaussette.lifecycle import Lifecycle
from chaussette.proxy import (
    DECISIONS_KEPT,
    HEADERS,
    Host,
    Node,
    ProxyHeaders,
    Trust,
    _parse_quoted,
    pack,
    parse_forwarded,
    parse_host,
    parse_node,
    parse_port,
    unpack,
)
from chaussette.settings import build_config

ALL_HEADERS = ",".join(HEADERS)
WITH_FORWARDED = "forwarded,x-forwarded-for,x-forwarded-proto"
FORWARDED_KEYS = frozenset(HEADERS.values())
#: A TCP request from the proxy at 127.0.0.1, as every backend fills the environ.
TCP_ENVIRON = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "40000",
               "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "HTTP_HOST": "127.0.0.1:8000",
               "wsgi.url_scheme": "http"}
#: A request on a unix socket (chaussette.http.UNIX_ENVIRON).
UNIX_ENVIRON = {**TCP_ENVIRON, "REMOTE_PORT": "", "SERVER_NAME": "localhost", "SERVER_PORT": "0",
                "HTTP_HOST": "localhost"}
#: What the layer may change, for exact comparisons.
SEEN = ("REMOTE_ADDR", "REMOTE_PORT", "wsgi.url_scheme", "HTTP_HOST", "SERVER_NAME", "SERVER_PORT",
        "chaussette.peer")


class Messages(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def proxy_log() -> Any:
    """The messages the layer logs, debug included (whatever the chaussette logger's
    handlers and propagation, which other tests' servers may have set)."""
    logger = logging.getLogger("chaussette.proxy")
    handler, level = Messages(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler.messages
    logger.removeHandler(handler)
    logger.setLevel(level)


def layer(allow: str, headers: str | None = None) -> tuple[ProxyHeaders, dict]:
    """The layer around an application that keeps the environ it was called with."""
    seen: dict = {}

    def app(environ: dict, start_response: Any) -> list[bytes]:
        seen.clear()
        seen.update(environ)
        return [b""]

    given = {"forwarded_allow_ips": allow}
    if headers is not None:
        given["forwarded_headers"] = headers
    return ProxyHeaders(app, build_config(given)), seen


def call(allow: str, headers: str | None = None, base: dict = TCP_ENVIRON, **environ: str) -> dict:
    """The environ the application gets from ``allow`` for ``environ`` on top of ``base``."""
    proxy, seen = layer(allow, headers)
    proxy({**base, **environ}, None)
    return seen


def result(allow: str, headers: str | None = None, base: dict = TCP_ENVIRON, **environ: str) -> dict:
    seen = call(allow, headers, base, **environ)
    return {key: seen.get(key) for key in SEEN}


def unchanged(base: dict = TCP_ENVIRON) -> dict:
    """What ``result`` gives when the layer applies nothing."""
    return {**{key: base.get(key) for key in SEEN},
            "chaussette.peer": (base["REMOTE_ADDR"], base["REMOTE_PORT"])}


def client(address: str, port: str = "", scheme: str = "http") -> dict:
    """What ``result`` gives when only the client (and maybe the scheme) was forwarded."""
    return {**unchanged(), "REMOTE_ADDR": address, "REMOTE_PORT": port, "wsgi.url_scheme": scheme}


# -- settings and start-up ---------------------------------------------------------------

@pytest.mark.parametrize(("given", "entries"), [
    ("127.0.0.1", ("127.0.0.1",)),
    ("127.0.0.1, 10.0.0.0/8 ,unix", ("127.0.0.1", "10.0.0.0/8", "unix")),
    ("2001:DB8::/32 *", ("2001:db8::/32", "*")),
    (["::1", "::ffff:10.0.0.1"], ("::1", "::ffff:10.0.0.1")),
])
def test_allow_list_setting(given: Any, entries: tuple[str, ...]) -> None:
    assert build_config({"forwarded_allow_ips": given}).forwarded_allow_ips == entries


@pytest.mark.parametrize(("entry", "message"), [
    ("10.0.0.300", "'10.0.0.300' is not an IP address, a CIDR range, '*' or 'unix'"),
    ("localhost", "'localhost' is not an IP address, a CIDR range, '*' or 'unix' (name addresses: 127.0.0.1, ::1)"),
    ("10.0.0.1/8", "'10.0.0.1/8' has host bits set: write '10.0.0.0/8' for the range, "
                   "or '10.0.0.1' for the one address"),
    ("10.0.0.0/33", "'10.0.0.0/33' is not an IP address, a CIDR range, '*' or 'unix'"),
    ("fe80::1%eth0", "'fe80::1%eth0' is not an IP address"),
    ("010.0.0.1", "'010.0.0.1' is not an IP address"),
    ("unix:/run/x.sock", "'unix:/run/x.sock' is not an IP address"),
])
def test_bad_allow_list_entry_is_named(entry: str, message: str) -> None:
    """As an ini file's ``[server:main]`` or ``make_server`` keywords give it."""
    with pytest.raises(ChaussetteError) as raised:
        build_config({"forwarded_allow_ips": f"127.0.0.1,{entry}"})
    assert str(raised.value).startswith(f"invalid value '127.0.0.1,{entry}' for forwarded-allow-ips: {message}")


def test_bad_header_name_is_named() -> None:
    with pytest.raises(ChaussetteError) as raised:
        build_config({"forwarded_headers": "x-forwarded-for,x-real-ip"})
    assert str(raised.value) == ("invalid value 'x-forwarded-for,x-real-ip' for forwarded-headers: unknown header "
                                 "'x-real-ip'; choose from forwarded, x-forwarded-for, x-forwarded-proto, "
                                 "x-forwarded-host, x-forwarded-port")


def test_constructor_refuses_a_config_built_around_the_converters() -> None:
    """The Python API or a test may build a Config by hand: the layer checks again."""
    config = dataclasses.replace(build_config({}), forwarded_allow_ips=("127.0.0.1", "10.0.0.300"))
    with pytest.raises(ChaussetteError, match=r"^--forwarded-allow-ips: '10.0.0.300' is not an IP address"):
        ProxyHeaders(lambda environ, start_response: [], config)
    config = dataclasses.replace(build_config({}), forwarded_allow_ips=("*",), forwarded_headers=("x-real-ip",))
    with pytest.raises(ChaussetteError, match=r"^--forwarded-headers: unknown header 'x-real-ip'"):
        ProxyHeaders(lambda environ, start_response: [], config)


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--forwarded-allow-ips", "127.0.0.1,10.0.0.300", "argument --forwarded-allow-ips: '10.0.0.300' is not an IP "
                                                       "address, a CIDR range, '*' or 'unix'"),
    ("--forwarded-headers", "forwarded,x-real-ip", "argument --forwarded-headers: unknown header 'x-real-ip'; "
                                                   "choose from forwarded, x-forwarded-for, x-forwarded-proto, "
                                                   "x-forwarded-host, x-forwarded-port"),
])
def test_bad_entry_fails_the_start_before_any_socket_opens(tmp_path: Any, option: str, value: str,
                                                           message: str) -> None:
    """Checked while the command line is read, as argparse checks every option's value
    (exit 2, after the usage line): nothing is imported, bound or created."""
    path = tmp_path / "never.sock"
    failed = run_chaussette("--host", f"unix:{path}", "--forwarded-allow-ips", "127.0.0.1", option, value)
    assert assert_clean_error(failed) == message
    assert failed.code == 2
    assert "Serving on" not in failed.stderr and "Application is" not in failed.stderr
    assert not path.exists()


def test_layer_only_exists_when_peers_are_named() -> None:
    lifecycle = Lifecycle(30, logging.getLogger("test_proxy"))

    def app(environ: dict, start_response: Any) -> list[bytes]:
        return []

    assert layers.wrap(app, build_config({}), lifecycle) is app
    wrapped = layers.wrap(app, build_config({"forwarded_allow_ips": "127.0.0.1"}), lifecycle)
    assert isinstance(wrapped, ProxyHeaders) and wrapped.app is app
    assert repr(wrapped) == repr(app)


def test_start_up_line_says_what_is_trusted(proxy_log: list[str]) -> None:
    layer("127.0.0.1,unix", "x-forwarded-for")
    assert proxy_log == ["Trusting forwarded headers (x-forwarded-for) from 127.0.0.1, unix"]


# -- addresses and trust -----------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("192.0.2.1", "192.0.2.1"),
    ("2001:DB8:0:0::1", "2001:db8::1"),
    ("::ffff:192.0.2.1", "192.0.2.1"),
    ("::FFFF:c000:0201", "192.0.2.1"),
    ("::1", "::1"),
])
def test_pack_normalises(text: str, expected: str) -> None:
    packed = pack(text)
    assert packed is not None and unpack(packed) == expected


@pytest.mark.parametrize("text", ["", "192.0.2", "192.0.2.256", "0x7f.0.0.1", "01.2.3.4", "192.0.2.1 ",
                                  " 192.0.2.1", "fe80::1%eth0", "::1::", "unknown", "1.2.3.4\x00", "１.2.3.4",
                                  "\ud800", "[::1]", "192.0.2.1:80"])
def test_pack_refuses(text: str) -> None:
    assert pack(text) is None


@pytest.mark.parametrize(("entries", "peer", "trusted"), [
    ("127.0.0.1", "127.0.0.1", True),
    ("127.0.0.1", "127.0.0.2", False),
    ("127.0.0.1", "::ffff:127.0.0.1", True),  # a dual-stack listener's IPv4 peer
    ("::ffff:127.0.0.1", "127.0.0.1", True),
    ("10.0.0.0/8", "10.255.1.2", True),
    ("10.0.0.0/8", "11.0.0.1", False),
    ("10.0.0.0/8", "::ffff:10.1.1.1", True),
    ("::ffff:10.0.0.0/104", "10.1.1.1", True),  # a mapped range is the IPv4 range
    ("2001:db8::/32", "2001:db8:ffff::1", True),
    ("2001:db8::/32", "2001:db9::1", False),
    ("2001:db8::/32", "32.1.13.184", False),  # same leading bits, other family
    ("0.0.0.0/0", "2001:db8::1", False),
    ("::/0", "192.0.2.1", False),
    ("::1", "::1", True),
    ("fe80::/10", "fe80::1%eth0", True),  # a link-local peer's zone is its own host's
    ("*", "192.0.2.1", True),
    ("*", "not an address", True),
    ("127.0.0.1", "", False),
    ("127.0.0.1", "not an address", False),
    ("unix", "127.0.0.1", False),
])
def test_trust_decisions(entries: str, peer: str, trusted: bool) -> None:
    trust = Trust(entries.split(","))
    assert trust.trusts(peer) is trusted
    assert trust.trusts(peer) is trusted  # remembered, same answer


def test_remembered_decisions_stay_bounded() -> None:
    trust = Trust(["10.0.0.0/8"])
    for number in range(DECISIONS_KEPT * 2 + 10):
        assert trust.trusts(str(ipaddress.IPv4Address(0x0A000000 + number))) is True
    assert len(trust.decisions) <= DECISIONS_KEPT


def unmapped(address: Any) -> bool:
    return address.version == 4 or address.ipv4_mapped is None


@given(st.ip_addresses().filter(unmapped), st.integers(0, 128), st.ip_addresses().filter(unmapped))
def test_trust_matches_ipaddress(address: Any, prefix: int, peer: Any) -> None:
    """The packed-integer matching agrees with ipaddress's ``in`` (which knows nothing
    of IPv4-mapped addresses: those have their own cases above)."""
    network = ipaddress.ip_network((address, min(prefix, address.max_prefixlen)), strict=False)
    assert Trust([str(network)]).trusts(str(peer)) is (peer in network)
    assert Trust([str(address)]).trusts(str(peer)) is (peer == address)


# -- nodes, ports, hosts -----------------------------------------------------------------

@pytest.mark.parametrize(("text", "node"), [
    ("192.0.2.43", ("192.0.2.43", "")),
    ("192.0.2.43:4711", ("192.0.2.43", "4711")),
    ("192.0.2.43:_port", ("192.0.2.43", "")),
    ("[2001:db8:cafe::17]:4711", ("2001:db8:cafe::17", "4711")),
    ("[2001:DB8:CAFE:0::17]", ("2001:db8:cafe::17", "")),
    ("2001:db8:cafe:0:0::17", ("2001:db8:cafe::17", "")),  # bare, as X-Forwarded-For writes it
    ("[::ffff:192.0.2.43]:80", ("192.0.2.43", "80")),
    ("::ffff:192.0.2.43", ("192.0.2.43", "")),
    ("unknown", ("", "")),
    ("UNKNOWN:4711", ("", "4711")),
    ("_gazonk", ("", "")),
    ("_SEVKISEK:_port", ("", "")),
])
def test_parse_node(text: str, node: Node) -> None:
    assert parse_node(text) == node


@pytest.mark.parametrize("text", ["", "192.0.2.43:", "192.0.2.43:0", "192.0.2.43:65536", "192.0.2.43:08x",
                                  "[2001:db8::1", "[2001:db8::1]:", "[2001:db8::1]4711", "[192.0.2.43]",
                                  "[fe80::1%eth0]", "unix:", "localhost", "_", "_a b", "1.2.3.4:80:90",
                                  "2001:db8::zz", "\"192.0.2.43\"", "192.0.2.43 "])
def test_parse_node_refuses(text: str) -> None:
    assert parse_node(text) is None


@pytest.mark.parametrize(("text", "port"), [("80", "80"), ("065535", None), ("65535", "65535"), ("0", None),
                                            ("00443", None), ("443", "443"), ("_x", ""), ("", None), ("-1", None),
                                            ("+80", None), ("٨٠", None), ("80 ", None), ("123456", None)])
def test_parse_port(text: str, port: str | None) -> None:
    assert parse_port(text) == port


@pytest.mark.parametrize(("text", "host"), [
    ("example.com", Host("example.com", "")),
    ("Example.COM:8443", Host("Example.COM", "8443")),
    ("192.0.2.1:80", Host("192.0.2.1", "80")),
    ("[2001:db8::1]:8443", Host("[2001:db8::1]", "8443")),
    ("[2001:db8::1]", Host("[2001:db8::1]", "")),
    ("my_service", Host("my_service", "")),
])
def test_parse_host(text: str, host: Host) -> None:
    assert parse_host(text) == host


@pytest.mark.parametrize("text", ["", ":80", "example.com:", "example.com:0", "example.com:99999",
                                  "exa mple.com", "example.com/path", "user@example.com", "[zz::1]", "[::1",
                                  "-example.com", "example.com\r\nX: y", "exämple.com", "a" * 254,
                                  "example.com:80:80", "[fe80::1%eth0]"])
def test_parse_host_refuses(text: str) -> None:
    assert parse_host(text) is None


# -- Forwarded (RFC 7239) ----------------------------------------------------------------

@pytest.mark.parametrize(("value", "elements"), [
    # RFC 7239's own examples (sections 4 and 7.1)
    ('for="_gazonk"', [{"for": "_gazonk"}]),
    ('For="[2001:db8:cafe::17]:4711"', [{"for": "[2001:db8:cafe::17]:4711"}]),
    ("for=192.0.2.60;proto=http;by=203.0.113.43", [{"for": "192.0.2.60", "proto": "http", "by": "203.0.113.43"}]),
    ("for=192.0.2.43, for=198.51.100.17", [{"for": "192.0.2.43"}, {"for": "198.51.100.17"}]),
    ('for=192.0.2.43,for="[2001:db8:cafe::17]",for=unknown',
     [{"for": "192.0.2.43"}, {"for": "[2001:db8:cafe::17]"}, {"for": "unknown"}]),
    # several headers, as servers join them
    ("for=192.0.2.43;proto=https,for=10.0.0.1", [{"for": "192.0.2.43", "proto": "https"}, {"for": "10.0.0.1"}]),
    ("for=192.0.2.43, for=10.0.0.1", [{"for": "192.0.2.43"}, {"for": "10.0.0.1"}]),
    # quoting
    (r'for="\"quoted\\ pair";host="a,b;c"', [{"for": '"quoted\\ pair', "host": "a,b;c"}]),
    ('host="example.com:8443"', [{"host": "example.com:8443"}]),
    # empty elements and pairs, white space around the separators
    (" , ,for=a;;by=b; , ;", [{"for": "a", "by": "b"}, {}]),
    ("for=a ; proto=https ,for=b", [{"for": "a", "proto": "https"}, {"for": "b"}]),
    # a parameter twice in one element is dropped, the rest kept
    ("for=a;for=b;proto=https", [{"proto": "https"}]),
    # malformed elements are None, and what follows the next comma still parses
    ('for="unterminated, for=192.0.2.1', [None, {"for": "192.0.2.1"}]),
    ('for="a,b, for=192.0.2.1', [None, None, {"for": "192.0.2.1"}]),
    ("for=[2001:db8::1]", [None]),  # an IPv6 node must be quoted
    ("for = a", [None]),
    ("for=a b", [None]),
    ("=a", [None]),
    ("for=", [None]),
    ('for="a"b, proto=https', [None, {"proto": "https"}]),
    ("", []),
])
def test_parse_forwarded(value: str, elements: list) -> None:
    assert parse_forwarded(value) == elements


@pytest.mark.parametrize("value", ['for="' + "\\" * 8000, 'a="' + "," * 8000, ('for="a,' * 1200),
                                   ("a=b;" * 2000), ('a="\\",' * 1300), ("," * 8190), (";" * 8190)])
def test_parse_forwarded_is_linear_on_a_long_field(value: str) -> None:
    """A field is at most --limit-request-field-size (8190) long: hostile shapes of that
    size parse in well under a millisecond each (allowing for a loaded CI machine)."""
    started = time.perf_counter()
    parse_forwarded(value)
    assert time.perf_counter() - started < 0.25


# -- the layer: untrusted peers ----------------------------------------------------------

SPOOFED = {"HTTP_FORWARDED": "for=6.6.6.6;proto=https;host=evil.example",
           "HTTP_X_FORWARDED_FOR": "6.6.6.6", "HTTP_X_FORWARDED_PROTO": "https",
           "HTTP_X_FORWARDED_HOST": "evil.example", "HTTP_X_FORWARDED_PORT": "443"}


@pytest.mark.parametrize(("allow", "base"), [
    ("10.0.0.1", TCP_ENVIRON),
    ("10.0.0.0/8,::1", TCP_ENVIRON),
    ("unix", TCP_ENVIRON),  # a TCP peer at 127.0.0.1 is no unix peer
    ("127.0.0.1", UNIX_ENVIRON),  # and a unix peer's 127.0.0.1 is no TCP peer's
    ("127.0.0.0/8", UNIX_ENVIRON),
])
def test_untrusted_peer_loses_every_forwarded_header(allow: str, base: dict) -> None:
    seen = call(allow, ALL_HEADERS, base, **SPOOFED, HTTP_ACCEPT="*/*")
    assert FORWARDED_KEYS.isdisjoint(seen)
    assert {key: seen.get(key) for key in SEEN} == unchanged(base)
    assert seen["HTTP_ACCEPT"] == "*/*"


def test_untrusted_peer_loses_even_disabled_headers() -> None:
    seen = call("10.0.0.1", "x-forwarded-for", **SPOOFED)
    assert FORWARDED_KEYS.isdisjoint(seen)


def test_peer_is_kept_on_every_request() -> None:
    assert call("10.0.0.1")["chaussette.peer"] == ("127.0.0.1", "40000")
    assert call("127.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.1")["chaussette.peer"] == ("127.0.0.1", "40000")
    assert call("unix", base=UNIX_ENVIRON)["chaussette.peer"] == ("127.0.0.1", "")
    without_port = {key: value for key, value in TCP_ENVIRON.items() if key != "REMOTE_PORT"}
    assert call("127.0.0.1", base=without_port)["chaussette.peer"] == ("127.0.0.1", "")


# -- the layer: trusted peers, X-Forwarded-* ---------------------------------------------

@pytest.mark.parametrize(("allow", "chain", "address", "port"), [
    ("127.0.0.1", "192.0.2.1", "192.0.2.1", ""),
    ("127.0.0.1", "192.0.2.1:4711", "192.0.2.1", "4711"),
    ("127.0.0.1", "[2001:db8::1]:4711", "2001:db8::1", "4711"),
    ("127.0.0.1", "2001:DB8::1", "2001:db8::1", ""),
    ("127.0.0.1", "::ffff:192.0.2.1", "192.0.2.1", ""),
    # the right-most untrusted hop: what the client wrote itself is left of it
    ("127.0.0.1", "6.6.6.6, 192.0.2.1", "192.0.2.1", ""),
    ("127.0.0.1,10.0.0.0/8", "6.6.6.6, 192.0.2.1, 10.0.0.2, 10.9.9.9", "192.0.2.1", ""),
    ("127.0.0.1,2001:db8::/32", "192.0.2.1,2001:db8::5", "192.0.2.1", ""),
    # every hop trusted: the left-most is the client
    ("127.0.0.1,10.0.0.0/8", "10.0.0.3, 10.0.0.2", "10.0.0.3", ""),
    ("*", "6.6.6.6, 192.0.2.1", "6.6.6.6", ""),
    # empty list items are skipped
    ("127.0.0.1", ",192.0.2.1,, ", "192.0.2.1", ""),
    ("127.0.0.1", "192.0.2.1,\t", "192.0.2.1", ""),
    # several header lines, as backends join them
    ("127.0.0.1,10.0.0.2", "192.0.2.1,10.0.0.2", "192.0.2.1", ""),
])
def test_x_forwarded_for_walk(allow: str, chain: str, address: str, port: str) -> None:
    assert result(allow, HTTP_X_FORWARDED_FOR=chain) == client(address, port)


@pytest.mark.parametrize("chain", ["garbage", "192.0.2.1, garbage", "unknown", "_hidden", "unix:", "",
                                   "192.0.2.1 10.0.0.1", "10.0.0.2, _hidden", "192.0.2.1, 10.0.0.2, unix:"])
def test_x_forwarded_for_without_an_identified_client_changes_nothing(chain: str) -> None:
    """The walk stops at a hop it cannot place: REMOTE_ADDR stays the peer's, never a
    guess (and never a hop left of it, which the client may have written)."""
    assert result("127.0.0.1,10.0.0.0/8", HTTP_X_FORWARDED_FOR=chain) == unchanged()


def test_malformed_values_are_logged_at_debug(proxy_log: list[str]) -> None:
    seen = result("127.0.0.1", ALL_HEADERS, HTTP_X_FORWARDED_FOR="192.0.2.1, garbage",
                  HTTP_X_FORWARDED_PROTO="gopher", HTTP_X_FORWARDED_HOST="a b", HTTP_X_FORWARDED_PORT="http")
    assert seen == unchanged()
    assert proxy_log[1:] == [
        "ignoring a malformed X-Forwarded-For hop from 127.0.0.1: 'garbage'",
        "ignoring a malformed X-Forwarded-Proto from 127.0.0.1: 'gopher'",
        "ignoring a malformed X-Forwarded-Host from 127.0.0.1: 'a b'",
        "ignoring a malformed X-Forwarded-Port from 127.0.0.1: 'http'",
    ]


@pytest.mark.parametrize(("proto", "scheme"), [("https", "https"), ("HTTPS", "https"), ("http", "http"),
                                               (" https ", "https"), ("http, https", "https"),
                                               ("https,http", "http"), ("wss", "http"), ("ftp", "http"),
                                               ("", "http"), ("https;", "http")])
def test_x_forwarded_proto(proto: str, scheme: str) -> None:
    assert call("127.0.0.1", HTTP_X_FORWARDED_PROTO=proto)["wsgi.url_scheme"] == scheme


@pytest.mark.parametrize(("environ", "host", "name", "port"), [
    ({"HTTP_X_FORWARDED_HOST": "example.com"}, "example.com", "example.com", "80"),
    ({"HTTP_X_FORWARDED_HOST": "example.com:8080"}, "example.com:8080", "example.com", "8080"),
    ({"HTTP_X_FORWARDED_HOST": "example.com:80"}, "example.com", "example.com", "80"),
    ({"HTTP_X_FORWARDED_HOST": "example.com", "HTTP_X_FORWARDED_PROTO": "https"},
     "example.com", "example.com", "443"),
    ({"HTTP_X_FORWARDED_HOST": "example.com", "HTTP_X_FORWARDED_PORT": "8443"},
     "example.com:8443", "example.com", "8443"),
    ({"HTTP_X_FORWARDED_HOST": "example.com:1", "HTTP_X_FORWARDED_PORT": "8443"},
     "example.com:8443", "example.com", "8443"),
    ({"HTTP_X_FORWARDED_HOST": "example.com", "HTTP_X_FORWARDED_PORT": "443", "HTTP_X_FORWARDED_PROTO": "https"},
     "example.com", "example.com", "443"),
    ({"HTTP_X_FORWARDED_HOST": "[2001:db8::1]:8443"}, "[2001:db8::1]:8443", "[2001:db8::1]", "8443"),
    ({"HTTP_X_FORWARDED_HOST": "evil.example, example.com"}, "example.com", "example.com", "80"),
    # a port alone keeps the request's host name
    ({"HTTP_X_FORWARDED_PORT": "8443"}, "127.0.0.1:8443", "127.0.0.1", "8443"),
    ({"HTTP_X_FORWARDED_PORT": "80"}, "127.0.0.1", "127.0.0.1", "80"),
    # malformed values leave everything as it was
    ({"HTTP_X_FORWARDED_HOST": "exa mple"}, "127.0.0.1:8000", "127.0.0.1", "8000"),
    ({"HTTP_X_FORWARDED_PORT": "0"}, "127.0.0.1:8000", "127.0.0.1", "8000"),
    # and one malformed value does not stop the other
    ({"HTTP_X_FORWARDED_HOST": "example.com", "HTTP_X_FORWARDED_PORT": "x"}, "example.com", "example.com", "80"),
    ({"HTTP_X_FORWARDED_HOST": "exa mple", "HTTP_X_FORWARDED_PORT": "8443"},
     "127.0.0.1:8443", "127.0.0.1", "8443"),
])
def test_x_forwarded_host_and_port(environ: dict, host: str, name: str, port: str) -> None:
    seen = call("127.0.0.1", ALL_HEADERS, **environ)
    assert (seen["HTTP_HOST"], seen["SERVER_NAME"], seen["SERVER_PORT"]) == (host, name, port)


def test_port_alone_without_a_host_header_takes_the_server_name() -> None:
    base = {key: value for key, value in TCP_ENVIRON.items() if key != "HTTP_HOST"}
    seen = call("127.0.0.1", ALL_HEADERS, base, HTTP_X_FORWARDED_PORT="8443")
    assert (seen["HTTP_HOST"], seen["SERVER_NAME"], seen["SERVER_PORT"]) == ("127.0.0.1:8443", "127.0.0.1", "8443")


def test_trusted_peer_loses_the_headers_not_enabled() -> None:
    seen = call("127.0.0.1", "x-forwarded-for", **SPOOFED)
    assert {key for key in seen if key in FORWARDED_KEYS} == {"HTTP_X_FORWARDED_FOR"}
    assert {key: seen.get(key) for key in SEEN} == client("6.6.6.6")


def test_trusted_peer_keeps_the_enabled_headers_it_sent() -> None:
    seen = call("127.0.0.1", ALL_HEADERS, HTTP_X_FORWARDED_FOR="192.0.2.1", HTTP_X_FORWARDED_PROTO="https")
    assert (seen["HTTP_X_FORWARDED_FOR"], seen["HTTP_X_FORWARDED_PROTO"]) == ("192.0.2.1", "https")


def test_default_headers_are_x_forwarded_for_and_proto() -> None:
    """Forwarded is opt-in: a proxy that only sets X-Forwarded-* passes a client's own
    Forwarded header on, and preferred over them it would name any client it liked."""
    assert build_config({}).forwarded_headers == ("x-forwarded-for", "x-forwarded-proto")
    seen = call("127.0.0.1", HTTP_X_FORWARDED_HOST="example.com", HTTP_X_FORWARDED_PORT="8443",
                HTTP_X_FORWARDED_PROTO="https", HTTP_FORWARDED="for=6.6.6.6;proto=http")
    assert {key: seen.get(key) for key in SEEN} == {**unchanged(), "wsgi.url_scheme": "https"}
    assert {key for key in seen if key in FORWARDED_KEYS} == {"HTTP_X_FORWARDED_PROTO"}


# -- the layer: trusted peers, Forwarded -------------------------------------------------

@pytest.mark.parametrize(("forwarded", "expected"), [
    ('for="[2001:db8:cafe::17]:4711"', client("2001:db8:cafe::17", "4711")),
    ("for=192.0.2.60;proto=https;by=203.0.113.43", client("192.0.2.60", "", "https")),
    ("for=192.0.2.60;PROTO=HTTPS", client("192.0.2.60", "", "https")),
    # the walk: the element of the first untrusted hop from the right, whole
    ("for=6.6.6.6;proto=http, for=192.0.2.60;proto=https, for=10.0.0.2;proto=http",
     client("192.0.2.60", "", "https")),
    ("for=10.0.0.3;proto=https, for=10.0.0.2", client("10.0.0.3", "", "https")),  # all trusted: left-most
    # no address for the client: REMOTE_ADDR stays the peer's, the rest of its element counts
    ("for=_hidden;proto=https", {**unchanged(), "wsgi.url_scheme": "https"}),
    ("for=unknown;proto=https, for=10.0.0.2", {**unchanged(), "wsgi.url_scheme": "https"}),
    ("proto=https", {**unchanged(), "wsgi.url_scheme": "https"}),
    # malformed fields are dropped one by one
    ("for=192.0.2.60;proto=gopher", client("192.0.2.60")),
    ('for="192.0.2.60:99999";proto=https', {**unchanged(), "wsgi.url_scheme": "https"}),
    # a malformed element on the walk: nothing is known of the client
    ('for=192.0.2.60;proto=https, for="10.0.0.2', unchanged()),
    ("for=192.0.2.60;proto=https, for 10.0.0.2", unchanged()),
    # a malformed element left of the client is the client's own business
    ('for="6.6.6.6, for=192.0.2.60;proto=https', client("192.0.2.60", "", "https")),
    ("", unchanged()),
])
def test_forwarded(forwarded: str, expected: dict) -> None:
    assert result("127.0.0.1,10.0.0.0/8", WITH_FORWARDED, HTTP_FORWARDED=forwarded) == expected


def test_forwarded_host() -> None:
    seen = result("127.0.0.1", WITH_FORWARDED, HTTP_FORWARDED='for=192.0.2.60;proto=https;host="example.com"')
    assert seen == {**client("192.0.2.60", "", "https"), "HTTP_HOST": "example.com", "SERVER_NAME": "example.com",
                    "SERVER_PORT": "443"}
    seen = result("127.0.0.1", WITH_FORWARDED, HTTP_FORWARDED='host="example.com:8080"')
    assert seen == {**unchanged(), "HTTP_HOST": "example.com:8080", "SERVER_NAME": "example.com",
                    "SERVER_PORT": "8080"}
    assert result("127.0.0.1", WITH_FORWARDED, HTTP_FORWARDED='host="a b"') == unchanged()
    # a host with a port must be quoted (":" is no token character)
    assert result("127.0.0.1", WITH_FORWARDED, HTTP_FORWARDED="host=example.com:8080") == unchanged()


def test_forwarded_wins_over_x_forwarded() -> None:
    seen = result("127.0.0.1", ALL_HEADERS, HTTP_FORWARDED="for=192.0.2.60", HTTP_X_FORWARDED_FOR="198.51.100.1",
                  HTTP_X_FORWARDED_PROTO="https", HTTP_X_FORWARDED_HOST="example.com")
    assert seen == client("192.0.2.60")


def test_x_forwarded_is_read_when_forwarded_is_not_enabled() -> None:
    seen = call("127.0.0.1", "x-forwarded-for", HTTP_FORWARDED="for=192.0.2.60",
                HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert seen["REMOTE_ADDR"] == "198.51.100.1"
    assert "HTTP_FORWARDED" not in seen


# -- the layer: unix peers ---------------------------------------------------------------

@pytest.mark.parametrize(("allow", "address"), [("unix", "192.0.2.1"), ("*", "192.0.2.1"),
                                                ("127.0.0.1", "127.0.0.1"), ("10.0.0.1", "127.0.0.1")])
def test_unix_peer_trusted_only_when_unix_or_any_is_listed(allow: str, address: str) -> None:
    seen = call(allow, base=UNIX_ENVIRON, HTTP_X_FORWARDED_FOR="192.0.2.1")
    assert seen["REMOTE_ADDR"] == address
    assert seen["chaussette.peer"] == ("127.0.0.1", "")


# -- hostile input -----------------------------------------------------------------------

#: What a header value can hold on any backend: latin-1 text of any bytes, or any text.
ANY_VALUE = st.one_of(st.binary(max_size=200).map(lambda raw: raw.decode("latin-1")), st.text(max_size=200))
PIECES = st.lists(st.sampled_from(["for=", "proto=", "host=", "by=", '"', "\\", ",", ";", " ", "[", "]", ":",
                                   "192.0.2.1", "10.0.0.2", "2001:db8::1", "::ffff:10.0.0.2", "_x", "unknown",
                                   "https", "http", "=", "80", "example.com", "\t", "\x00", "é"]),
                  max_size=16).map("".join)
VALUES = st.one_of(ANY_VALUE, PIECES)


@settings(deadline=None, max_examples=300)
@given(environ=st.fixed_dictionaries({}, optional={key: VALUES for key in FORWARDED_KEYS}),
       peer=st.sampled_from([TCP_ENVIRON, UNIX_ENVIRON]), allow=st.sampled_from(["127.0.0.1,10.0.0.0/8", "*"]))
@example(environ={"HTTP_FORWARDED": 'for="[::1]:0"'}, peer=TCP_ENVIRON, allow="*")
def test_any_header_value_never_raises(environ: dict, peer: dict, allow: str) -> None:
    seen = call(allow, ALL_HEADERS, peer, **environ)
    assert pack(seen["REMOTE_ADDR"]) is not None
    assert seen["REMOTE_PORT"] == "" or 0 < int(seen["REMOTE_PORT"]) < 65536
    assert seen["wsgi.url_scheme"] in ("http", "https")
    assert seen["SERVER_PORT"].isascii() and seen["SERVER_PORT"].isdigit()
    assert parse_host(seen["HTTP_HOST"]) is not None
    assert seen["chaussette.peer"] == (peer["REMOTE_ADDR"], peer["REMOTE_PORT"])


@settings(deadline=None, max_examples=300)
@given(VALUES)
def test_parsers_never_raise(value: str) -> None:
    parse_forwarded(value)
    parse_node(value)
    parse_host(value)
    parse_port(value)
    pack(value)


@settings(deadline=None, max_examples=200)
@given(peer=ANY_VALUE, allow=st.sampled_from(["127.0.0.1", "10.0.0.0/8,::1", "unix"]))
def test_any_peer_address_never_raises(peer: str, allow: str) -> None:
    seen = call(allow, base={**TCP_ENVIRON, "REMOTE_ADDR": peer}, HTTP_X_FORWARDED_FOR="192.0.2.1")
    assert seen["REMOTE_ADDR"] in (peer, "192.0.2.1")
    assert seen["chaussette.peer"] == (peer, "40000")


@settings(deadline=None, max_examples=500)
@given(st.one_of(PIECES, ANY_VALUE).map(lambda value: value.replace('"', "")))
@example("for=a;;by=b; , ;,\x0b, for=a=b,for =a, for=a b,,for=x;for=y;proto=https")
def test_unquoted_forwarded_splits_as_the_full_parser_parses(value: str) -> None:
    assert parse_forwarded(value) == _parse_quoted(value)


TRUSTED_NETWORK = ipaddress.ip_network("10.0.0.0/8")
HOPS = st.lists(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6),
                          st.integers(0, 2**24 - 1).map(lambda low: TRUSTED_NETWORK[low])), min_size=1, max_size=6)


def model_client(hops: list) -> Any:
    """The right-most hop that is not trusted, else the left-most (uvicorn's rule)."""
    for hop in reversed(hops):
        if not (hop.version == 4 and (hop in TRUSTED_NETWORK or str(hop) == "127.0.0.1")):
            return hop
    return hops[0]


@settings(deadline=None)
@given(HOPS, st.booleans())
def test_walk_matches_the_model(hops: list, spaces: bool) -> None:
    hops = [hop for hop in hops if not (hop.version == 6 and hop.ipv4_mapped)]
    if not hops:
        return
    separator = ", " if spaces else ","
    expected = str(model_client(hops))
    chain = separator.join(str(hop) for hop in hops)
    assert call("127.0.0.1,10.0.0.0/8", HTTP_X_FORWARDED_FOR=chain)["REMOTE_ADDR"] == expected
    forwarded = separator.join(f'for="[{hop}]"' if hop.version == 6 else f"for={hop}" for hop in hops)
    assert call("127.0.0.1,10.0.0.0/8", WITH_FORWARDED, HTTP_FORWARDED=forwarded)["REMOTE_ADDR"] == expected


TOKENS = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789-._~!#$%&'*+^`|", min_size=1, max_size=8)


@settings(deadline=None)
@given(st.lists(st.dictionaries(TOKENS.map(str.lower), st.one_of(TOKENS, st.text(max_size=8)), max_size=4),
                max_size=4))
def test_forwarded_round_trip(elements: list[dict[str, str]]) -> None:
    """Elements written as RFC 7239 says (values quoted with quoted-pairs where they are
    not tokens) parse back to themselves."""
    def written(value: str) -> str:
        if value and all(char in "abcdefghijklmnopqrstuvwxyzABC0123456789-._~!#$%&'*+^`|" for char in value):
            return value
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    value = ", ".join(";".join(f"{name}={written(param)}" for name, param in element.items())
                      for element in elements)
    assert parse_forwarded(value) == [element for element in elements if element]
