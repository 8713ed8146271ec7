from chaussette.testing.hostile import HostileInputSuite


class TestEventletHostile(HostileInputSuite):
    backend = "eventlet"
