"""The production suites (behind a proxy, access logs, draining) on this package's backends."""

from chaussette_testing.access import AccessLogSuite
from chaussette_testing.draining import DrainSuite
from chaussette_testing.proxying import ProxySuite


class TestGevent(ProxySuite, AccessLogSuite, DrainSuite):
    backend = "gevent"


class TestFastGevent(ProxySuite, AccessLogSuite, DrainSuite):
    backend = "fastgevent"


class TestGeventWebSocket(ProxySuite, AccessLogSuite, DrainSuite):
    backend = "geventwebsocket"


class TestGeventWs4py(ProxySuite, AccessLogSuite, DrainSuite):
    backend = "geventws4py"
