"""The production suites on this package's backends: behind a proxy, access logs, draining,
metrics, stuck requests, systemd notify, the Python API embedded in a thread."""

from chaussette_testing.access import AccessLogSuite
from chaussette_testing.draining import DrainSuite
from chaussette_testing.embedded import EmbeddedSuite
from chaussette_testing.metrics import MetricsSuite
from chaussette_testing.notify import NotifySuite
from chaussette_testing.proxying import ProxySuite
from chaussette_testing.stuck import StuckRequestSuite


class TestWsgiref(ProxySuite, AccessLogSuite, DrainSuite, MetricsSuite, StuckRequestSuite,
                 NotifySuite, EmbeddedSuite):
    backend = "wsgiref"
