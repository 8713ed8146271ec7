"""Circus: ``circusd`` on a copy of ``examples/circus.ini`` (or ``circus-unix.ini``), and
``circusctl`` to reload and quit it."""

from __future__ import annotations

import configparser
from typing import Any, Mapping

from chaussette_testing.deployment import EXAMPLE_PORT, Deployment, Manager, executable

#: The example's control endpoints, which become ipc sockets in the deployment: TCP
#: ports there would clash between tests, and with anything else on the machine.
CIRCUS_ENDPOINTS = ("tcp://127.0.0.1:5555", "tcp://127.0.0.1:5556")


class Circus(Manager):
    """``circusd`` on a copy of an example ini, with ipc control endpoints in the workdir."""

    def __init__(self, deployment: Deployment, config: str, port_line: str | None = "port = 8080",
                 changes: Mapping[str, str] | None = None) -> None:
        """``changes``: more substitutions, e.g. ``{"numprocesses = 5": "numprocesses = 2"}``."""
        circusd = executable("circusd")
        self.circusctl = executable("circusctl")
        self.endpoint = f"ipc://{deployment.workdir}/circus-ctl.sock"
        substitutions = deployment.common_substitutions()
        substitutions[CIRCUS_ENDPOINTS[0]] = self.endpoint
        substitutions[CIRCUS_ENDPOINTS[1]] = f"ipc://{deployment.workdir}/circus-pubsub.sock"
        if port_line:
            substitutions[port_line] = port_line.replace(EXAMPLE_PORT, str(deployment.port))
        substitutions.update(changes or {})
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
