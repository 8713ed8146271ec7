"""Circus, Supervisor and systemd socket activation running the examples on wsgiref."""

from chaussette_testing.managers import ProcessManagerSuite


class TestWsgiref(ProcessManagerSuite):
    backend = "wsgiref"
