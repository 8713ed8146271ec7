"""Supervisor: ``supervisord`` in the foreground on a copy of ``examples/supervisord.conf``,
and ``supervisorctl`` to restart and shut down its ``fcgi-program`` workers."""

from __future__ import annotations

import configparser
from typing import Mapping

from chaussette_testing.deployment import EXAMPLE_PORT, START_TIMEOUT, Deployment, Manager, executable
from chaussette_testing.procs import wait_until


class Supervisor(Manager):
    """``supervisord -n`` (in the foreground) on a copy of the example conf."""

    PORT_LINE = "socket = tcp://127.0.0.1:8080"

    def __init__(self, deployment: Deployment, config: str = "supervisord.conf",
                 changes: Mapping[str, str] | None = None) -> None:
        """``changes``: more substitutions, e.g. ``{"numprocs = 5": "numprocs = 3"}``."""
        supervisord = executable("supervisord")
        self.supervisorctl = executable("supervisorctl")
        substitutions = deployment.common_substitutions()
        substitutions[self.PORT_LINE] = self.PORT_LINE.replace(EXAMPLE_PORT, str(deployment.port))
        substitutions.update(changes or {})
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
