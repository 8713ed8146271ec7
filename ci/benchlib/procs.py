"""Server processes: start pinned, time the first response, read /proc, always stop.

Every server is started in a session of its own, so the process group id is the pid we
started; stopping signals that group (SIGTERM, then SIGKILL after ``STOP_GRACE``), which
also ends gunicorn's worker. ``stop_all`` ends whatever is still running, for Ctrl-C.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

HOST = "127.0.0.1"
STOP_GRACE = 5.0
POLL = 0.01
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

_running: dict[int, subprocess.Popen] = {}


def cpus() -> tuple[int | None, int | None]:
    """(server CPU, load generator CPU): two different CPUs when the machine has two;
    with one, the server is pinned and the load generator shares it."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) >= 2:
        return available[0], available[1]
    return available[0], None


def pinned(command: list[str], cpu: int | None) -> list[str]:
    if cpu is None or shutil.which("taskset") is None:
        return command
    return ["taskset", "--cpu-list", str(cpu), *command]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class StartError(Exception):
    """The server did not answer; the message carries the end of its log."""


@dataclass
class ServerProcess:
    proc: subprocess.Popen
    port: int
    log: Path
    started: float
    ready_after: float = 0.0
    serving_pid: int = 0
    stopped: bool = field(default=False)

    def tail(self, lines: int = 6) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])


def start(command: Callable[[int], list[str]], cpu: int | None, cwd: Path, log: Path,
          env: dict[str, str]) -> ServerProcess:
    """Start ``command(port)`` on a free port; its output goes to ``log``."""
    port = free_port()
    with log.open("wb") as out:
        started = time.monotonic()
        proc = subprocess.Popen(pinned(command(port), cpu), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    _running[proc.pid] = proc
    return ServerProcess(proc, port, log, started)


def wait_ready(server: ServerProcess, forks_worker: bool, timeout: float = 30.0) -> None:
    """Poll until one request gets a 200: start-up time is measured up to that answer."""
    deadline = server.started + timeout
    while True:
        if server.proc.poll() is not None:
            raise StartError(f"exited with {server.proc.returncode}: {server.tail()}")
        if time.monotonic() > deadline:
            raise StartError(f"no answer within {timeout:.0f} s: {server.tail()}")
        status = _probe(server.port)
        if status == 200:
            server.ready_after = time.monotonic() - server.started
            break
        if status is not None:
            raise StartError(f"answered {status} instead of 200: {server.tail()}")
        time.sleep(POLL)
    server.serving_pid = server.proc.pid
    if forks_worker:
        children = descendants(server.proc.pid)
        if children:
            server.serving_pid = children[0]


def settle(server: ServerProcess, timeout: float = 30.0) -> None:
    """Wait until one more request is answered: a server that serves one request at a
    time still has the warm-up's queued requests to get through, and the measurement must
    not start behind them."""
    deadline = time.monotonic() + timeout
    while _probe(server.port, timeout) is None:
        if server.proc.poll() is not None or time.monotonic() > deadline:
            raise StartError(f"stopped answering after the warm-up: {server.tail()}")
        time.sleep(POLL)


def _probe(port: int, timeout: float = 5.0) -> int | None:
    """Status of one ``GET /``, or None while nothing listens yet."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            data = b""
            while b"\r\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    parts = data.split(b" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        return None
    return int(parts[1])


def stop(server: ServerProcess) -> None:
    if server.stopped:
        return
    server.stopped = True
    proc = server.proc
    try:
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
        else:
            _signal_group(proc.pid, signal.SIGKILL)  # a worker it left behind
    finally:
        _running.pop(proc.pid, None)


def stop_all() -> None:
    """Ctrl-C and fatal errors: kill every server still running, by its group."""
    for pid, proc in list(_running.items()):
        _signal_group(pid, signal.SIGKILL)
        try:
            proc.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            pass
        _running.pop(pid, None)


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # fields from 3 (state) on


def descendants(pid: int) -> list[int]:
    """Children, grandchildren... of ``pid``, oldest first."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None:
                parents.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        children = sorted(parents.get(todo.pop(), []))
        found.extend(children)
        todo.extend(children)
    return found


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of ``pid`` and its descendants that are alive now.
    System time is mostly the kernel's TCP work: on loopback both ends of every
    connection are processed in the kernel on behalf of the server and of wrk."""
    user = system = 0
    for member in (pid, *descendants(pid)):
        fields = _stat(member)
        if fields is not None:
            user += int(fields[11])
            system += int(fields[12])
    return user / CLOCK_TICKS, system / CLOCK_TICKS


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM: the most resident memory the process has had."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def cpu_ticks() -> dict[int, tuple[int, int]]:
    """{cpu: (busy ticks, total ticks)} from /proc/stat: how busy each CPU was, whoever
    used it (our server, wrk, or the rest of the machine)."""
    ticks = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name[3:].isdigit():
            numbers = [int(v) for v in values[:8]]  # user nice system idle iowait irq softirq steal
            idle = numbers[3] + numbers[4]
            ticks[int(name[3:])] = (sum(numbers) - idle, sum(numbers))
    return ticks


def busy_pct(before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]], cpu: int | None) -> float:
    if cpu is None or cpu not in before or cpu not in after:
        return 0.0
    busy = after[cpu][0] - before[cpu][0]
    total = after[cpu][1] - before[cpu][1]
    return 100 * busy / total if total else 0.0
