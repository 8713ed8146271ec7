"""Circus, Supervisor and systemd socket activation running the examples on waitress."""

from chaussette_testing.managers import ProcessManagerSuite


class TestWaitress(ProcessManagerSuite):
    backend = "waitress"
