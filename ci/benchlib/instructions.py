"""``python -m benchlib.instructions NAME...``: user-space instructions per hello request.

wrk's req/s move with whatever else the machine is doing; the number of instructions a
server executes per request does not, so this is how "chaussette adds nothing on top of
the backend" is checked on a shared machine (docs/benchmarks.md). Each server of
``benchlib.servers`` runs under valgrind's callgrind; a client warms it up, the counters
are zeroed, ``--requests`` keep-alive requests are sent on 4 connections, and the counters
are dumped. Kernel time is not counted, and for threaded servers (waitress, gunicorn) the
count includes idle wake-ups that depend on wall time under valgrind.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from benchlib import prepare, procs
from benchlib.servers import BY_NAME, PROXIED_HEADERS

ROOT = Path(__file__).resolve().parents[2]
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
HELLO_END = b"Hello, World!\n"  # bench.apps.HELLO: the end of every response
CONNECTIONS = 4
WARM_UP = 400
#: Python under valgrind starts in seconds, not milliseconds.
STARTUP_TIMEOUT = 120.0


def request_bytes(headers: tuple[str, ...] = ()) -> bytes:
    return b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(
        header.encode("latin-1") + b"\r\n" for header in headers) + b"\r\n"


def exchange(port: int, requests: int, request: bytes = REQUEST) -> None:
    """``requests`` requests in lock-step on CONNECTIONS kept-alive connections."""
    socks = [socket.create_connection((procs.HOST, port), timeout=60) for _ in range(CONNECTIONS)]
    try:
        for _ in range(requests // CONNECTIONS):
            for sock in socks:
                sock.sendall(request)
            for sock in socks:
                data = b""
                while not data.endswith(HELLO_END):
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise SystemExit(f"bench-instructions: the server closed the connection: {data[:200]!r}")
                    data += chunk
    finally:
        for sock in socks:
            sock.close()


def count(name: str, requests: int, workdir: Path, request: bytes = REQUEST) -> float:
    out = workdir / f"{name}.callgrind"

    def command(port: int) -> list[str]:
        return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p",
                *BY_NAME[name].command(sys.executable, "bench.apps:hello", procs.HOST, port)]

    # A fixed hash seed: string hashes decide how many probes each dict lookup takes, and
    # with random seeds two runs of the same server differed by a few percent.
    server = procs.start(command, None, ROOT, workdir / f"{name}.log", {**os.environ, "PYTHONHASHSEED": "0"})
    try:
        try:
            procs.wait_ready(server, forks_worker=False, timeout=STARTUP_TIMEOUT)
        except procs.StartError as exc:
            raise SystemExit(f"bench-instructions: {name} {exc}") from None
        exchange(server.port, WARM_UP, request)
        subprocess.run(["callgrind_control", "--zero", str(server.proc.pid)], check=True, capture_output=True)
        exchange(server.port, requests, request)
        subprocess.run(["callgrind_control", "--dump", str(server.proc.pid)], check=True, capture_output=True)
        dumps = sorted(workdir.glob(f"{out.name}.{server.proc.pid}.*"), key=lambda p: p.stat().st_mtime)
        for line in dumps[-1].read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1]) / requests
        raise SystemExit(f"bench-instructions: no total in {dumps[-1]}")
    finally:
        procs.stop(server)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="ci/bench-instructions", description=__doc__.split("\n\n")[0])
    parser.add_argument("servers", nargs="+", metavar="NAME", choices=sorted(BY_NAME),
                        help="servers of ci/benchlib/servers.py, e.g. chaussette-meinheld raw-meinheld")
    parser.add_argument("--requests", type=int, default=4000, help="requests counted (default 4000)")
    parser.add_argument("--proxied", action="store_true",
                        help="send the proxied scenario's headers (X-Forwarded-For, X-Forwarded-Proto, "
                             "X-Request-ID): compare chaussette-X with production-X")
    parser.add_argument("--no-install", action="store_true",
                        help="do not install the backend packages that are not workspace members")
    args = parser.parse_args(argv)
    prepare.ensure_tool("valgrind", "valgrind")  # callgrind_control comes with it
    if not args.no_install:
        prepare.install_backend_packages(ROOT, ROOT / ".wheels")
    request = request_bytes(PROXIED_HEADERS) if args.proxied else REQUEST
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as workdir:
        for name in args.servers:
            print(f"{name}: {count(name, args.requests, Path(workdir), request):,.0f} instructions per request",
                  flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
