"""Bad input ends with one readable ``chaussette: error:`` line, a non-zero exit, no
traceback (unless --log-level debug) and nothing left half-started."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from conftest import assert_clean_error, run_chaussette, stop_cleanly, write_module

from chaussette_testing import request, start_server

LOCAL = ("--host", "127.0.0.1", "--port", "0")


@pytest.fixture
def bad_apps(tmp_path: Path) -> Path:
    write_module(tmp_path, "boom_at_import", """
        raise RuntimeError("boom at import time")
    """)
    write_module(tmp_path, "not_an_app", """
        app = 42

        def factory():
            return "not callable either"

        def failing_factory():
            raise ValueError("factory refused")
    """)
    return tmp_path


@pytest.mark.parametrize(("app", "fragments"), [
    ("no_such_module.app", ("module 'no_such_module' not found", "--python-path")),
    ("no_such_module:app", ("module 'no_such_module' not found",)),
    ("chaussette.util.no_such_app", ("'chaussette.util' has no attribute 'no_such_app'",)),
    ("chaussette.util:no_such_app", ("'chaussette.util' has no attribute 'no_such_app'",)),
    ("not_an_app.app", ("'not_an_app.app' is an int, not a WSGI application",)),
    ("not_an_app:factory()", ("is a str, not a WSGI application",)),
    ("not_an_app:failing_factory()", ("calling the factory", "ValueError: factory refused")),
    ("not_an_app:app()", ("is not callable, so it cannot be used as a factory",)),
    ("boom_at_import.app", ("importing 'boom_at_import", "RuntimeError: boom at import time")),
    ("boom_at_import:app", ("importing 'boom_at_import' failed at ",
                            "boom_at_import.py:2: RuntimeError: boom at import time",)),
    ("not a:valid string", ("invalid import string",)),
])
def test_bad_application(bad_apps: Path, app: str, fragments: tuple[str, ...]) -> None:
    result = run_chaussette(*LOCAL, "--python-path", str(bad_apps), app)
    assert_clean_error(result, *fragments)
    assert "Serving on" not in result.stderr


def test_debug_level_shows_the_traceback(bad_apps: Path) -> None:
    result = run_chaussette(*LOCAL, "--python-path", str(bad_apps), "--log-level", "debug",
                            "boom_at_import.app")
    assert result.code == 1
    assert "Traceback" in result.stderr and "boom at import time" in result.stderr
    assert "RuntimeError: boom at import time" in result.error


def test_unknown_backend_lists_installed_ones() -> None:
    message = assert_clean_error(run_chaussette("--backend", "nosuchbackend", *LOCAL),
                                 "unknown backend 'nosuchbackend'", "--list-backends")
    assert "wsgiref" in message.split("installed backends:")[1]


def test_known_backend_not_installed_says_what_to_install() -> None:
    installed = "installed: wsgiref"
    assert assert_clean_error(run_chaussette("--backend", "waitress", *LOCAL)) == (
        f"backend 'waitress' is not installed ({installed}); install it with: pip install chaussette-waitress")
    assert assert_clean_error(run_chaussette("--backend", "bjoern", *LOCAL)) == (
        f"backend 'bjoern' is not installed ({installed}); install it with: apt-get install libev-dev && "
        "ci/build-wheels wheels && pip install --find-links wheels chaussette-bjoern "
        "(in a clone of chaussette: PyPI has no working build)")


def test_backend_for_another_api_version_is_refused(fake_env: dict) -> None:
    result = run_chaussette("--backend", "fake_future", *LOCAL, env=fake_env)
    assert_clean_error(result, "fake_future", "backend API v99", "speaks v2", "chaussette-fakes")


def test_backend_failing_to_import_is_reported(fake_env: dict) -> None:
    result = run_chaussette("--backend", "fake_broken", *LOCAL, env=fake_env)
    assert_clean_error(result, "backend 'fake_broken' failed to load", "fakeserverlib",
                       "pip install --force-reinstall chaussette-fakes")


def test_backend_check_names_the_missing_library(fake_env: dict) -> None:
    result = run_chaussette("--backend", "fake_needs_lib", *LOCAL, env=fake_env)
    assert_clean_error(result, "cannot import 'fakeserverlib'", "pip install chaussette-fakes[lib]")


@pytest.mark.parametrize("backend, option, message", [
    ("fake_fixed", ("--graceful-timeout", "5"), "the fake_fixed backend cannot honour --graceful-timeout: "
                                                "it has no way to wait for requests; remove the option"),
    ("fake_single", ("--keep-alive", "11"), "--keep-alive 11 is too long for fake_single, whose timers go "
                                            "up to 10 seconds; use at most 10"),
])
def test_what_the_backend_cannot_honour_is_refused_before_binding(fake_env: dict, tmp_path: Path, backend: str,
                                                                 option: tuple[str, str], message: str) -> None:
    path = tmp_path / "web.sock"
    result = run_chaussette("--backend", backend, "--host", f"unix:{path}", *option, env=fake_env)
    assert result.code == 1
    assert_clean_error(result, message)
    assert not path.exists(), "refused before any socket is opened"
    # Without the option the same backend starts: only an explicit request is refused.
    with start_server("--backend", backend, *LOCAL, env=fake_env) as server:
        assert request(server.tcp_address)[0] == 200


def test_more_sockets_than_the_backend_serves_are_refused(fake_env: dict) -> None:
    with socket.socket() as first, socket.socket() as second:
        for sock in (first, second):
            sock.bind(("127.0.0.1", 0))
            sock.listen()
        fds = [first.fileno(), second.fileno()]
        result = run_chaussette("--backend", "fake_single", "--fd", str(fds[0]), "--fd", str(fds[1]),
                                env=fake_env, pass_fds=fds)
    assert result.code == 1
    assert_clean_error(result, "the fake_single backend serves at most 1 socket(s) and was given 2")


def test_a_backend_setting_that_clashes_with_core_is_one_line(fake_env: dict) -> None:
    result = run_chaussette("--backend", "fake_clash", *LOCAL, env=fake_env)
    assert result.code == 1
    assert_clean_error(result, "the fake_clash backend declares settings that clash with core's: port")


def test_spawn_refused_on_wsgiref() -> None:
    assert_clean_error(run_chaussette(*LOCAL, "--spawn", "10"), "'wsgiref' cannot bound concurrency",
                       "--spawn")


def test_closed_fd() -> None:
    assert_clean_error(run_chaussette("--fd", "99"), "--fd 99 is not an open file descriptor")


def test_fd_that_is_not_a_socket(tmp_path: Path) -> None:
    data = tmp_path / "data.txt"
    data.write_text("precious")
    with open(data) as handle:
        fd = handle.fileno()
        result = run_chaussette("--fd", str(fd), pass_fds=[fd])
    assert_clean_error(result, f"--fd {fd} is not a socket")
    assert data.read_text() == "precious"


def test_datagram_fd_is_refused() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        result = run_chaussette("--fd", str(sock.fileno()), pass_fds=[sock.fileno()])
    assert_clean_error(result, "not a stream socket")


def test_port_in_use() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        result = run_chaussette("--host", "127.0.0.1", "--port", str(port))
    assert_clean_error(result, f"127.0.0.1:{port} is already in use")


def test_regular_file_at_the_unix_socket_path_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "web.sock"
    path.write_text("not a socket")
    result = run_chaussette("--host", f"unix:{path}")
    assert_clean_error(result, "exists and is not a socket")
    assert path.read_text() == "not a socket"


def test_live_unix_socket_is_not_stolen(tmp_path: Path) -> None:
    path = tmp_path / "web.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        sock.listen(1)
        result = run_chaussette("--host", f"unix:{path}")
        assert_clean_error(result, "already in use by a running server")
        assert path.exists()


def test_stale_unix_socket_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "web.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: what a crashed server leaves
    assert path.is_socket()
    with start_server("--host", f"unix:{path}") as server:
        assert request(str(path))[2] == b"hello world"
        stop_cleanly(server)
    assert not path.exists()


def test_failed_app_import_removes_the_bound_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "web.sock"
    result = run_chaussette("--host", f"unix:{path}", "no_such_module.app")
    assert_clean_error(result, "module 'no_such_module' not found")
    assert not path.exists(), "a socket file bound before the app failed must be removed"


def test_paste_ini_missing(tmp_path: Path) -> None:
    assert_clean_error(run_chaussette(*LOCAL, f"paste:{tmp_path / 'missing.ini'}"), "paste ini file",
                       "not found")


@pytest.mark.parametrize(("content", "fragment"), [
    ("this is not an ini file\n", "MissingSectionHeaderError"),
    ("[app:other]\nuse = call:chaussette_testing.apps:create_app\n", "LookupError"),
    ("[app:main]\nuse = call:no_such_module:factory\n", "no_such_module"),
])
def test_paste_ini_invalid(tmp_path: Path, content: str, fragment: str) -> None:
    ini = tmp_path / "app.ini"
    ini.write_text(content)
    assert_clean_error(run_chaussette(*LOCAL, f"paste:{ini}"), f"cannot load {ini}", fragment)


def test_unwritable_log_output(tmp_path: Path) -> None:
    target = tmp_path / "no-such-dir" / "chaussette.log"
    assert_clean_error(run_chaussette(*LOCAL, "--log-output", str(target)), "cannot write --log-output",
                       str(target))


def test_unwritable_access_log(tmp_path: Path) -> None:
    target = tmp_path / "no-such-dir" / "access.log"
    assert_clean_error(run_chaussette(*LOCAL, "--access-log", str(target)), "cannot write --access-log")


def test_missing_hook(tmp_path: Path) -> None:
    assert_clean_error(run_chaussette(*LOCAL, "--pre-hook", "no_such_module.hook"), "--pre-hook",
                       "no_such_module")
    assert_clean_error(run_chaussette(*LOCAL, "--post-hook", "chaussette.__version__"), "--post-hook",
                       "is not callable")


@pytest.mark.parametrize(("args", "fragment"), [
    (("--fd", "-1"), "for fd: a file descriptor is between 0 and"),
    (("--fd", "99999999999999999999"), "invalid value"),
    (("--backlog", "4294967296"), "--backlog"),
    (("--graceful-timeout", "inf"), "--graceful-timeout"),
    (("--graceful-timeout", "1e300"), "--graceful-timeout"),
    (("--keep-alive", "nan"), "--keep-alive"),
    (("--limit-request-line", "99999999999999999999999"), "--limit-request-line"),
    (("--host", "fd://x"), "invalid file descriptor"),
    (("--host", "[::1"), "invalid IPv6 host"),
    (("--host", "no/slash"), "invalid host"),
    (("--host", "a..b"), "invalid host 'a..b'"),
    (("--host", "x" * 64 + ".example"), "not a valid host name"),
    (("--host", "fd://99999999999999999999"), "invalid file descriptor"),
    (("--host", "unix:"), "invalid unix socket path"),
    (("--port", "70000"), "between 0 and 65535"),
    (("--socket-type", "SOCK_DGRAM"), "cannot carry HTTP"),
])
def test_out_of_range_values(args: tuple[str, ...], fragment: str) -> None:
    defaults = LOCAL if "--host" not in args and "--fd" not in args else ()
    assert_clean_error(run_chaussette(*defaults, *args), fragment)


@pytest.mark.parametrize(("given", "needed"), [
    (("--access-log-format", "%(h)s"), "--access-log"),
    (("--access-log-json",), "--access-log"),
    (("--forwarded-headers", "forwarded"), "--forwarded-allow-ips"),
    (("--max-requests-jitter", "5"), "--max-requests"),
    (("--statsd-prefix", "app"), "--statsd-host"),
])
def test_an_option_that_would_do_nothing_alone_is_refused(given: tuple[str, ...], needed: str) -> None:
    message = assert_clean_error(run_chaussette(*LOCAL, *given))
    assert message == f"{given[0]} does nothing without {needed}: add {needed} or remove {given[0]}"


def test_every_front_door_refuses_a_lone_option_through_build_config() -> None:
    """make_server(**kwargs) and [server:main] ini keys are read by the same function."""
    from chaussette.errors import ChaussetteError
    from chaussette.settings import build_config

    with pytest.raises(ChaussetteError) as raised:
        build_config({"max_requests_jitter": "5", "max_requests": "0"})
    assert str(raised.value) == ("--max-requests-jitter does nothing without --max-requests: "
                                 "add --max-requests or remove --max-requests-jitter")
    assert build_config({"access_log_json": "false"}).access_log_json is False


TRACEBACK_HINT = " (--log-level debug shows the traceback)"


def test_import_failure_names_the_line_of_the_app_that_raised(bad_apps: Path) -> None:
    path = bad_apps / "boom_at_import.py"
    message = assert_clean_error(run_chaussette(*LOCAL, "--python-path", str(bad_apps), "boom_at_import:app"))
    assert message == (f"importing 'boom_at_import' failed at {path}:2: RuntimeError: boom at import time"
                       + TRACEBACK_HINT)


def test_import_failure_inside_the_standard_library_names_the_app_line(tmp_path: Path) -> None:
    """os.environ raises in os.py; the line to fix is the app's."""
    path = write_module(tmp_path, "needs_env", """
        import os

        DATABASE = os.environ["CHAUSSETTE_TEST_UNSET_VARIABLE"]
    """)
    message = assert_clean_error(run_chaussette(*LOCAL, "--python-path", str(tmp_path), "needs_env:app"))
    assert message == (f"importing 'needs_env' failed at {path}:4: KeyError: 'CHAUSSETTE_TEST_UNSET_VARIABLE'"
                       + TRACEBACK_HINT)


def test_syntax_error_names_its_line(tmp_path: Path) -> None:
    path = write_module(tmp_path, "bad_syntax", """
        app = None
        def (:
    """)
    message = assert_clean_error(run_chaussette(*LOCAL, "--python-path", str(tmp_path), "bad_syntax:app"))
    assert message.startswith(f"importing 'bad_syntax' failed at {path}:3: SyntaxError: ")
    assert message.endswith(TRACEBACK_HINT)


def test_failing_factory_names_its_line(bad_apps: Path) -> None:
    path = bad_apps / "not_an_app.py"
    message = assert_clean_error(run_chaussette(*LOCAL, "--python-path", str(bad_apps),
                                                "not_an_app:failing_factory()"))
    assert message == (f"calling the factory 'not_an_app:failing_factory()' failed at {path}:8: "
                       "ValueError: factory refused" + TRACEBACK_HINT)


@pytest.mark.parametrize(("app", "kind"), [("not_an_app.app", "an int"), ("not_an_app:factory()", "a str")])
def test_what_is_not_an_app_is_named_with_its_article(bad_apps: Path, app: str, kind: str) -> None:
    message = assert_clean_error(run_chaussette(*LOCAL, "--python-path", str(bad_apps), app))
    assert message == f"{app!r} is {kind}, not a WSGI application (a callable taking environ and start_response)"


WORKERS = ("chaussette has no {}: one chaussette is one process: run several with the process manager "
           "(Circus numprocesses, Supervisor numprocs, systemd: several instances on one socket)")
BIND = ("chaussette has no {}: use --host and --port (--host unix:/path for a unix socket), "
        "or --fd for a socket the manager opened")
TLS = "chaussette has no {}: chaussette serves plain HTTP: terminate TLS at the proxy in front of it (nginx, HAProxy)"
DAEMON = "chaussette has no {}: chaussette stays in the foreground: the process manager runs it"


@pytest.mark.parametrize(("args", "expected"), [
    (("-w", "4"), WORKERS.format("-w")),
    (("--workers", "4"), WORKERS.format("--workers")),
    (("--workers=4",), WORKERS.format("--workers")),
    (("-w4",), WORKERS.format("-w")),
    (("--bind", "0.0.0.0:8000"), BIND.format("--bind")),
    (("--bind=unix:/run/app.sock",), BIND.format("--bind")),
    (("-b", ":8000"), BIND.format("-b")),
    (("--reload",), "chaussette has no --reload: use --use-reloader"),
    (("--threads", "8"), "chaussette has no --threads: use the waitress backend: --backend waitress "
                         "--waitress-threads N"),
    (("--certfile", "cert.pem"), TLS.format("--certfile")),
    (("--keyfile=key.pem",), TLS.format("--keyfile")),
    (("-D",), DAEMON.format("-D")),
    (("--daemon",), DAEMON.format("--daemon")),
    (("--pid", "/run/app.pid"), "chaussette has no --pid: chaussette writes no pid file: the process manager "
                                "knows the pid (systemd's MAINPID, circusctl pid, supervisorctl pid)"),
])
def test_gunicorn_and_uvicorn_options_say_what_to_do_instead(args: tuple[str, ...], expected: str) -> None:
    result = run_chaussette(*LOCAL, *args, "chaussette.util.hello_app")
    assert result.code == 2
    assert result.stderr == f"chaussette: error: {expected}\n"


def test_a_value_that_starts_like_a_foreign_flag_is_a_value() -> None:
    result = run_chaussette(*LOCAL, "--access-log", "-", "--access-log-format", "-D %(D)s", "no_such_module.app")
    assert_clean_error(result, "module 'no_such_module' not found")


def test_after_double_dash_a_foreign_flag_is_not_taken_for_an_option() -> None:
    result = run_chaussette(*LOCAL, "--", "--workers")
    assert_clean_error(result, "invalid import string '--workers'")


@pytest.mark.parametrize(("args", "expected"), [
    (("--graceful-timeout", "x"), "argument --graceful-timeout: invalid value 'x': "
                                  "must be a number between 0 and 2147483647"),
    (("--keep-alive=inf",), "argument --keep-alive: invalid value 'inf': must be a number between 0 and 2147483647"),
    (("--backlog", "0"), "argument --backlog: invalid value '0': must be a whole number between 1 and 2147483647"),
    (("--max-requests", "1.5"), "argument --max-requests: invalid value '1.5': "
                                "must be a whole number between 0 and 2147483647"),
    (("--port", "http"), "argument --port: invalid value 'http': must be a whole number"),
    (("--fd", "x"), "argument --fd: invalid value 'x': must be a whole number"),
    (("--log-level", "loud"), "argument --log-level: invalid value 'loud': "
                              "must be one of critical, error, warning, info, debug"),
    (("--forwarded-allow-ips", "localhost"), "argument --forwarded-allow-ips: 'localhost' is not an IP address, "
                                             "a CIDR range, '*' or 'unix' (name addresses: 127.0.0.1, ::1)"),
    (("--no-such-option",), "unrecognized arguments: --no-such-option"),
])
def test_a_bad_option_is_one_error_line_and_a_pointer_to_help(args: tuple[str, ...], expected: str) -> None:
    result = run_chaussette(*LOCAL, *args)
    assert result.code == 2
    assert result.stderr == f"chaussette: error: {expected}\nrun chaussette --help for the options\n"


def test_ini_and_keyword_booleans_say_what_they_accept() -> None:
    from chaussette.errors import ChaussetteError
    from chaussette.settings import build_config

    with pytest.raises(ChaussetteError) as raised:
        build_config({"use_reloader": "maybe"})
    assert str(raised.value) == ("invalid value 'maybe' for use-reloader: "
                                 "must be true or false (or 1/0, yes/no, on/off)")


@pytest.mark.parametrize("args", [("--fake-greeting", "bonjour"), ("--fake-greeting=bonjour",)])
def test_an_option_of_another_installed_backend_names_that_backend(fake_env: dict, args: tuple[str, ...]) -> None:
    result = run_chaussette(*LOCAL, "--backend", "fake_single", *args, env=fake_env)
    assert result.code == 2
    assert result.error == ("--fake-greeting is an option of the fake_settings backend, not of fake_single: "
                            "add --backend fake_settings")
