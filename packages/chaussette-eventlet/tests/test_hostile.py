from chaussette_testing.hostile import HostileInputSuite


class TestEventletHostile(HostileInputSuite):
    backend = "eventlet"
