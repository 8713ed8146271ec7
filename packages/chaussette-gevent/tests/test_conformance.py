"""Core's conformance suite, once per backend name this package registers."""

from chaussette_testing.conformance import ConformanceSuite


class TestGevent(ConformanceSuite):
    backend = "gevent"


class TestFastGevent(ConformanceSuite):
    backend = "fastgevent"


class TestGeventWebSocket(ConformanceSuite):
    backend = "geventwebsocket"


class TestGeventWs4py(ConformanceSuite):
    backend = "geventws4py"
