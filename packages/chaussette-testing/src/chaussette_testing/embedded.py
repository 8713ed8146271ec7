"""Shared suite: the 1.3 Python API embedded in someone else's program, ``make_server()``
then ``serve_forever()`` in a thread and ``shutdown()`` from another, as a test fixture
embeds a server. Backends that declare ``Capabilities(threads=True)`` must serve and stop
that way; the others must refuse in one line. Each run is a real process on loopback.

Every backend package runs it (tests/test_production.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

from chaussette import registry

#: The embedding program: serves in a thread, makes a slow request and calls shutdown()
#: while it runs, then reports what it saw as one JSON line.
PROGRAM = '''
import http.client, json, signal, socket, sys, threading, time

from chaussette.server import make_server

entered, release = threading.Event(), threading.Event()


def app(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        entered.set()
        release.wait(20)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"served " + environ["PATH_INFO"].encode()]


server = make_server(app, host="127.0.0.1", port=0, backend=sys.argv[1])
host, port = server.server_address[:2]
outcome, report = {}, {}


def serve():
    try:
        outcome["code"] = server.serve_forever()
    except Exception as exc:
        outcome["error"] = f"{type(exc).__name__}: {exc}"


def get(path):
    conn = http.client.HTTPConnection(host, port, timeout=20)
    conn.request("GET", path)
    response = conn.getresponse()
    return [response.status, response.read().decode()]


def into(name, call):
    thread = threading.Thread(target=lambda: report.__setitem__(name, call()), daemon=True)
    thread.start()
    return thread


serving = threading.Thread(target=serve, name="embedded", daemon=True)
serving.start()
if sys.argv[2] == "refused":
    serving.join(20)
    report["error"] = outcome.get("error")
    server.server_close()
else:
    report["first"] = get("/first")
    slow = into("slow", lambda: get("/slow"))
    report["entered"] = entered.wait(20)
    stopper = into("shutdown", lambda: server.shutdown(timeout=20))
    time.sleep(0.5)
    report["waited_for_the_request"] = "shutdown" not in report
    release.set()
    slow.join(20)
    stopper.join(20)
    serving.join(20)
    report["code"] = outcome.get("code")
    report["error"] = outcome.get("error")
    report["still_serving"] = serving.is_alive()
    try:
        socket.create_connection((host, port), timeout=5).close()
        report["after"] = "connected"
    except OSError:
        report["after"] = "refused"
    report["sigterm_untouched"] = signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
print(json.dumps(report), flush=True)
'''
RUN_TIMEOUT = 90.0


class EmbeddedSuite:
    backend: ClassVar[str]

    def _embed(self, tmp_path: Path) -> dict:
        threads = registry.load(self.backend).capabilities.threads
        program = tmp_path / "embedding.py"
        program.write_text(PROGRAM)
        done = subprocess.run([sys.executable, str(program), self.backend, "serves" if threads else "refused"],
                              capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.strip().splitlines()
        assert lines, done.stderr
        return json.loads(lines[-1])

    def test_serve_forever_in_a_thread_and_shutdown_from_another(self, tmp_path: Path) -> None:
        report = self._embed(tmp_path)
        if not registry.load(self.backend).capabilities.threads:
            assert report == {"error": (
                f"BackendError: the {self.backend} backend serves only in the main thread (it stops through "
                "signal handlers, which Python runs there only): call serve_forever() from the main "
                "thread, or embed the wsgiref or waitress backend")}
            return
        assert report == {
            "first": [200, "served /first"],
            "entered": True,
            "waited_for_the_request": True,  # shutdown() is graceful: the slow request finishes
            "slow": [200, "served /slow"],
            "shutdown": True,
            "code": 0,
            "error": None,
            "still_serving": False,
            "after": "refused",  # the listener is closed once serve_forever() returns
            "sigterm_untouched": True,  # the embedding program's signals stay its own
        }
