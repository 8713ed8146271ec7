"""The production suites (behind a proxy, access logs, draining, metrics, stuck requests) on this package's backends."""

from chaussette_testing.access import AccessLogSuite
from chaussette_testing.draining import DrainSuite
from chaussette_testing.metrics import MetricsSuite
from chaussette_testing.proxying import ProxySuite
from chaussette_testing.stuck import StuckRequestSuite


class TestGevent(ProxySuite, AccessLogSuite, DrainSuite, MetricsSuite, StuckRequestSuite):
    backend = "gevent"


class TestFastGevent(ProxySuite, AccessLogSuite, DrainSuite, MetricsSuite, StuckRequestSuite):
    backend = "fastgevent"


class TestGeventWebSocket(ProxySuite, AccessLogSuite, DrainSuite, MetricsSuite, StuckRequestSuite):
    backend = "geventwebsocket"


class TestGeventWs4py(ProxySuite, AccessLogSuite, DrainSuite, MetricsSuite, StuckRequestSuite):
    backend = "geventws4py"
