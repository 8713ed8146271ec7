"""Circus, Supervisor and systemd socket activation running the examples on bjoern."""

from chaussette.testing.managers import ProcessManagerSuite


class TestBjoern(ProcessManagerSuite):
    backend = "bjoern"
