from chaussette_testing.hostile import HostileInputSuite


class TestSocketIOHostile(HostileInputSuite):
    backend = "socketio"
