"""Circus, Supervisor and systemd socket activation running the examples on bjoern."""

from chaussette_testing.managers import ProcessManagerSuite


class TestBjoern(ProcessManagerSuite):
    backend = "bjoern"
