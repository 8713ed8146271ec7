"""Start ``chaussette`` as a real subprocess and find out where it serves."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Sequence

SERVING = re.compile(r"Serving on (\S+)")
START_TIMEOUT = 30.0


class ServerProcess:
    """A running ``python -m chaussette``; stderr is collected for assertions.

    Used as a context manager it always ends the process it started (by pid), so a
    failing test leaves nothing behind.
    """

    def __init__(self, args: Sequence[str], pass_fds: Sequence[int] = (), env: dict | None = None,
                 cwd: str | None = None, python: str = sys.executable) -> None:
        self.args = list(args)
        self._spawn([python, "-m", "chaussette", *self.args], pass_fds, env, cwd)

    def _spawn(self, command: Sequence[str], pass_fds: Sequence[int], env: dict | None,
               cwd: Any) -> None:
        """Start ``command`` with its output captured line by line, stdin closed."""
        full_env = dict(os.environ if env is None else env)
        full_env.setdefault("PYTHONUNBUFFERED", "1")
        # So that a server which outlives ``wait()`` prints where each thread is stuck.
        full_env.setdefault("PYTHONFAULTHANDLER", "1")
        self.proc = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, pass_fds=tuple(pass_fds), env=full_env,
                                     cwd=cwd)
        self._lines: list[str] = []
        self._out: list[str] = []
        self._changed = threading.Condition()
        self._readers = [threading.Thread(target=self._pump, args=(self.proc.stderr, self._lines), daemon=True),
                         threading.Thread(target=self._pump, args=(self.proc.stdout, self._out), daemon=True)]
        for reader in self._readers:
            reader.start()
        self.addresses: list[str] = []

    def _pump(self, stream, sink: list[str]) -> None:
        for raw in iter(stream.readline, b""):
            with self._changed:
                sink.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def output(self) -> str:
        """Everything written to stderr so far (logs)."""
        with self._changed:
            return "\n".join(self._lines)

    @property
    def stdout(self) -> str:
        with self._changed:
            return "\n".join(self._out)

    def wait_for(self, pattern: str, timeout: float = START_TIMEOUT) -> re.Match:
        """Wait until a stderr line matches ``pattern``; fail with the log if it never does."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self._lines:
                    match = regex.search(line)
                    if match:
                        return match
                if self.proc.poll() is not None and not any(r.is_alive() for r in self._readers):
                    raise AssertionError(f"server exited ({self.proc.returncode}) before {pattern!r}:\n"
                                         + "\n".join(self._lines))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no {pattern!r} within {timeout}s:\n" + "\n".join(self._lines))
                self._changed.wait(min(remaining, 0.2))

    def wait_serving(self, count: int = 1, timeout: float = START_TIMEOUT) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            found = SERVING.findall(self.output)
            if len(found) >= count and "Using" in self.output:
                self.addresses = found
                return found
            self.wait_for(r"Using .* as a backend" if len(found) >= count else SERVING.pattern,
                          max(0.1, deadline - time.monotonic()))
            if time.monotonic() > deadline:
                raise AssertionError("server did not report its addresses:\n" + self.output)

    @property
    def tcp_address(self) -> tuple[str, int]:
        """(host, port) of the first TCP address the server reported."""
        for address in self.addresses or self.wait_serving():
            host, _, port = address.rpartition(":")
            if port.isdigit():
                return host.strip("[]"), int(port)
        raise AssertionError(f"no TCP address in {self.addresses}")

    def signal(self, signum: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)

    def wait(self, timeout: float = 30.0) -> int:
        """The exit code; a server still running after ``timeout`` fails the test with its
        log and, through faulthandler and SIGABRT, the stack of each of its threads, so a
        hang that happens once in many runs says where it was."""
        try:
            code: int | None = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
            self.signal(signal.SIGABRT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        for reader in self._readers:
            reader.join(5)
        if code is None:
            raise AssertionError(f"pid {self.pid} still running {timeout:g}s later; its stderr, "
                                 f"ending with its stacks at SIGABRT:\n{self.output}")
        return code

    def stop(self, timeout: float = 30.0) -> int:
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        """SIGKILL by pid, then release the pipes.

        A reader still blocked once the process is gone means a process it started still
        holds the pipe; closing the stream would then wait on that reader's lock forever,
        where no test timeout can interrupt it. That leak is reported instead.
        """
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for reader in self._readers:
            reader.join(5)
        if any(reader.is_alive() for reader in self._readers):
            raise AssertionError(f"pid {self.pid} is gone but a process it started still holds its "
                                 f"output pipe:\n{self.output}")
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.kill()


def start_server(*args: str, pass_fds: Sequence[int] = (), count: int = 1, **kwargs) -> ServerProcess:
    """Start a server and wait until it serves; on failure the process is ended."""
    server = ServerProcess(args, pass_fds=pass_fds, **kwargs)
    try:
        server.wait_serving(count)
    except BaseException:
        server.kill()
        raise
    return server


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
