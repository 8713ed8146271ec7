"""Test tools shared by every backend package: real server processes, real sockets.

``chaussette.testing.conformance.ConformanceSuite`` is the behaviour every backend must
show; a backend package subclasses it with ``backend = "name"`` and runs it as its own
test suite.
"""

from chaussette.testing.process import ServerProcess, free_port, start_server
from chaussette.testing.client import UnixHTTPConnection, raw_exchange, request

__all__ = ["ServerProcess", "free_port", "start_server", "UnixHTTPConnection", "raw_exchange", "request"]
