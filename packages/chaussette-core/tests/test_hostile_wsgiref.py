from chaussette.testing.hostile import HostileInputSuite


class TestWsgirefHostile(HostileInputSuite):
    backend = "wsgiref"
