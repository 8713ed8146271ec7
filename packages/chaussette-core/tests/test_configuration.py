"""Settings from a TOML file (--config, CHAUSSETTE_CONFIG), CHAUSSETTE_<NAME> variables and
CHAUSSETTE_CMD_ARGS, their precedence, their errors, and --check-config: real runs of the
command, and real servers that must act on what the file and the environment said."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest
from conftest import assert_clean_error, env_with, run_chaussette, stop_cleanly, write_module

from chaussette_testing import request, start_server

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def clean_env(**variables: str) -> dict:
    """This process's environment without any CHAUSSETTE_ variable, plus ``variables``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CHAUSSETTE_")}
    return dict(env, **variables)


def effective(result_stdout: str) -> tuple[dict, dict]:
    """--check-config's output read back as TOML, and each setting's origin comment."""
    origins = {}
    for line in result_stdout.splitlines():
        if " = " in line and "  # " in line:
            key = line.split(" = ", 1)[0]
            origins[key] = line.rsplit("  # ", 1)[1]
    return tomllib.loads(result_stdout), origins


def test_command_line_beats_environment_beats_file_beats_default(tmp_path: Path) -> None:
    config = tmp_path / "chaussette.toml"
    config.write_text('port = 9001\ngraceful-timeout = 5\nkeep_alive = 7\nlog_level = "warning"\n')
    env = clean_env(CHAUSSETTE_PORT="9002", CHAUSSETTE_CMD_ARGS="--keep-alive 3 --backlog 64")
    result = run_chaussette("--config", str(config), "--check-config", "--port", "9003", env=env)
    assert result.code == 0, result.stderr
    values, origins = effective(result.stdout)
    assert (values["port"], origins["port"]) == (9003, "command line")
    assert (values["keep_alive"], origins["keep_alive"]) == (3.0, "CHAUSSETTE_CMD_ARGS")
    assert (values["backlog"], origins["backlog"]) == (64, "CHAUSSETTE_CMD_ARGS")
    assert (values["graceful_timeout"], origins["graceful_timeout"]) == (5.0, str(config))
    assert (values["log_level"], origins["log_level"]) == ("warning", str(config))
    assert (values["limit_request_line"], origins["limit_request_line"]) == (8190, "default")
    assert (values["backend"]["name"], origins["name"]) == ("wsgiref", "default")
    without_flag = run_chaussette("--config", str(config), "--check-config", env=env)
    assert effective(without_flag.stdout)[0]["port"] == 9002
    assert effective(without_flag.stdout)[1]["port"] == "CHAUSSETTE_PORT"


def test_config_variable_names_the_file_and_the_output_reads_back(tmp_path: Path) -> None:
    config = tmp_path / "first.toml"
    config.write_text('host = "127.0.0.1"\naccess_log = "-"\naccess_log_json = true\n'
                      'forwarded_allow_ips = ["127.0.0.1", "10.0.0.0/8"]\n')
    first = run_chaussette("--check-config", env=clean_env(CHAUSSETTE_CONFIG=str(config)))
    assert first.code == 0, first.stderr
    values, origins = effective(first.stdout)
    assert values["forwarded_allow_ips"] == ["127.0.0.1", "10.0.0.0/8"]
    assert origins["access_log_json"] == str(config)
    again = tmp_path / "again.toml"
    again.write_text(first.stdout)
    second = run_chaussette("--config", str(again), "--check-config", env=clean_env())
    assert second.code == 0, second.stderr
    assert effective(second.stdout)[0] == values


def test_a_server_acts_on_the_file_and_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "chaussette.toml"
    config.write_text('application = "chaussette.util:hello_app"\nhost = "127.0.0.1"\n'
                      'request_id_header = "X-Request-ID"\n')
    env = clean_env(CHAUSSETTE_CONFIG=str(config), CHAUSSETTE_PORT="0",
                    CHAUSSETTE_HEALTH_PATH="/healthz")
    with start_server(env=env) as server:
        assert server.addresses[0].startswith("127.0.0.1:")
        status, headers, _ = request(server.tcp_address, headers={"X-Request-ID": "from-the-test"})
        assert (status, headers["x-request-id"]) == (200, "from-the-test")
        assert request(server.tcp_address, path="/healthz")[0] == 200
        stop_cleanly(server)


def test_backend_table_reaches_the_chosen_backend_only(fake_backends: Path, tmp_path: Path) -> None:
    config = tmp_path / "chaussette.toml"
    config.write_text('host = "127.0.0.1"\nport = 0\nbackend.name = "fake_settings"\n\n'
                      '[backend.fake_settings]\nfake_greeting = "salut"\n\n'
                      '[backend.waitress]\nthreads = 8\n')
    env = env_with(fake_backends)
    with start_server("--config", str(config), env=env) as server:
        server.wait_for("fake_greeting=salut")
        stop_cleanly(server)
    checked = run_chaussette("--config", str(config), "--check-config", env=env)
    values, origins = effective(checked.stdout)
    assert values["backend"] == {"name": "fake_settings", "fake_settings": {"fake_greeting": "salut"}}
    assert origins["fake_greeting"] == str(config)


def test_check_config_opens_no_socket_and_no_file(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_chaussette("--check-config", "--host", "127.0.0.1", "--port", str(port),
                                "--access-log", str(tmp_path / "access.log"),
                                "--log-output", str(tmp_path / "server.log"), env=clean_env())
    assert result.code == 0, result.stderr
    assert effective(result.stdout)[0]["port"] == port
    assert sorted(tmp_path.iterdir()) == []
    unix = run_chaussette("--check-config", "--host", f"unix:{tmp_path / 'app.sock'}", env=clean_env())
    assert unix.code == 0, unix.stderr
    assert sorted(tmp_path.iterdir()) == []


def test_check_config_loads_the_application(tmp_path: Path) -> None:
    write_module(tmp_path, "broken_app", """
        raise RuntimeError("db not configured")
    """)
    result = run_chaussette("--check-config", "--python-path", str(tmp_path), "broken_app.app", env=clean_env())
    assert result.code == 1
    assert assert_clean_error(result) == (f"importing 'broken_app.app' failed at {tmp_path / 'broken_app.py'}:2: "
                                          "RuntimeError: db not configured (--log-level debug shows the traceback)")
    assert result.stdout == ""


def test_check_config_refuses_what_the_backend_cannot_honour(fake_backends: Path) -> None:
    env = env_with(fake_backends)
    result = run_chaussette("--check-config", "--backend", "fake_single", "--fd", "0", "--fd", "1", env=env)
    assert result.code == 1
    assert "serves at most 1 socket(s) and was given 2" in assert_clean_error(result)


@pytest.mark.parametrize(("text", "error"), [
    ("prot = 8000\n", "unknown key 'prot' (did you mean port?)"),
    ('port = "eighty"\n', "port: invalid value 'eighty' for port: must be a whole number"),
    ("port = [1, 2]\n", "port: invalid value [1, 2] for port: must be a whole number"),
    ("fake_greeting = 'x'\nbackend.name = 'fake_settings'\n",
     "unknown key 'fake_greeting'; it is the fake_settings backend's: put it under [backend.fake_settings]"),
    ("[backend.waitres]\nthreads = 1\n",
     "[backend.waitres] names no known backend (did you mean waitress?); see chaussette --list-backends"),
    ("backend.name = 'fake_settings'\n[backend.fake_settings]\ngreting = 'x'\n",
     "[backend.fake_settings] has no setting 'greting' (did you mean fake_greeting?); "
     "the fake_settings backend's are in chaussette --backend fake_settings --help"),
])
def test_file_errors_name_the_file_and_the_key(fake_backends: Path, tmp_path: Path, text: str, error: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    result = run_chaussette("--config", str(config), env=env_with(fake_backends))
    assert assert_clean_error(result) == f"config file {config}: {error}"
    assert result.code == 1


def test_a_file_that_is_not_toml_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("port = \n")
    message = assert_clean_error(run_chaussette("--config", str(config), env=clean_env()))
    assert message.startswith(f"config file {config}: not valid TOML: "), message
    assert "(at line 1, column 8)" in message, message


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    result = run_chaussette("--config", str(tmp_path / "nope.toml"), env=clean_env())
    assert assert_clean_error(result) == (f"config file {tmp_path / 'nope.toml'}: "
                                          "cannot read it (No such file or directory)")


@pytest.mark.parametrize(("variables", "error", "code"), [
    ({"CHAUSSETTE_PROT": "8000"},
     "CHAUSSETTE_PROT names no setting of chaussette or of the wsgiref backend (did you mean CHAUSSETTE_PORT?); "
     "rename or unset it", 1),
    ({"CHAUSSETTE_PORT": "eighty"}, "CHAUSSETTE_PORT: invalid value 'eighty' for port: must be a whole number", 1),
    ({"CHAUSSETTE_CMD_ARGS": "--port 1", "CHAUSSETTE_PORT": "2"},
     "CHAUSSETTE_PORT and CHAUSSETTE_CMD_ARGS both set port; keep one", 1),
    ({"CHAUSSETTE_CMD_ARGS": "--access-log 'unclosed"},
     "CHAUSSETTE_CMD_ARGS: No closing quotation; quote it as a shell command line", 2),
    ({"CHAUSSETTE_CMD_ARGS": "--bind 0.0.0.0:80"},
     "CHAUSSETTE_CMD_ARGS: chaussette has no --bind: use --host and --port (--host unix:/path for a unix "
     "socket), or --fd for a socket the manager opened", 2),
    ({"CHAUSSETTE_CMD_ARGS": "--nope"}, "CHAUSSETTE_CMD_ARGS: unrecognized arguments: --nope", 2),
    ({"CHAUSSETTE_CMD_ARGS": "--port x"},
     "CHAUSSETTE_CMD_ARGS: argument --port: invalid value 'x': must be a whole number", 2),
])
def test_environment_errors_name_the_variable(variables: dict, error: str, code: int) -> None:
    result = run_chaussette("--host", "127.0.0.1", env=clean_env(**variables))
    assert assert_clean_error(result) == error
    assert result.code == code


def test_an_empty_variable_counts_as_unset() -> None:
    result = run_chaussette("--check-config", env=clean_env(CHAUSSETTE_PORT="", CHAUSSETTE_ACCESS_LOG=""))
    assert result.code == 0, result.stderr
    values, origins = effective(result.stdout)
    assert (values["port"], origins["port"]) == (8080, "default")
    assert "access_log" not in values
