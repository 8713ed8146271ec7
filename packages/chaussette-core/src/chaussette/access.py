"""The access log (``--access-log``): one line per request, written by core around what
the backend serves, so it reads the same on every backend.

Lines are in common log format by default, in a gunicorn format string's layout with
``--access-log-format`` (the same atoms, so a gunicorn user's string works unchanged), or
one JSON object a line with ``--access-log-json``. Formats are compiled once at start-up;
a request pays for the atoms its format uses and nothing else.

Whatever a client sent is escaped, so no header, path or query can break a line or forge
a field: in text lines a byte outside printable ASCII is written ``\\xHH`` and ``"`` and
``\\`` get a backslash (as nginx does); JSON lines are pure ASCII, and a text field holds
the bytes the client sent decoded as UTF-8, an invalid byte as a lone surrogate
(``\\udcHH``, Python's ``surrogateescape``), so ``value.encode("utf-8", "surrogateescape")``
gives those bytes back exactly.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from chaussette.errors import ChaussetteError
from chaussette.layers import close_body
from chaussette.requestid import ENVIRON_KEY as REQUEST_ID_KEY
from chaussette.requestid import environ_key

if TYPE_CHECKING:
    from chaussette.settings import Config

#: Today's common log format line; ``--request-id-header`` adds the id at its end.
COMMON_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s'
#: Where the proxy layer keeps the connection's own (address, port) once it has put the
#: forwarded client in REMOTE_ADDR.
PEER_KEY = "chaussette.peer"


class Exchange:
    """One request as the access log sees it: what the application answered, how many
    body bytes went out and how long it all took. Also the ``start_response`` the
    application is handed, which records the status and headers on their way out."""

    __slots__ = ("environ", "status", "headers", "sent", "seconds", "started", "_start_response")

    def __init__(self, environ: dict, start_response: Callable, started: float) -> None:
        self.environ = environ
        self.status = "-"
        self.headers: list = []
        self.sent = 0
        self.seconds = 0.0
        self.started = started
        self._start_response = start_response

    def start_response(self, status: str, headers: list, exc_info: Any = None) -> Any:
        self.status = status
        self.headers = headers
        return self._start_response(status, headers, exc_info)

    def failed(self) -> None:
        """The application raised before a body byte went out: the server answers 500."""
        if not self.sent:
            self.status = "500"


Line = Callable[[Exchange], str]


def access_log(app: Callable[..., Any], config: Config) -> AccessLog:
    """The access log layer the settings ask for; a bad format is refused at start-up,
    before the log file is opened."""
    from chaussette.logs import access_log_file

    line = line_format(config)
    assert config.access_log is not None  # the layer is only built when it is set
    return AccessLog(app, line, access_log_file(config.access_log).write_line)


def line_format(config: Config) -> Line:
    """How each line is written, or one line saying what is wrong with the format."""
    if config.access_log_json and config.access_log_format is not None:
        raise ChaussetteError("--access-log-format and --access-log-json exclude each other: "
                              "JSON lines have fixed fields (see docs/logging.md); give one of them")
    if config.access_log_json:
        line: Line = json_line
    else:
        fmt = config.access_log_format
        line = common_line(bool(config.request_id_header)) if fmt is None else compile_format(fmt)
    return line


class AccessLog:
    """WSGI middleware writing one line per request once its body has been sent (or its
    iterable closed early): the duration runs from here to there.

    A list or tuple body is logged at once and returned as it is, so servers keep their
    single-chunk Content-Length and no generator is added to the response path.
    """

    def __init__(self, app: Callable[..., Any], line: Line, write: Callable[[str], None]) -> None:
        self.app = app
        self.line = line
        self.write = write

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        exchange = Exchange(environ, start_response, time.perf_counter())
        try:
            result = self.app(environ, exchange.start_response)
        except Exception:
            exchange.failed()
            self._log(exchange)
            raise
        if isinstance(result, (list, tuple)):
            exchange.sent = sum(map(len, result))
            self._log(exchange)
            return result
        return self._body(exchange, result)

    def _body(self, exchange: Exchange, result: Iterable[bytes]) -> Iterator[bytes]:
        try:
            for chunk in result:
                exchange.sent += len(chunk)
                yield chunk
        except Exception:
            exchange.failed()
            raise
        finally:
            try:
                close_body(result)
            finally:
                self._log(exchange)

    def _log(self, exchange: Exchange) -> None:
        exchange.seconds = time.perf_counter() - exchange.started
        try:
            line = self.line(exchange)
        except Exception:  # never the response's problem
            logging.getLogger("chaussette").exception("could not format the access log line")
            return
        self.write(line)

    def __repr__(self) -> str:
        return repr(self.app)


# -- escaping ------------------------------------------------------------------------------

#: Anything but printable ASCII, and the two characters that delimit or escape.
_UNSAFE = re.compile(r'[^\x20\x21\x23-\x5b\x5d-\x7e]')


def _escape_char(match: re.Match) -> str:
    char = match.group()
    if char in '"\\':
        return "\\" + char
    code = ord(char)
    return f"\\x{code:02X}" if code < 0x100 else f"\\u{code:04X}" if code < 0x10000 else f"\\U{code:08X}"


def escape(value: str) -> str:
    """``value`` safe between the double quotes of a text line (nginx's escaping):
    printable ASCII as is, ``"`` and ``\\`` with a backslash, every other character as
    ``\\xHH`` (WSGI strings hold one byte per character, so HH is the byte sent)."""
    if _UNSAFE.search(value) is None:
        return value
    return _UNSAFE.sub(_escape_char, value)


def decoded(value: str | None) -> str | None:
    """A WSGI string (one character per byte) as the text the client meant: UTF-8, an
    invalid byte kept as a lone surrogate so that nothing is lost or made up."""
    if value is None or value.isascii():
        return value
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:  # already text: a server that decoded it itself
        return value
    return raw.decode("utf-8", "surrogateescape")


# -- what a line is made of ----------------------------------------------------------------

_clf_cache: tuple[int, str] = (-1, "")
_iso_cache: tuple[int, str, str] = (-1, "", "")
#: ``.000`` to ``.999``: padding an int in a format costs more than the rest of a timestamp.
_MILLISECONDS = tuple(f".{number:03d}" for number in range(1000))


def clf_time() -> str:
    """``[10/Oct/2000:13:55:36 -0700]``, formatted at most once a second."""
    global _clf_cache
    second = int(time.time())
    if _clf_cache[0] != second:
        _clf_cache = (second, time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime(second)))
    return _clf_cache[1]


def iso_time() -> str:
    """RFC 3339 local time with milliseconds: ``2000-10-10T13:55:36.042-07:00``."""
    global _iso_cache
    now = time.time()
    second = int(now)
    if _iso_cache[0] != second:
        local = time.localtime(second)
        offset = time.strftime("%z", local)
        _iso_cache = (second, time.strftime("%Y-%m-%dT%H:%M:%S", local), f"{offset[:3]}:{offset[3:]}")
    return _iso_cache[1] + _MILLISECONDS[int((now - second) * 1000)] + _iso_cache[2]


def user(environ: dict) -> str | None:
    """REMOTE_USER, else the user name of HTTP Basic credentials (as gunicorn logs it)."""
    return environ.get("REMOTE_USER") or ("HTTP_AUTHORIZATION" in environ and basic_user(environ)) or None


def basic_user(environ: dict) -> str | None:
    auth = environ.get("HTTP_AUTHORIZATION")
    if auth and auth[:6].lower() == "basic ":
        try:
            return base64.b64decode(auth[6:].strip(), validate=True).split(b":", 1)[0].decode("latin-1")
        except (binascii.Error, ValueError):
            return None
    return None


def request_line(environ: dict) -> str:
    """Method, target and protocol. The target is the path and query the application
    sees (PATH_INFO, QUERY_STRING) rather than a raw URI only some backends give, so the
    line is the same on every backend."""
    query = environ.get("QUERY_STRING")
    return (f"{environ.get('REQUEST_METHOD', '-')} {environ.get('PATH_INFO', '')}{'?' + query if query else ''} "
            f"{environ.get('SERVER_PROTOCOL', '-')}")


def status_code(exchange: Exchange) -> str:
    return exchange.status.partition(" ")[0]


def microseconds(exchange: Exchange) -> int:
    return int(exchange.seconds * 1_000_000)


# -- text formats --------------------------------------------------------------------------

Getter = Callable[[Exchange], Any]
_PID = os.getpid()

#: gunicorn's atoms (its glogging.py), plus ``request_id``: (getter, sample). Getters give
#: the raw value, escaped by the line only when needed; the sample, of the value's type,
#: checks the format at start-up.
ATOMS: dict[str, tuple[Getter, Any]] = {
    "h": (lambda exchange: exchange.environ.get("REMOTE_ADDR") or "-", "-"),
    "l": (lambda exchange: "-", "-"),
    "u": (lambda exchange: user(exchange.environ) or "-", "-"),
    "t": (lambda exchange: clf_time(), "-"),
    "r": (lambda exchange: request_line(exchange.environ), "-"),
    "m": (lambda exchange: exchange.environ.get("REQUEST_METHOD") or "-", "-"),
    "U": (lambda exchange: exchange.environ.get("PATH_INFO") or "-", "-"),
    "q": (lambda exchange: exchange.environ.get("QUERY_STRING", ""), "-"),
    "H": (lambda exchange: exchange.environ.get("SERVER_PROTOCOL") or "-", "-"),
    "s": (status_code, "-"),
    "B": (lambda exchange: exchange.sent, 0),
    "b": (lambda exchange: str(exchange.sent) if exchange.sent else "-", "-"),
    "f": (lambda exchange: exchange.environ.get("HTTP_REFERER") or "-", "-"),
    "a": (lambda exchange: exchange.environ.get("HTTP_USER_AGENT") or "-", "-"),
    "T": (lambda exchange: int(exchange.seconds), 0),
    "M": (lambda exchange: int(exchange.seconds * 1000), 0),
    "D": (microseconds, 0),
    "L": (lambda exchange: "%d.%06d" % divmod(microseconds(exchange), 1_000_000), "-"),
    "p": (lambda exchange: f"<{_PID}>", "-"),
    "request_id": (lambda exchange: exchange.environ.get(REQUEST_ID_KEY) or "-", "-"),
}
_KNOWN = " ".join(ATOMS) + ", {header}i, {header}o, {variable}e"
#: A directive without a key: % would format the whole mapping there.
_UNNAMED = re.compile(r"%(?!\()")
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _request_header(name: str) -> Getter:
    key = environ_key(name)
    return lambda exchange: exchange.environ.get(key) or "-"


def _response_header(name: str) -> Getter:
    lower = name.lower()

    def get(exchange: Exchange) -> str:
        found = "-"
        for header, value in exchange.headers:  # the last one wins, as in gunicorn
            if header.lower() == lower:
                found = value
        return found

    return get


def _environ_variable(name: str) -> Getter:
    # gunicorn matches these without regard to case: REMOTE_ADDR and wsgi.url_scheme
    # are each found under the name as given, upper- or lower-cased.
    names = tuple(dict.fromkeys((name, name.upper(), name.lower())))

    def get(exchange: Exchange) -> str:
        for candidate in names:
            value = exchange.environ.get(candidate)
            if value is not None:
                return value if isinstance(value, str) else str(value)
        return "-"

    return get


_BRACED = {"i": _request_header, "o": _response_header, "e": _environ_variable}


def _atom(key: str) -> tuple[Getter, Any]:
    if key in ATOMS:
        return ATOMS[key]
    if len(key) > 3 and key[0] == "{" and key[-2] == "}" and key[-1] in _BRACED:
        name = key[1:-2]
        if key[-1] == "e" or _HEADER_NAME.fullmatch(name):
            return _BRACED[key[-1]](name), "-"
    raise ChaussetteError(f"--access-log-format: unknown atom %({key})s; known: {_KNOWN}")


class _Atoms(dict):
    """The mapping a format is tried on once: records the atoms it names and answers
    each with a sample value of its type."""

    def __init__(self) -> None:
        super().__init__()
        self.getters: dict[str, Getter] = {}

    def __missing__(self, key: str) -> Any:
        getter, sample = _atom(key)
        self.getters[key] = getter
        self[key] = sample
        return sample


def compile_format(fmt: str) -> Line:
    """A text line maker for a gunicorn-style format (``%(h)s %({header}i)s``...); a
    format Python's ``%`` refuses, or an unknown atom, is a ChaussetteError."""
    if _UNNAMED.search(fmt.replace("%%", "")):
        raise ChaussetteError(f"--access-log-format {fmt!r}: every directive names an atom, "
                              "as in %(h)s; write %% for a percent sign")
    atoms = _Atoms()
    try:
        sample = fmt % atoms
    except (ValueError, TypeError) as exc:
        raise ChaussetteError(f"--access-log-format {fmt!r} is not a valid format: {exc}") from None
    getters = tuple(atoms.getters.items())
    # What the format writes itself: a line with no more quotes or backslashes than that,
    # and nothing outside printable ASCII, has no value to escape (the usual case, checked
    # in C over the whole line instead of value by value).
    quotes, backslashes = sample.count('"'), sample.count("\\")

    def line(exchange: Exchange) -> str:
        values = {key: get(exchange) for key, get in getters}
        text = fmt % values
        if text.isascii() and text.isprintable() and text.count('"') == quotes \
                and text.count("\\") == backslashes:
            return text
        return fmt % {key: escape(value) if isinstance(value, str) else value for key, value in values.items()}

    return line


def common_line(with_request_id: bool) -> Line:
    """COMMON_FORMAT (with the request id after it when ids are on), written out by hand:
    the default line, at about half the cost of the compiled format, which it falls back
    on when a value needs escaping (the tests check that both write the same lines)."""
    compiled = compile_format(COMMON_FORMAT + (" %(request_id)s" if with_request_id else ""))

    def line(exchange: Exchange) -> str:
        environ = exchange.environ
        query = environ.get("QUERY_STRING")
        text = (f"{environ.get('REMOTE_ADDR') or '-'} - "
                f"{user(environ) or '-'} "
                f"{clf_time()} \"{environ.get('REQUEST_METHOD', '-')} {environ.get('PATH_INFO', '')}"
                f"{'?' + query if query else ''} {environ.get('SERVER_PROTOCOL', '-')}\" "
                f"{exchange.status.partition(' ')[0]} {exchange.sent or '-'}")
        if with_request_id:
            text += " " + (environ.get(REQUEST_ID_KEY) or "-")
        if text.isascii() and text.isprintable() and text.count('"') == 2 and "\\" not in text:
            return text
        return compiled(exchange)

    return line


# -- JSON lines ----------------------------------------------------------------------------

#: The JSON fields holding text, in their order on the line (docs/logging.md lists them all).
TEXT_FIELDS = ("remote_addr", "peer", "user", "request_id", "method", "path", "query", "protocol",
               "referer", "user_agent")
#: The whole object as one %-template: no dict to build and encode per request.
_JSON_TEMPLATE = ('{"time":"%s",' + "".join(f'"{name}":%s,' for name in TEXT_FIELDS)
                  + f'"status":%s,"bytes":%d,"duration_us":%d,"pid":{_PID}}}')
_quote = json.encoder.encode_basestring_ascii


def json_line(exchange: Exchange) -> str:
    """One JSON object, pure ASCII: what ``json.dumps`` of the same fields gives (the
    tests check it), without a dict to build and encode per request."""
    environ = exchange.environ
    peer = environ.get(PEER_KEY)
    texts: tuple[str | None, ...] = (
        environ.get("REMOTE_ADDR"), peer[0] if peer else None, user(environ), environ.get(REQUEST_ID_KEY),
        environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"), environ.get("QUERY_STRING", ""),
        environ.get("SERVER_PROTOCOL"), environ.get("HTTP_REFERER"), environ.get("HTTP_USER_AGENT"))
    code = exchange.status.partition(" ")[0]
    stamp, numbers = iso_time(), (int(code) if code.isascii() and code.isdigit() else "null", exchange.sent,
                                  int(exchange.seconds * 1_000_000))
    line = _JSON_TEMPLATE % (stamp, *[_quote(text) if text is not None else "null" for text in texts],
                             *numbers)
    if "\\u" not in line:
        return line
    # A character outside printable ASCII (or a backslash and a u) was escaped: write the
    # non-ASCII ones as the text the bytes spell, not one character per byte.
    return _JSON_TEMPLATE % (stamp, *[_quote(text) if text is not None else "null" for text in map(decoded, texts)],
                             *numbers)
