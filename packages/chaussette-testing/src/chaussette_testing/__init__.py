"""Test tools shared by every backend package: real server processes, real sockets.

``chaussette_testing.conformance.ConformanceSuite`` is the behaviour every backend must
show; a backend package subclasses it with ``backend = "name"`` and runs it as its own
test suite.
"""

__version__ = "1.0.0"

from chaussette_testing.client import UnixHTTPConnection, raw_exchange, request
from chaussette_testing.process import ServerProcess, free_port, start_server

__all__ = ["__version__", "ServerProcess", "free_port", "start_server", "UnixHTTPConnection", "raw_exchange", "request"]
