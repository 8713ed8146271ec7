"""The production suites (behind a proxy, access logs, draining) on this package's backends."""

from chaussette_testing.access import AccessLogSuite
from chaussette_testing.draining import DrainSuite
from chaussette_testing.proxying import ProxySuite


class TestBjoern(ProxySuite, AccessLogSuite, DrainSuite):
    backend = "bjoern"
