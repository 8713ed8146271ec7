"""Circus, Supervisor and systemd socket activation running the examples on meinheld."""

from chaussette_testing.managers import ProcessManagerSuite


class TestMeinheld(ProcessManagerSuite):
    backend = "meinheld"
