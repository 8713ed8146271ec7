from chaussette.testing.conformance import ConformanceSuite


class TestEventlet(ConformanceSuite):
    backend = "eventlet"
