"""Circus, Supervisor and systemd socket activation running the examples on meinheld."""

from chaussette.testing.managers import ProcessManagerSuite


class TestMeinheld(ProcessManagerSuite):
    backend = "meinheld"
