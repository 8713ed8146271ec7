"""The backend registry and contract, exercised with fake backends installed as a real
distribution: monkey-patching order, backend settings, --list-backends, --version."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_chaussette, stop_cleanly, write_module

from chaussette import __version__
from chaussette_testing import request, start_server

LOCAL = ("--host", "127.0.0.1", "--port", "0")


@pytest.fixture
def recording_app(tmp_path: Path) -> Path:
    write_module(tmp_path, "recorded_app", """
        import chaussette_fakes
        from chaussette.util import hello_app as app

        chaussette_fakes.record(f"app imported: patched={chaussette_fakes.PATCHED}")
    """)
    return tmp_path


def _serve_once(env: dict, app_dir: Path, *args: str) -> list[str]:
    with start_server("--backend", "fake_patching", *LOCAL, "--python-path", str(app_dir), *args,
                      "recorded_app.app", env=env) as server:
        assert request(server.tcp_address)[2] == b"hello world"
        stop_cleanly(server)
    return (app_dir / "record.txt").read_text().splitlines()


def test_patch_runs_before_the_app_is_imported(fake_env: dict, recording_app: Path) -> None:
    env = dict(fake_env, FAKE_APP_MODULE="recorded_app")
    assert _serve_once(env, recording_app) == ["patch: app imported=False", "app imported: patched=True"]


def test_hooks_are_imported_after_the_patch(fake_env: dict, recording_app: Path) -> None:
    """The docs promise patching before any user code: hooks are user code too."""
    write_module(recording_app, "recorded_hooks", """
        import chaussette_fakes

        chaussette_fakes.record(f"hooks imported: patched={chaussette_fakes.PATCHED}")

        def pre(config):
            chaussette_fakes.record("pre-hook ran")
    """)
    env = dict(fake_env, FAKE_APP_MODULE="recorded_app")
    assert _serve_once(env, recording_app, "--pre-hook", "recorded_hooks.pre") == [
        "patch: app imported=False", "hooks imported: patched=True", "app imported: patched=True",
        "pre-hook ran"]


def test_adapt_runs_before_core_layers(fake_env: dict, tmp_path: Path) -> None:
    """What the user named goes through ``Backend.adapt`` first; core's access log then
    wraps the adapted WSGI application, so it logs what was really sent."""
    write_module(tmp_path, "named_thing", """
        thing = "a plain string"
    """)
    with start_server("--backend", "fake_adapting", *LOCAL, "--python-path", str(tmp_path), "--access-log", "-",
                      "named_thing.thing", env=fake_env) as server:
        status, _, body = request(server.tcp_address)
        assert (status, body) == (200, b"adapted: a plain string")
        stop_cleanly(server)
    [line] = server.stdout.splitlines()
    assert line.endswith('"GET / HTTP/1.1" 200 23'), line


def test_no_monkey_skips_the_patch(fake_env: dict, recording_app: Path) -> None:
    env = dict(fake_env, FAKE_APP_MODULE="recorded_app")
    assert _serve_once(env, recording_app, "--no-monkey") == ["app imported: patched=False"]


def test_backend_setting_shows_in_help(fake_env: dict) -> None:
    result = run_chaussette("--backend", "fake_settings", "--help", env=fake_env)
    assert result.code == 0
    group = result.stdout.split("fake_settings backend options:")[1]
    assert "--fake-greeting" in group and "Word the fake backend logs" in group
    # Another chosen backend does not get the option.
    assert "--fake-greeting" not in run_chaussette("--backend", "wsgiref", "--help", env=fake_env).stdout


def test_backend_setting_reaches_the_backend(fake_env: dict) -> None:
    with start_server("--backend", "fake_settings", *LOCAL, "--fake-greeting", "bonjour", env=fake_env) as server:
        server.wait_for("fake_greeting=bonjour")
        assert request(server.tcp_address)[0] == 200
    with start_server("--backend=fake_settings", *LOCAL, env=fake_env) as server:
        server.wait_for("fake_greeting=hi")  # the declared default


def test_backend_setting_is_unknown_to_other_backends(fake_env: dict) -> None:
    result = run_chaussette(*LOCAL, "--fake-greeting", "x", env=fake_env)
    assert result.code == 2  # argparse's usage error
    assert result.error == ("--fake-greeting is an option of the fake_settings backend, not of wsgiref: "
                            "add --backend fake_settings")


def test_list_backends(fake_env: dict) -> None:
    result = run_chaussette("--list-backends", env=fake_env)
    assert result.code == 0, result.stderr
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()}
    assert rows["wsgiref"] == ["chaussette-core", __version__]
    assert rows["fake_settings"] == ["chaussette-fakes", "0"]
    # Listed from metadata alone: the fake whose module cannot be imported is still there.
    assert rows["fake_broken"] == ["chaussette-fakes", "0"]
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert lines["waitress"] == f"{'waitress':<16} not installed  pip install chaussette-waitress"
    # No meinheld on PyPI runs on Python >= 3.10: the hint is the command that works.
    assert lines["meinheld"] == (f"{'meinheld':<16} not installed  ci/build-wheels wheels && pip install "
                                 "--find-links wheels chaussette-meinheld (in a clone of chaussette: "
                                 "PyPI has no working build)")
    assert "Traceback" not in result.stderr


def test_list_backends_does_not_import_them(noisy_backend: tuple[dict, Path]) -> None:
    """A backend module that announces its import proves listing reads metadata only."""
    env, mark = noisy_backend
    for args in (("--list-backends",), ("--backend", "noisy", "--list-backends")):
        result = run_chaussette(*args, env=env)
        assert "noisy            noisy 0" in result.stdout
        assert not mark.exists(), f"chaussette {' '.join(args)} imported a backend module"


def test_version() -> None:
    result = run_chaussette("--version")
    assert result.code == 0
    assert result.stdout.strip() == f"chaussette-core {__version__}"
