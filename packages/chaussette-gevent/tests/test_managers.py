"""Circus, Supervisor and systemd socket activation running the examples on gevent."""

from chaussette_testing.managers import ProcessManagerSuite


class TestGevent(ProcessManagerSuite):
    backend = "gevent"
