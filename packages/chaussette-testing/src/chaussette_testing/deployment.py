"""A temporary ``/srv/app`` holding the example app and the rendered configurations, and
the process managers started in it, each ended by its pid.

The examples are copied and changed only where a test must differ from a deployment:
the port (a free one instead of 8080), the backend (``--backend gevent`` becomes the
suite's backend, followed by a test's own options such as ``--max-requests``) and
``/srv/app`` (the temporary directory); each manager's driver adds what is its own
(Circus's control endpoints, systemd's path to ``chaussette``) and what a test changes
(the number of workers).
Everything else, users get exactly as tested.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import pytest

from chaussette_testing.examples import HarnessError
from chaussette_testing.process import free_port
from chaussette_testing.procs import children, is_chaussette, wait_until

EXAMPLE_PORT = "8080"
EXAMPLE_BACKEND = "--backend gevent"
EXAMPLE_APP_DIR = "/srv/app"
USING = re.compile(r"\[(\d+)\] \[INFO\] Using '([\w-]+)' as a backend")
#: A bound, not a measure: five workers importing their backend on a loaded two-core CI
#: machine were seen to need more than 30s.
START_TIMEOUT = 60.0
#: Where a manager program is missing: chaussette-testing requires each of them.
INSTALL_HINT = "reinstall chaussette-testing, which requires it, in the test environment"


def bin_dir() -> Path:
    """The environment's scripts directory: ``chaussette``, ``circusd``... live beside python."""
    return Path(sys.executable).parent


def executable(name: str) -> str:
    """``name`` from this environment's scripts; skips the test (saying why) when absent."""
    path = bin_dir() / name
    if not path.is_file():
        pytest.skip(f"{name} is not installed in this environment ({bin_dir()}): {INSTALL_HINT}")
    return str(path)


class Manager:
    """A process manager the test started; remembers every worker pid it was seen with."""

    def __init__(self, deployment: Deployment, argv: Sequence[str], log_name: str) -> None:
        self.deployment = deployment
        self.log_path = deployment.workdir / log_name
        self.seen: set[int] = set()
        self.argv = list(argv)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.argv, cwd=deployment.workdir, env=deployment.env,
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

        def stacks() -> str:
            """Where the workers that never said they serve are stuck: faulthandler (on
            through PYTHONFAULTHANDLER) writes every thread's stack to a worker's log on
            SIGABRT."""
            serving = {int(pid) for pid, _ in USING.findall(self.deployment.logs())}
            for pid in set(self.workers()) - serving - set(exclude):
                os.kill(pid, signal.SIGABRT)
            time.sleep(1)
            return self.deployment.logs()
        return wait_until(ready, timeout, f"{count} serving workers", stacks)

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
            raise AssertionError(f"{self.argv[0]} still running {timeout}s later\n"
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

    ``examples`` is the repository's ``examples/`` (the ``chaussette_examples`` fixture).
    On exit every manager is ended by pid, any worker that survived it is killed by pid
    (and reported), and the directory is removed.
    """

    def __init__(self, backend: str, examples: Path, args: Sequence[str] = ()) -> None:
        self.backend = backend
        self.examples = examples
        #: More chaussette options, put after ``--backend`` in every command line rendered.
        self.args = tuple(args)
        # short: unix socket paths (web.sock, Circus's ipc endpoints) must fit in 107 bytes
        self.workdir = Path(tempfile.mkdtemp(prefix="chaussette-pm-"))
        self.port = free_port()
        self.managers: list[Manager] = []
        shutil.copy(self.examples / "server.py", self.workdir / "server.py")
        path = os.environ.get("PATH", os.defpath)
        self.env = dict(os.environ, PATH=f"{bin_dir()}{os.pathsep}{path}", PYTHONUNBUFFERED="1",
                        PYTHONFAULTHANDLER="1")

    def render(self, name: str, substitutions: Mapping[str, str]) -> Path:
        """Copy ``examples/name`` into the workdir, replacing each key (which must be there)."""
        source = self.examples / name
        text = source.read_text()
        for old, new in substitutions.items():
            if old not in text:
                raise HarnessError(f"{source} no longer contains {old!r}, which the harness replaces; "
                                   "update chaussette_testing with the example")
            text = text.replace(old, new)
        target = self.workdir / Path(name).name
        target.write_text(text)
        return target

    def common_substitutions(self) -> dict[str, str]:
        backend = shlex.join(("--backend", self.backend, *self.args))
        return {EXAMPLE_BACKEND: backend, EXAMPLE_APP_DIR: str(self.workdir)}

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
