"""Circus, Supervisor and systemd socket activation running the examples on socketio."""

from chaussette_testing.managers import ProcessManagerSuite


class TestSocketIO(ProcessManagerSuite):
    backend = "socketio"
