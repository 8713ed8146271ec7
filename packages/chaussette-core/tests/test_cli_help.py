"""What ``chaussette --help`` and a bare ``chaussette`` tell a newcomer: defaults, every
installed backend's options, where gunicorn's options went, and that the demo app is a demo."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import env_with, run_chaussette

from chaussette_testing import request, start_server

LOCAL = ("--host", "127.0.0.1", "--port", "0")
#: Wide enough that argparse puts each option and its help on one line.
WIDE = {"COLUMNS": "1000"}


def help_lines(*args: str, env: dict | None = None) -> list[str]:
    """The --help output, one line an option: argparse puts a long option's help on the
    next lines, indented deeper; those are joined to it."""
    result = run_chaussette(*args, "--help", env=env_with(**WIDE) if env is None else dict(env, **WIDE))
    assert result.code == 0, result.stderr
    lines: list[str] = []
    for raw in result.stdout.splitlines():
        indent = len(raw) - len(raw.lstrip())
        if indent > 2 and lines:
            lines[-1] = f"{lines[-1]} {raw.strip()}"
        elif raw.strip():
            lines.append(" ".join(raw.split()))
    return lines


def option_line(lines: list[str], start: str) -> str:
    found = [line for line in lines if line.startswith(start)]
    assert len(found) == 1, f"{start!r}: {found}"
    return found[0]


@pytest.mark.parametrize(("start", "end"), [
    ("application ", "(default: chaussette.util.hello_app)"),
    ("--port PORT ", "Port to bind (0 picks a free one). (default: 8080)"),
    ("--graceful-timeout ", "after SIGTERM or SIGINT. (default: 30)"),
    ("--keep-alive SECONDS ", "0 turns keep-alive off. (default: 5)"),
    ("--log-output ", "Where logs go: - for stderr, or a file path. (default: -)"),
    ("--max-requests N ", "0 never. (default: 0)"),
    ("--forwarded-headers LIST ", "on every request. (default: x-forwarded-for,x-forwarded-proto)"),
    # No default to state: off, empty, or a flag.
    ("--access-log FILE ", "Off by default."),
    ("--statsd-prefix PREFIX ", "a dot is added unless it ends with one."),
    ("--no-monkey ", "even if the backend would."),
])
def test_help_states_the_defaults(start: str, end: str) -> None:
    line = option_line(help_lines(), start)
    assert line.endswith(end), line
    assert line.count("(default:") == end.count("(default:")


def test_plain_help_lists_every_installed_backends_options_by_backend(fake_env: dict) -> None:
    lines = help_lines(env=fake_env)
    group = lines[lines.index("fake_settings backend options:"):]
    assert option_line(group, "--fake-greeting ") == ("--fake-greeting FAKE_GREETING Word the fake backend logs "
                                                      "when it starts serving. (default: hi)")
    # A backend that fails to load or clashes with core is left out, not fatal to --help.
    assert not any("fake_broken" in line or "fake_clash" in line or "--fake-port" in line for line in lines)


def test_help_with_a_backend_lists_only_that_backends_options(fake_env: dict) -> None:
    lines = help_lines("--backend", "fake_single", env=fake_env)
    assert not any("--fake-greeting" in line or "backend options:" in line for line in lines)


def test_gunicorn_options_are_one_epilog_line_not_options() -> None:
    lines = help_lines()
    assert lines[-1:] == ["Coming from gunicorn or uvicorn? -w/--workers, -b/--bind, --reload, --threads, "
                          "--certfile/--keyfile, -D/--daemon, --pid are not options here: each answers with "
                          "what chaussette does instead."]
    for flag in ("-w", "--workers", "-b", "--bind", "--reload", "--threads", "--certfile", "--keyfile",
                 "-D", "--daemon", "--pid"):
        assert not any(line.split(" ")[0].rstrip(",") == flag for line in lines), flag


def test_only_help_imports_every_backend(noisy_backend: tuple[dict, Path]) -> None:
    """A normal start imports the chosen backend alone; --help imports them all."""
    env, mark = noisy_backend
    with start_server(*LOCAL, env=env) as server:
        assert request(server.tcp_address)[0] == 200
    assert not mark.exists(), "a normal start imported a backend it does not use"
    help_lines(env=env)
    assert mark.exists(), "--help did not look at every installed backend"


DEMO_WARNING = ("[WARNING] no application given: serving chaussette's demo app (chaussette.util.hello_app); "
                "name yours, e.g. chaussette myproject.wsgi.application")


def test_no_application_serves_the_demo_app_with_a_warning() -> None:
    with start_server(*LOCAL) as server:
        assert request(server.tcp_address)[2] == b"hello world"
        assert any(line.endswith(DEMO_WARNING) for line in server.output.splitlines()), server.output


def test_naming_the_demo_app_gives_no_warning() -> None:
    with start_server(*LOCAL, "chaussette.util.hello_app") as server:
        assert request(server.tcp_address)[2] == b"hello world"
        assert "no application given" not in server.output
