from chaussette.testing.hostile import HostileInputSuite


class TestSocketIOHostile(HostileInputSuite):
    backend = "socketio"
