from chaussette_testing.hostile import HostileInputSuite


class TestWsgirefHostile(HostileInputSuite):
    backend = "wsgiref"
