"""--pre-hook/--post-hook, --log-level, --log-output and --access-log on a real server."""

from __future__ import annotations

import re
import signal
import threading
from pathlib import Path

import pytest
from conftest import env_with, read_text, stop_cleanly, write_module

from chaussette_testing import ServerProcess, free_port, request, start_server
from chaussette_testing.client import connect
from chaussette_testing.procs import wait_until

APP = "chaussette_testing.apps.app"


@pytest.fixture
def hooks(tmp_path: Path) -> Path:
    write_module(tmp_path, "myhooks", """
        import os

        def _record(tag, config):
            with open(os.environ["HOOK_RECORD"], "a") as out:
                out.write(f"{tag} backend={config.backend} port={config.port} app={config.application}\\n")

        def pre(config):
            _record("pre", config)

        def post(config):
            _record("post", config)
    """)
    return tmp_path


def _start_hooked(hooks: Path, *args: str) -> ServerProcess:
    env = env_with(HOOK_RECORD=str(hooks / "hooks.txt"))
    return start_server("--host", "127.0.0.1", "--port", "0", "--python-path", str(hooks),
                        "--pre-hook", "myhooks.pre", "--post-hook", "myhooks:post", *args, APP, env=env)


def test_hooks_receive_the_options(hooks: Path) -> None:
    with _start_hooked(hooks) as server:
        assert request(server.tcp_address)[0] == 200
        record = hooks / "hooks.txt"
        assert read_text(record) == f"pre backend=wsgiref port=0 app={APP}\n", "post-hook ran while serving"
        stop_cleanly(server)
    assert record.read_text().splitlines() == [f"pre backend=wsgiref port=0 app={APP}",
                                               f"post backend=wsgiref port=0 app={APP}"]
    assert "Running the pre-hook 'myhooks.pre'" in server.output
    assert "Running the post-hook 'myhooks:post'" in server.output


def test_post_hook_runs_on_forced_exit(hooks: Path) -> None:
    with _start_hooked(hooks, "--graceful-timeout", "120") as server:
        outcome: dict = {}

        def slow() -> None:
            try:
                outcome["status"] = request(server.tcp_address, path="/slow?seconds=60", timeout=30)[0]
            except OSError as exc:  # the forced exit drops the connection: expected
                outcome["error"] = exc

        thread = threading.Thread(target=slow, daemon=True)
        thread.start()
        server.wait_for("slow request started", timeout=15)
        server.signal(signal.SIGTERM)
        server.wait_for("stopping", timeout=10)
        server.signal(signal.SIGINT)
        assert server.wait(20) != 0
        thread.join(15)
    assert "exiting now" in server.output
    assert "status" not in outcome
    assert (hooks / "hooks.txt").read_text().splitlines()[-1].startswith("post backend=wsgiref")


def _wait_listening(port: int) -> None:
    def accepts() -> bool:
        try:
            connect(("127.0.0.1", port), timeout=2).close()
        except OSError:
            return False
        return True

    wait_until(accepts, what=f"a listener on port {port}")


def test_log_output_file(tmp_path: Path) -> None:
    log = tmp_path / "chaussette.log"
    port = free_port()
    with ServerProcess(["--host", "127.0.0.1", "--port", str(port), "--log-output", str(log), APP]) as server:
        wait_until(lambda: "as a backend" in read_text(log), what="start-up lines in the log file")
        assert request(("127.0.0.1", port))[0] == 200
        stop_cleanly(server)
    text = log.read_text()
    assert len(re.findall(r"\[\d+\] \[INFO\] Application is <function app at ", text)) == 1
    assert text.count(f"Serving on 127.0.0.1:{port}") == 1
    assert text.count("Using 'wsgiref' as a backend") == 1
    assert "Stopped" in text
    assert "Serving on" not in server.output, "logs went to stderr as well as the file"


def test_log_level_filters(tmp_path: Path) -> None:
    port = free_port()
    with ServerProcess(["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", APP]) as server:
        _wait_listening(port)
        assert request(("127.0.0.1", port), path="/error")[0] == 500
        server.wait_for(r"\[ERROR\] error in the application", timeout=10)
        stop_cleanly(server)
    assert "Serving on" not in server.output and "[INFO]" not in server.output


def test_access_log(tmp_path: Path) -> None:
    access = tmp_path / "access.log"
    with start_server("--host", "127.0.0.1", "--port", "0", "--access-log", str(access), APP) as server:
        status, headers, _ = request(server.tcp_address, path="/?greet=1")
        assert status == 200
        assert headers.get("content-length") == "11", "logging must not change the response framing"
        assert request(server.tcp_address, "POST", "/echo", body=b"12345")[0] == 200
        assert request(server.tcp_address, path="/missing")[0] == 404
        lines = wait_until(lambda: len(read_text(access).splitlines()) >= 3 and read_text(access).splitlines(),
                           what="three access log lines")
        stop_cleanly(server)
    stamp = r"\[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\]"
    expected = [
        rf'127\.0\.0\.1 - - {stamp} "GET /\?greet=1 HTTP/1\.1" 200 11',
        rf'127\.0\.0\.1 - - {stamp} "POST /echo HTTP/1\.1" 200 \d+',
        rf'127\.0\.0\.1 - - {stamp} "GET /missing HTTP/1\.1" 404 10',
    ]
    assert len(lines) == 3, lines
    # Each request had its own connection (thread): lines are written as each finishes,
    # so their order is not the order of the requests.
    for pattern in expected:
        assert sum(bool(re.fullmatch(pattern, line)) for line in lines) == 1, (pattern, lines)


def test_access_log_to_stdout() -> None:
    with start_server("--host", "127.0.0.1", "--port", "0", "--access-log", "-", APP) as server:
        assert request(server.tcp_address, path="/missing")[0] == 404
        line = wait_until(lambda: server.stdout, what="an access log line on stdout")
        stop_cleanly(server)
    assert re.fullmatch(r'127\.0\.0\.1 - - \[.+\] "GET /missing HTTP/1\.1" 404 10', line), line
    assert "GET /missing" not in server.output, "the access log went to stderr too"
