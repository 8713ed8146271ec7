from chaussette_testing.conformance import ConformanceSuite


class TestWaitress(ConformanceSuite):
    backend = "waitress"
