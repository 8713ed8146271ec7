"""systemd socket activation without systemd: ``systemd-socket-activate`` run with what
the example units say (ListenStream=, ExecStart=, KillSignal=, TimeoutStopSec=)."""

from __future__ import annotations

import os
import re
import shlex
import signal
from pathlib import Path

import pytest

from chaussette_testing.deployment import EXAMPLE_APP_DIR, EXAMPLE_PORT, START_TIMEOUT, Deployment, Manager, bin_dir
from chaussette_testing.procs import is_chaussette, wait_until

SOCKET_ACTIVATE = "/usr/bin/systemd-socket-activate"


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
