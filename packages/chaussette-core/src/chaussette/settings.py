"""The one table of settings that drives the CLI, the Python API and the Paste runner.

Each setting is declared once, with its type, default and help; the argument parser,
``make_server(**kwargs)`` and ``[server:main]`` ini keys are all derived from it, so the
three front doors can never drift apart. Backends declare their own settings with the
same class and they join the table when the backend is chosen.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Iterable, Mapping, Sequence

from chaussette.errors import ChaussetteError

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
ADDRESS_FAMILIES = ("AF_INET", "AF_INET6", "AF_UNIX")
SOCKET_TYPES = ("SOCK_STREAM", "SOCK_DGRAM", "SOCK_RAW", "SOCK_RDM", "SOCK_SEQPACKET")


def as_bool(value: Any) -> bool:
    """Read booleans the way ini files write them."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false (or 1/0, yes/no, on/off)")


#: Upper bound of numeric settings: what listen(), setitimer(), socket timeouts and fds
#: accept everywhere, so an absurd value is refused here instead of crashing later.
MAX_INT = 2**31 - 1

# The converters' messages are shown to people as they are ("invalid value 'x': <message>"),
# so they say what is expected rather than repeat int()'s "invalid literal for int()".


def integer(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf) from the Python API
        raise ValueError("must be a whole number") from None


def _bounded_int(value: Any, low: int) -> int:
    number: int | None
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        number = None
    if number is None or not low <= number <= MAX_INT:
        raise ValueError(f"must be a whole number between {low} and {MAX_INT}")
    return number


def positive_int(value: Any) -> int:
    return _bounded_int(value, 1)


def non_negative_int(value: Any) -> int:
    return _bounded_int(value, 0)


def non_negative_float(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not 0 <= number <= MAX_INT:  # also refuses nan and inf
        raise ValueError(f"must be a number between 0 and {MAX_INT}")
    return number


def log_level(value: Any) -> str:
    level = str(value).lower()
    if level not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return level


def words(value: Any) -> tuple[str, ...]:
    """A list from argv, or one whitespace-separated string from an ini file."""
    return tuple(value.split()) if isinstance(value, str) else tuple(str(word) for word in value)


def name_list(value: Any) -> tuple[str, ...]:
    """Comma- or space-separated words, lower-cased (header names, address lists)."""
    text = value if isinstance(value, str) else ",".join(str(word) for word in value)
    return tuple(word.strip().lower() for word in text.replace(" ", ",").split(",") if word.strip())


def fd_list(value: Any) -> list[int]:
    """Accept one fd, a list of fds, or a comma-separated string of them (ini files)."""
    if isinstance(value, int):
        fds = [value]
    elif isinstance(value, str):
        fds = [integer(part) for part in value.split(",") if part.strip()]
    else:
        fds = [integer(part) for part in value]
    for fd in fds:
        if not 0 <= fd <= MAX_INT:
            raise ValueError(f"a file descriptor is between 0 and {MAX_INT}, got {fd}")
    return fds


@dataclass(frozen=True)
class Setting:
    """One option. ``flags`` empty means positional; ``cli=False`` hides it from argv.
    ``needs`` names the setting without which this one would do nothing: giving it alone
    is refused, since a format for an access log that is never written looks like a
    working option."""

    name: str
    help: str
    default: Any = None
    convert: Callable[[Any], Any] = str
    flags: tuple[str, ...] = ()
    choices: tuple[str, ...] | None = None
    flag: bool = False
    repeatable: bool = False
    nargs: str | None = None
    metavar: str | None = None
    cli: bool = True
    needs: str | None = None

    def add_to(self, parser: argparse._ActionsContainer) -> None:
        # Defaults stay None in the parser, so build_config can tell given from defaulted
        # (Config.explicit); the help states them instead.
        kwargs: dict[str, Any] = {"help": self.help + _default_note(self), "default": None}
        if self.flag:
            kwargs["action"] = "store_true"
        else:
            # Repeatable and nargs="*" settings are converted as a whole list by build_config;
            # argparse must hand over plain words, not convert each one (tuple("abc")...).
            convert = integer if self.repeatable else str if self.nargs == "*" else self.convert
            kwargs["type"] = _for_argparse(convert)
            if self.repeatable:
                kwargs["action"] = "append"
            if self.choices:
                kwargs["choices"] = self.choices
            if self.nargs:
                kwargs["nargs"] = self.nargs
            if self.metavar:
                kwargs["metavar"] = self.metavar
        if self.flags:
            parser.add_argument(*self.flags, dest=self.name, **kwargs)
        else:
            parser.add_argument(self.name, **kwargs)


def _default_note(setting: Setting) -> str:
    """`` (default: X)`` for --help; nothing for flags and for settings that are off by default."""
    default = setting.default
    if setting.flag or default is None or default == "" or default == ():
        return ""
    if isinstance(default, tuple):
        shown = ",".join(str(item) for item in default)
    elif isinstance(default, float):
        shown = f"{default:g}"
    else:
        shown = str(default)
    return f" (default: {shown})".replace("%", "%%")  # argparse %-formats help


def _for_argparse(convert: Callable[[Any], Any]) -> Callable[[str], Any]:
    """argparse words a converter's ValueError after the function's name ("invalid
    non_negative_float value"); say the converter's own message instead."""
    def parse(text: str) -> Any:
        try:
            return convert(text)
        except argparse.ArgumentTypeError:
            raise  # already worded for people (proxy.EntryError)
        except (TypeError, ValueError, OverflowError) as exc:
            raise argparse.ArgumentTypeError(f"invalid value {text!r}: {exc}") from None
    return parse


CORE_SETTINGS: tuple[Setting, ...] = (
    Setting("application", "The WSGI application: pkg.mod.attr, pkg.mod:attr, pkg.mod:factory(), "
            "paste:path/app.ini[#name], or a Django mysite.wsgi.application.",
            default="chaussette.util.hello_app", nargs="?"),
    Setting("arguments", "Arguments passed to the application when it is a factory.",
            default=(), nargs="*", convert=words),
    Setting("host", "Host to bind: localhost, 0.0.0.0, ::1, [::], unix:/path, unix:///path or fd://N.",
            default="localhost", flags=("--host",)),
    Setting("port", "Port to bind (0 picks a free one).", default=8080, convert=integer, flags=("--port",)),
    Setting("fd", "Serve on this inherited, already bound socket fd (repeatable). Wins over --host.",
            default=(), convert=fd_list, flags=("--fd",), repeatable=True, metavar="N"),
    Setting("backlog", "Listen queue length.", default=2048, convert=positive_int, flags=("--backlog",)),
    Setting("backend", "Backend serving the requests (see --list-backends).", default="wsgiref",
            flags=("--backend",)),
    Setting("address_family", "Force the address family (normally read from the host or fd).",
            flags=("--address-family",), choices=ADDRESS_FAMILIES),
    Setting("socket_type", "Socket type; HTTP needs SOCK_STREAM.", default="SOCK_STREAM",
            flags=("--socket-type",), choices=SOCKET_TYPES),
    Setting("use_reloader", "Restart the server when source files change "
            "(needs chaussette-core[reload]).", default=False, convert=as_bool,
            flags=("--use-reloader",), flag=True),
    Setting("no_monkey", "Do not monkey-patch the standard library, even if the backend would.",
            default=False, convert=as_bool, flags=("--no-monkey",), flag=True),
    Setting("spawn", "Maximum number of concurrent requests, on backends that can bound it.",
            convert=positive_int, flags=("--spawn",)),
    Setting("graceful_timeout", "Seconds in-flight requests get to finish after SIGTERM or SIGINT.",
            default=30.0, convert=non_negative_float, flags=("--graceful-timeout",)),
    Setting("keep_alive", "Seconds an idle keep-alive connection stays open; 0 turns keep-alive off.",
            default=5.0, convert=non_negative_float, flags=("--keep-alive",), metavar="SECONDS"),
    Setting("limit_request_line", "Longest request line accepted (longer: 414).", default=8190,
            convert=positive_int, flags=("--limit-request-line",), metavar="BYTES"),
    Setting("limit_request_fields", "Most header fields accepted (more: 431).", default=100,
            convert=positive_int, flags=("--limit-request-fields",), metavar="N"),
    Setting("limit_request_field_size", "Longest header field accepted (longer: 431).", default=8190,
            convert=positive_int, flags=("--limit-request-field-size",), metavar="BYTES"),
    Setting("pre_hook", "Dotted callable run with the options before serving.", flags=("--pre-hook",)),
    Setting("post_hook", "Dotted callable run with the options on every exit.", flags=("--post-hook",)),
    Setting("python_path", "Directories to add to sys.path, separated by the OS path separator.",
            flags=("--python-path",)),
    Setting("log_level", "Log level; debug also prints full tracebacks of startup errors.",
            default="info", convert=log_level, flags=("--log-level",), metavar="LEVEL"),
    Setting("log_output", "Where logs go: - for stderr, or a file path.", default="-",
            flags=("--log-output",)),
    Setting("access_log", "Write an access log to this file (- for stdout): one line per request, in "
            "common log format unless --access-log-format or --access-log-json say otherwise; reopened "
            "on SIGUSR1 or SIGHUP, for logrotate. Off by default.", flags=("--access-log",), metavar="FILE"),
    Setting("access_log_format", "Access log line format with gunicorn's atoms, e.g. "
            "'%%(h)s %%(l)s %%(u)s %%(t)s \"%%(r)s\" %%(s)s %%(b)s \"%%(f)s\" \"%%(a)s\" %%(D)s', plus "
            "%%(request_id)s (default: common log format, then the request id when --request-id-header "
            "is set; see docs/logging.md).", flags=("--access-log-format",), metavar="FORMAT", needs="access_log"),
    Setting("access_log_json", "Write the access log as one JSON object a line (fields in "
            "docs/logging.md); excludes --access-log-format.", default=False,
            convert=as_bool, flags=("--access-log-json",), flag=True, needs="access_log"),
    # The two converters check every entry when the settings are read, before any socket
    # opens; chaussette.proxy (and ipaddress) is imported only when an option is given.
    Setting("forwarded_allow_ips", "Trust forwarded headers from these peers: addresses and CIDR "
            "ranges, comma-separated, '*' for any, 'unix' for unix-socket peers; every other peer's "
            "forwarded headers are removed (default: off, the headers reach the application "
            "untouched; see docs/proxy.md).",
            convert=lambda value: __import__("chaussette.proxy").proxy.allow_list(value),
            flags=("--forwarded-allow-ips",), metavar="LIST"),
    # Forwarded is opt-in: most proxies (nginx's usual configuration, cloud load balancers)
    # set only X-Forwarded-For/-Proto and pass a client's own Forwarded header through.
    Setting("forwarded_headers", "Which forwarded headers a trusted peer may set, comma-separated: "
            "forwarded, x-forwarded-for, x-forwarded-proto, x-forwarded-host, x-forwarded-port; "
            "the others are removed. Name only "
            "headers your proxy sets or clears on every request.",
            default=("x-forwarded-for", "x-forwarded-proto"),
            convert=lambda value: __import__("chaussette.proxy").proxy.header_list(value),
            flags=("--forwarded-headers",), metavar="LIST", needs="forwarded_allow_ips"),
    Setting("request_id_header", "Header carrying a request id (e.g. X-Request-ID): taken from the "
            "request when sane (1 to 200 visible ASCII characters), else generated; put in the environ "
            "(chaussette.request_id), the response and the access log.",
            flags=("--request-id-header",), metavar="NAME"),
    Setting("health_path", "Answer GET and HEAD on this path (e.g. /healthz) with 200 while serving "
            "and 503 once a stop begins, without calling the application or writing an access-log "
            "line.", convert=lambda value: __import__("chaussette.health").health.health_path(value),
            flags=("--health-path",), metavar="PATH"),
    Setting("drain_delay", "Seconds a stop (SIGTERM, SIGINT) keeps serving, with the health path at "
            "503, before it stops accepting; a --max-requests recycle does not wait.", default=0.0,
            convert=non_negative_float, flags=("--drain-delay",), metavar="SECONDS"),
    Setting("max_requests", "Stop gracefully after this many requests (plus the jitter), so the "
            "manager starts a fresh process; 0 never.", default=0, convert=non_negative_int,
            flags=("--max-requests",), metavar="N"),
    Setting("max_requests_jitter", "Add a random 0..J to --max-requests, so workers started "
            "together do not all recycle together.", default=0, convert=non_negative_int,
            flags=("--max-requests-jitter",), metavar="J", needs="max_requests"),
    Setting("timeout", "Seconds after which a running request is reported as stuck, with its stack "
            "(off by default); on a backend where it holds the only loop, the process then stops "
            "and exits with code 70 for the manager to replace it.", convert=non_negative_float,
            flags=("--timeout",), metavar="SECONDS"),
    Setting("statsd_host", "Send request metrics to statsd at HOST:PORT or [IPv6]:PORT, over UDP once a "
            "second, with gunicorn's metric names (docs/metrics.md). Off by default.",
            flags=("--statsd-host",), metavar="HOST:PORT"),
    Setting("statsd_prefix", "Prefix of every statsd metric name; a dot is added unless it ends with one.",
            default="", flags=("--statsd-prefix",), metavar="PREFIX", needs="statsd_host"),
)


@dataclass(frozen=True)
class Config:
    """Resolved settings: core's as typed attributes, a backend's own in ``extra``.
    ``explicit`` names the ones the user set, so a backend that cannot honour e.g.
    ``--spawn`` can refuse only when it was actually asked for."""

    # Defaults live in CORE_SETTINGS; build_config gives every one of these.
    application: str
    arguments: tuple[str, ...]
    host: str
    port: int
    fd: Sequence[int]
    backlog: int
    backend: str
    address_family: str | None
    socket_type: str
    use_reloader: bool
    no_monkey: bool
    spawn: int | None
    graceful_timeout: float
    keep_alive: float
    limit_request_line: int
    limit_request_fields: int
    limit_request_field_size: int
    pre_hook: str | None
    post_hook: str | None
    python_path: str | None
    log_level: str
    log_output: str
    access_log: str | None
    access_log_format: str | None
    access_log_json: bool
    forwarded_allow_ips: tuple[str, ...] | None
    forwarded_headers: tuple[str, ...]
    request_id_header: str | None
    health_path: str | None
    drain_delay: float
    max_requests: int
    max_requests_jitter: int
    timeout: float | None
    statsd_host: str | None
    statsd_prefix: str
    #: The chosen backend's own settings (``Backend.settings``), by name.
    extra: Mapping[str, Any] = field(default_factory=dict)
    explicit: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("extra", "explicit")}
        shown = ", ".join(f"{key}={value!r}" for key, value in sorted({**values, **self.extra}.items()))
        return f"Config({shown})"

    def is_set(self, name: str) -> bool:
        return name in self.explicit


CORE_NAMES = frozenset(setting.name for setting in CORE_SETTINGS)


def flag_of(setting: Setting) -> str:
    """How a person names the setting: its first flag, or its ini key."""
    return setting.flags[0] if setting.flags else setting.name


def convert(setting: Setting, raw: Any) -> Any:
    """``raw`` (a string from argv, the environment or an ini file, or a TOML value) as
    the setting's type, or one line saying what is wrong with it."""
    name = setting.name.replace("_", "-")
    try:
        value = setting.convert(raw)
    except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: int(inf)
        raise ChaussetteError(f"invalid value {raw!r} for {name}: {exc}") from None
    if setting.choices and value not in setting.choices:
        raise ChaussetteError(f"invalid value {raw!r} for {name}: choose from {', '.join(setting.choices)}")
    return value


def build_config(given: Mapping[str, Any], settings: Iterable[Setting] = CORE_SETTINGS) -> Config:
    """Convert and default ``given`` (CLI namespace, kwargs or ini keys) against the table.

    Unknown keys are rejected: a typo in an ini file or a keyword argument must not be
    silently ignored.
    """
    table = {setting.name: setting for setting in settings}
    unknown = sorted(set(given) - set(table))
    if unknown:
        raise ChaussetteError(f"unknown setting(s): {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(table))}")
    values: dict[str, Any] = {}
    explicit = set()
    for name, setting in table.items():
        raw = given.get(name)
        if raw is None or (isinstance(raw, (list, tuple)) and not raw):
            values[name] = setting.default
            continue
        explicit.add(name)
        values[name] = convert(setting, raw)
    for name in sorted(explicit):
        needs = table[name].needs
        if needs and values[name] != table[name].default and values[needs] == table[needs].default:
            raise ChaussetteError(f"{flag_of(table[name])} does nothing without {flag_of(table[needs])}: "
                                  f"add {flag_of(table[needs])} or remove {flag_of(table[name])}")
    core = {name: value for name, value in values.items() if name in CORE_NAMES}
    extra = {name: value for name, value in values.items() if name not in CORE_NAMES}
    return Config(**core, extra=extra, explicit=frozenset(explicit))


def settings_with(extra: Sequence[Setting], backend: str = "") -> tuple[Setting, ...]:
    """Core's table plus a backend's own settings, refusing a backend setting that would
    shadow a core one (or its flag): every front door combines them through here."""
    flags = {flag for setting in CORE_SETTINGS for flag in setting.flags}
    clashes = sorted(setting.name for setting in extra
                     if setting.name in CORE_NAMES or flags.intersection(setting.flags))
    if clashes:
        owner = f"the {backend} backend" if backend else "a backend"
        raise ChaussetteError(f"{owner} declares settings that clash with core's: "
                              f"{', '.join(clashes)}; rename them in the backend package")
    return CORE_SETTINGS + tuple(extra)
