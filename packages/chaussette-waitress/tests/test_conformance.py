from chaussette.testing.conformance import ConformanceSuite


class TestWaitress(ConformanceSuite):
    backend = "waitress"
