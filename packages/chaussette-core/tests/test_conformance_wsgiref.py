from chaussette_testing.conformance import ConformanceSuite


class TestWsgiref(ConformanceSuite):
    backend = "wsgiref"
