"""Settings from outside the command line: ``CHAUSSETTE_<NAME>`` variables,
``CHAUSSETTE_CMD_ARGS`` and a TOML file (``--config FILE`` or ``CHAUSSETTE_CONFIG``).

Precedence, highest first: the command line, the environment, the file, the defaults.
That is the order operators override in: the file ships with the release, the unit or
the manager's environment adapts it to one host, a flag typed by hand wins over both.
Every value keeps the name of where it came from, so an error names the variable or the
file to fix and ``--check-config`` can show it. Only the ``chaussette`` command reads
these: ``make_server(**kwargs)`` and Paste ini files say everything themselves.
"""

from __future__ import annotations

import difflib
import json
import shlex
import sys
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from chaussette.errors import ChaussetteError, UsageError
from chaussette.settings import CORE_NAMES, Config, Setting, convert

PREFIX = "CHAUSSETTE_"
CMD_ARGS = "CHAUSSETTE_CMD_ARGS"
CONFIG = "CHAUSSETTE_CONFIG"
COMMAND_LINE = "command line"
DEFAULT = "default"


@dataclass
class Given:
    """Raw values by setting name, each with where it came from; a later ``add`` wins."""

    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)

    def add(self, values: Mapping[str, Any], origin: str) -> None:
        self.add_from({name: (value, origin) for name, value in values.items()})

    def add_from(self, found: Mapping[str, tuple[Any, str]]) -> None:
        """Values each with its own origin. The environment's two forms (a variable per
        setting, ``CHAUSSETTE_CMD_ARGS``) are one level: both setting one value is refused
        rather than ranked."""
        for name, (value, origin) in found.items():
            before = self.origins.get(name, "")
            if origin == CMD_ARGS and before.startswith(PREFIX):  # variables are added first
                raise ChaussetteError(f"{before} and {origin} both set {name}; keep one")
            self.values[name] = value
            self.origins[name] = origin


def cmd_args(environ: Mapping[str, str]) -> list[str]:
    """``CHAUSSETTE_CMD_ARGS`` split as a shell would, like ``GUNICORN_CMD_ARGS``."""
    try:
        return shlex.split(environ.get(CMD_ARGS, ""))
    except ValueError as exc:
        raise UsageError(f"{CMD_ARGS}: {exc}; quote it as a shell command line") from None


def _hint(word: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def from_environment(environ: Mapping[str, str], table: Sequence[Setting], backend: str) -> dict[str, tuple[Any, str]]:
    """``CHAUSSETTE_<NAME>`` of every setting, by name, with its variable. An empty
    variable counts as unset (unit files write ``Environment=X=`` to clear one); an
    unknown one is refused, as a misspelt option is."""
    names = {PREFIX + setting.name.upper(): setting for setting in table}
    found: dict[str, tuple[Any, str]] = {}
    for variable in sorted(environ):
        if not variable.startswith(PREFIX) or variable in (CMD_ARGS, CONFIG):
            continue
        setting = names.get(variable)
        if setting is None:
            raise ChaussetteError(f"{variable} names no setting of chaussette or of the {backend} backend"
                                  f"{_hint(variable, [*names, CMD_ARGS, CONFIG])}; rename or unset it")
        if environ[variable]:
            found[setting.name] = (checked(setting, environ[variable], variable), variable)
    return found


def checked(setting: Setting, raw: Any, origin: str) -> Any:
    """``raw`` unchanged once it converts; else the conversion's error, naming ``origin``."""
    try:
        convert(setting, raw)
    except ChaussetteError as exc:
        raise ChaussetteError(f"{origin}: {exc}") from None
    return raw


def read_file(path: str) -> dict[str, Any]:
    """The TOML document at ``path``, or one line saying why it cannot be read."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - the backport has the same API
        import tomli as tomllib
    try:
        with open(path, "rb") as file:
            return tomllib.load(file)
    except OSError as exc:
        raise ChaussetteError(f"config file {path}: cannot read it ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ChaussetteError(f"config file {path}: not valid TOML: {exc}") from None


def backend_of(document: Mapping[str, Any]) -> str | None:
    """The backend a file chooses: ``backend = "waitress"``, or ``backend.name`` beside
    ``[backend.waitress]`` tables (TOML cannot hold a string and a table under one key)."""
    chosen = document.get("backend")
    if isinstance(chosen, dict):
        chosen = chosen.get("name")
    return chosen if isinstance(chosen, str) else None


def from_file(path: str, document: Mapping[str, Any], table: Sequence[Setting],
              backend: str, known_backends: Iterable[str]) -> dict[str, tuple[Any, str]]:
    """The settings a TOML file gives, by name, with the file as their origin: core's at
    the top level (``graceful_timeout`` or ``graceful-timeout``), a backend's in its
    ``[backend.<name>]`` table (``threads`` or ``waitress_threads``). Tables of other
    backends are skipped, so one file can serve whichever backend a host runs."""
    core = {setting.name: setting for setting in table if setting.name in CORE_NAMES}
    own = {setting.name: setting for setting in table if setting.name not in CORE_NAMES}
    found: dict[str, tuple[Any, str]] = {}

    def take(setting: Setting, key: str, value: Any) -> None:
        found[setting.name] = (checked(setting, value, f"config file {path}: {key}"), path)

    for key, value in document.items():
        if key == "backend" and isinstance(value, dict):
            for name, section in value.items():
                if name == "name":
                    take(core["backend"], "backend.name", section)
                    continue
                _check_backend_table(path, name, section, known_backends)
                if name == backend:
                    for option, setting_value in section.items():
                        take(_table_setting(path, own, name, option), f"[backend.{name}] {option}", setting_value)
            continue
        setting = core.get(key.replace("-", "_"))
        if setting is None:
            where = (f"; it is the {backend} backend's: put it under [backend.{backend}]"
                     if _backend_setting(own, backend, key) else _hint(key, core))
            raise ChaussetteError(f"config file {path}: unknown key {key!r}{where}")
        take(setting, key, value)
    return found


def _check_backend_table(path: str, name: str, section: Any, known_backends: Iterable[str]) -> None:
    """Refuse a ``backend.NAME`` that is not a table, or names no known backend."""
    if not isinstance(section, dict):
        raise ChaussetteError(f"config file {path}: backend.{name} must be a table of the "
                              f"{name} backend's settings, or use backend.name = {name!r}")
    if name not in known_backends:
        raise ChaussetteError(f"config file {path}: [backend.{name}] names no known backend"
                              f"{_hint(name, known_backends)}; see chaussette --list-backends")


def _table_setting(path: str, own: Mapping[str, Setting], backend: str, option: str) -> Setting:
    """The chosen backend's setting an option of its table names (prefix optional)."""
    setting = _backend_setting(own, backend, option)
    if setting is None:
        raise ChaussetteError(
            f"config file {path}: [backend.{backend}] has no setting {option!r}"
            f"{_hint(option, [s.name.removeprefix(backend + '_') for s in own.values()])}; "
            f"the {backend} backend's are in chaussette --backend {backend} --help")
    return setting


def _backend_setting(own: Mapping[str, Setting], backend: str, key: str) -> Setting | None:
    name = key.replace("-", "_")
    return own.get(name) or own.get(f"{backend}_{name}")


def render(config: Config, table: Sequence[Setting], origins: Mapping[str, str]) -> str:
    """The effective settings as a TOML file that ``--config`` reads back, each line
    saying where its value came from; a setting without a value is a comment."""
    core = [setting for setting in table if setting.name in CORE_NAMES and setting.name != "backend"]
    own = [setting for setting in table if setting.name not in CORE_NAMES]

    def line(setting: Setting, key: str, value: Any) -> str:
        origin = origins.get(setting.name, DEFAULT)
        if value is None:
            return f"# {key} is not set ({origin})"
        return f"{key} = {_toml(value)}  # {origin}"

    lines = [line(setting, setting.name, getattr(config, setting.name)) for setting in core]
    chosen = next(setting for setting in table if setting.name == "backend")
    lines += ["", "[backend]", line(chosen, "name", config.backend)]
    if own:
        lines += ["", f"[backend.{config.backend}]"]
        lines += [line(setting, setting.name.removeprefix(f"{config.backend}_"), config.extra[setting.name])
                  for setting in own]
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    """A TOML value: JSON's strings, numbers and arrays are TOML's too."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))
