"""Trusted forwarded headers (``--forwarded-allow-ips``, ``--forwarded-headers``): the
client's address, scheme and host as the proxy in front saw them, taken only from a peer
the operator named, and never from anyone else.

A request from a trusted peer gets ``REMOTE_ADDR`` (and ``REMOTE_PORT``), ``wsgi.url_scheme``
and, when enabled, ``HTTP_HOST``/``SERVER_NAME``/``SERVER_PORT`` from the enabled headers; a
request from any other peer has every forwarded header removed from its environ, so neither
the application nor a framework's own proxy support can read a value a client made up.
Either way ``environ["chaussette.peer"]`` keeps the connection's own address and port.

The client is the right-most address of the chain that is not itself trusted, walking
back from the peer through trusted proxies (as uvicorn and waitress do): each proxy
appends the address it was connected from, so everything left of the first untrusted hop
may have been written by the client. When an enabled ``Forwarded`` header (RFC 7239) is
there it is the only source; ``X-Forwarded-*`` are read only without one. Values that do
not parse are ignored one by one and logged at debug: a proxy's bad header never costs a
request. Everything the requests need is computed here once, at start-up; a request with
no forwarded header, or from an untrusted peer, costs a few dictionary operations.

docs/proxy.md is the operator's guide.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import re
from socket import AF_INET, AF_INET6, inet_ntop, inet_pton
from typing import TYPE_CHECKING, Any, Callable, Iterable, NamedTuple

from chaussette.errors import ChaussetteError
from chaussette.settings import name_list

if TYPE_CHECKING:
    from chaussette.settings import Config

log = logging.getLogger("chaussette.proxy")

#: Every forwarded header the layer knows, by its ``--forwarded-headers`` name: the
#: environ key it arrives under.
HEADERS = {
    "forwarded": "HTTP_FORWARDED",
    "x-forwarded-for": "HTTP_X_FORWARDED_FOR",
    "x-forwarded-proto": "HTTP_X_FORWARDED_PROTO",
    "x-forwarded-host": "HTTP_X_FORWARDED_HOST",
    "x-forwarded-port": "HTTP_X_FORWARDED_PORT",
}
#: Where the connection's own (REMOTE_ADDR, REMOTE_PORT) stay for the application.
PEER_KEY = "chaussette.peer"
ANY = "*"
UNIX = "unix"
#: The schemes a proxy may announce, with the port each implies.
DEFAULT_PORTS = {"http": "80", "https": "443"}
#: Trust decisions remembered per peer address: proxies are few, so after the first
#: request from one the check is a dictionary lookup. Emptied when full, so a server open
#: to the whole internet does not grow it without bound.
DECISIONS_KEPT = 1024

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MAPPED = bytes(10) + b"\xff\xff"
#: One RFC 7239 forwarded-pair: token=token or token="quoted string".
_PAIR = re.compile(rf'({_TOKEN})=(?:({_TOKEN})|"((?:[^"\\]|\\.)*)")[ \t]*')
_UNQUOTED_PAIR = re.compile(rf"({_TOKEN})=({_TOKEN})")
_PAIR_START = re.compile(r"[ \t;]*")
_ELEMENT_START = re.compile(r"[ \t,]*")
_QUOTED_PAIR = re.compile(r"\\(.)")
#: An RFC 7239 obfuscated node name or port.
_OBFUSCATED = re.compile(r"_[A-Za-z0-9._-]+")
_PORT = re.compile(r"[0-9]{1,5}")
#: A Host value: a DNS-ish name, an IPv4 address or a bracketed IPv6 one, and a port.
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_][A-Za-z0-9_.-]{0,252})(?::([0-9]{1,5}))?")


# -- the trust list ----------------------------------------------------------------------

def pack(text: str) -> bytes | None:
    """The address ``text`` names, packed: 4 bytes for IPv4 and for an IPv4-mapped IPv6
    address (``::ffff:10.0.0.1`` is 10.0.0.1 on the wire), 16 for IPv6; None when it is
    none. ``inet_pton`` is strict (no leading zeros, no short forms) and many times
    quicker than ``ipaddress``. Zone ids are refused: ``fe80::1%eth0`` means something
    only on the host that wrote it."""
    try:
        if ":" in text:
            if "%" in text:
                return None
            packed = inet_pton(AF_INET6, text)
            return packed[12:] if packed[:12] == _MAPPED else packed
        return inet_pton(AF_INET, text)
    except (OSError, ValueError):  # ValueError: a NUL, or text that is not ASCII
        return None


def unpack(packed: bytes) -> str:
    """The canonical text of a packed address, as REMOTE_ADDR carries it."""
    return inet_ntop(AF_INET if len(packed) == 4 else AF_INET6, packed)


class Trust:
    """Who may set forwarded headers: ``*``, ``unix``, addresses and CIDR ranges."""

    def __init__(self, entries: Iterable[str]) -> None:
        """Raises EntryError naming the first entry that is none of those."""
        self.any = False
        self.unix = False
        addresses: set[bytes] = set()
        #: (packed length, network, mask), the last two as integers.
        self.networks: list[tuple[int, int, int]] = []
        for entry in entries:
            if entry == ANY:
                self.any = True
            elif entry == UNIX:
                self.unix = True
            elif "/" in entry:
                self.networks.append(_network(entry))
            else:
                packed = pack(entry)
                if packed is None:
                    raise _not_an_entry(entry)
                addresses.add(packed)
        self.addresses = frozenset(addresses)
        #: Decisions already taken, by peer address (see DECISIONS_KEPT).
        self.decisions: dict[str, bool] = {}

    def trusts_packed(self, packed: bytes) -> bool:
        if self.any or packed in self.addresses:
            return True
        if self.networks:
            number, length = int.from_bytes(packed, "big"), len(packed)
            for size, network, mask in self.networks:
                if size == length and number & mask == network:
                    return True
        return False

    def trusts(self, address: str) -> bool:
        """Whether the peer at ``address`` (a REMOTE_ADDR, maybe with a zone) is trusted."""
        decided = self.decisions.get(address)
        if decided is None:
            packed = pack(address.partition("%")[0])
            decided = self.any or (packed is not None and self.trusts_packed(packed))
            if len(self.decisions) >= DECISIONS_KEPT:
                self.decisions.clear()
            self.decisions[address] = decided
        return decided


class EntryError(argparse.ArgumentTypeError, ValueError):
    """A bad entry in ``--forwarded-allow-ips`` or ``--forwarded-headers``, found while the
    settings are read: a ValueError, which ``build_config`` reports for an ini file or a
    ``make_server`` keyword, and an ArgumentTypeError, so that argparse prints the reason
    instead of "invalid <lambda> value"."""


def _not_an_entry(entry: str) -> EntryError:
    hint = " (name addresses: 127.0.0.1, ::1)" if entry == "localhost" else ""
    return EntryError(f"{entry!r} is not an IP address, a CIDR range, '{ANY}' or '{UNIX}'{hint}")


def _network(entry: str) -> tuple[int, int, int]:
    """A CIDR entry as (packed length, network, mask); an IPv4-mapped IPv6 range is the
    IPv4 range it maps, as a mapped peer address is that IPv4 address."""
    try:
        network: ipaddress.IPv4Network | ipaddress.IPv6Network = ipaddress.ip_network(entry)
    except ValueError:
        try:
            loose = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise _not_an_entry(entry) from None
        raise EntryError(f"{entry!r} has host bits set: write {str(loose)!r} for the range, "
                         f"or {entry.partition('/')[0]!r} for the one address") from None
    mapped = getattr(network.network_address, "ipv4_mapped", None)
    if mapped is not None and network.prefixlen >= 96:
        network = ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    size = network.max_prefixlen // 8
    return size, int(network.network_address), int(network.netmask)


def allow_list(value: Any) -> tuple[str, ...]:
    """The ``--forwarded-allow-ips`` converter: checked when the settings are read, so a
    bad entry stops the start before any socket is opened."""
    entries = name_list(value)
    Trust(entries)
    return entries


def header_list(value: Any) -> tuple[str, ...]:
    """The ``--forwarded-headers`` converter: only the headers this module reads."""
    names = name_list(value)
    unknown = [name for name in names if name not in HEADERS]
    if unknown:
        raise EntryError(f"unknown header {unknown[0]!r}; choose from {', '.join(HEADERS)}")
    return names


# -- parsing -----------------------------------------------------------------------------

#: One hop of a chain: the canonical text of its address ("" for ``unknown`` or an
#: obfuscated name) and its port ("" when not given or obfuscated). A plain tuple: one is
#: made per hop of every request.
Node = tuple[str, str]


def parse_port(text: str) -> str | None:
    """A port as given in a hop or header (1-65535, no leading zero), "" for an
    obfuscated one, None when malformed."""
    if _PORT.fullmatch(text):
        return text if text[0] != "0" and int(text) < 65536 else None
    return "" if _OBFUSCATED.fullmatch(text) else None


def parse_node(text: str) -> Node | None:
    """An X-Forwarded-For hop or a ``Forwarded`` ``for=`` value: ``192.0.2.1``,
    ``192.0.2.1:4711``, ``[2001:db8::1]:4711``, a bare ``2001:db8::1``, ``unknown``, an
    obfuscated ``_name``; None when it is none of those."""
    ip = pack(text)
    if ip is not None:  # the usual hop first: an address alone
        # inet_pton takes IPv4 only in its canonical form: such a text is kept as it is
        return (text if len(ip) == 4 and ":" not in text else unpack(ip)), ""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        ip = pack(host) if bracket and ":" in host else None
        if ip is None:
            return None
        port = "" if not rest else parse_port(rest[1:]) if rest[0] == ":" else None
        return None if port is None else (unpack(ip), port)
    name, colon, port_text = text.partition(":")
    port = parse_port(port_text) if colon else ""
    if port is None:
        return None
    if name.lower() == "unknown" or _OBFUSCATED.fullmatch(name):
        return "", port
    ip = pack(name) if colon else None  # without a colon, text itself was tried above
    return None if ip is None else (name, port)  # IPv4 (no colon): canonical


def parse_forwarded(value: str) -> list[dict[str, str] | None]:
    """The elements of a ``Forwarded`` value (several headers arrive joined by commas),
    each a dict of its parameters by lower-cased name, or None for an element that does
    not parse. A parameter given twice in one element is dropped (RFC 7239 forbids it:
    there is no telling which one is meant). After a malformed element parsing resumes
    at the next comma, so a client's broken value cannot swallow what a proxy appended.

    Without a quoted string (the usual IPv4 ``for=192.0.2.1;proto=https``) every comma
    and semicolon separates, and splitting on them gives the same result (the tests
    check it) in a third of the time."""
    if '"' not in value:
        return [_unquoted_element(item) for item in value.split(",") if item.strip(" \t")]
    return _parse_quoted(value)


def _unquoted_element(item: str) -> dict[str, str] | None:
    params: dict[str, str] = {}
    repeated = []
    for pair in item.split(";"):
        pair = pair.strip(" \t")
        if not pair:
            continue
        match = _UNQUOTED_PAIR.fullmatch(pair)
        if match is None:
            return None
        name, token = match.groups()
        name = name.lower()
        if name in params:
            repeated.append(name)
        params[name] = token
    for name in repeated:
        params.pop(name, None)
    return params


def _parse_quoted(value: str) -> list[dict[str, str] | None]:
    elements: list[dict[str, str] | None] = []
    length = len(value)
    position = _skip(_ELEMENT_START, value, 0)
    while position < length:
        element, position = _parse_element(value, position)
        elements.append(element)
        position = _skip(_ELEMENT_START, value, position)
    return elements


def _parse_element(value: str, position: int) -> tuple[dict[str, str] | None, int]:
    params: dict[str, str] = {}
    repeated: set[str] = set()
    length = len(value)
    while True:
        position = _skip(_PAIR_START, value, position)
        if position >= length or value[position] == ",":
            break
        pair = _PAIR.match(value, position)
        if pair is None:
            return None, _after_comma(value, position)
        name, token, quoted = pair.groups()
        name = name.lower()
        if name in params:
            repeated.add(name)
        if quoted is None:
            params[name] = token
        else:
            params[name] = _QUOTED_PAIR.sub(r"\1", quoted) if "\\" in quoted else quoted
        position = pair.end()
        if position < length and value[position] not in ";,":
            return None, _after_comma(value, position)
    for name in repeated:
        del params[name]
    return params, position


def _skip(separators: re.Pattern[str], value: str, position: int) -> int:
    match = separators.match(value, position)
    return match.end() if match else position


def _after_comma(value: str, position: int) -> int:
    comma = value.find(",", position)
    return len(value) if comma < 0 else comma + 1


class Host(NamedTuple):
    name: str  # as it goes in SERVER_NAME: a bracketed IPv6 address keeps its brackets
    port: str  # "" when not given


def parse_host(text: str) -> Host | None:
    match = _HOST.fullmatch(text)
    if match is None:
        return None
    name, port_text = match.groups()
    if name.startswith("[") and pack(name[1:-1]) is None:
        return None
    if port_text is None:
        return Host(name, "")
    port = parse_port(port_text)  # digits here: the port, or None when out of range
    return None if port is None else Host(name, port)


def last_item(value: str) -> str:
    """The right-most item of a comma-separated header: the one the proxy nearest to us
    wrote (a list's left items may come from the client)."""
    return value.rpartition(",")[2].strip(" \t")


# -- the layer ---------------------------------------------------------------------------

class ProxyHeaders:
    """The per-request layer (see the module). ``environ["chaussette.peer"]`` is set on
    every request; the rest only changes for a trusted peer's enabled headers."""

    def __init__(self, app: Callable[..., Any], config: Config) -> None:
        entries = config.forwarded_allow_ips or ()
        try:
            self.trust = Trust(entries)
        except ValueError as exc:
            raise ChaussetteError(f"--forwarded-allow-ips: {exc}") from None
        try:
            enabled = header_list(config.forwarded_headers)
        except ValueError as exc:
            raise ChaussetteError(f"--forwarded-headers: {exc}") from None
        self.app = app
        self.enabled = frozenset(enabled)
        self._all_keys = tuple(HEADERS.values())
        self._disabled_keys = tuple(key for name, key in HEADERS.items() if name not in self.enabled)
        self._unix_trusted = self.trust.any or self.trust.unix
        self._forwarded = "forwarded" in self.enabled
        self._x_for = "x-forwarded-for" in self.enabled
        self._x_proto = "x-forwarded-proto" in self.enabled
        self._x_host = "x-forwarded-host" in self.enabled
        self._x_port = "x-forwarded-port" in self.enabled
        self._x_host_or_port = self._x_host or self._x_port
        self._decisions = self.trust.decisions
        log.info("Trusting forwarded headers (%s) from %s", ", ".join(enabled) or "none",
                 ", ".join(entries))

    def __repr__(self) -> str:
        return repr(self.app)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        address = environ.get("REMOTE_ADDR", "")
        environ[PEER_KEY] = (address, environ.get("REMOTE_PORT", ""))
        # SERVER_PORT "0" is a unix socket on every backend (chaussette.http.UNIX_ENVIRON):
        # it comes from the listener, a TCP listener never has port 0, and no request
        # header can set it. Its REMOTE_ADDR, 127.0.0.1, must not pass for a TCP peer's.
        trusted: bool | None
        if environ.get("SERVER_PORT") == "0":
            trusted = self._unix_trusted
        else:
            trusted = self._decisions.get(address)  # self.trusts(address), inlined
            if trusted is None:
                trusted = self.trust.trusts(address)
        # "in" then "del" costs half of environ.pop(key, None) when the key is absent,
        # which is nearly always.
        if not trusted:
            for key in self._all_keys:
                if key in environ:
                    del environ[key]
            return self.app(environ, start_response)
        for key in self._disabled_keys:
            if key in environ:
                del environ[key]
        if self._forwarded and "HTTP_FORWARDED" in environ:
            self._apply_forwarded(environ, environ["HTTP_FORWARDED"])
            return self.app(environ, start_response)
        if self._x_for and "HTTP_X_FORWARDED_FOR" in environ:
            chain = environ["HTTP_X_FORWARDED_FOR"]
            if "," in chain:
                self._set_client(environ, chain)
            else:
                # One hop, most often one IPv4 address (what nginx writes for a client that
                # connects to it): inet_pton takes one only in its canonical form.
                try:
                    inet_pton(AF_INET, chain)
                except (OSError, ValueError):
                    self._set_client(environ, chain)
                else:
                    environ["REMOTE_ADDR"] = chain
                    environ["REMOTE_PORT"] = ""
        if self._x_proto and "HTTP_X_FORWARDED_PROTO" in environ:
            proto = environ["HTTP_X_FORWARDED_PROTO"]
            if proto in DEFAULT_PORTS:
                environ["wsgi.url_scheme"] = proto
            else:
                _set_scheme(environ, last_item(proto), "X-Forwarded-Proto")
        if self._x_host_or_port:
            self._apply_x_host(environ)
        return self.app(environ, start_response)

    def _apply_forwarded(self, environ: dict, value: str) -> None:
        chosen: dict[str, str] | None = None
        node: Node | None = None
        for element in reversed(parse_forwarded(value)):
            if element is None:
                _malformed("Forwarded element", value, environ)
                return
            chosen, node = element, _node(element.get("for"), "Forwarded for", environ)
            if node is None or not node[0] or not self.trusts(node[0]):
                break
        if chosen is None:
            return
        if node is not None and node[0]:
            environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = node
        _set_scheme(environ, chosen.get("proto"), "Forwarded proto")
        host = chosen.get("host")
        if host is not None:
            _set_host(environ, _host(host, "Forwarded host", environ), None)

    def _apply_x_host(self, environ: dict) -> None:
        host = port = None
        if self._x_host:
            given = environ.get("HTTP_X_FORWARDED_HOST")
            if given is not None:
                host = _host(last_item(given), "X-Forwarded-Host", environ)
        if self._x_port:
            given = environ.get("HTTP_X_FORWARDED_PORT")
            if given is not None:
                port = parse_port(last_item(given)) or None
                if port is None:
                    _malformed("X-Forwarded-Port", given, environ)
        if host is not None or port is not None:
            _set_host(environ, host, port)

    def _set_client(self, environ: dict, chain: str) -> None:
        """REMOTE_ADDR and REMOTE_PORT from the right-most untrusted hop of ``chain``."""
        client = None
        for hop in reversed(chain.split(",")):
            hop = hop.strip(" \t")
            if not hop:
                continue  # an empty list item (RFC 9110 5.6.1)
            client = parse_node(hop)
            if client is None:
                _malformed("X-Forwarded-For hop", hop, environ)
                return
            if not client[0] or not self.trusts(client[0]):
                break
        if client is not None and client[0]:
            environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = client

    def trusts(self, address: str) -> bool:
        """``Trust.trusts``, its usual case (a decision already taken) without the call."""
        trusted = self._decisions.get(address)
        return self.trust.trusts(address) if trusted is None else trusted


def _malformed(what: str, value: str, environ: dict) -> None:
    log.debug("ignoring a malformed %s from %s: %r", what, environ[PEER_KEY][0], value)


def _node(text: str | None, what: str, environ: dict) -> Node | None:
    if text is None:
        return None
    node = parse_node(text)
    if node is None:
        _malformed(what, text, environ)
    return node


def _host(text: str, what: str, environ: dict) -> Host | None:
    host = parse_host(text)
    if host is None:
        _malformed(what, text, environ)
    return host


def _set_scheme(environ: dict, proto: str | None, what: str) -> None:
    if proto is None:
        return
    scheme = proto.lower()
    if scheme in DEFAULT_PORTS:
        environ["wsgi.url_scheme"] = scheme
    else:
        _malformed(what, proto, environ)


def _set_host(environ: dict, host: Host | None, port: str | None) -> None:
    """HTTP_HOST, SERVER_NAME and SERVER_PORT from a forwarded host and/or port. A port
    alone keeps the request's own host name; a host without a port has the scheme's."""
    if host is None:
        if port is None:
            return
        host = parse_host(environ.get("HTTP_HOST", "")) or Host(environ.get("SERVER_NAME", ""), "")
    default = DEFAULT_PORTS.get(environ.get("wsgi.url_scheme", "http"), "80")
    port = port or host.port or default
    environ["SERVER_NAME"] = host.name
    environ["SERVER_PORT"] = port
    environ["HTTP_HOST"] = host.name if port == default else f"{host.name}:{port}"
