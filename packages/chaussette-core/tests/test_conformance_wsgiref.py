from chaussette.testing.conformance import ConformanceSuite


class TestWsgiref(ConformanceSuite):
    backend = "wsgiref"
