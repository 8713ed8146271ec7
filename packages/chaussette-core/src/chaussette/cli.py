"""The ``chaussette`` command (and ``python -m chaussette``)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any, Mapping, NoReturn, Sequence

from chaussette import __version__, foreign, sources
from chaussette.errors import ChaussetteError, UsageError
from chaussette.lifecycle import ForcedExit
from chaussette.settings import CORE_SETTINGS, Setting, build_config, settings_with


class _Parser(argparse.ArgumentParser):
    """Bad options end like every other chaussette error: one line, not a usage block;
    ``where`` names the variable they came from when it is not the command line."""

    where = ""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"chaussette: error: {self.where}{message}\nrun chaussette --help for the options\n")


#: (group title, settings) of backend options; a title names one or more backends.
Groups = Sequence[tuple[str, Sequence[Setting]]]


#: Options of the command itself, not settings: never part of a Config.
COMMAND_OPTIONS = ("list_backends", "config", "check_config")


def build_parser(groups: Groups = ()) -> _Parser:
    """Core's options and backends' own, each backend in its group; a backend option that
    clashes with a core one is refused (``settings_with``) before argparse would fail on it."""
    for title, extra in groups:
        settings_with(extra, title)
    foreign_flags = ", ".join("/".join(flags) for flags, _ in foreign.FOREIGN)
    parser = _Parser(
        prog="chaussette",
        description="Serve a WSGI application on a socket chaussette binds or one a process "
                    "manager already opened (--fd, systemd socket activation).",
        epilog=f"Coming from gunicorn or uvicorn? {foreign_flags} are not options here: "
               "each answers with what chaussette does instead.")
    parser.add_argument("--version", action="version", version=f"chaussette-core {__version__}")
    parser.add_argument("--list-backends", action="store_true",
                        help="List installed backends, and known ones with the package to install.")
    parser.add_argument("--config", metavar="FILE",
                        help=f"Read settings from this TOML file (or ${sources.CONFIG}): keys named like "
                             "the options, a backend's under [backend.NAME]. The environment "
                             f"(${sources.PREFIX}<NAME>, ${sources.CMD_ARGS}) wins over it, the command "
                             "line over both; see docs/configuration.md.")
    parser.add_argument("--check-config", action="store_true",
                        help="Read every setting, load the backend and the application, open no socket "
                             "or file; print the effective settings as TOML, each with where it came "
                             "from, and exit 0 (or 1 with the error).")
    for setting in CORE_SETTINGS:
        setting.add_to(parser)
    for title, extra in groups:
        group = parser.add_argument_group(f"{title} backend options")
        for setting in extra:
            setting.add_to(group)
    return parser


def _before_dashes(argv: Sequence[str]) -> Sequence[str]:
    return argv[:argv.index("--")] if "--" in argv else argv


def _option_value(words: Sequence[str], flag: str) -> str:
    """Find an option's value before parsing (the backend's options must join the parser,
    the config file must be read to know the backend); "" when it is not given."""
    for index, arg in enumerate(words):
        if arg == flag and index + 1 < len(words):
            return words[index + 1]
        if arg.startswith(f"{flag}="):
            return arg.split("=", 1)[1]
    return ""


def _installed_settings() -> dict[str, tuple[Setting, ...]]:
    """The settings of every installed backend that loads and declares some. It imports
    them all, so it runs only for --help and for an option the chosen backend lacks."""
    from chaussette import registry

    found: dict[str, tuple[Setting, ...]] = {}
    for name in sorted(registry.installed()):
        try:
            settings = tuple(registry.load(name).settings)
            settings_with(settings, name)
        except ChaussetteError:
            continue  # reported when the backend is chosen
        if settings:
            found[name] = settings
    return found


def _help_groups() -> list[tuple[str, tuple[Setting, ...]]]:
    """Every installed backend's options; backends sharing one table share one group."""
    names: list[list[str]] = []
    tables: list[tuple[Setting, ...]] = []
    for name, settings in _installed_settings().items():
        if settings in tables:
            names[tables.index(settings)].append(name)
        else:
            names.append([name])
            tables.append(settings)
    return [(", ".join(group), table) for group, table in zip(names, tables, strict=True)]


def _unrecognized(unknown: Sequence[str], backend: str) -> str:
    """argparse's message, unless an option is another installed backend's: then say which."""
    typed = [arg.split("=", 1)[0] for arg in unknown if arg.startswith("--")]
    for name, settings in _installed_settings().items():
        for flag in typed:
            if any(flag in setting.flags for setting in settings):
                return f"{flag} is an option of the {name} backend, not of {backend}: add --backend {name}"
    return f"unrecognized arguments: {' '.join(unknown)}"


def list_backends() -> str:
    from chaussette.registry import describe, install_command

    lines = []
    for info in describe():
        if info.version is None:
            lines.append(f"{info.name:<16} not installed  {install_command(info.name)}")
        else:
            lines.append(f"{info.name:<16} {info.distribution} {info.version}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        code = run_cli(argv)
    except ForcedExit as exc:
        # The stop could not wait (second signal, graceful timeout): threads may still be
        # in the application or in a backend's C loop. The interpreter's own exit would
        # wait for the first and pull objects from under the second (meinheld died of
        # SIGSEGV there), so once run()'s cleanup is done, leave without it.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exc.code if isinstance(exc.code, int) else 1)
    sys.exit(code)


def _given(namespace: argparse.Namespace) -> dict[str, Any]:
    """What was typed: argparse leaves the rest None (or an empty list of arguments)."""
    return {name: value for name, value in vars(namespace).items()
            if name not in COMMAND_OPTIONS and value is not None and value != []}


def run_cli(argv: list[str], environ: Mapping[str, str] | None = None) -> int:
    from chaussette import logs, registry

    environ = os.environ if environ is None else environ
    debug = False
    try:
        extra_args = sources.cmd_args(environ)
        for words, where in ((argv, ""), (extra_args, f"{sources.CMD_ARGS}: ")):
            instead = foreign.advice(words)
            if instead:
                raise UsageError(f"{where}{instead}")
        options = _before_dashes(argv)
        listing = "--list-backends" in options
        path = (_option_value(options, "--config") or _option_value(extra_args, "--config")
                or environ.get(sources.CONFIG, ""))
        document = sources.read_file(path) if path and not listing else {}
    except ChaussetteError as exc:
        print(f"chaussette: error: {exc}", file=sys.stderr)
        return exc.exit_code
    chosen = (_option_value(options, "--backend") or _option_value(extra_args, "--backend")
              or environ.get(f"{sources.PREFIX}BACKEND", "") or sources.backend_of(document) or "")
    backend_name = chosen or "wsgiref"
    backend_class = None
    backend_error: ChaussetteError | None = None
    if not listing:  # listing must not import any backend
        try:
            backend_class = registry.load(backend_name)
        except ChaussetteError as exc:
            backend_error = exc
    extra = backend_class.settings if backend_class else ()
    groups: Groups = [(backend_name, extra)] if extra else []
    if not chosen and ("-h" in options or "--help" in options):
        groups = _help_groups()
    try:
        parser = build_parser(groups)
    except ChaussetteError as exc:
        print(f"chaussette: error: {exc}", file=sys.stderr)
        return exc.exit_code
    namespace, unknown = parser.parse_known_args(argv)
    if unknown:
        parser.error(_unrecognized(unknown, backend_name))
    if namespace.list_backends:
        print(list_backends())
        return 0
    from_variable: dict[str, Any] = {}
    if extra_args:  # the same parser, its errors naming the variable
        parser.where = f"{sources.CMD_ARGS}: "
        extra_namespace, unknown = parser.parse_known_args(extra_args)
        if unknown:
            parser.error(_unrecognized(unknown, backend_name))
        from_variable = _given(extra_namespace)
    try:
        table = settings_with(extra, backend_name)
        given = sources.Given()
        if path:
            known = set(registry.KNOWN) | set(registry.installed())
            given.add_from(sources.from_file(path, document, table, backend_name, known))
        given.add_from(sources.from_environment(environ, table, backend_name))
        given.add(from_variable, sources.CMD_ARGS)
        given.add(_given(namespace), sources.COMMAND_LINE)
        config = build_config(given.values, table)
        debug = config.log_level == "debug"
        # --check-config opens no file: its log goes to stderr.
        log = logs.configure(config.log_level, "-" if namespace.check_config else config.log_output)
        if backend_error is not None:
            raise backend_error
        assert backend_class is not None
        if namespace.check_config:
            from chaussette.runner import check

            check(config, backend_class, log)
            print(sources.render(config, table, given.origins), end="")
            return 0
        if config.use_reloader:
            from chaussette.reloader import run_with_reloader

            return run_with_reloader(argv, config, backend_class, log)
        from chaussette.runner import run

        return run(config, backend_class, log)
    except ChaussetteError as exc:
        if debug:
            logging.getLogger("chaussette").exception("start-up failed")
        print(f"chaussette: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
