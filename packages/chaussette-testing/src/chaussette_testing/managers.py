"""Chaussette under the real process managers: Circus, Supervisor, systemd socket activation.

Subclass ``ProcessManagerSuite`` in a backend's tests with ``backend = "name"``. The
suite runs the repository's ``examples/`` configurations, copied to a temporary
directory and changed only where a test must differ from a deployment: the port (a
free one instead of 8080), the backend (``--backend gevent`` becomes the suite's
backend), ``/srv/app`` (the temporary directory, holding ``examples/server.py``) and
Circus's control endpoints (ipc sockets in that directory instead of TCP 5555/5556).
Everything else, users get exactly as tested.

Every manager is started by the test, reached on loopback or unix sockets only, and
ended by its pid; every worker pid seen is checked to be gone afterwards.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, Mapping, Sequence

import pytest

import chaussette
from chaussette.settings import CORE_SETTINGS
from chaussette_testing.client import Concurrently, request
from chaussette_testing.process import free_port

EXAMPLE_PORT = "8080"
EXAMPLE_BACKEND = "--backend gevent"
EXAMPLE_APP_DIR = "/srv/app"
CIRCUS_ENDPOINTS = ("tcp://127.0.0.1:5555", "tcp://127.0.0.1:5556")
SOCKET_ACTIVATE = "/usr/bin/systemd-socket-activate"
SERVED_BY = re.compile(rb"served by pid (\d+)")
USING = re.compile(r"\[(\d+)\] \[INFO\] Using '([\w-]+)' as a backend")
START_TIMEOUT = 30.0
REQUEST_TIMEOUT = 15.0
CIRCUS_HINT = "add 'circus>=0.19' to the hatch-test extra-dependencies"
SUPERVISOR_HINT = "add 'supervisor>=4.3' to the hatch-test extra-dependencies"
CHAUSSETTE_GRACEFUL_TIMEOUT = next(s.default for s in CORE_SETTINGS if s.name == "graceful_timeout")


class HarnessError(AssertionError):
    """The harness cannot run here (not a source tree, a tool missing)."""


def examples_dir() -> Path:
    """The repository's ``examples/``, found from the imported ``chaussette`` package.

    Only a source tree has them (``packages/chaussette-core/src/chaussette`` -> the
    repository), which is what Hatch's test environments install, editable.
    """
    package = Path(chaussette.__file__).resolve().parent
    examples = package.parents[3] / "examples"
    if package.parent.name != "src" or not (examples / "server.py").is_file():
        raise HarnessError(
            f"the process-manager suite runs the repository's examples/, but chaussette is imported "
            f"from {package}, which is not packages/chaussette-core/src/chaussette in a clone "
            f"(no {examples / 'server.py'}); run it from the source tree with an editable "
            f"chaussette-core, e.g. `hatch test` in a package directory")
    return examples


def bin_dir() -> Path:
    """The environment's scripts directory: ``chaussette``, ``circusd``... live beside python."""
    return Path(sys.executable).parent


def executable(name: str, install_hint: str) -> str:
    """``name`` from this environment's scripts; skips the test (saying why) when absent."""
    path = bin_dir() / name
    if not path.is_file():
        pytest.skip(f"{name} is not installed in this environment ({bin_dir()}): {install_hint}")
    return str(path)


# -- processes, read from /proc (Linux), never signalled by name ---------------------------------

def _stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of ``pid``, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return fields[0].decode(), int(fields[1])


def alive(pid: int) -> bool:
    """Running (a zombie is dead: it only waits for its parent to read its status)."""
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as line:
            return line.read().decode("utf-8", "replace").split("\0")[:-1]
    except (FileNotFoundError, ProcessLookupError):
        return []


def is_chaussette(pid: int) -> bool:
    """Running the ``chaussette`` script (a manager's child that has not exec'd yet is not)."""
    return alive(pid) and any(os.path.basename(arg) == "chaussette" for arg in cmdline(pid)[:2])


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None and stat[1] == pid and stat[0] not in ("Z", "X"):
                found.append(int(entry))
    return sorted(found)


def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "a condition",
               context: Callable[[], str] = lambda: "") -> Any:
    """Poll ``predicate`` until it returns something true; fail with ``context()`` if it never does."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s\n{context()}")
        time.sleep(0.05)


# -- clients --------------------------------------------------------------------------------------

@dataclass
class Outcome:
    """One request: when it ran, which pid answered (None: it failed) and why it failed."""

    path: str
    started: float
    ended: float
    pid: int | None
    error: str = ""


def get(address: Any, path: str = "/", timeout: float = REQUEST_TIMEOUT) -> Outcome:
    """One request on a fresh connection to the example app; failures are recorded, not raised."""
    started = time.monotonic()
    try:
        status, _, body = request(address, path=path, timeout=timeout)
    except Exception as exc:  # the outcome is the record of the failure
        return Outcome(path, started, time.monotonic(), None, f"{type(exc).__name__}: {exc}")
    match = SERVED_BY.search(body)
    if status != 200 or not match:
        return Outcome(path, started, time.monotonic(), None, f"status {status}: {body[:200]!r}")
    return Outcome(path, started, time.monotonic(), int(match.group(1)))


class Load:
    """``clients`` threads sending requests back to back, each on a fresh connection.

    Stops when the ``with`` block ends; bounded in time (``max_seconds``) and count
    (``max_requests``) only as a safety net, well beyond what a test waits for: a slow
    machine stretches a test's restarts, and a load that ran out mid-test would fail it.
    Client ``i`` requests ``paths[i % len(paths)]``.
    """

    def __init__(self, address: Any, clients: int = 8, paths: Sequence[str] = ("/",),
                 max_seconds: float = 600.0, max_requests: int = 1_000_000) -> None:
        self.address = address
        self.paths = paths
        self.max_requests = max_requests
        self.deadline = time.monotonic() + max_seconds
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(paths[i % len(paths)],), daemon=True)
                         for i in range(clients)]

    def _client(self, path: str) -> None:
        while not self._stop.is_set() and time.monotonic() < self.deadline:
            outcome = get(self.address, path)
            with self._lock:
                if len(self.outcomes) >= self.max_requests:
                    return
                self.outcomes.append(outcome)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(REQUEST_TIMEOUT + 5)

    def count(self) -> int:
        with self._lock:
            return len(self.outcomes)

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        wait_until(lambda: self.count() >= count, timeout, f"{count} requests under load",
                   lambda: f"{len(self.failures)} failed so far; the load "
                           + ("ran out of time" if time.monotonic() > self.deadline else "is running"))

    @property
    def failures(self) -> list[Outcome]:
        with self._lock:
            return [o for o in self.outcomes if o.pid is None]


class InFlight:
    """A ``/slow`` request running in a thread, to be in flight while the manager stops workers."""

    def __init__(self, address: Any, seconds: float) -> None:
        self.path = f"/slow?seconds={seconds:g}"
        self.outcome: Outcome | None = None
        self._thread = threading.Thread(target=self._run, args=(address,), daemon=True)
        self._thread.start()

    def _run(self, address: Any) -> None:
        self.outcome = get(address, self.path, timeout=REQUEST_TIMEOUT + 60)

    def result(self, timeout: float) -> Outcome:
        self._thread.join(timeout)
        assert self.outcome is not None, f"{self.path} still running after {timeout}s"
        return self.outcome


# -- deployments ----------------------------------------------------------------------------------

class Manager:
    """A process manager the test started; remembers every worker pid it was seen with."""

    def __init__(self, deployment: Deployment, argv: Sequence[str], log_name: str) -> None:
        self.deployment = deployment
        self.log_path = deployment.workdir / log_name
        self.seen: set[int] = set()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(list(argv), cwd=deployment.workdir, env=deployment.env,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deployment.managers.append(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def workers(self) -> list[int]:
        """The manager's live chaussette children (and remember them)."""
        pids = [pid for pid in children(self.pid) if is_chaussette(pid)]
        self.seen.update(pids)
        return pids

    def wait_workers(self, count: int, exclude: Sequence[int] = (), timeout: float = START_TIMEOUT) -> list[int]:
        """Wait for ``count`` workers (none of ``exclude``) that each said they serve."""
        def ready() -> list[int]:
            pids = [pid for pid in self.workers() if pid not in exclude]
            serving = {int(pid) for pid, _ in USING.findall(self.deployment.logs())}
            return pids if len(pids) == count and serving.issuperset(pids) else []
        return wait_until(ready, timeout, f"{count} serving workers", self.deployment.logs)

    def command(self, argv: Sequence[str], timeout: float, check: bool = True) -> str:
        """Run a control program; its output, or (``check``) a failure showing the logs."""
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              env=self.deployment.env, stdin=subprocess.DEVNULL)
        if check:
            assert done.returncode == 0, f"{shlex.join(argv)}: {done.stdout}{done.stderr}\n{self.deployment.logs()}"
        return done.stdout

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.proc.args[0]} still running {timeout}s later\n"
                                 + self.deployment.logs()) from None

    def end(self, timeout: float = 45.0) -> None:
        """Stop the manager by its pid: SIGTERM (it stops its workers), SIGKILL if it hangs."""
        if self.proc.poll() is None:
            self.workers()
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def survivors(self) -> list[int]:
        """Worker pids still running after the manager is gone (should be none)."""
        return sorted(pid for pid in self.seen if is_chaussette(pid))


class Deployment:
    """A temporary ``/srv/app``: the example app, rendered configs, managers and their logs.

    On exit every manager is ended by pid, any worker that survived it is killed by
    pid (and reported), and the directory is removed.
    """

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.examples = examples_dir()
        # short: unix socket paths (web.sock, Circus's ipc endpoints) must fit in 107 bytes
        self.workdir = Path(tempfile.mkdtemp(prefix="chaussette-pm-"))
        self.port = free_port()
        self.managers: list[Manager] = []
        shutil.copy(self.examples / "server.py", self.workdir / "server.py")
        path = os.environ.get("PATH", os.defpath)
        self.env = dict(os.environ, PATH=f"{bin_dir()}{os.pathsep}{path}", PYTHONUNBUFFERED="1")

    def render(self, name: str, substitutions: Mapping[str, str]) -> Path:
        """Copy ``examples/name`` into the workdir, replacing each key (which must be there)."""
        source = self.examples / name
        text = source.read_text()
        for old, new in substitutions.items():
            if old not in text:
                raise HarnessError(f"{source} no longer contains {old!r}, which the harness replaces; "
                                   "update chaussette_testing.managers with the example")
            text = text.replace(old, new)
        target = self.workdir / Path(name).name
        target.write_text(text)
        return target

    def common_substitutions(self) -> dict[str, str]:
        return {EXAMPLE_BACKEND: f"--backend {self.backend}", EXAMPLE_APP_DIR: str(self.workdir)}

    def logs(self) -> str:
        """Everything the managers and workers logged so far."""
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')}"
                         for path in sorted(self.workdir.glob("*.log")))

    def close(self) -> list[int]:
        """End everything (by pid); returns the worker pids that had to be killed."""
        for manager in self.managers:
            manager.end()
        left = sorted({pid for manager in self.managers for pid in manager.survivors()})
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.workdir, ignore_errors=True)
        return left

    def __enter__(self) -> Deployment:
        return self

    def __exit__(self, exc_type: Any, *exc_info: object) -> None:
        logs = self.logs()
        left = self.close()
        if left and exc_type is None:
            raise AssertionError(f"worker processes {left} outlived their manager (killed now)\n{logs}")


class Circus(Manager):
    """``circusd`` on a copy of an example ini, with ipc control endpoints in the workdir."""

    def __init__(self, deployment: Deployment, config: str, port_line: str | None = "port = 8080") -> None:
        circusd = executable("circusd", CIRCUS_HINT)
        self.circusctl = executable("circusctl", CIRCUS_HINT)
        self.endpoint = f"ipc://{deployment.workdir}/circus-ctl.sock"
        substitutions = deployment.common_substitutions()
        substitutions[CIRCUS_ENDPOINTS[0]] = self.endpoint
        substitutions[CIRCUS_ENDPOINTS[1]] = f"ipc://{deployment.workdir}/circus-pubsub.sock"
        if port_line:
            substitutions[port_line] = port_line.replace(EXAMPLE_PORT, str(deployment.port))
        self.config_path = deployment.render(config, substitutions)
        self.config = configparser.ConfigParser(interpolation=None)
        self.config.read(self.config_path)
        super().__init__(deployment, [circusd, str(self.config_path)], "circusd.log")

    @property
    def address(self) -> Any:
        """(host, port) of ``[socket:web]``, or its path for a unix socket."""
        section = self.config["socket:web"]
        if section.get("family") == "AF_UNIX":
            return section["path"]
        return section["host"], int(section["port"])

    @property
    def numprocesses(self) -> int:
        return int(self.config["watcher:web"]["numprocesses"])

    @property
    def graceful_timeout(self) -> float:
        return float(self.config["watcher:web"].get("graceful_timeout", "30"))  # circus's default

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        """``circusctl ARGS`` (``timeout``: how long circusctl waits for circusd's answer)."""
        return self.command([self.circusctl, "--endpoint", self.endpoint, "--timeout", f"{timeout:g}", *args],
                            timeout + 10)


class Supervisor(Manager):
    """``supervisord -n`` (in the foreground) on a copy of the example conf."""

    PORT_LINE = "socket = tcp://127.0.0.1:8080"

    def __init__(self, deployment: Deployment, config: str = "supervisord.conf") -> None:
        supervisord = executable("supervisord", SUPERVISOR_HINT)
        self.supervisorctl = executable("supervisorctl", SUPERVISOR_HINT)
        substitutions = deployment.common_substitutions()
        substitutions[self.PORT_LINE] = self.PORT_LINE.replace(EXAMPLE_PORT, str(deployment.port))
        self.config_path = deployment.render(config, substitutions)
        self.config = configparser.RawConfigParser()
        self.config.read(self.config_path)
        self.address = ("127.0.0.1", deployment.port)
        super().__init__(deployment, [supervisord, "-n", "-c", str(self.config_path)], "supervisord-console.log")

    @property
    def program(self) -> configparser.SectionProxy:
        return self.config["fcgi-program:web"]

    @property
    def process_names(self) -> list[str]:
        """``web:web_00``...: what supervisorctl calls each worker."""
        return [f"web:web_{number:02d}" for number in range(int(self.program["numprocs"]))]

    def ctl(self, *args: str, timeout: float = 90.0) -> str:
        """``supervisorctl ARGS`` (restart and shutdown wait for the workers to stop)."""
        return self.command([self.supervisorctl, "-c", str(self.config_path), *args], timeout)

    def wait_running(self) -> str:
        """Wait until every worker is RUNNING (Supervisor says so after ``startsecs``, 1 s)."""
        def status() -> str:
            out = self.command([self.supervisorctl, "-c", str(self.config_path), "status"], 30, check=False)
            return out if out.count("RUNNING") == len(self.process_names) else ""
        return wait_until(status, START_TIMEOUT, "every worker RUNNING", self.deployment.logs)

    def wait_control(self) -> None:
        """supervisorctl answers once supervisord has set up its control socket."""
        def answers() -> bool:
            return self.command([self.supervisorctl, "-c", str(self.config_path), "pid"], 30,
                                check=False).strip() == str(self.pid)
        wait_until(answers, START_TIMEOUT, "supervisorctl answering", self.deployment.logs)


def read_unit(path: Path) -> dict[str, list[str]]:
    """``Key=value`` lines of a systemd unit, by key (a key may repeat: ListenStream)."""
    keys: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line[0] in "#;[" or "=" not in line:
            continue
        key, _, value = line.partition("=")
        keys.setdefault(key.strip(), []).append(value.strip())
    return keys


def systemd_seconds(value: str) -> float:
    """``35``, ``35s``, ``1min 30s``: the time spans a unit's TimeoutStopSec= takes."""
    units = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "ms": 0.001}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value):
        total += float(number) * units[unit]
    return total


class SocketActivation(Manager):
    """``systemd-socket-activate`` with the example units' ListenStream= and ExecStart=.

    It listens, and on the first connection execs ExecStart with LISTEN_FDS set, keeping
    its pid (so LISTEN_PID matches): the activation of a systemd socket unit, without
    systemd. User=/Group= are not applied: the test runs as whoever runs it.
    """

    def __init__(self, deployment: Deployment) -> None:
        if not os.access(SOCKET_ACTIVATE, os.X_OK):
            pytest.skip(f"{SOCKET_ACTIVATE} is absent (Debian: apt-get install systemd)")
        chaussette_bin = bin_dir() / "chaussette"
        socket_unit = read_unit(deployment.render("systemd/chaussette.socket", {
            f"127.0.0.1:{EXAMPLE_PORT}": f"127.0.0.1:{deployment.port}"}))
        substitutions = {f"{EXAMPLE_APP_DIR}/venv/bin/chaussette": str(chaussette_bin)}
        substitutions.update(deployment.common_substitutions())
        self.service = read_unit(deployment.render("systemd/chaussette.service", substitutions))
        self.listen = socket_unit["ListenStream"]
        host, _, port = self.listen[0].rpartition(":")
        self.address = (host, int(port))
        self.kill_signal = signal.Signals[self.service.get("KillSignal", ["SIGTERM"])[-1]]
        self.timeout_stop = systemd_seconds(self.service.get("TimeoutStopSec", ["90"])[-1])
        argv = [SOCKET_ACTIVATE, *(f"--listen={address}" for address in self.listen),
                *shlex.split(self.service["ExecStart"][-1])]
        # systemd-socket-activate has no working-directory option: the test runs it there
        assert self.service["WorkingDirectory"] == [str(deployment.workdir)]
        super().__init__(deployment, argv, "socket-activate.log")
        wait_until(lambda: "Listening on" in deployment.logs(), START_TIMEOUT, "the socket open", deployment.logs)

    def workers(self) -> list[int]:
        """The activated process is the manager itself once it has exec'd chaussette."""
        pids = [self.pid] if is_chaussette(self.pid) else []
        self.seen.update(pids)
        return pids

    def stop(self) -> None:
        """What ``systemctl stop`` sends first: KillSignal= (systemd's SIGKILL would follow
        TimeoutStopSec= later; the tests require an exit before that)."""
        self.proc.send_signal(self.kill_signal)


# -- the suite ------------------------------------------------------------------------------------

class ProcessManagerSuite:
    """Circus, Supervisor and systemd socket activation running the examples on ``backend``."""

    backend: ClassVar[str] = "wsgiref"
    #: concurrent clients of the load tests
    clients: ClassVar[int] = 8
    #: how long the in-flight request of the stop tests takes (bounded, well under the timeouts)
    slow_seconds: ClassVar[float] = 2.0

    @pytest.fixture
    def deployment(self) -> Iterator[Deployment]:
        try:
            deployment = Deployment(self.backend)
        except HarnessError as exc:
            pytest.fail(str(exc))
        with deployment:
            yield deployment

    def _load_paths(self) -> list[str]:
        """Mostly quick requests, and a quarter of the clients on slow ones, so that some
        are always in flight when a worker is told to stop."""
        slow = max(1, self.clients // 4)
        return ["/"] * (self.clients - slow) + ["/slow?seconds=0.5"] * slow

    def _start_circus(self, deployment: Deployment, config: str = "circus.ini",
                      **kwargs: Any) -> tuple[Circus, list[int]]:
        circus = Circus(deployment, config, **kwargs)
        workers = circus.wait_workers(circus.numprocesses)
        return circus, workers

    def _distinct_pids(self, address: Any, wanted: int = 2, attempts: int = 200) -> set[int]:
        """Quick requests on fresh connections until ``wanted`` workers have answered.

        The kernel may hand every connection of a slow, sequential client to the same idle
        worker: a loop whose listener has EPOLLEXCLUSIVE (meinheld's) is woken alone, and
        among loops woken together the one already running tends to win the accept. So
        after a few tries, a slow request keeps its worker busy (blocking a loop that does
        not patch ``time.sleep``) and bursts of concurrent connections race the workers
        woken together. The point is that several processes serve the socket, not how the
        kernel spreads connections among idle ones."""
        pids: set[int] = set()
        busy: InFlight | None = None
        for attempt in range(attempts):
            if attempt >= 20:
                if busy is None:
                    busy = InFlight(address, self.slow_seconds)
                    time.sleep(0.2)  # let a worker take it before the next connections come
                burst = Concurrently(self.clients, lambda: get(address)).outcomes(REQUEST_TIMEOUT + 5)
                pids.update(outcome.pid for outcome in burst if isinstance(outcome, Outcome) and outcome.pid)
            outcome = get(address)
            assert outcome.pid is not None, outcome.error
            pids.add(outcome.pid)
            if len(pids) >= wanted:
                break
        if busy is not None:
            busy_outcome = busy.result(self.slow_seconds + REQUEST_TIMEOUT)
            assert busy_outcome.pid is not None, busy_outcome.error
            pids.add(busy_outcome.pid)
        return pids

    def _slow_in_flight(self, deployment: Deployment, address: Any) -> tuple[InFlight, int]:
        """Start a slow request and wait until a worker runs it; returns it and that pid."""
        before = len(re.findall(r"slow request: ", deployment.logs()))
        slow = InFlight(address, self.slow_seconds)
        match = wait_until(lambda: re.findall(r"slow request: [\d.]+s in pid (\d+)", deployment.logs())[before:],
                           START_TIMEOUT, "the slow request reaching a worker", deployment.logs)
        return slow, int(match[0])

    # -- Circus -----------------------------------------------------------------------------------

    def test_circus_serves_on_several_processes(self, deployment: Deployment) -> None:
        circus, workers = self._start_circus(deployment)
        assert len(workers) == 5
        assert {backend for _, backend in USING.findall(deployment.logs())} == {self.backend}
        pids = self._distinct_pids(circus.address)
        assert len(pids) >= 2 and pids <= set(workers), (pids, workers)

    def test_circus_reload_loses_no_request(self, deployment: Deployment) -> None:
        circus, before = self._start_circus(deployment)
        with Load(circus.address, self.clients, self._load_paths()) as load:
            load.wait_for(50)
            reload_started = time.monotonic()
            circus.ctl("reload", "web", "--waiting", timeout=circus.graceful_timeout + 20)
            reload_ended = time.monotonic()
            after = circus.wait_workers(circus.numprocesses, exclude=before)
            load.wait_for(load.count() + 100)
        outcomes = load.outcomes
        during = [o for o in outcomes if o.started < reload_ended and o.ended > reload_started]
        print(f"\ncircus reload ({self.backend}): {len(outcomes)} requests by {self.clients} clients, "
              f"{len(during)} during the reload, {len(load.failures)} failed")
        assert load.failures == [], load.failures[:5]
        assert not any(alive(pid) for pid in before), "old workers still running after the reload"
        assert not set(after) & set(before)
        assert any(o.pid in before and o.ended > reload_started for o in outcomes), \
            "no old worker finished a request after the reload began: nothing was drained"
        assert {o.pid for o in outcomes if o.started > reload_ended} <= set(after)

    def test_circus_respawns_a_killed_worker(self, deployment: Deployment) -> None:
        circus, workers = self._start_circus(deployment)
        with Load(circus.address, self.clients, self._load_paths()) as load:
            load.wait_for(50)
            # the busiest worker, so that it most likely has requests in flight
            victim = Counter(o.pid for o in load.outcomes[:] if o.pid in workers).most_common(1)[0][0]
            os.kill(victim, signal.SIGKILL)  # a worker our circusd started
            wait_until(lambda: not alive(victim), 10, f"worker {victim} gone")
            killed = time.monotonic()
            respawned = circus.wait_workers(circus.numprocesses, exclude=[victim])
            load.wait_for(load.count() + 100)
        failures = load.failures
        print(f"\ncircus kill -9 ({self.backend}): {len(load.outcomes)} requests, {len(failures)} failed")
        assert len(set(respawned) - set(workers)) == 1
        # Only what the killed worker had accepted can fail: at most one request per client,
        # all started before it died; the socket stayed open in circusd for the rest.
        assert len(failures) <= self.clients, failures
        assert all(o.started < killed for o in failures), [o for o in failures if o.started >= killed]
        assert not [o for o in load.outcomes if o.pid == victim and o.started > killed]

    def test_circus_quit_finishes_in_flight_requests_and_leaves_nothing(self, deployment: Deployment) -> None:
        circus, workers = self._start_circus(deployment)
        assert circus.graceful_timeout > CHAUSSETTE_GRACEFUL_TIMEOUT
        slow, worker = self._slow_in_flight(deployment, circus.address)
        quit_started = time.monotonic()
        circus.ctl("quit", "--waiting", timeout=circus.graceful_timeout + 20)
        assert circus.wait_exit(circus.graceful_timeout + 10) == 0
        outcome = slow.result(30)
        assert (outcome.pid, outcome.error) == (worker, ""), deployment.logs()
        assert outcome.ended > quit_started
        assert circus.survivors() == [] and set(workers) <= circus.seen
        assert get(circus.address, timeout=2).pid is None, "circusd is gone, its socket must be too"

    def test_circus_unix_socket(self, deployment: Deployment) -> None:
        circus, workers = self._start_circus(deployment, "circus-unix.ini", port_line=None)
        path = circus.address
        assert path.startswith(str(deployment.workdir))
        pids = self._distinct_pids(path)
        assert len(pids) >= 2 and pids <= set(workers), (pids, workers)
        circus.ctl("quit", "--waiting", timeout=circus.graceful_timeout + 20)
        assert circus.wait_exit(circus.graceful_timeout + 10) == 0
        assert circus.survivors() == []
        assert not os.path.exists(path), "circusd removes its unix socket on exit"

    # -- Supervisor -------------------------------------------------------------------------------

    def _start_supervisor(self, deployment: Deployment) -> tuple[Supervisor, list[int]]:
        supervisor = Supervisor(deployment)
        supervisor.wait_control()
        return supervisor, supervisor.wait_workers(len(supervisor.process_names))

    def test_supervisor_fcgi_program_serves_on_several_processes(self, deployment: Deployment) -> None:
        supervisor, workers = self._start_supervisor(deployment)
        assert supervisor.program["command"] == f"chaussette --fd 0 --backend {self.backend} server.app"
        assert len(supervisor.process_names) == 5
        supervisor.wait_running()
        pids = self._distinct_pids(supervisor.address)
        assert len(pids) >= 2 and pids <= set(workers), (pids, workers)

    def test_supervisor_restart_one_at_a_time_loses_no_request(self, deployment: Deployment) -> None:
        supervisor, before = self._start_supervisor(deployment)
        with Load(supervisor.address, self.clients, self._load_paths()) as load:
            load.wait_for(50)
            for name in supervisor.process_names:
                supervisor.ctl("restart", name)
            after = supervisor.wait_workers(len(before), exclude=before)
            load.wait_for(load.count() + 100)
        print(f"\nsupervisor rolling restart ({self.backend}): {len(load.outcomes)} requests, "
              f"{len(load.failures)} failed")
        assert load.failures == [], load.failures[:5]
        assert not any(alive(pid) for pid in before)
        assert {o.pid for o in load.outcomes} & set(after)

    def test_supervisor_group_restart_finishes_in_flight_requests(self, deployment: Deployment) -> None:
        supervisor, before = self._start_supervisor(deployment)
        assert float(supervisor.program["stopwaitsecs"]) > CHAUSSETTE_GRACEFUL_TIMEOUT
        slow, worker = self._slow_in_flight(deployment, supervisor.address)
        restart_started = time.monotonic()
        supervisor.ctl("restart", "web:*")
        outcome = slow.result(30)
        assert (outcome.pid, outcome.error) == (worker, ""), deployment.logs()
        assert outcome.ended > restart_started
        after = supervisor.wait_workers(len(before), exclude=before)
        assert get(supervisor.address).pid in after

    def test_supervisor_shutdown_finishes_in_flight_requests_and_leaves_nothing(self, deployment: Deployment) -> None:
        supervisor, workers = self._start_supervisor(deployment)
        slow, worker = self._slow_in_flight(deployment, supervisor.address)
        shutdown_started = time.monotonic()
        supervisor.ctl("shutdown")
        assert supervisor.wait_exit(float(supervisor.program["stopwaitsecs"]) + 10) == 0
        outcome = slow.result(30)
        assert (outcome.pid, outcome.error) == (worker, ""), deployment.logs()
        assert outcome.ended > shutdown_started
        assert supervisor.survivors() == [] and set(workers) <= supervisor.seen
        assert get(supervisor.address, timeout=2).pid is None
        assert not (deployment.workdir / "supervisor.sock").exists()

    # -- systemd socket activation ----------------------------------------------------------------

    def test_systemd_socket_activation(self, deployment: Deployment) -> None:
        activation = SocketActivation(deployment)
        assert activation.workers() == [], "chaussette must start on the first connection only"
        first = get(activation.address, timeout=START_TIMEOUT)  # this connection activates it
        assert first.pid == activation.pid, (first, deployment.logs())
        logs = deployment.logs()
        assert "Using 1 socket(s) from systemd socket activation" in logs
        assert f"Using '{self.backend}' as a backend" in logs
        assert get(activation.address).pid == activation.pid

    def test_systemd_stop_finishes_in_flight_requests(self, deployment: Deployment) -> None:
        activation = SocketActivation(deployment)
        assert activation.timeout_stop > CHAUSSETTE_GRACEFUL_TIMEOUT
        first = get(activation.address, timeout=START_TIMEOUT)
        assert first.pid == activation.pid, (first, deployment.logs())
        slow, worker = self._slow_in_flight(deployment, activation.address)
        assert worker == activation.pid
        stop_started = time.monotonic()
        activation.stop()
        assert activation.wait_exit(activation.timeout_stop) == 0
        outcome = slow.result(30)
        assert (outcome.pid, outcome.error) == (worker, ""), deployment.logs()
        assert outcome.ended > stop_started
        assert get(activation.address, timeout=2).pid is None
