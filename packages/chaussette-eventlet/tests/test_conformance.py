from chaussette_testing.conformance import ConformanceSuite


class TestEventlet(ConformanceSuite):
    backend = "eventlet"
