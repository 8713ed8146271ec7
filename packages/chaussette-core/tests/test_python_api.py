"""The 1.3 Python API (make_server, chaussette.util) and the PasteDeploy server runner."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CommandProcess, stop_cleanly, write_module

from chaussette.errors import AppImportError, ChaussetteError
from chaussette.util import create_socket, hello_app, import_string
from chaussette_testing import UnixHTTPConnection, request
from chaussette_testing.client import ipv6_loopback

MAKE_SERVER = """
import sys

from chaussette.server import make_server
from chaussette.util import hello_app

server = make_server(hello_app, host="127.0.0.1", port=0, backend=sys.argv[1], **dict(
    arg.split("=", 1) for arg in sys.argv[2:]))
print("address", server.server_address[0], server.server_address[1], flush=True)
sys.exit(server.serve_forever())
"""


def _run_script(tmp_path: Path, source: str, *args: str, env: dict | None = None) -> CommandProcess:
    script = write_module(tmp_path, "script", source)
    process = CommandProcess([sys.executable, str(script), *args], env=env, cwd=str(tmp_path))
    process.wait_serving()
    return process


def test_make_server_serve_forever(tmp_path: Path) -> None:
    with _run_script(tmp_path, MAKE_SERVER, "wsgiref") as server:
        status, headers, body = request(server.tcp_address)
        assert (status, body) == (200, b"hello world")
        assert server.stdout == f"address 127.0.0.1 {server.tcp_address[1]}"
        stop_cleanly(server)
    assert "Stopped" in server.output


def test_make_server_takes_backend_settings(tmp_path: Path, fake_env: dict) -> None:
    with _run_script(tmp_path, MAKE_SERVER, "fake_settings", "fake_greeting=salut", env=fake_env) as server:
        server.wait_for("fake_greeting=salut")
        assert request(server.tcp_address)[0] == 200
        stop_cleanly(server)


def test_make_server_rejects_unknown_settings() -> None:
    from chaussette.server import make_server

    with pytest.raises(ChaussetteError, match="unknown setting.*no_such_option"):
        make_server(hello_app, host="127.0.0.1", port=0, no_such_option=1)


def test_hello_app() -> None:
    seen = []
    body = hello_app({}, lambda status, headers: seen.append((status, headers)))
    assert b"".join(body) == b"hello world"
    assert seen == [("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "11")])]


def test_import_string() -> None:
    assert import_string("chaussette.util.hello_app") is hello_app
    assert import_string("chaussette.util:hello_app") is hello_app
    assert import_string("chaussette.errors:AppImportError.exit_code") == 1
    with pytest.raises(AppImportError, match="has no attribute 'nope'"):
        import_string("chaussette.util.nope")
    with pytest.raises(AppImportError, match="module 'no_such_module_x' not found"):
        import_string("no_such_module_x:app")
    with pytest.raises(AppImportError, match="only one ':'"):
        import_string("a:b:c")


def _round_trip(listening: socket.socket, address: object) -> None:
    family = socket.AF_UNIX if isinstance(address, str) else listening.family
    with socket.socket(family) as client:
        client.settimeout(10)
        client.connect(address)
        peer, _ = listening.accept()
        with peer:
            client.sendall(b"ping")
            assert peer.recv(4) == b"ping"


def test_create_socket_tcp() -> None:
    with create_socket("127.0.0.1", 0) as sock:
        assert sock.family == socket.AF_INET and sock.getblocking()
        _round_trip(sock, sock.getsockname())
    with create_socket("127.0.0.1", 0, blocking=False) as sock:
        assert not sock.getblocking()


def test_create_socket_ipv6() -> None:
    if not ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback")
    with create_socket("::1", 0) as sock:
        assert sock.family == socket.AF_INET6
        _round_trip(sock, sock.getsockname()[:2])


def test_create_socket_unix(tmp_path: Path) -> None:
    for host, family in ((f"unix:{tmp_path}/a.sock", socket.AF_INET), (f"{tmp_path}/b.sock", socket.AF_UNIX)):
        path = host.removeprefix("unix:")
        with create_socket(host, family=family) as sock:
            assert sock.family == socket.AF_UNIX
            _round_trip(sock, path)
        Path(path).unlink()  # the caller owns the file, as in 1.3


def test_create_socket_refuses_datagrams() -> None:
    with pytest.raises(ValueError, match="SOCK_STREAM"):
        create_socket("127.0.0.1", 0, type=socket.SOCK_DGRAM)


PASTE_SERVER_INI = """\
[app:main]
use = call:paste_factory:make_app
greeting = served by paste

[server:main]
use = egg:chaussette-core
host = {host}
port = 0
backend = wsgiref
log_level = info
"""

LOAD_SERVER = """
import sys

from paste.deploy import loadapp, loadserver

uri = "config:" + sys.argv[1]
sys.exit(loadserver(uri)(loadapp(uri)))
"""


@pytest.mark.parametrize("unix", [False, True], ids=["tcp", "unix"])
def test_paste_server_runner(tmp_path: Path, unix: bool) -> None:
    write_module(tmp_path, "paste_factory", """
        from chaussette_testing.apps import create_app

        def make_app(global_conf, greeting):
            return create_app(greeting)
    """)
    path = tmp_path / "paste.sock"
    ini = tmp_path / "server.ini"
    ini.write_text(PASTE_SERVER_INI.format(host=f"unix:{path}" if unix else "127.0.0.1"))
    with _run_script(tmp_path, LOAD_SERVER, str(ini)) as server:
        if unix:
            conn = UnixHTTPConnection(str(path))
            conn.request("GET", "/")
            assert conn.getresponse().read() == b"served by paste"
            conn.close()
        else:
            assert request(server.tcp_address)[2] == b"served by paste"
        assert "Using 'wsgiref' as a backend" in server.output
        stop_cleanly(server)
    assert not path.exists()


# -- serve_forever() in a thread (the shared EmbeddedSuite covers every backend) -----------

EMBEDDED = """
import http.client, json, sys, threading, time

from chaussette.lifecycle import request_stop
from chaussette.server import make_server

release = threading.Event()


def app(environ, start_response):
    if environ["PATH_INFO"] == "/stop":
        request_stop("the application asked")
    if environ["PATH_INFO"] == "/stuck":
        release.wait(20)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


mode = sys.argv[1]
settings = {"drain": dict(drain_delay=0.5, health_path="/healthz"), "recycle": dict(max_requests=2)}
server = make_server(app, host="127.0.0.1", port=0, **settings.get(mode, {}))
host, port = server.server_address[:2]
report = {}


def get(path):
    conn = http.client.HTTPConnection(host, port, timeout=20)
    conn.request("GET", path)
    response = conn.getresponse()
    return [response.status, response.read().decode()]


def serve():
    report["code"] = server.serve_forever()


serving = threading.Thread(target=serve, daemon=True)
if mode == "early":  # shutdown() before serve_forever(): it returns as soon as it serves
    report["shutdown"] = server.shutdown(timeout=20)
    serving.start()
elif mode == "recycle":  # --max-requests stops it from a request's thread
    serving.start()
    report["requests"] = [get("/"), get("/")]
elif mode == "drain":  # request_stop() with a drain delay: a timer thread ends the drain
    serving.start()
    report["stop"] = get("/stop")
    report["health"] = get("/healthz")
    report["during"] = get("/")
elif mode == "stuck":  # shutdown() is bounded: False while a request still runs
    serving.start()
    stuck = threading.Thread(target=lambda: report.__setitem__("stuck", get("/stuck")), daemon=True)
    stuck.start()
    time.sleep(0.5)
    report["shutdown"] = server.shutdown(timeout=0.5)
    release.set()
    stuck.join(20)
serving.join(20)
report["still_serving"] = serving.is_alive()
print(json.dumps(report), flush=True)
"""


@pytest.mark.parametrize(("mode", "expected"), [
    ("early", {"shutdown": True, "code": 0}),
    ("recycle", {"requests": [[200, "ok"], [200, "ok"]], "code": 0}),
    ("drain", {"stop": [200, "ok"], "health": [503, "draining\n"], "during": [200, "ok"], "code": 0}),
    ("stuck", {"shutdown": False, "stuck": [200, "ok"], "code": 0}),
])
def test_serve_forever_in_a_thread(tmp_path: Path, mode: str, expected: dict) -> None:
    script = write_module(tmp_path, "embedding", EMBEDDED)
    done = subprocess.run([sys.executable, str(script), mode], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == dict(expected, still_serving=False), done.stderr
    if mode == "stuck":
        assert "shutdown(): serve_forever() still waits for requests after 0.5s" in done.stderr
    if mode == "drain":
        assert "the application asked: draining for 0.5s" in done.stderr
