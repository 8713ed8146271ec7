"""Property-based tests of core's own parsers: addresses, HTTP framing, settings.

Each parser either returns a valid result or raises its one documented error
(SocketError, HTTPError, ChaussetteError); anything else would be a traceback in
production. The strict-framing rules are checked as "accepted if and only if".
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import math
import re
import socket

import pytest
from conftest import stop_cleanly
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chaussette.addresses import FdAddress, TcpAddress, UnixAddress, parse_address
from chaussette.cli import build_parser
from chaussette.errors import ChaussetteError, SocketError
from chaussette.framing import (
    Framing,
    HTTPError,
    Limits,
    RequestHead,
    body_framing,
    check_trailer,
    chunk_size,
    dechunk,
    parse_head,
    read_head,
)
from chaussette.settings import ADDRESS_FAMILIES, CORE_SETTINGS, build_config
from chaussette_testing import start_server
from chaussette_testing.client import connect

settings.register_profile("chaussette", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("chaussette")

FAMILIES = st.sampled_from([None, *ADDRESS_FAMILIES])
PORTS = st.integers(0, 65535)

# -- addresses --------------------------------------------------------------------------

HOST_PIECES = st.lists(st.sampled_from(["unix:", "fd://", "[", "]", ":", "::1", "/", "//", "1", "-1", "a", ".",
                                        " ", "\x00", "@", "#", "localhost", "127.0.0.1", "é", "\t"]),
                       max_size=8).map("".join)


@given(host=st.one_of(st.text(), HOST_PIECES), port=st.integers(-2**40, 2**40), family=FAMILIES)
def test_parse_address_raises_only_socket_error(host: str, port: int, family: str | None) -> None:
    try:
        address = parse_address(host, port, family)
    except SocketError:
        return
    assert isinstance(address, (TcpAddress, UnixAddress, FdAddress))
    if isinstance(address, TcpAddress):
        assert 0 <= address.port <= 65535 and address.host
    if isinstance(address, UnixAddress):
        assert address.path and "\x00" not in address.path
    if isinstance(address, FdAddress):
        assert 0 <= address.fd < 2**31


@given(ip=st.ip_addresses(v=4), port=PORTS)
def test_ipv4_round_trip(ip: ipaddress.IPv4Address, port: int) -> None:
    assert parse_address(str(ip), port) == TcpAddress(str(ip), port)
    assert parse_address(str(ip), port, "AF_INET") == TcpAddress(str(ip), port, ipv6=False)


@given(ip=st.ip_addresses(v=6), port=PORTS, bracketed=st.booleans())
def test_ipv6_round_trip(ip: ipaddress.IPv6Address, port: int, bracketed: bool) -> None:
    text = f"[{ip}]" if bracketed else str(ip)
    address = parse_address(text, port)
    assert address == TcpAddress(str(ip), port, ipv6=True)
    assert str(address) == f"[{ip}]:{port}"


@given(name=st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?){0,3}",
                          fullmatch=True), port=PORTS)
def test_hostname_round_trip(name: str, port: int) -> None:
    address = parse_address(name, port)
    assert address == TcpAddress(name, port) and str(address) == f"{name}:{port}"


@given(path=st.text(min_size=1).map(lambda text: "/" + text.lstrip("/")).filter(
    lambda path: "\x00" not in path and path == path.strip()))
def test_unix_round_trip(path: str) -> None:
    address = UnixAddress(path)
    assert parse_address(str(address)) == address
    assert parse_address("unix://" + path) == address
    assert parse_address(path, family="AF_UNIX") == address


@given(fd=st.integers(0, 2**31 - 1))
def test_fd_round_trip(fd: int) -> None:
    assert parse_address(str(FdAddress(fd))) == FdAddress(fd)


# -- HTTP request heads and framing -----------------------------------------------------

def reader(raw: bytes) -> io.BufferedReader:
    """What a backend reads from: a buffered binary stream (like socket.makefile('rb'))."""
    return io.BufferedReader(io.BytesIO(raw))


def parse(raw: bytes) -> tuple[RequestHead | None, Framing | None]:
    head = read_head(reader(raw).readline)
    return head, (body_framing(head) if head is not None else None)


HEAD_PIECES = st.lists(st.sampled_from([
    b"GET", b"POST", b" ", b"/", b"/x?y=1", b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"\r\n", b"\r", b"\n",
    b"\x00", b"\t", b"Host: x", b":", b"Content-Length", b"Transfer-Encoding", b"chunked", b"5", b"+5",
    b"1_0", b"-1", b",", b"\xa0", b"\x85", b"\x0b", b"identity", b"99999999999999999999",
]), max_size=30).map(b"".join)


@given(raw=st.one_of(st.binary(max_size=300), HEAD_PIECES))
@example(raw=b"POST / HTTP/1.1\r\nContent-Length: \xa05\r\n\r\n")
def test_read_head_raises_only_http_error(raw: bytes) -> None:
    try:
        head, framing = parse(raw)
    except HTTPError as exc:
        assert 400 <= exc.status < 600
        return
    if head is not None:
        assert head.version in ((1, 0), (1, 1))
        assert isinstance(framing, Framing) and framing.length >= 0


TOKEN = st.from_regex(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,12}", fullmatch=True)
VALUE = st.from_regex(r"([\x21-\x7e\x80-\xff]([\x20-\x7e\x80-\xff\t]{0,20}[\x21-\x7e\x80-\xff])?)?",
                      fullmatch=True)


@given(method=TOKEN, target=st.from_regex(r"/[\x21-\x7e]{0,30}", fullmatch=True), minor=st.sampled_from([0, 1]),
       fields=st.lists(st.tuples(TOKEN.filter(lambda name: name.lower() not in
                                              ("content-length", "transfer-encoding")), VALUE), max_size=10),
       ows=st.sampled_from(["", " ", "\t", "  \t"]))
def test_valid_heads_parse_exactly(method: str, target: str, minor: int, fields: list, ows: str) -> None:
    raw = f"{method} {target} HTTP/1.{minor}\r\n".encode("latin-1")
    raw += b"".join(f"{name}:{ows}{value}{ows}\r\n".encode("latin-1") for name, value in fields) + b"\r\n"
    head, framing = parse(raw)
    assert head == RequestHead(method, target, (1, minor), [(name.lower(), value) for name, value in fields])
    assert framing == Framing()
    assert parse_head(raw) == head


VALID_HEADS = st.tuples(st.from_regex(r"(\r\n){0,5}", fullmatch=True).map(str.encode),
                        st.from_regex(r"(GET|post) /[a-z?=]{0,30} HTTP/1\.[01]\r\n", fullmatch=True).map(str.encode),
                        st.lists(st.tuples(TOKEN, VALUE), max_size=8).map(
                            lambda fields: "".join(f"{k}: {v}\r\n" for k, v in fields).encode("latin-1"))
                        ).map(lambda parts: parts[0] + parts[1] + parts[2] + b"\r\n")


@given(raw=st.one_of(st.binary(max_size=300), HEAD_PIECES, VALID_HEADS),
       limits=st.one_of(st.just(Limits()), st.builds(Limits, st.integers(1, 40), st.integers(0, 6),
                                                     st.integers(1, 40))))
@example(raw=b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", limits=Limits())
@example(raw=b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET", limits=Limits())
@example(raw=b"\r\n\r\nGET / HTTP/1.1\r\n\r\n", limits=Limits())
@example(raw=b"GET /abc HTTP/1.1\r\nHost: x\r\n\r\n", limits=Limits(request_line=17))
@example(raw=b"GET /abc HTTP/1.1\r\nHost: xy\r\n\r\n", limits=Limits(field_size=7))
def test_parse_head_agrees_with_read_head(raw: bytes, limits: Limits) -> None:
    """The in-memory plug point (waitress) accepts exactly what the stream parser
    accepts when the head is the whole buffer, limits included, and refuses the same way."""
    stream = io.BytesIO(raw)
    try:
        expected = read_head(stream.readline, limits)
    except HTTPError as exc:
        with pytest.raises(HTTPError) as refused:
            parse_head(raw, limits)
        assert refused.value.status == exc.status
        return
    if expected is None or stream.tell() != len(raw):  # empty, or not just one head
        with pytest.raises(HTTPError, match="incomplete request head"):
            parse_head(raw, limits)
    else:
        assert parse_head(raw, limits) == expected


def with_length(*values: bytes) -> bytes:
    fields = b"".join(b"Content-Length: " + value + b"\r\n" for value in values)
    return b"POST / HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n"


DECORATED_LENGTH = st.tuples(st.sampled_from(["", " ", "\t", "+", "-", "0x", "\xa0", "\x85", "\x0b", "\u00b2"]),
                             st.from_regex(r"[0-9]{1,20}(_[0-9])?", fullmatch=True),
                             st.sampled_from(["", " ", "\t", "\xa0", "\x85", " 5", "5"])).map("".join)


@given(value=st.one_of(st.text(st.characters(max_codepoint=255, blacklist_characters="\r\n,")), DECORATED_LENGTH))
@example(value="\xa05")
@example(value="5\x85")
@example(value="+5")
@example(value="1_0")
@example(value="0x5")
@example(value="5 5")
def test_content_length_accepted_iff_digits(value: str) -> None:
    digits = re.fullmatch(r"[ \t]*([0-9]{1,18})[ \t]*", value)
    try:
        _, framing = parse(with_length(value.encode("latin-1")))
    except HTTPError as exc:
        assert exc.status == 400
        assert digits is None, f"{value!r} is a valid Content-Length but was refused"
        return
    assert digits is not None, f"{value!r} was accepted as {framing}"
    assert framing == Framing(length=int(digits.group(1)))


@given(first=st.integers(0, 10**18 - 1), second=st.integers(0, 10**18 - 1), as_list=st.booleans())
def test_different_content_lengths_are_refused(first: int, second: int, as_list: bool) -> None:
    values = [b"%d" % first, b"%d" % second]
    raw = with_length(b", ".join(values)) if as_list else with_length(*values)
    if first == second:  # RFC 9110 8.6: identical repeats may be collapsed into one
        assert parse(raw)[1] == Framing(length=first)
    else:
        with pytest.raises(HTTPError, match="conflicting"):
            parse(raw)


@pytest.mark.parametrize("value", [b"5, +5", b"5,\xa05", b"5, 5 5", b"5,,5", b"5, ", b",5"])
def test_content_length_list_members_must_be_digits(value: bytes) -> None:
    with pytest.raises(HTTPError):
        parse(with_length(value))


@given(length=st.integers(0, 1000), coding=st.sampled_from([b"chunked", b"CHUNKED", b"chunked ", b"gzip"]),
       te_first=st.booleans())
def test_transfer_encoding_with_content_length_is_refused(length: int, coding: bytes, te_first: bool) -> None:
    fields = [b"Content-Length: %d\r\n" % length, b"Transfer-Encoding: " + coding + b"\r\n"]
    if te_first:
        fields.reverse()
    with pytest.raises(HTTPError, match="both Transfer-Encoding and Content-Length"):
        parse(b"POST / HTTP/1.1\r\nHost: x\r\n" + b"".join(fields) + b"\r\n")


@pytest.mark.parametrize("coding", [b"chunked\xa0", b"\x85chunked", b"chunked, chunked", b"identity, chunked"])
def test_only_plain_chunked_is_accepted(coding: bytes) -> None:
    with pytest.raises(HTTPError, match="unsupported Transfer-Encoding"):
        parse(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + coding + b"\r\n\r\n")


VALID_LINES = [b"POST /path?q=1 HTTP/1.1", b"Host: example", b"X-Thing: some value", b"Content-Length: 3"]


@given(line=st.integers(0, len(VALID_LINES) - 1), data=st.data(), bad=st.sampled_from([b"\r", b"\n", b"\x00"]))
def test_bare_cr_lf_or_nul_in_a_line_is_refused(line: int, data: st.DataObject, bad: bytes) -> None:
    lines = list(VALID_LINES)
    position = data.draw(st.integers(0, len(lines[line])), label="position")
    lines[line] = lines[line][:position] + bad + lines[line][position:]
    raw = b"".join(text + b"\r\n" for text in lines) + b"\r\n" + b"abc"
    assert parse(b"".join(text + b"\r\n" for text in VALID_LINES) + b"\r\nabc")[1] == Framing(length=3)
    with pytest.raises(HTTPError) as refused:
        parse(raw)
    assert refused.value.status == 400


def chunked(parts: list[bytes], extensions: bool, trailers: list[tuple[str, str]]) -> bytes:
    body = b"".join(b"%x%s\r\n%s\r\n" % (len(part), b";ext=1" if extensions else b"", part) for part in parts)
    return body + b"0\r\n" + b"".join(f"{k}: {v}\r\n".encode("latin-1") for k, v in trailers) + b"\r\n"


@given(parts=st.lists(st.binary(min_size=1, max_size=200), max_size=8), extensions=st.booleans(),
       trailers=st.lists(st.tuples(TOKEN, VALUE), max_size=3), rest=st.binary(max_size=20))
def test_dechunk_round_trip(parts: list[bytes], extensions: bool, trailers: list, rest: bytes) -> None:
    stream = reader(chunked(parts, extensions, trailers) + rest)
    sink = io.BytesIO()
    assert dechunk(stream, sink) == sum(map(len, parts))
    assert sink.getvalue() == b"".join(parts)
    assert stream.read() == rest, "dechunk must stop exactly at the end of the body"


CHUNK_PIECES = st.lists(st.sampled_from([b"0", b"5", b"f", b"ffffffffffffffff", b"-1", b"0x5", b";x=y", b"\r\n",
                                         b"\r", b"\n", b"hello", b" ", b"X-T: v", b"\x00"]),
                        max_size=20).map(b"".join)


@given(raw=st.one_of(st.binary(max_size=300), CHUNK_PIECES))
@example(raw=b"ffffffffffff\r\nabc")  # a huge size must not be allocated up front
@example(raw=b"7fffffffffffffff\r\nabc")
def test_dechunk_raises_only_http_error(raw: bytes) -> None:
    sink = io.BytesIO()
    try:
        size = dechunk(reader(raw), sink)
    except HTTPError as exc:
        assert exc.status == 400
        return
    assert size == len(sink.getvalue())


@given(size=st.integers(0, 16**16 - 1), upper=st.booleans(), extension=st.sampled_from([b"", b";a=b", b" ;x"]))
def test_chunk_size_round_trip(size: int, upper: bool, extension: bytes) -> None:
    digits = (b"%X" if upper else b"%x") % size
    assert chunk_size(digits + extension + b"\r\n") == size


@given(line=st.one_of(st.binary(max_size=40), CHUNK_PIECES))
@example(line=b"\r\n")
@example(line=b"0x5\r\n")
@example(line=b"+5\r\n")
@example(line=b" 5\r\n")
@example(line=b"5\n")
@example(line=b"5_0\r\n")
@example(line=b"10000000000000000\r\n")
def test_chunk_size_raises_only_http_error(line: bytes) -> None:
    try:
        size = chunk_size(line)
    except HTTPError as exc:
        assert exc.status == 400
        return
    assert line.endswith(b"\r\n") and line[:1] in b"0123456789abcdefABCDEF" and line[:1]
    assert 0 <= size < 16**16


@given(raw=st.one_of(st.binary(max_size=200), CHUNK_PIECES,
                     st.lists(st.tuples(TOKEN, VALUE), max_size=3).map(
                         lambda fields: b"".join(f"{k}: {v}\r\n".encode("latin-1") for k, v in fields) + b"\r\n")))
@example(raw=b"\r\n")
@example(raw=b"X-T: 1\r\n\r\n")
@example(raw=b"X-T: 1\n\r\n")
@example(raw=b"X-T: 1\r\n\r\nmore")
def test_check_trailer_agrees_with_dechunk(raw: bytes) -> None:
    """The in-memory trailer check (waitress, gevent) accepts a trailer section exactly
    when ``dechunk`` would accept it as the whole rest of a body."""
    stream = io.BytesIO(b"0\r\n" + raw)
    try:
        dechunk(stream, io.BytesIO())
        accepted = stream.tell() == len(raw) + 3
    except HTTPError:
        accepted = False
    if accepted:
        check_trailer(raw)
    else:
        with pytest.raises(HTTPError) as refused:
            check_trailer(raw)
        assert refused.value.status == 400


def test_huge_chunk_size_is_answered_400_by_the_server() -> None:
    """The same input on a real wsgiref server: a clean 400, not a dropped connection."""
    with start_server("--host", "127.0.0.1", "--port", "0", "chaussette_testing.apps.app") as server:
        with connect(server.tcp_address) as sock:
            sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"ffffffffffff\r\nnot nearly that much")
            sock.shutdown(socket.SHUT_WR)
            answer = b"".join(iter(lambda: sock.recv(65536), b""))
        assert answer.startswith(b"HTTP/1.1 400 "), answer
        assert "unexpected error" not in server.output
        stop_cleanly(server)


# -- settings ---------------------------------------------------------------------------

ANY_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(), st.text(max_size=30),
                      st.lists(st.one_of(st.integers(-2**40, 2**40), st.text(max_size=5)), max_size=3))
FLOAT_SETTINGS = {"graceful_timeout", "keep_alive"}


def assert_usable(config: object) -> None:
    """Accepted values are ones the OS calls downstream take without overflowing."""
    for name in FLOAT_SETTINGS:
        assert math.isfinite(getattr(config, name)) and 0 <= getattr(config, name) < 2**31
    for name in ("backlog", "limit_request_line", "limit_request_fields", "limit_request_field_size"):
        assert 1 <= getattr(config, name) < 2**31
    assert all(0 <= fd < 2**31 for fd in config.fd)


@given(values=st.dictionaries(st.sampled_from([setting.name for setting in CORE_SETTINGS]), ANY_VALUE,
                              max_size=4))
@example(values={"graceful_timeout": float("inf")})
@example(values={"keep_alive": "nan"})
@example(values={"backlog": 2**40})
@example(values={"backlog": float("inf")})
@example(values={"fd": [-1]})
def test_build_config_raises_only_chaussette_error(values: dict) -> None:
    """What make_server(**kwargs) and [server:main] keys go through."""
    try:
        config = build_config(values)
    except ChaussetteError:
        return
    assert_usable(config)


FLAGGED = [setting for setting in CORE_SETTINGS if setting.flags and not setting.flag]
FLAGS = {setting.flags[0]: setting for setting in FLAGGED}


@given(flag=st.sampled_from(sorted(FLAGS)), word=st.one_of(st.text(max_size=30), st.from_regex(
    r"-?[0-9]{1,25}(\.[0-9]+)?(e[0-9]{1,3})?|nan|inf|-inf|0x10|1_0", fullmatch=True)))
@example(flag="--graceful-timeout", word="inf")
@example(flag="--keep-alive", word="1e300")
@example(flag="--backlog", word="4294967296")
@example(flag="--fd", word="-1")
def test_cli_conversion_raises_only_usage_or_chaussette_error(flag: str, word: str) -> None:
    """The CLI path: argparse's own type check (a usage error, exit 2), then build_config."""
    word = word.replace("\x00", "")  # argv cannot carry NUL
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            namespace = build_parser().parse_args([f"{flag}={word}"])
    except SystemExit as exit:
        assert exit.code == 2
        return
    values = {key: value for key, value in vars(namespace).items() if key != "list_backends"}
    try:
        config = build_config(values)
    except ChaussetteError:
        return
    assert_usable(config)
