"""Circus, Supervisor and systemd socket activation running the examples on eventlet."""

from chaussette_testing.managers import ProcessManagerSuite


class TestEventlet(ProcessManagerSuite):
    backend = "eventlet"
